"""Checkpoints between two durable writes live in two slot files (exporter/checkpoint.py).

Through the real exporter process: a kill -9 right after a publish resumes from exactly what
/metrics showed, although the fsync'd state file is older; a slot torn by a crash is passed
over and the lines after the older checkpoint are read again, each counted once; a clean stop
leaves everything in the state file and empties the slots; removing the state file starts
afresh even when slots are left over from a crash.
"""

from __future__ import annotations

import json
import signal
import struct
from pathlib import Path

from exporter import checkpoint
from tests.helpers.exporter_process import sample
from tests.helpers.follow import Lines, append, counter, follow_args, settle, status_total, wait_status


def saved_total(data: dict) -> float:
    return sum(row[-1] for row in data["metrics"]["status"])


def slot_seq(path: Path) -> int:
    """The sequence number in a slot's header (-1 when the slot is empty or not made yet)."""
    raw = path.read_bytes() if path.exists() else b""
    if len(raw) < checkpoint.SLOT_HEADER.size:
        return -1
    return struct.unpack_from("<8sIQI", raw)[2]


def slots(state: Path) -> list[Path]:
    return [Path(str(state) + suffix) for suffix in checkpoint.SLOTS]


def test_kill_9_right_after_a_publish_resumes_from_what_metrics_showed(tmp_path: Path, exporter_factory) -> None:
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    lines = Lines()
    append(log, lines.block(0, 4))
    args = follow_args(log, state, "--start-at", "beginning")
    exp = exporter_factory(args)
    wait_status(exp, 4)
    written = 4
    for round_ in range(3):
        append(log, lines.block(written, 3 + round_))
        written += 3 + round_
        shown = status_total(wait_status(exp, written))
        exp.stop(signal.SIGKILL)   # at once: the newest checkpoint is in a slot, not fsync'd
        assert shown == written
        # the fsync'd state file is the one written at start: it holds fewer than /metrics showed
        assert saved_total(json.loads(state.read_text())) < shown
        assert saved_total(checkpoint.load(str(state))) == shown
        exp = exporter_factory(args)
        samples = exp.metrics()
        assert status_total(samples) == shown, f"round {round_}: the restart did not resume from what was shown"
        assert counter(samples, "ndr_exporter_lines_total", result="matched") == written
    samples = settle(exp, 1.0)   # nothing is read twice
    assert status_total(samples) == written
    assert counter(samples, "ndr_exporter_lines_total", result="matched") == written


def test_a_torn_slot_is_passed_over_and_the_lines_after_the_older_checkpoint_are_read_again(
        tmp_path: Path, exporter_factory) -> None:
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    lines = Lines()
    args = follow_args(log, state, "--start-at", "beginning")
    log.touch()
    exp = exporter_factory(args)
    append(log, lines.block(0, 5))
    wait_status(exp, 5)
    append(log, lines.block(5, 3))
    wait_status(exp, 8)
    exp.stop(signal.SIGKILL)
    newest = max(slots(state), key=slot_seq)
    older = checkpoint.load(str(state))
    assert saved_total(older) == 8
    raw = newest.read_bytes()
    newest.write_bytes(raw[:len(raw) // 2])   # a write cut short (or half on disk after a power cut)
    fallback = checkpoint.load(str(state))
    assert fallback is not None and fallback["seq"] < older["seq"] and saved_total(fallback) < 8
    exp = exporter_factory(args)
    samples = wait_status(exp, 8)
    assert counter(samples, "ndr_exporter_lines_total", result="matched") == 8
    assert status_total(settle(exp, 1.0)) == 8   # the lines after the older checkpoint, once
    assert f"checkpoint slot {newest} is torn (a write was cut short): not used" in exp.output()


def test_a_clean_stop_writes_the_state_file_and_empties_the_slots(tmp_path: Path, exporter_factory) -> None:
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    lines = Lines()
    log.touch()
    exp = exporter_factory(follow_args(log, state))
    append(log, lines.block(0, 6))
    samples = wait_status(exp, 6)
    assert sample(samples, "ndr_exporter_checkpoint_failures_total") == 0
    assert max(slot_seq(p) for p in slots(state)) > json.loads(state.read_text())["seq"]
    assert exp.stop() == 0
    data = json.loads(state.read_text())
    assert saved_total(data) == 6
    assert data["sources"]["mail.log"]["files"][0]["offset"] == log.stat().st_size
    used = [p for p in slots(state) if p.exists()]
    assert used and all(p.stat().st_size == 0 for p in used)


def test_removing_the_state_file_starts_afresh_even_with_slots_left_by_a_crash(
        tmp_path: Path, exporter_factory) -> None:
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    lines = Lines()
    log.touch()
    exp = exporter_factory(follow_args(log, state))
    append(log, lines.block(0, 5))
    wait_status(exp, 5)
    exp.stop(signal.SIGKILL)
    assert max(slot_seq(p) for p in slots(state)) > 0
    state.unlink()
    exp = exporter_factory(follow_args(log, state))   # start at the end: nothing old is counted
    assert status_total(exp.metrics()) == 0
    append(log, lines.block(5, 2))
    assert status_total(wait_status(exp, 2)) == 2
    assert status_total(settle(exp, 1.0)) == 2
