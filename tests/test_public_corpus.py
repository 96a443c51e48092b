"""The public corpus (/work/shared/eval/public-corpus, real lines from public projects).

Every file is read by the syslog parser without an exception and with counts that add up;
the files an expectation module in tests/corpus_expect/ owns give exactly the events written
there (see tests/corpus_expect/README.md for the layout and who owns what).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from exporter.parsers.syslog import SyslogParser
from tests.regen_golden import GOLDEN_NOW, parser_for, split_lines

from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)
EXPECT_DIR = Path(__file__).resolve().parent / "corpus_expect"


def corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                  if p.is_file() and p.name != "SOURCES.md")


def expectations() -> dict[str, tuple[str, dict]]:
    """Corpus path -> (owning module, expectation); a path claimed twice is an error."""
    found: dict[str, tuple[str, dict]] = {}
    for path in sorted(EXPECT_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"tests.corpus_expect.{path.stem}")
        for name, expected in module.FILES.items():
            if name in found:
                raise AssertionError(f"{name} is claimed by {found[name][0]} and {path.stem}")
            found[name] = (path.stem, expected)
    return found


FILES = corpus_files()
EXPECTED = expectations()


pytestmark = pytest.mark.usefixtures("utc_zone")


def test_corpus_is_there():
    if not FILES:
        pytest.skip(f"public corpus not found at {CORPUS}")
    assert len(FILES) == 16


@pytest.mark.parametrize("name", FILES)
def test_syslog_parser_reads_every_file(name: str):
    data = (CORPUS / name).read_bytes()
    result = SyslogParser(now=lambda: GOLDEN_NOW).parse(data)
    assert result.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert result.lines == result.matched + result.ignored + result.unparsed
    assert all(event.mta and event.outcome for event in result.events)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_events(name: str):
    owner, expected = EXPECTED[name]
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    fmt = expected["format"]
    parser = parser_for(fmt)  # "syslog": SyslogParser with the golden clock; else make_parser(fmt)
    events: dict[int, list[tuple]] = {}
    unparsed: list[int] = []
    totals = [0, 0, 0, 0]
    for number, line in enumerate(split_lines(path.read_bytes()), 1):
        result = parser.parse(line)
        totals = [a + b for a, b in zip(totals, (result.lines, result.matched, result.ignored, result.unparsed))]
        if result.unparsed:
            unparsed.append(number)
        if result.events:
            events[number] = [(e.mta, e.outcome, e.code, e.reply, e.remote) for e in result.events]
    assert tuple(totals) == tuple(expected["counts"]), f"counts of {name} (expectations: {owner}.py)"
    assert unparsed == list(expected["unparsed"]), f"unparsed lines of {name} (expectations: {owner}.py)"
    assert events == expected["events"], f"events of {name} (expectations: {owner}.py)"
