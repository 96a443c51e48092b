"""Write the .golden file beside every .log of one golden directory (see tests/testdata/parsers/README.md).

    python -m tests.regen_golden tests/testdata/parsers/postfix

Then read `git diff` of that directory: every changed row must be a change you meant.
tests/test_golden.py uses render() from here, so the test and the regeneration agree.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from exporter.events import StatusEvent
from exporter.parsers import FORMATS, make_parser
from exporter.parsers.base import ChunkResult, Parser
from exporter.parsers.syslog import SyslogParser

GOLDEN_ROOT = Path(__file__).resolve().parent / "testdata" / "parsers"
# "Now" for RFC 3164 year inference in every golden file: 2026-11-29T12:00:00Z.
GOLDEN_NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc).timestamp()


def use_utc() -> None:
    """RFC 3164 stamps are local time; golden files are written and checked in UTC."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def parser_for(directory: str) -> Parser:
    """The parser that reads one golden directory: the rule of tests/testdata/parsers/README.md."""
    if directory in FORMATS and directory != "syslog":
        return make_parser(directory)
    return SyslogParser(now=lambda: GOLDEN_NOW)


def split_lines(data: bytes) -> list[bytes]:
    """Each line of a file with its b"\\n", as a source would hand them over."""
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return [piece + b"\n" for piece in pieces]


def event_row(number: int, event: StatusEvent) -> str:
    stamp = "-"
    if event.timestamp is not None:
        stamp = datetime.fromtimestamp(event.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f"{number} matched mta={event.mta} outcome={event.outcome} code={event.code or '-'} "
            f"reply={event.reply or '-'} remote={event.remote or '-'} time={stamp} "
            f"queue_id={event.queue_id or '-'}")


def render(directory: str, data: bytes) -> tuple[str, ChunkResult]:
    """(golden text from feeding one line per parse() call, result of the whole file as one chunk)."""
    parser = parser_for(directory)
    rows: list[str] = []
    totals = [0, 0, 0, 0]
    for number, line in enumerate(split_lines(data), 1):
        result = parser.parse(line)
        totals = [totals[0] + result.lines, totals[1] + result.matched,
                  totals[2] + result.ignored, totals[3] + result.unparsed]
        if result.unparsed:
            rows.append(f"{number} unparsed")
        rows.extend(event_row(number, event) for event in result.events)
    head = f"# lines={totals[0]} matched={totals[1]} ignored={totals[2]} unparsed={totals[3]}"
    whole = parser_for(directory).parse(data)
    return "\n".join([head, *rows]) + "\n", whole


def regenerate(directory: Path) -> list[Path]:
    use_utc()
    written = []
    for log in sorted(directory.glob("*.log")):
        text, _ = render(directory.name, log.read_bytes())
        golden = log.with_suffix(".golden")
        golden.write_text(text, encoding="utf-8")
        written.append(golden)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m tests.regen_golden tests/testdata/parsers/<directory>", file=sys.stderr)
        return 2
    for path in regenerate(Path(argv[0])):
        print(f"wrote {path}")
    print("now review: git diff", argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
