"""LineCutter's quick check for long lines never misses one the regex pass would drop."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.sources import LineCutter


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.binary(max_size=400))
def test_quick_check_finds_every_long_line(max_line: int, data: bytes) -> None:
    whole = data[:data.rfind(b"\n") + 1]
    cutter = LineCutter(max_line)
    if cutter._long_line.search(whole) is not None:
        assert cutter._may_hold_long_line(whole)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=30),
       st.lists(st.integers(min_value=0, max_value=80), max_size=30))
def test_feed_drops_the_same_lines(max_line: int, lengths: list[int]) -> None:
    whole = b"".join(b"x" * n + b"\n" for n in lengths)
    expected = b"".join(b"x" * n + b"\n" for n in lengths if n <= max_line)
    dropped = sum(1 for n in lengths if n > max_line)
    assert LineCutter(max_line).feed(whole) == (expected, dropped)
