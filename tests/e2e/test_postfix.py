"""End to end with a real Postfix: every code it logs is counted exactly once, per outcome.

The fixture (conftest.postfix_run) runs the scenario in postfix_scenario.py against a private
Postfix instance while the real exporter follows its maillog_file; these tests compare.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MtaRun
from tests.e2e.following import lines_read, read_whole_file, status_counts, status_mtas, unparsed_lines
from tests.e2e.scenario import expected_counts

pytestmark = pytest.mark.e2e


def test_log_holds_every_case(postfix_run: MtaRun) -> None:
    """The harness did what it claims: each case left its mark in Postfix's own log."""
    lines = postfix_run.log.read_text().splitlines()
    missing = []
    for case in postfix_run.cases:
        for mark in case.log_marks:
            # A refusal at MAIL FROM names no recipient; every other mark sits on the recipient's line.
            wanted = [] if case.size_option else [f"<{case.recipient}>"]
            if not any(mark in line and all(w in line for w in wanted) for line in lines):
                missing.append(f"{case.name}: {mark!r}")
    assert not missing, "not in the log:\n" + "\n".join(missing)


def test_counts_per_code_and_outcome_are_exact(postfix_run: MtaRun) -> None:
    exporter = postfix_run.require_exporter()
    samples = read_whole_file(exporter, postfix_run.log)
    expected = expected_counts(postfix_run.cases)
    got = status_counts(samples)
    assert got == expected, _diff(expected, got)
    assert status_mtas(samples) == {"postfix"}


def test_every_line_read_once_and_none_unparsed(postfix_run: MtaRun) -> None:
    exporter = postfix_run.require_exporter()
    samples = read_whole_file(exporter, postfix_run.log)
    total = postfix_run.log.read_bytes().count(b"\n")
    assert lines_read(samples, postfix_run.log.name) == total
    assert unparsed_lines(samples, postfix_run.log.name) == 0


def _diff(expected, got) -> str:
    keys = sorted(set(expected) | set(got))
    rows = [f"  {code:>8} {outcome:<10} expected {expected.get((code, outcome), 0):>3}  got {got.get((code, outcome), 0):>3}"
            for code, outcome in keys if expected.get((code, outcome), 0) != got.get((code, outcome), 0)]
    return "counts differ (code, outcome):\n" + "\n".join(rows)
