"""exporter/logfiles.py: whole files cut into chunks of complete lines for report and backfill.

read_chunks is checked against a plain model (split at newlines, drop what is too long) over
arbitrary line lengths and block sizes; parse_file on the real Postfix log, plain and gzip
(found by magic bytes, whatever the name), and on files that cannot be read.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.logfiles import LogFileError, disk_position, open_log, parse_file, read_chunks

REPO = Path(__file__).resolve().parents[1]
POSTFIX_LOG = REPO / "exporter" / "data" / "samples" / "postfix-demo.log"   # a real Postfix 3.7.11 log
# `wc -l` gives 205 lines; `grep -c -E 'status=|: reject: '` gives the 39 status lines.
POSTFIX_LINES = 205
POSTFIX_STATUS_LINES = 39


def chunks_of(data: bytes, max_line: int, blocks_per_chunk: int = 1) -> tuple[bytes, int]:
    """Everything read_chunks yields for data: the joined lines and the oversized count."""
    got = list(read_chunks(io.BytesIO(data), max_line, blocks_per_chunk))
    for chunk in got:
        assert chunk.data == b"" or chunk.data.endswith(b"\n")
    return b"".join(c.data for c in got), sum(c.oversized for c in got)


def test_last_line_without_newline_is_completed() -> None:
    assert chunks_of(b"one\ntwo\nthree", max_line=16) == (b"one\ntwo\nthree\n", 0)


def test_oversized_lines_are_counted_and_skipped() -> None:
    # limit 8: "12345678" (8) is kept, the 9-, 20- and 30-byte lines are not
    data = b"ok\n" + b"x" * 9 + b"\n12345678\n" + b"y" * 20 + b"\nend\n" + b"z" * 30 + b"\n"
    assert chunks_of(data, max_line=8) == (b"ok\n12345678\nend\n", 3)


def test_oversized_last_line_without_newline() -> None:
    assert chunks_of(b"a\n" + b"q" * 50, max_line=8) == (b"a\n", 1)


def test_empty_file_yields_nothing() -> None:
    assert list(read_chunks(io.BytesIO(b""))) == []


@settings(max_examples=300, deadline=None)
@given(lengths=st.lists(st.integers(0, 45), max_size=40), max_line=st.integers(1, 20),
       blocks=st.integers(1, 4), final_newline=st.booleans())
def test_read_chunks_matches_a_line_by_line_model(lengths: list[int], max_line: int, blocks: int,
                                                  final_newline: bool) -> None:
    lines = [bytes([97 + i % 26]) * n for i, n in enumerate(lengths)]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    # The model: split at newlines; a last piece without newline is a line unless it is empty.
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    kept = [p for p in pieces if len(p) <= max_line]
    assert chunks_of(data, max_line, blocks) == (b"".join(p + b"\n" for p in kept), len(pieces) - len(kept))


def test_gzip_is_found_by_magic_bytes_not_by_name(tmp_path: Path) -> None:
    text = POSTFIX_LOG.read_bytes()
    packed = tmp_path / "maillog"            # gzip without .gz
    packed.write_bytes(gzip.compress(text))
    plain = tmp_path / "maillog.1.gz"        # plain text named .gz
    plain.write_bytes(text)
    for path in (packed, plain):
        with open_log(str(path)) as stream:
            assert stream.read() == text
    with open_log(str(packed)) as stream:
        stream.read()
        assert disk_position(stream) == packed.stat().st_size


@pytest.mark.parametrize("packed", [False, True])
def test_parse_file_on_the_real_postfix_log(tmp_path: Path, packed: bool) -> None:
    path = POSTFIX_LOG
    if packed:
        path = tmp_path / "maillog.gz"
        path.write_bytes(gzip.compress(POSTFIX_LOG.read_bytes()))
    seen: list[tuple[int, int]] = []
    results = list(parse_file(str(path), progress=lambda p, done, size: seen.append((done, size))))
    assert sum(r.lines for _, r in results) == POSTFIX_LINES
    assert sum(r.matched for _, r in results) == POSTFIX_STATUS_LINES
    assert sum(n for _, r in results for buckets in r.tally.values() for n in buckets.values()) \
        == POSTFIX_STATUS_LINES   # parse_file hands over the events added up (Counted)
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_parse_file_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    whole = gzip.compress(POSTFIX_LOG.read_bytes())
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(b"\x1f\x8b" + b"not deflate data at all")
    cases = {
        str(tmp_path / "missing.log"): "No such file or directory",
        str(tmp_path): "Is a directory",
        str(cut): "the gzip stream ends early (the file is cut off)",
        str(damaged): "damaged gzip data (Unknown compression method)",
    }
    for path, reason in cases.items():
        with pytest.raises(LogFileError) as caught:
            list(parse_file(path))
        assert (caught.value.path, caught.value.reason) == (path, reason)
        assert str(caught.value) == f"{path}: {reason}"
