"""Read errors with the real exporter process: missing file, permission denied, vanished directory,
a named pipe at the path, unwritable checkpoint. Each is logged with the path and the error, counted in
ndr_exporter_read_errors_total (ndr_exporter_checkpoint_failures_total for the checkpoint),
retried, and recovers once fixed; the daemon keeps serving. A state folder that is not
writable at start is refused (exit 2).

Root ignores file permissions, so the permission tests run the exporter without the two
capabilities that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): it is then refused exactly
like an unprivileged user. (It keeps uid 0 so that it can still load the Python packages
installed under /root.)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from exporter import checkpoint
import tests.helpers.exporter_process as exporter_process
from tests.helpers.exporter_process import sample
from tests.helpers.follow import Lines, append, counter, follow_args, settle, status_total, wait_status

NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
          "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.fixture
def without_dac_override(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
    monkeypatch.setattr(exporter_process, "EXPORTER_CMD", NO_DAC + exporter_process.EXPORTER_CMD)


def test_missing_file_at_start_then_created(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    exp = exporter_factory(follow_args(log, tmp_path / "state.json"))
    samples = exp.wait_for_metrics(lambda s: counter(s, "ndr_exporter_read_errors_total") >= 1)
    assert status_total(samples) == 0
    output = exp.output()
    assert str(log) in output and "No such file or directory" in output
    append(log, Lines().block(0, 6))        # a file that appears after the start is read from 0
    wait_status(exp, 6)
    assert status_total(settle(exp, 1.0)) == 6


def test_permission_denied_then_fixed(tmp_path: Path, exporter_factory, without_dac_override) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 5))
    log.chmod(0o000)
    exp = exporter_factory(follow_args(log, tmp_path / "state.json", "--start-at", "beginning"))
    samples = exp.wait_for_metrics(lambda s: counter(s, "ndr_exporter_read_errors_total") >= 1)
    assert status_total(samples) == 0
    output = exp.output()
    assert str(log) in output and "Permission denied" in output
    time.sleep(1.5)
    log.chmod(0o644)
    samples = wait_status(exp, 5)
    append(log, lines.block(5, 2))
    wait_status(exp, 7)
    assert status_total(settle(exp, 1.0)) == 7


def test_directory_vanishes_and_comes_back(tmp_path: Path, exporter_factory) -> None:
    logs = tmp_path / "mnt"
    logs.mkdir()
    log = logs / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 4))
    exp = exporter_factory(follow_args(log, None, "--start-at", "beginning"))
    wait_status(exp, 4)
    shutil.rmtree(logs)                     # as an unmounted or lost network mount looks
    time.sleep(1.0)
    logs.mkdir()
    append(log, lines.block(4, 3))
    samples = wait_status(exp, 7, timeout=20)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    assert status_total(settle(exp, 1.0)) == 7


def test_named_pipe_at_the_path_is_an_error_not_a_hang(tmp_path: Path, exporter_factory) -> None:
    # A file source reads regular files only (a pipe is for --source.stdin): opening a FIFO
    # would block the pipeline thread until a writer comes, so it is never opened.
    log = tmp_path / "mail.log"
    os.mkfifo(log)
    exp = exporter_factory(follow_args(log, None, "--start-at", "beginning"))
    exp.wait_for_metrics(lambda s: counter(s, "ndr_exporter_read_errors_total") == 1)
    assert f"mail.log: cannot read {log}: not a regular file (a FIFO); retrying in 1 s" in exp.output()
    log.unlink()
    append(log, Lines().block(0, 3))        # a regular file at the path now: followed
    wait_status(exp, 3, timeout=20)
    assert status_total(settle(exp, 1.0)) == 3


def test_unwritable_state_folder_is_refused_at_start(tmp_path: Path, without_dac_override) -> None:
    # Checkpoints would all fail: the start is refused, naming the flag (it used to run without them).
    log = tmp_path / "mail.log"
    append(log, Lines().block(0, 3))
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state_dir.chmod(0o500)
    for check in ([], ["--config.check"]):
        result = exporter_process.run_exporter(follow_args(log, state_dir / "state.json")
                                               + ["--web.listen-address", "127.0.0.1:0"] + check)
        assert (result.returncode, result.stdout, result.stderr) == \
            (2, "", f"ndr-exporter: --state.file: cannot write in the folder {state_dir}: Permission denied\n")
    state_dir.chmod(0o700)


def test_unwritable_checkpoint_is_logged_and_counting_goes_on(tmp_path: Path, exporter_factory,
                                                              without_dac_override) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 3))
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = state_dir / "state.json"
    exp = exporter_factory(follow_args(log, state, "--start-at", "beginning"))
    samples = wait_status(exp, 3)
    written = sample(samples, "ndr_exporter_checkpoint_last_success_timestamp_seconds")
    assert written is not None and sample(samples, "ndr_exporter_checkpoint_failures_total") == 0
    state_dir.chmod(0o500)   # read-only from now on, for a process without CAP_DAC_OVERRIDE
    try:
        append(log, lines.block(3, 2))
        samples = exp.wait_for_metrics(
            lambda s: status_total(s) == 5 and (sample(s, "ndr_exporter_checkpoint_failures_total") or 0) >= 1)
        assert sample(samples, "ndr_exporter_checkpoint_failures_total") == 1
        assert sample(samples, "ndr_exporter_checkpoint_last_success_timestamp_seconds") == written
        output = exp.output()
        assert "ndr_exporter.checkpoint" in output and str(state) in output and "Permission denied" in output
        saved = json.loads(state.read_text())   # the last checkpoint written still holds 3
        assert sum(row[-1] for row in saved["metrics"]["status"]) == 3
    finally:
        state_dir.chmod(0o700)
    append(log, lines.block(5, 1))
    samples = exp.wait_for_metrics(
        lambda s: (sample(s, "ndr_exporter_checkpoint_last_success_timestamp_seconds") or 0) > written)
    assert status_total(samples) == 6
    assert sample(samples, "ndr_exporter_checkpoint_failures_total") == 1
    # the newest checkpoint (in a slot until the next durable write: exporter/checkpoint.py) holds 6
    assert sum(row[-1] for row in checkpoint.load(str(state))["metrics"]["status"]) == 6
