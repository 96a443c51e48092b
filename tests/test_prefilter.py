"""exporter/parsers/prefilter.py: taking the OR apart finds exactly the lines the OR finds."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.parsers import syslog
from exporter.parsers.prefilter import CandidateFinder, drop_covered, group_by_first_byte

HERE = Path(__file__).resolve().parent


def test_a_plain_string_covers_the_patterns_it_starts():
    assert drop_covered([rb"status=", rb"status=[245]\.", rb"dsn="]) == [rb"status=", rb"dsn="]
    # a pattern with special characters covers nothing: "stat.s" is not a prefix string
    assert drop_covered([rb"stat.s", rb"stat.s=x"]) == [rb"stat.s", rb"stat.s=x"]
    finder = CandidateFinder([rb"status=", rb"status=[245]\.", rb"dsn=", rb"dsn="])
    assert [p.pattern for p in finder.patterns] == [rb"status=", rb"dsn="]


def test_patterns_with_the_same_first_byte_are_searched_together():
    assert group_by_first_byte([rb" 2\.", rb"x", rb" rejected", rb"[ab]c", rb" 4\."]) == [
        rb"x", rb"[ab]c", rb"\ (?:2\.|rejected|4\.)"]
    # A quantified first byte, a class, an escape or a group number stays on its own.
    assert group_by_first_byte([rb"a*b", rb"ab", rb"\.x", rb"\.y", rb"(a)\1", rb"(b)"]) == [
        rb"a*b", rb"\.x", rb"\.y", rb"(a)\1", rb"(b)", rb"ab"]
    chunk = b"a 2.0\nno\nb rejected\nc 4.7\n 5.1\n"
    finder = CandidateFinder([rb" 2\.", rb" rejected", rb" 4\."])
    assert len(finder.patterns) == 1
    assert finder.line_starts(chunk) == [0, 9, 20]


def test_every_message_parser_lists_single_alternative_patterns():
    for module in syslog.load_message_parsers():
        assert isinstance(module.PREFILTERS, tuple) and module.PREFILTERS, module.__name__
        for pattern in module.PREFILTERS:
            assert isinstance(pattern, bytes)
            re.compile(pattern)
            # one alternative each: a top-level "|" would be split wrongly by the grouping
            assert re.sub(rb"\\.|\[[^\]]*\]|\([^)]*\)", b"", pattern).count(b"|") == 0, pattern


def real_lines() -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((HERE / "testdata" / "parsers").glob("*/*.log")):
        lines.extend(line for line in path.read_bytes().split(b"\n") if line)
    return lines


REAL = real_lines()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(REAL), st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" "))),
                max_size=30))
def test_same_lines_as_the_or_of_all_prefilters(lines: list[bytes]):
    chunk = b"".join(line + b"\n" for line in lines)
    finder = syslog.candidate_finder(syslog.load_message_parsers())
    union = re.compile(finder.any.pattern, re.MULTILINE)
    expected = []
    offset = 0
    for line in lines:
        if union.search(line):
            expected.append(offset)
        offset += len(line) + 1
    assert finder.line_starts(chunk) == expected
