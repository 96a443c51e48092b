"""docs/ARCHITECTURE.md and the registries agree: every format, syslog program, source kind and
status label the code declares is in the doc's tables, and nothing else is.

The doc answers "how do I add a log format / a syslog program / a source kind / a label" with
one place to edit and lists what is registered; this test fails when one side moves alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from exporter.metrics import STATUS_LABELS
from exporter.parsers import registry
from exporter.sources import kinds

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"### {title}\n")
    end = text.find("\n#", start + 1)
    return text[start:end if end >= 0 else len(text)]


def table(title: str) -> list[list[str]]:
    """The body rows of the first table under a heading, cells stripped of backticks."""
    rows = []
    for line in section(title).splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip().replace("`", "") for cell in line.strip("|").split("|")])
    return rows[1:]   # without the header row


def path_of(module: str) -> str:
    return module.replace(".", "/") + ".py"


def test_formats_table_matches_the_registry() -> None:
    assert table("Registered formats") == [[f.name, path_of(f.module)] for f in registry.formats().values()]


def test_programs_table_matches_the_registry() -> None:
    want = [[path_of(m.__name__), m.MTA, ", ".join(m.PROGRAMS)] for m in registry.message_parsers()]
    assert table("Registered syslog programs") == want


def test_source_kinds_table_matches_the_registry() -> None:
    assert table("Registered source kinds") == [[kind, path_of(m.__name__)] for kind, m in kinds.kinds().items()]


def test_status_labels_match() -> None:
    body = section("Labels of `ndr_status_codes_total`")
    line = next(line for line in body.splitlines()[1:] if line.strip())
    assert tuple(re.findall(r"`([^`]+)`", line)) == STATUS_LABELS


def test_every_how_to_names_its_place() -> None:
    text = DOC.read_text()
    for question, place in (("a log format", "exporter/parsers/"), ("a syslog program", "PROGRAMS"),
                            ("a source kind", "exporter/sources/"), ("a label", "STATUS_LABELS"),
                            ("a code meaning", "exporter/data/status_codes.csv")):
        answer = re.search(rf"^- \*\*{re.escape(question)}\*\*.*?(?=^- \*\*|^#)", text, re.M | re.S)
        assert answer is not None, question
        assert place in answer.group(0), question
