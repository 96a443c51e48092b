"""The file source never blocks, never takes a failed listing for "all files gone" (issue 16).

With the real exporter: a FIFO beside the log named like a rotated copy, then a truncation (the
pipeline thread used to block forever opening it); a FIFO matched by a glob (skipped, logged); a
glob's folder that vanishes for more than the rotation drain time in poll mode (the files were
closed as "rotated away" and read from 0 when it came back); a 2,000-file glob with 1,024 file
descriptors (EMFILE made the listing fail and every file was closed as "rotated away"), and the
same glob with the limit raised (every file counted exactly).
"""

from __future__ import annotations

import os
import re
import resource
import time
from pathlib import Path

import pytest

from tests.helpers import exporter_process
from tests.helpers.follow import Lines, append, counter, follow_args, settle, status_total, wait_status


def test_fifo_named_like_a_rotated_copy_and_a_truncation(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    os.mkfifo(tmp_path / "mail.log.pipe")
    exp = exporter_factory(follow_args(log, tmp_path / "state.json", "--start-at", "beginning"))
    wait_status(exp, 10)
    with open(log, "wb") as f:               # truncated in place, no copy
        f.write(lines.block(10, 3))
    wait_status(exp, 13)
    append(log, lines.block(13, 2))
    samples = wait_status(exp, 15)
    assert status_total(settle(exp, 1.0)) == 15
    assert counter(samples, "ndr_exporter_rotations_total") == 1   # rotations and truncations
    assert f"skipping {tmp_path / 'mail.log.pipe'}: not a regular file (a FIFO)" in exp.output()


def test_fifo_matched_by_a_glob_is_skipped_and_logged(tmp_path: Path, exporter_factory) -> None:
    lines = Lines()
    append(tmp_path / "a.log", lines.block(0, 4))
    os.mkfifo(tmp_path / "b.log")
    exp = exporter_factory(follow_args(tmp_path / "*.log", None, "--start-at", "beginning"))
    wait_status(exp, 4)
    append(tmp_path / "a.log", lines.block(4, 2))
    samples = wait_status(exp, 6)
    assert status_total(settle(exp, 1.0)) == 6
    assert counter(samples, "ndr_exporter_read_errors_total", source="*.log") == 0
    assert exp.output().count(f"skipping {tmp_path / 'b.log'}: not a regular file (a FIFO)") == 1


def test_glob_folder_gone_for_longer_than_the_drain_time_in_poll_mode(tmp_path: Path,
                                                                      exporter_factory) -> None:
    logs = tmp_path / "nfs"
    logs.mkdir()
    lines = Lines()
    append(logs / "a.log", lines.block(0, 5))
    append(logs / "b.log", lines.block(5, 5))
    exp = exporter_factory(follow_args(logs / "*.log", tmp_path / "state.json", "--start-at", "beginning",
                                       "--poll"))
    wait_status(exp, 10)
    hidden = tmp_path / "away"
    logs.rename(hidden)                      # the folder is gone (an NFS hiccup), the files are not
    time.sleep(6.5)
    hidden.rename(logs)
    append(logs / "a.log", lines.block(10, 2))
    samples = wait_status(exp, 12)
    assert status_total(settle(exp, 2.0)) == 12
    assert counter(samples, "ndr_exporter_rotations_total", source="*.log") == 0
    assert counter(samples, "ndr_exporter_read_errors_total", source="*.log") >= 1
    assert "rotated away" not in exp.output()
    assert f"cannot list {logs}" in exp.output()


def _glob_of(tmp_path: Path, n: int) -> Path:
    logs = tmp_path / "many"
    logs.mkdir()
    lines = Lines()
    for i in range(n):
        (logs / f"f{i:04d}.log").write_bytes(lines.line(i))
    return logs / "*.log"


def test_2000_files_at_1024_descriptors_is_a_read_error_and_a_retry(tmp_path: Path, exporter_factory,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pattern = _glob_of(tmp_path, 2000)
    monkeypatch.setattr(exporter_process, "EXPORTER_CMD",
                        ["prlimit", "--nofile=1024:1024", "--", *exporter_process.EXPORTER_CMD])
    exp = exporter_factory(follow_args(pattern, None, "--start-at", "beginning"))
    deadline = time.monotonic() + 30
    while "too many open files" not in exp.output():
        assert time.monotonic() < deadline, exp.output()[-3000:]
        time.sleep(0.2)
    time.sleep(1.5)
    samples = exp.metrics()
    output = exp.output()
    opened = len(re.findall(r"following \S+ from offset 0", output))
    assert 0 < opened < 1024
    assert status_total(samples) == opened
    assert counter(samples, "ndr_exporter_read_errors_total", source="*.log") >= 1
    assert "rotated away" not in output
    assert re.search(r"\*\.log: too many open files: \d+ files open, the limit is 1024 "
                     r"\(raise LimitNOFILE\); \d+ file\(s\) not followed yet; retrying in \d+ s", output), \
        output[-3000:]
    # Files that go away free their descriptors: as many others are then opened and counted.
    followed = re.findall(r"following (\S+) from offset 0", output)
    for path in followed[:300]:
        os.unlink(path)
    samples = exp.wait_for_metrics(lambda s: status_total(s) == opened + 300, timeout=60)
    assert len(re.findall(r"following \S+ from offset 0", exp.output())) == opened + 300
    assert status_total(settle(exp, 1.0)) == opened + 300


def test_2000_files_with_the_limit_raised_are_all_counted(tmp_path: Path, exporter_factory) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2300:
        pytest.skip(f"the hard open files limit here is {hard}")
    pattern = _glob_of(tmp_path, 2000)
    exp = exporter_factory(follow_args(pattern, None, "--start-at", "beginning"))
    samples = wait_status(exp, 2000, timeout=60)
    assert status_total(settle(exp, 1.0)) == 2000
    assert counter(samples, "ndr_exporter_read_errors_total", source="*.log") == 0
