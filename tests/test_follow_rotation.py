"""Rotation while the real exporter follows: real logrotate in each mode, and the other ways logs move.

One test per way a log file changes under the follower (like mtail's test suite):
logrotate create / compress / delaycompress / copytruncate while a writer appends,
delete-and-recreate, deletion alone (the writer keeps its descriptor), symlink swap,
truncation in place, and a new file matching a glob.
Totals must equal the lines written, exactly.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from tests.helpers.follow import (
    Lines, Writer, append, counter, follow_args, logrotate, logrotate_conf, settle, status_total, wait_status,
)

ROTATIONS = 3


def lines_on_disk(directory: Path, prefix: str) -> int:
    """Lines in the log and all its rotated copies, .gz included: what the log itself kept."""
    n = 0
    for path in directory.iterdir():
        if path.name.startswith(prefix):
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            n += data.count(b"\n")
    return n


@pytest.mark.parametrize("options", [
    ["create"],
    ["create", "compress"],
    ["create", "compress", "delaycompress"],
    ["copytruncate"],
    ["copytruncate", "compress"],
], ids=["create", "compress", "delaycompress", "copytruncate", "copytruncate-compress"])
def test_logrotate_while_writing(tmp_path: Path, exporter_factory, options: list[str]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    log.touch()
    conf = logrotate_conf(tmp_path, log, options)
    exp = exporter_factory(follow_args(log, tmp_path / "state.json"))
    writer = Writer(log, batch=3, interval=0.005)
    writer.start()
    copytruncate = "copytruncate" in options
    for _ in range(ROTATIONS):
        time.sleep(0.4)
        # Lines written between copytruncate's copy and its truncate are lost from the log
        # itself (logrotate documents this), so the writer holds still for that step only.
        # It writes right up to it: the lines not read yet must come from the copy.
        if copytruncate:
            writer.pause()
        logrotate(conf, tmp_path / "logrotate.state")
        writer.resume()
    time.sleep(0.4)
    written = writer.stop()
    assert lines_on_disk(logs, "mail.log") == written
    samples = wait_status(exp, written, timeout=20)
    assert counter(samples, "ndr_exporter_rotations_total") == ROTATIONS
    samples = settle(exp, 1.0)
    assert status_total(samples) == written
    assert counter(samples, "ndr_exporter_read_errors_total") == 0


def test_delete_and_recreate(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    exp = exporter_factory(follow_args(log, None, "--start-at", "beginning"))
    wait_status(exp, 10)
    append(log, lines.block(10, 5))         # read from the deleted file's open descriptor
    log.unlink()
    time.sleep(0.3)
    append(log, lines.block(15, 7))         # a new file at the same path, read from its start
    samples = wait_status(exp, 22)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    append(log, lines.block(22, 3))
    samples = wait_status(exp, 25)
    assert status_total(settle(exp, 1.0)) == 25


def _deleted_descriptors(pid: int) -> list[str]:
    fds = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return [t for t in targets if t.endswith(" (deleted)")]


def test_deletion_while_the_writer_keeps_its_descriptor(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 5))
    exp = exporter_factory(follow_args(log, None, "--start-at", "beginning"))
    wait_status(exp, 5)
    assert exp.proc is not None
    with open(log, "ab") as writer:         # a writer that has not been told to reopen its log
        log.unlink()
        time.sleep(0.3)
        writer.write(lines.block(5, 3))
        writer.flush()
        wait_status(exp, 8)                 # read through the exporter's descriptor
    # Once drained, the deleted file is let go: its disk space is not held for ever.
    deadline = time.monotonic() + 15
    while _deleted_descriptors(exp.proc.pid):
        assert time.monotonic() < deadline, _deleted_descriptors(exp.proc.pid)
        time.sleep(0.2)
    assert f"done with {log} (deleted)" in exp.output()
    append(log, lines.block(8, 2))          # a new file at the path later: read from its start
    samples = wait_status(exp, 10)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    assert status_total(settle(exp, 1.0)) == 10


def test_symlink_swap(tmp_path: Path, exporter_factory) -> None:
    lines = Lines()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "one.log", tmp_path / "b" / "two.log"
    append(first, lines.block(0, 4))
    append(second, lines.block(100, 6))     # already there before the swap: counted from its start
    link = tmp_path / "mail.log"
    link.symlink_to(first)
    exp = exporter_factory(follow_args(link, None, "--start-at", "beginning"))
    wait_status(exp, 4)
    append(first, lines.block(4, 3))        # written to the target directory: seen through the link
    wait_status(exp, 7)
    append(first, lines.block(7, 2))        # last lines of the old target, then the swap at once
    tmp_link = tmp_path / "mail.log.tmp"
    tmp_link.symlink_to(second)
    os.replace(tmp_link, link)
    samples = wait_status(exp, 15)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    append(second, lines.block(106, 5))
    wait_status(exp, 20)
    assert status_total(settle(exp, 1.0)) == 20


def test_truncation_in_place(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 20))
    exp = exporter_factory(follow_args(log, None, "--start-at", "beginning"))
    wait_status(exp, 20)
    with open(log, "wb"):                   # truncate to 0, as `: > mail.log` does
        pass
    time.sleep(0.5)
    append(log, lines.block(20, 4))
    samples = wait_status(exp, 24)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    assert status_total(settle(exp, 1.0)) == 24


def test_new_file_matching_a_glob(tmp_path: Path, exporter_factory) -> None:
    lines = Lines()
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "mail-20240101.log", lines.block(0, 5))
    append(logs / "other.txt", lines.block(500, 50))    # does not match: never read
    config = tmp_path / "config.yaml"
    config.write_text(f"sources:\n  - name: daily\n    path: {logs}/mail-*.log\n"
                      f"    format: syslog\n    start_at: beginning\n")
    exp = exporter_factory(["--config.file", str(config)])
    wait_status(exp, 5)
    append(logs / "mail-20240102.log", lines.block(5, 8))   # a new day's file: read from its start
    append(logs / "mail-20240101.log", lines.block(13, 2))
    samples = wait_status(exp, 15)
    assert counter(samples, "ndr_exporter_lines_total", source="daily", result="matched") == 15
    assert status_total(settle(exp, 1.0)) == 15
