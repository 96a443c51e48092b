"""Crashes, restarts and checkpoints with the real exporter process.

kill -9 mid-stream (several times while a writer goes on), rotation and truncation
while the exporter was down, and a corrupt checkpoint. Every status line written
since the first start must be counted exactly once, and no counter may go backwards.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.helpers.follow import (
    Lines, Writer, append, counter, follow_args, logrotate, logrotate_conf, settle, status_total, wait_status,
)

RESTARTS = 3


def test_kill_9_and_restart_count_every_line_once(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    log.touch()
    state = tmp_path / "state.json"
    args = follow_args(log, state, "--start-at", "beginning")
    writer = Writer(log, batch=4, interval=0.01)
    writer.start()
    last = 0.0
    for round_ in range(RESTARTS):
        exp = exporter_factory(args)
        first = status_total(exp.metrics())
        assert first >= last, f"restart {round_}: counter went back from {last} to {first}"
        last = first
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            value = status_total(exp.metrics())
            assert value >= last, f"counter went back from {last} to {value}"
            last = value
            time.sleep(0.1)
        assert last > 0
        exp.stop(signal.SIGKILL)
    written = writer.stop()
    exp = exporter_factory(args)
    assert status_total(exp.metrics()) >= last
    samples = wait_status(exp, written, timeout=20)
    assert counter(samples, "ndr_exporter_lines_total", result="matched") == written
    assert status_total(settle(exp, 1.0)) == written


@pytest.mark.parametrize("options,rotations", [
    (["create"], 1),
    (["create", "compress"], 1),
    (["create", "compress", "delaycompress"], 2),
    (["copytruncate"], 1),
], ids=["create", "compress", "delaycompress-twice", "copytruncate"])
def test_rotation_while_down(tmp_path: Path, exporter_factory, options: list[str], rotations: int) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    state = tmp_path / "state.json"
    args = follow_args(log, state, "--start-at", "beginning")
    conf = logrotate_conf(tmp_path, log, options)
    exp = exporter_factory(args)
    wait_status(exp, 10)
    exp.stop(signal.SIGKILL)
    n = 10
    for _ in range(rotations):
        append(log, lines.block(n, 5))          # written while down, before the rotation
        n += 5
        logrotate(conf, tmp_path / "logrotate.state")
    append(log, lines.block(n, 7))              # the new file, also while down
    n += 7
    exp = exporter_factory(args)
    samples = wait_status(exp, n)
    assert counter(samples, "ndr_exporter_rotations_total") == rotations
    append(log, lines.block(n, 3))
    wait_status(exp, n + 3)
    assert status_total(settle(exp, 1.0)) == n + 3


def test_truncated_and_rewritten_while_down(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    state = tmp_path / "state.json"
    args = follow_args(log, state, "--start-at", "beginning")
    exp = exporter_factory(args)
    wait_status(exp, 10)
    assert exp.stop() == 0
    # Same inode, new content longer than the old offset: only the fingerprint tells.
    log.write_bytes(lines.block(100, 30))
    exp = exporter_factory(args)
    samples = wait_status(exp, 40)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    assert status_total(settle(exp, 1.0)) == 40


def test_clean_restart_resumes_and_counts_lines_written_while_down(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))             # before the first start: start-at end skips these
    state = tmp_path / "state.json"
    args = follow_args(log, state)
    exp = exporter_factory(args)
    append(log, lines.block(10, 6))
    wait_status(exp, 6)
    assert exp.stop() == 0
    append(log, lines.block(16, 4))
    exp = exporter_factory(args)
    assert status_total(exp.metrics()) >= 6     # the counters continue: no reset for Prometheus
    wait_status(exp, 10)
    assert status_total(settle(exp, 1.0)) == 10


def test_corrupt_checkpoint_is_logged_and_ignored(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    state = tmp_path / "state.json"
    state.write_bytes(b'{"version": 1, "sources": {"mail.log": ')   # cut short, as by a full disk
    exp = exporter_factory(follow_args(log, state, "--start-at", "beginning"))
    wait_status(exp, 10)
    output = exp.output()
    assert "ndr_exporter.checkpoint" in output and str(state) in output
    append(log, lines.block(10, 2))
    wait_status(exp, 12)
    assert exp.stop() == 0
    exp = exporter_factory(follow_args(log, state, "--start-at", "beginning"))
    assert status_total(settle(exp, 1.0)) == 12    # a good checkpoint again after the first write


def test_kill_9_while_draining_a_rotated_file_then_rotate_again(tmp_path: Path, exporter_factory) -> None:
    """The checkpoint holds the rotated file still being drained and the new one; both rotate on."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    log.touch()
    conf = logrotate_conf(tmp_path, log, ["create", "compress"])
    args = follow_args(log, tmp_path / "state.json", "--start-at", "beginning")
    writer = Writer(log, batch=3, interval=0.005)
    writer.start()
    exp = exporter_factory(args)
    time.sleep(0.5)
    logrotate(conf, tmp_path / "logrotate.state")
    time.sleep(0.7)                        # checkpointed while the old file is drained
    exp.stop(signal.SIGKILL)
    logrotate(conf, tmp_path / "logrotate.state")      # mail.log.1.gz -> .2.gz, mail.log -> .1.gz
    time.sleep(0.3)
    exp = exporter_factory(args)
    time.sleep(0.5)
    written = writer.stop()
    samples = wait_status(exp, written, timeout=20)
    assert counter(samples, "ndr_exporter_rotations_total") == 2
    assert status_total(settle(exp, 1.0)) == written
