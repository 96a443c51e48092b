"""Golden tests: every tests/testdata/parsers/<dir>/X.log gives exactly X.golden.

The parser for a directory follows tests/testdata/parsers/README.md (tests.regen_golden.parser_for).
Each file is read one line per parse() call (for the numbered rows) and as one whole chunk;
both must agree, so the chunk handling is checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.regen_golden import GOLDEN_ROOT, event_row, render

PAIRS = sorted(GOLDEN_ROOT.glob("*/*.log"))


pytestmark = pytest.mark.usefixtures("utc_zone")


def test_there_are_golden_pairs():
    assert PAIRS, f"no golden .log files under {GOLDEN_ROOT}"


@pytest.mark.parametrize("log", PAIRS, ids=[f"{p.parent.name}/{p.name}" for p in PAIRS])
def test_golden_pair(log: Path):
    golden = log.with_suffix(".golden")
    assert golden.exists(), f"{golden} is missing: python -m tests.regen_golden {log.parent}"
    text, whole = render(log.parent.name, log.read_bytes())
    assert text == golden.read_text(encoding="utf-8")
    # The same file as one chunk: same counts, same events.
    head = text.splitlines()[0]
    assert head == (f"# lines={whole.lines} matched={whole.matched} "
                    f"ignored={whole.ignored} unparsed={whole.unparsed}")
    rows = [row.split(" ", 1)[1] for row in text.splitlines()[1:] if " matched " in row]
    assert [event_row(0, e).split(" ", 1)[1] for e in whole.events] == rows
