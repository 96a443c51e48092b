"""The pure pieces of following, checked directly: cutting a byte stream into lines, the checkpoint file.

The line cutter must give the same complete lines however the stream is split into reads,
drop exactly the lines longer than the limit, and hold back an unfinished line. The
checkpoint must round-trip, refuse what is not a checkpoint, and never leave a torn file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter import checkpoint
from exporter.sources import LineCutter
from exporter.sources.journald import journalctl_command, last_cursor
from exporter.config import SourceConfig

MAX = 300

line_st = st.one_of(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
                    st.integers(min_value=MAX - 2, max_value=MAX + 400).map(lambda n: b"x" * n))


def cut(stream: bytes, splits: list[int]) -> tuple[list[bytes], int, bytes]:
    cutter = LineCutter(MAX)
    out: list[bytes] = []
    oversized = 0
    points = sorted({min(s, len(stream)) for s in splits}) + [len(stream)]
    start = 0
    for point in points:
        whole, n = cutter.feed(stream[start:point])
        start = point
        oversized += n
        out += [line + b"\n" for line in whole.split(b"\n")[:-1]]
    return out, oversized, cutter.rest


@settings(max_examples=300, deadline=None)
@given(st.lists(line_st, max_size=30), st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")),
       st.lists(st.integers(min_value=0, max_value=20000), max_size=12))
def test_any_split_gives_the_same_lines(lines: list[bytes], tail: bytes, splits: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines) + tail
    got, oversized, rest = cut(stream, splits)
    assert got == [line + b"\n" for line in lines if len(line) <= MAX]
    assert oversized == sum(1 for line in lines if len(line) > MAX)
    assert rest == tail                         # the unfinished line waits for its newline


def test_a_long_unfinished_line_is_not_held_in_memory() -> None:
    cutter = LineCutter(MAX)
    assert cutter.feed(b"y" * 10_000) == (b"", 1)
    assert cutter.rest == b"" and cutter.skipping
    assert cutter.feed(b"y" * 10_000) == (b"", 0)
    assert cutter.feed(b"tail\nnext line\n") == (b"next line\n", 0)


def test_checkpoint_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    checkpoint.save(str(path), {"mail.log": {"files": []}}, {"status": []})
    first = checkpoint.load(str(path))
    assert first is not None and first["sources"] == {"mail.log": {"files": []}}
    checkpoint.save(str(path), {"mail.log": {"files": [{"offset": 10}]}}, {"status": []})
    second = checkpoint.load(str(path))
    assert second is not None and second["sources"]["mail.log"]["files"][0]["offset"] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]   # no temporary file left behind


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", json.dumps({"version": 99}).encode(),
                                  json.dumps({"version": 1, "sources": [], "metrics": {}}).encode()])
def test_bad_checkpoints_are_logged_and_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 body: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(body)
    with caplog.at_level(logging.INFO, logger="ndr_exporter.checkpoint"):
        assert checkpoint.load(str(path)) is None
    assert any(r.name == "ndr_exporter.checkpoint" and str(path) in r.getMessage() for r in caplog.records)


def test_journalctl_command_and_cursor() -> None:
    source = SourceConfig(name="journal", kind="journald")
    cmd = journalctl_command(source, None)
    assert "--unit=postfix@-.service" in cmd and "--lines=0" in cmd
    cmd = journalctl_command(SourceConfig(name="j", kind="journald", identifiers=["postfix/smtp"],
                                          start_at="beginning"), "s=1;i=2")
    assert "--identifier=postfix/smtp" in cmd and "--after-cursor=s=1;i=2" in cmd
    assert not any(c.startswith("--unit") for c in cmd)
    chunk = b'{"MESSAGE":"a","__CURSOR":"s=1;i=1"}\n{"__CURSOR" : "s=1;i=2","MESSAGE":"b"}\n'
    assert last_cursor(chunk) == "s=1;i=2"
