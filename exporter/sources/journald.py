"""The journald source: follow `journalctl --follow --output=json` for the mail units.

Part of the source stage. A thread runs journalctl as a subprocess and passes
its JSON lines, in chunks, to the syslog parser (exporter/parsers/envelope.py reads the
journald JSON: MESSAGE, SYSLOG_IDENTIFIER, __REALTIME_TIMESTAMP). The cursor of
the last entry counted (__CURSOR) is this source's checkpoint; after a restart
journalctl resumes with --after-cursor, so no entry is counted twice.

Which entries: the configured units (-u, glob patterns allowed) and/or syslog
identifiers (-t, exact names such as "postfix/smtp"). journalctl wants both to
match when both are given. With neither, DEFAULT_UNITS: on Debian and Ubuntu
every Postfix process runs in postfix@-.service (postfix@INSTANCE.service for
more instances) and Exim in exim4.service. The defaults are exact names: journalctl
expands a unit glob once, when it starts, to the units the journal has entries of
so far, and a glob that matches none makes it exit. `journal_file` reads a journal file
(--file, globs allowed) instead of the system journal.

If journalctl exits, the reason is logged, counted as a read error, and it is
started again after a backoff (1 s doubling to 30 s).
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from typing import Any, Callable

from exporter.config import SourceConfig
from exporter.sources import BLOCK_BYTES, Backoff, LineCutter, Sink
from exporter.sources.queued import LINES, OVERSIZED, READ_ERROR, QueuedSource

log = logging.getLogger("ndr_exporter.sources.journald")

JOURNALCTL = "journalctl"
DEFAULT_UNITS = ("postfix.service", "postfix@-.service", "exim4.service")
_CURSOR = re.compile(rb'"__CURSOR"\s*:\s*"([^"]+)"')
STDERR_LINES = 20   # what journalctl says on stderr is logged, up to this many lines a run


def journalctl_command(config: SourceConfig, cursor: str | None) -> list[str]:
    """The journalctl command line for a source, resuming after cursor when there is one."""
    cmd = [JOURNALCTL, "--follow", "--output=json", "--no-pager"]
    if config.journal_file:
        cmd.append(f"--file={config.journal_file}")
    units = list(config.units)
    if not units and not config.identifiers:
        units = list(DEFAULT_UNITS)
    cmd += [f"--unit={unit}" for unit in units]
    cmd += [f"--identifier={ident}" for ident in config.identifiers]
    if cursor:
        cmd.append(f"--after-cursor={cursor}")
    elif config.start_at == "beginning":
        cmd.append("--no-tail")
    else:
        cmd.append("--lines=0")
    return cmd


def last_cursor(chunk: bytes) -> str | None:
    """The __CURSOR of the last JSON line in a chunk (only that line is searched)."""
    start = chunk.rfind(b"\n", 0, len(chunk) - 1) + 1
    m = _CURSOR.search(chunk, start)
    return m.group(1).decode("ascii", "replace") if m else None


class JournaldSource(QueuedSource):
    def __init__(self, config: SourceConfig, sink: Sink, wake: Callable[[], None],
                 state: dict[str, Any] | None = None) -> None:
        # journald JSON is a syslog-style stream whatever `format` says; envelope.py reads it.
        super().__init__(config.name, "syslog", sink, wake)
        self.config = config
        self.marker = (state or {}).get("cursor") or None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"journald-{self.name}", daemon=True)
        self._thread.start()

    def state(self) -> dict[str, Any]:
        return {"cursor": self.marker} if self.marker else {}

    def close(self) -> None:
        super().close()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        self._thread.join(5)

    def _run(self) -> None:
        backoff = Backoff()
        cursor = self.marker
        while not self.closed.is_set():
            cmd = journalctl_command(self.config, cursor)
            try:
                with self._lock:
                    if self.closed.is_set():
                        return
                    self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE)
            except OSError as err:
                log.warning("%s: cannot run %s: %s", self.name, JOURNALCTL, err)
                returncode, message = None, str(err)
            else:
                log.info("%s: following the journal: %s", self.name, " ".join(cmd))
                said: list[str] = []
                stderr = threading.Thread(target=self._log_stderr, args=(self._proc, said), daemon=True)
                stderr.start()
                cursor = self._read(self._proc, cursor, backoff)
                returncode = self._proc.wait()
                stderr.join(5)
                message = said[-1] if said else ""
            if self.closed.is_set():
                return
            delay = backoff.next_delay()
            log.warning("%s: journalctl stopped (exit status %s): %s; starting it again in %.0f s",
                        self.name, returncode, message or "no message", delay)
            self.put(READ_ERROR, 1)
            self.closed.wait(delay)

    def _log_stderr(self, proc: subprocess.Popen[bytes], said: list[str]) -> None:
        """Log what journalctl says (no permission to read the journal, a bad cursor, ...)."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            text = raw.decode("utf-8", "replace").strip()
            if text and len(said) < STDERR_LINES:
                said.append(text)
                log.warning("%s: journalctl: %s", self.name, text)

    def _read(self, proc: subprocess.Popen[bytes], cursor: str | None, backoff: Backoff) -> str | None:
        """Pass journalctl's output on until it ends; returns the last cursor seen."""
        assert proc.stdout is not None
        cutter = LineCutter(self.config.max_line_bytes)
        while True:
            data = proc.stdout.read1(BLOCK_BYTES)
            if not data:
                return cursor
            whole, oversized = cutter.feed(data)
            if oversized:
                self.put(OVERSIZED, oversized)
            if whole:
                cursor = last_cursor(whole) or cursor
                if not self.put(LINES, (whole, cursor)):
                    return cursor
                backoff.reset()


# --- registration (exporter/sources/kinds.py) ---
KIND = "journald"


def make_source(config: SourceConfig, sink: Sink, wake: Callable[[], None],
                state: dict[str, Any] | None, watcher: object) -> JournaldSource:
    return JournaldSource(config, sink, wake, state)
