"""Golden pairs for the Microsoft formats: exchange_tracking, exchange_protocol, iis_smtp.

Each X.log under tests/testdata/parsers/<format>/ is parsed twice, one line per parse()
call and as one chunk, and must give exactly the rows of X.golden (the text form that
tests/testdata/parsers/README.md describes). Run `python -m tests.test_parser_exchange_golden
<format>` to print the rows a parser gives today, for review before writing them.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from exporter.events import StatusEvent
from exporter.parsers.base import Parser
from exporter.parsers.exchange_protocol import ExchangeProtocolParser
from exporter.parsers.exchange_tracking import ExchangeTrackingParser
from exporter.parsers.iis_smtp import IisSmtpParser

DATA = Path(__file__).resolve().parent / "testdata" / "parsers"
FORMATS = ("exchange_tracking", "exchange_protocol", "iis_smtp")


def make_parser(fmt: str) -> Parser:
    # The classes directly: exporter.parsers.make_parser imports every format's module.
    classes = {"exchange_tracking": ExchangeTrackingParser,
               "exchange_protocol": ExchangeProtocolParser, "iis_smtp": IisSmtpParser}
    parser: Parser = classes[fmt]()
    assert parser.format == fmt
    return parser


def _value(value: object) -> str:
    return "-" if value is None else str(value)


def _time(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_row(number: int, event: StatusEvent) -> str:
    return (f"{number} matched mta={event.mta} outcome={event.outcome} code={_value(event.code)} "
            f"reply={_value(event.reply)} remote={_value(event.remote)} time={_time(event.timestamp)} "
            f"queue_id={_value(event.queue_id)}")


def golden_text(fmt: str, data: bytes) -> str:
    """The .golden text for a log: counts, then one row per event or unparsed line."""
    parser = make_parser(fmt)
    rows: list[str] = []
    totals = [0, 0, 0, 0]
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        result = parser.parse(line)
        for index, value in enumerate(result[1:]):
            totals[index] += value
        if result.unparsed:
            rows.append(f"{number} unparsed")
        for event in result.events:
            rows.append(event_row(number, event))
    head = f"# lines={totals[0]} matched={totals[1]} ignored={totals[2]} unparsed={totals[3]}"
    return "\n".join([head] + rows) + "\n"


def _pairs() -> list[Path]:
    return sorted(path for fmt in FORMATS for path in (DATA / fmt).glob("*.log"))


@pytest.mark.parametrize("log", _pairs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_pair(log: Path) -> None:
    fmt = log.parent.name
    data = log.read_bytes()
    expected = log.with_suffix(".golden").read_text(encoding="utf-8")
    assert golden_text(fmt, data) == expected

    # The whole file as one chunk gives the same events and counts.
    whole = make_parser(fmt).parse(data)
    head, *rows = expected.splitlines()
    counts = dict(part.split("=") for part in head[2:].split())
    assert (whole.lines, whole.matched, whole.ignored, whole.unparsed) == (
        int(counts["lines"]), int(counts["matched"]), int(counts["ignored"]), int(counts["unparsed"]))
    event_rows = [row.split(" ", 2)[2] for row in rows if " matched " in row]
    assert [event_row(0, event).split(" ", 2)[2] for event in whole.events] == event_rows


def test_every_format_has_golden_pairs() -> None:
    for fmt in FORMATS:
        assert list((DATA / fmt).glob("*.log")), fmt
        for log in (DATA / fmt).glob("*.log"):
            assert log.with_suffix(".golden").is_file(), log


if __name__ == "__main__":
    for fmt_arg in sys.argv[1:]:
        for path in sorted((DATA / fmt_arg).glob("*.log")):
            print(f"== {path}")
            print(golden_text(fmt_arg, path.read_bytes()), end="")
