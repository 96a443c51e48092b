"""A file is the same file whatever its device number, its source's name or a lost tail (issue 16).

Each test runs the real exporter and counts real Postfix lines (tests/helpers/follow.py); each
was seen to count lines twice (or to stop counting) before files were known by a fingerprint of
their first bytes beside device and inode, and positions were kept by file:
  - the same ext4 filesystem mounted again from another loop device (a new st_dev, the same
    inode and content), across a restart and while the exporter runs;
  - a log that lost its tail in a crash (shorter than the checkpoint, same first bytes);
  - with start_at: beginning, a source renamed, removed and re-added (across a restart), or its
    path widened to a glob that matches the same file, by SIGHUP;
  - a checkpoint that is valid JSON of the wrong shape.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers.follow import Lines, append, counter, follow_args, settle, status_total, wait_status


# --- a real filesystem that can be mounted again under another device number ---------------

def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


class Ext4Image:
    """An ext4 image in tmp_path, mounted from a loop device; remount() uses another loop device."""

    def __init__(self, tmp: Path) -> None:
        self.image = tmp / "fs.ext4"
        self.mnt = tmp / "mnt"
        self.mnt.mkdir()
        self.loop: str | None = None
        self.lazy: list[str] = []       # loop devices left behind by a lazy unmount

    def create(self) -> None:
        with open(self.image, "wb") as f:
            f.truncate(16 * 1024 * 1024)
        _run("mkfs.ext4", "-q", "-F", str(self.image))
        self.loop = _run("losetup", "--find", "--show", str(self.image))
        _run("mount", self.loop, str(self.mnt))

    def remount(self, lazy: bool = False) -> None:
        """Unmount, attach the image to a new loop device (the old one still held), mount that."""
        assert self.loop is not None
        _run("sync")
        _run("umount", *(["-l"] if lazy else []), str(self.mnt))
        new = _run("losetup", "--find", "--show", str(self.image))
        assert new != self.loop
        if lazy:
            self.lazy.append(self.loop)     # still in use through the exporter's open descriptor
        else:
            _run("losetup", "-d", self.loop)
        self.loop = new
        _run("mount", self.loop, str(self.mnt))

    def cleanup(self) -> None:
        subprocess.run(["umount", str(self.mnt)], capture_output=True, timeout=60)
        for loop in [self.loop, *self.lazy]:
            if loop:
                subprocess.run(["losetup", "-d", loop], capture_output=True, timeout=60)


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Ext4Image]:
    if os.geteuid() != 0 or not all(shutil.which(c) for c in ("losetup", "mkfs.ext4", "mount")):
        pytest.skip("mounting a loop device needs root and util-linux")
    fs = Ext4Image(tmp_path)
    try:
        fs.create()
    except subprocess.CalledProcessError as err:
        fs.cleanup()
        pytest.skip(f"cannot mount an ext4 image here: {err.stderr}")
    yield fs
    fs.cleanup()


def test_remounted_under_another_device_number_while_stopped(tmp_path: Path, ext4: Ext4Image,
                                                             exporter_factory) -> None:
    log = ext4.mnt / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    args = follow_args(log, tmp_path / "state.json", "--start-at", "beginning")
    exp = exporter_factory(args)
    wait_status(exp, 10)
    assert exp.stop() == 0
    before = os.stat(log)
    ext4.remount()
    after = os.stat(log)
    assert (after.st_dev != before.st_dev, after.st_ino) == (True, before.st_ino)
    append(log, lines.block(10, 4))
    exp = exporter_factory(args)
    samples = wait_status(exp, 14)
    assert status_total(settle(exp, 1.0)) == 14
    assert counter(samples, "ndr_exporter_rotations_total") == 0
    assert "no rotated copy" not in exp.output()


def test_remounted_under_another_device_number_while_running(tmp_path: Path, ext4: Ext4Image,
                                                             exporter_factory) -> None:
    log = ext4.mnt / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    exp = exporter_factory(follow_args(log, tmp_path / "state.json", "--start-at", "beginning", "--poll"))
    wait_status(exp, 10)
    ext4.remount(lazy=True)                 # the exporter's descriptor keeps the old mount alive
    time.sleep(1.5)
    append(log, lines.block(10, 4))
    samples = wait_status(exp, 14)
    assert status_total(settle(exp, 2.0)) == 14
    assert counter(samples, "ndr_exporter_rotations_total") == 0
    assert "seen again under another device" in exp.output()


# --- a log that lost its tail ------------------------------------------------------------

def test_log_shorter_than_the_checkpoint_with_the_same_start_is_resumed_at_its_end(
        tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 20))
    args = follow_args(log, tmp_path / "state.json", "--start-at", "beginning")
    exp = exporter_factory(args)
    wait_status(exp, 20)
    exp.stop(signal.SIGKILL)
    os.truncate(log, len(lines.block(0, 12)))   # the last 8 lines never reached the disk
    exp = exporter_factory(args)
    assert status_total(settle(exp, 1.0)) == 20
    append(log, lines.block(20, 3))
    wait_status(exp, 23)
    assert status_total(settle(exp, 1.0)) == 23
    assert f"{log} is shorter than the checkpoint" in exp.output()


# --- sources renamed, removed and re-added, widened to a glob --------------------------------

def _config(path: Path, state: Path, sources: list[tuple[str, Path | str]]) -> None:
    body = "".join(f"  - name: {name}\n    path: {p}\n    format: syslog\n    start_at: beginning\n"
                   for name, p in sources)
    path.write_text(f"state_file: {state}\nsources:\n{body}")


def _reload(exp, config: Path, state: Path, sources: list[tuple[str, Path | str]], seen: str) -> None:
    _config(config, state, sources)
    before = exp.output().count(seen)
    exp.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while exp.output().count(seen) == before:   # the reload has been applied
        assert time.monotonic() < deadline, exp.output()
        time.sleep(0.05)


def test_source_renamed_by_sighup_is_not_read_again(tmp_path: Path, exporter_factory) -> None:
    log, state, config = tmp_path / "mail.log", tmp_path / "state.json", tmp_path / "config.yaml"
    lines = Lines()
    append(log, lines.block(0, 10))
    _config(config, state, [("postfix", log)])
    exp = exporter_factory(["--config.file", str(config)])
    wait_status(exp, 10)
    _reload(exp, config, state, [("mail", log)], "mail: source added")
    append(log, lines.block(10, 3))
    samples = wait_status(exp, 13)
    assert status_total(settle(exp, 1.0)) == 13
    assert counter(samples, "ndr_exporter_lines_total", source="mail", result="matched") == 3


def test_source_removed_and_re_added_across_a_restart_is_not_read_again(tmp_path: Path,
                                                                       exporter_factory) -> None:
    log, other = tmp_path / "mail.log", tmp_path / "other.log"
    state, config = tmp_path / "state.json", tmp_path / "config.yaml"
    lines = Lines()
    append(log, lines.block(0, 10))
    append(other, lines.block(100, 2))
    _config(config, state, [("postfix", log), ("other", other)])
    exp = exporter_factory(["--config.file", str(config)])
    wait_status(exp, 12)
    _reload(exp, config, state, [("other", other)], "postfix: source removed")
    _reload(exp, config, state, [("postfix", log), ("other", other)], "postfix: source added")
    append(log, lines.block(10, 3))
    wait_status(exp, 15)
    assert status_total(settle(exp, 1.0)) == 15
    # Removed again, then the exporter restarts: the checkpoint still knows the file.
    _reload(exp, config, state, [("other", other)], "postfix: source removed")
    assert exp.stop() == 0
    append(log, lines.block(13, 2))
    exp = exporter_factory(["--config.file", str(config)])
    _reload(exp, config, state, [("postfix", log), ("other", other)], "postfix: source added")
    append(log, lines.block(15, 1))
    wait_status(exp, 18)                    # the 2 lines written while it was not followed count too
    assert status_total(settle(exp, 1.0)) == 18


def test_path_widened_to_a_glob_matching_the_same_file_is_not_read_again(tmp_path: Path,
                                                                       exporter_factory) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log, state, config = logs / "mail.log", tmp_path / "state.json", tmp_path / "config.yaml"
    lines = Lines()
    append(log, lines.block(0, 10))
    _config(config, state, [("postfix", log)])
    exp = exporter_factory(["--config.file", str(config)])
    wait_status(exp, 10)
    _reload(exp, config, state, [("postfix", logs / "mail.l?g")], "postfix: source added")
    append(log, lines.block(10, 3))
    wait_status(exp, 13)
    assert status_total(settle(exp, 1.0)) == 13


# --- a checkpoint of the wrong shape -------------------------------------------------------

@pytest.mark.parametrize("bad", [[], {"files": {"path": "x"}}, {"files": [{"path": 1, "dev": "a"}]}],
                         ids=["list", "files-not-a-list", "entry-of-wrong-types"])
def test_checkpoint_of_the_wrong_shape_is_logged_and_the_source_kept(tmp_path: Path, exporter_factory,
                                                                    bad: object) -> None:
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    lines = Lines()
    append(log, lines.block(0, 10))
    args = follow_args(log, state, "--start-at", "beginning")
    exp = exporter_factory(args)
    wait_status(exp, 10)
    assert exp.stop() == 0
    data = json.loads(state.read_text())
    data["sources"]["mail.log"] = bad
    state.write_text(json.dumps(data))
    exp = exporter_factory(args)
    assert status_total(exp.metrics()) == 10       # the counts are kept, the file is not read again
    append(log, lines.block(10, 2))
    wait_status(exp, 12)
    assert status_total(settle(exp, 1.0)) == 12
    assert "mail.log: the checkpoint's entry for this source has the wrong shape" in exp.output()
    assert exp.stop() == 0
    assert json.loads(state.read_text())["sources"]["mail.log"]["files"][0]["path"] == str(log)
    exp = exporter_factory(args)                   # and the restart after does not read it again
    append(log, lines.block(12, 1))
    wait_status(exp, 13)
    assert status_total(settle(exp, 1.0)) == 13
