"""Following one file with the real exporter process: latency, idle CPU, partial and huge lines, stdin.

Lines are real Postfix lines (fail2ban's corpus, see tests/helpers/follow.py); the
exporter runs as a subprocess and is scraped over HTTP.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.helpers.exporter_process import EXPORTER_CMD, REPO, exporter_env, free_port, parse_exposition
from tests.helpers.follow import (
    Lines, append, counter, cpu_ticks, follow_args, ignored_line, lines_read, settle, status_total, wait_status,
)


def test_start_at_end_then_append_shows_within_a_second(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))            # already there: not counted with start-at end
    exp = exporter_factory(follow_args(log))
    assert status_total(exp.metrics()) == 0
    latencies = []
    for i in range(5):
        before = time.monotonic()
        append(log, lines.line(100 + i))
        exp.wait_for_metrics(lambda s, want=i + 1: status_total(s) == want, timeout=5)
        latencies.append(time.monotonic() - before)
    print(f"append-to-visible latency: max {max(latencies) * 1000:.0f} ms, "
          f"all {[round(x * 1000) for x in latencies]} ms")
    assert max(latencies) < 2.0        # the issue asks for 1 s; slack for a loaded CI machine
    samples = settle(exp, 1.0)
    assert status_total(samples) == 5
    assert lines_read(samples) == 5


def test_without_a_state_file_every_read_is_published_at_once(tmp_path: Path, exporter_factory) -> None:
    """checkpoint_interval spaces checkpoint writes; with no state file there is none to write,
    so a line written soon after another is not held back for half the interval. With a state
    file it is (the checkpoint comes first): the same two lines show the difference."""
    log = tmp_path / "mail.log"
    log.touch()
    lines = Lines()
    for state in (None, tmp_path / "state.json"):
        config = tmp_path / "config.yml"
        config.write_text(f"checkpoint_interval: 8\nstate_file: {state}\n" if state else "checkpoint_interval: 8\n")
        exp = exporter_factory(follow_args(log) + ["--config.file", str(config)])
        base = status_total(exp.metrics())
        append(log, lines.line(0))
        exp.wait_for_metrics(lambda s: status_total(s) == base + 1, timeout=5)   # the first save after idle
        append(log, lines.line(1))
        time.sleep(1.5)
        shown = status_total(exp.metrics())
        if state is None:
            assert shown == base + 2          # published after the poll that read it
        else:
            assert shown == base + 1          # waits for the next checkpoint, 4 s after the last
            exp.wait_for_metrics(lambda s: status_total(s) == base + 2, timeout=8)
        exp.stop()


def test_idle_daemon_uses_no_cpu(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    append(log, Lines().block(0, 20))
    exp = exporter_factory(follow_args(log, tmp_path / "state.json", "--start-at", "beginning"))
    wait_status(exp, 20)
    time.sleep(1.0)                      # let the last checkpoint be written
    assert exp.proc is not None
    before = cpu_ticks(exp.proc.pid)
    time.sleep(3)
    grown = cpu_ticks(exp.proc.pid) - before
    print(f"idle CPU over 3 s: {grown} clock ticks")
    assert grown <= 2                    # a tick is 10 ms: idle means no work at all, bar timer noise


def test_partial_line_waits_for_its_newline(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    log.touch()
    lines = Lines()
    exp = exporter_factory(follow_args(log))
    line = lines.line(0)
    append(log, line[:40])
    time.sleep(1.0)
    append(log, line[40:-1])
    samples = settle(exp, 1.0)
    assert status_total(samples) == 0 and lines_read(samples) == 0
    append(log, b"\n" + lines.line(1))
    samples = wait_status(exp, 2)
    assert lines_read(samples) == 2


def test_huge_line_is_skipped_and_the_next_line_counts(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    log.touch()
    lines = Lines()
    exp = exporter_factory(follow_args(log))
    # 3 MiB without a newline, in pieces: more than the read block and the 64 KiB line limit.
    huge = b"Nov 14 22:13:20 server postfix/smtp[1]: " + b"x" * (3 * 1024 * 1024)
    for i in range(0, len(huge), 512 * 1024):
        append(log, huge[i:i + 512 * 1024])
        time.sleep(0.05)
    append(log, b"\n" + lines.line(0) + ignored_line() + lines.line(1))
    samples = wait_status(exp, 2)
    assert counter(samples, "ndr_exporter_lines_total", result="oversized") == 1
    assert counter(samples, "ndr_exporter_lines_total", result="ignored") == 1
    assert lines_read(samples) == 3
    # A huge line arriving in one piece among normal lines is dropped the same way.
    append(log, lines.line(2) + b"y" * (200 * 1024) + b"\n" + lines.line(3))
    samples = wait_status(exp, 4)
    assert counter(samples, "ndr_exporter_lines_total", result="oversized") == 2
    assert status_total(settle(exp, 1.0)) == 4


def test_stdin_counts_every_line_and_keeps_serving(tmp_path: Path) -> None:
    lines = Lines()
    log = tmp_path / "piped.log"
    log.write_bytes(lines.block(0, 3000) + ignored_line())
    port = free_port()
    cat = subprocess.Popen(["cat", str(log)], stdout=subprocess.PIPE)
    proc = subprocess.Popen(EXPORTER_CMD + ["--source.stdin", "--source.format", "syslog",
                                            "--web.listen-address", f"127.0.0.1:{port}"],
                            stdin=cat.stdout, env=exporter_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert cat.stdout is not None
    cat.stdout.close()
    try:
        deadline = time.monotonic() + 15
        samples: dict = {}
        while time.monotonic() < deadline:
            try:
                import urllib.request
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    samples = parse_exposition(resp.read().decode())
                if status_total(samples) == 3000:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert status_total(samples) == 3000
        assert lines_read(samples, "stdin") == 3001
        time.sleep(1.0)
        assert proc.poll() is None          # stdin ended; the exporter keeps serving
    finally:
        proc.terminate()
        proc.wait(10)
        cat.wait(10)
