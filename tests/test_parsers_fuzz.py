"""Every parser in exporter.parsers.FORMATS survives any input: no exception, counts that add up.

Inputs: arbitrary bytes, real lines (the golden .log files and the public corpus) mutated by
cutting, inserting and flipping bytes, invalid UTF-8, NULs, and one 10 MB line. A chunk always
ends in b"\\n" (the source contract), so lines == chunk.count(b"\\n") == matched + ignored + unparsed.
A format whose module does not exist yet is skipped, and only that.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.events import MTAS, OUTCOMES
from exporter.parsers import FORMATS, make_parser
from exporter.parsers.base import Parser

HERE = Path(__file__).resolve().parent
from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parser_or_skip(fmt: str) -> Parser:
    try:
        return make_parser(fmt)
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("exporter.parsers."):
            pytest.skip(f"{fmt}: {error.name} does not exist yet")
        raise


def real_lines() -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((HERE / "testdata" / "parsers").glob("*/*.log")):
        lines.extend(path.read_bytes().splitlines())
    if CORPUS.is_dir():
        for path in sorted(CORPUS.rglob("*")):
            if path.is_file() and path.name != "SOURCES.md":
                lines.extend(path.read_bytes().splitlines())
    return [line for line in lines if line] or [b"Nov 29 04:12:47 mx1 postfix/smtp[1]: x"]


REAL = real_lines()


def check(parser: Parser, chunk: bytes) -> None:
    result = parser.parse(chunk)
    assert result.lines == chunk.count(b"\n")
    assert result.matched + result.ignored + result.unparsed == result.lines
    assert min(result.matched, result.ignored, result.unparsed) >= 0
    assert result.matched <= result.lines and len(result.events) >= result.matched
    for event in result.events:
        assert event.mta in MTAS and event.outcome in OUTCOMES


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("cut", "insert", "flip", "nul", "bad_utf8", "double")))
        at = draw(st.integers(0, len(line)))
        if kind == "cut":
            del line[at:]
        elif kind == "insert":
            line[at:at] = draw(st.binary(max_size=20))
        elif kind == "flip" and at < len(line):
            line[at] ^= draw(st.integers(1, 255))
        elif kind == "nul":
            line[at:at] = b"\x00"
        elif kind == "bad_utf8":
            line[at:at] = draw(st.sampled_from((b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")))
        elif kind == "double":
            line[at:at] = line[:at]
    return bytes(line)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(chunks=st.lists(st.binary(max_size=400), min_size=1, max_size=4))
def test_arbitrary_bytes(fmt: str, chunks: list[bytes]):
    parser = parser_or_skip(fmt)
    for data in chunks:
        check(parser, data + b"\n")


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(lines=st.lists(mutated_line(), min_size=1, max_size=12), split=st.integers(0, 12))
def test_mutated_real_lines(fmt: str, lines: list[bytes], split: int):
    parser = parser_or_skip(fmt)
    chunks = [lines[:split], lines[split:]]
    for chunk_lines in chunks:
        if chunk_lines:
            check(parser, b"\n".join(line.replace(b"\n", b" ") for line in chunk_lines) + b"\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_ten_megabyte_line(fmt: str):
    parser = parser_or_skip(fmt)
    filler = b"status=bounced dsn=5.1.1 550 5.1.1 reject: to=<a@b>, relay=x[1.2.3.4]:25, \xff\x00 "
    line = b"Nov 29 04:12:47 mx1 postfix/smtp[1]: 1A: to=<" + filler * (10 * 1024 * 1024 // len(filler)) + b">\n"
    started = time.perf_counter()
    check(parser, line)
    check(parser, b"#Fields: " + line)
    check(parser, b"2026-11-29T04:12:47Z stdout P " + line + b"2026-11-29T04:12:47Z stdout F end\n")
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("fmt", FORMATS)
def test_edge_chunks(fmt: str):
    parser = parser_or_skip(fmt)
    for chunk in (b"\n", b"\n\n\n", b"\x00\n", b"\xff\xfe\n", b"\r\n", b"{\n", b"<\n", b"@\n", b"#Fields:\n",
                  b"#Software: Microsoft Exchange Server\n#Fields: a,b\n,,,,\n", b"2026-11-29T04:12:47Z stdout P \n"):
        check(parser, chunk)


def _message_parsers() -> list:
    from exporter.parsers import generic, syslog
    return [*syslog.load_message_parsers(), generic]


@FUZZ
@given(line=mutated_line())
def test_message_parsers_never_raise(line: bytes):
    # The syslog parser counts a raise as unparsed, which would hide a bug: call them directly.
    from exporter.parsers import envelope
    from exporter.events import UNPARSED
    text = line.decode("utf-8", "replace")
    found = envelope.split(text, envelope.YearClock(time.time()))
    message = found.message if found is not None else text
    for module in _message_parsers():
        program = module.PROGRAMS[0] if module.PROGRAMS else "someprog"
        result = module.parse_message(program, message, None)
        assert result is None or result is UNPARSED or isinstance(result, list)
        for event in result if isinstance(result, list) else []:
            assert event.mta in MTAS and event.outcome in OUTCOMES
