"""Helpers for the file-following tests (tests/test_follow_*.py): real log lines, a writer, totals.

The lines are real Postfix lines from fail2ban's test corpus
(/work/shared/eval/public-corpus/fail2ban/postfix; fail2ban/fail2ban @ deffcbcd,
fail2ban/tests/files/logs/postfix, GPL-2.0; see the corpus' SOURCES.md). Each
template gives exactly one status event with the syslog parser; the writer
varies their timestamp, process id and queue id so that no two written lines
are the same (a repeated line would hide a double count or a lost line from
fingerprint checks).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterable

from tests.helpers.exporter_process import ExporterProcess, Samples, sample, total

from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)
CORPUS_POSTFIX = CORPUS / "fail2ban" / "postfix"
# Line numbers in that file: NOQUEUE / queue-id rejects with 4.7.1, 5.7.1, 5.1.1, 4.7.25, 5.5.2, 5.7.25.
TEMPLATE_LINES = (6, 8, 20, 23, 37, 43, 53, 71)
# A real Postfix line that is not a status line (counted as ignored): line 26 of the same file.
IGNORED_LINE = 26

LOGROTATE = "/usr/sbin/logrotate"
SOURCE = "mail.log"

_STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")
_PID = re.compile(r"\[\d+\]:")
_QUEUE_ID = re.compile(r": [0-9A-F]{10,12}: ")


def _corpus_line(number: int) -> str:
    lines = CORPUS_POSTFIX.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[number - 1]


def templates() -> list[str]:
    return [_corpus_line(n) for n in TEMPLATE_LINES]


def ignored_line() -> bytes:
    return (_corpus_line(IGNORED_LINE) + "\n").encode()


class Lines:
    """Status lines numbered from 0: line(i) is a real template with its own time, pid and queue id."""

    def __init__(self) -> None:
        self.templates = templates()

    def line(self, i: int) -> bytes:
        text = self.templates[i % len(self.templates)]
        stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(1_700_000_000 + i))
        text = _STAMP.sub(stamp, text, count=1)
        text = _PID.sub(f"[{10000 + i}]:", text, count=1)
        text = _QUEUE_ID.sub(f": {0xA0000000 + i:X}0: ", text, count=1)
        return (text + "\n").encode()

    def block(self, start: int, n: int) -> bytes:
        return b"".join(self.line(i) for i in range(start, start + n))


def append(path: Path, data: bytes) -> None:
    """Append like a syslog daemon that reopens the file by name: open, write, close."""
    with open(path, "ab") as f:
        f.write(data)


def append_existing(path: Path, data: bytes, timeout: float = 5) -> None:
    """Append to the file at path once it exists, never creating it (as logrotate's `create` does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            break
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class Writer(threading.Thread):
    """Appends status lines to a path in small batches until stopped; .written counts them.

    Like a syslog daemon that reopens its file for each message, it waits for the file
    to exist rather than create it, so logrotate's `create` step is what makes the new file.
    """

    def __init__(self, path: Path, batch: int = 5, interval: float = 0.01, lines: Lines | None = None) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.batch = batch
        self.interval = interval
        self.lines = lines or Lines()
        self.written = 0
        self._halt = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._writing = threading.Lock()   # held for each write: pause() waits for it

    def run(self) -> None:
        while not self._halt.is_set():
            if not self._running.is_set():
                self._running.wait(0.1)
                continue
            with self._writing:
                if not self._running.is_set():
                    continue   # paused between the check above and the lock
                append_existing(self.path, self.lines.block(self.written, self.batch))
                self.written += self.batch
            time.sleep(self.interval)

    def pause(self) -> None:
        """Stop writing and wait until no write is in progress (none starts after this returns)."""
        self._running.clear()
        with self._writing:
            pass

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> int:
        self._halt.set()
        self._running.set()
        self.join(10)
        return self.written


def status_total(samples: Samples) -> float:
    """All status events counted (every template line gives exactly one)."""
    return total(samples, "ndr_status_codes_total")


def lines_read(samples: Samples, source: str = SOURCE) -> float:
    """Complete lines handed to the parser for a source: matched + ignored + unparsed."""
    return sum(sample(samples, "ndr_exporter_lines_total", source=source, result=r) or 0.0
               for r in ("matched", "ignored", "unparsed"))


def counter(samples: Samples, name: str, source: str = SOURCE, **labels: str) -> float:
    return sample(samples, name, source=source, **labels) or 0.0


def wait_status(exp: ExporterProcess, want: float, timeout: float = 15) -> Samples:
    """Scrape until the status total is want; fails with the exporter's log when it is not."""
    return exp.wait_for_metrics(lambda s: status_total(s) == want, timeout=timeout)


def settle(exp: ExporterProcess, seconds: float = 1.0) -> Samples:
    """Scrape again after `seconds`: nothing more should arrive (no double count that comes late)."""
    time.sleep(seconds)
    return exp.metrics()


def follow_args(path: Path | str, state: Path | None = None, *extra: str) -> list[str]:
    args = ["--source.path", str(path), "--source.format", "syslog"]
    if state is not None:
        args += ["--state-file", str(state)]
    return args + list(extra)


def logrotate(conf: Path, state: Path) -> None:
    """Run the real logrotate, forced, with its own state file."""
    result = subprocess.run([LOGROTATE, "-f", "-s", str(state), str(conf)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, f"logrotate failed: {result.stderr}"


def logrotate_conf(tmp: Path, log: Path, options: Iterable[str]) -> Path:
    conf = tmp / "logrotate.conf"
    body = "\n".join(f"    {o}" for o in ["rotate 50", "missingok", *options])
    conf.write_text(f"{log} {{\n{body}\n}}\n")
    return conf


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])
