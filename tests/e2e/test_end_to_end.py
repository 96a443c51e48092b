"""End to end with real Postfix and Exim: every code they log is counted exactly once, per outcome.

For each MTA a module-scoped fixture (conftest.py) runs its scenario (postfix_scenario.py,
exim_scenario.py) against a private instance while the real exporter follows the MTA's log;
these tests compare what the exporter serves on /metrics with what was sent.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import MtaRun
from tests.e2e.following import lines_read, read_whole_file, status_counts, status_mtas, unparsed_lines
from tests.e2e.scenario import expected_counts

pytestmark = pytest.mark.e2e

MTAS = ("postfix", "exim")


@pytest.fixture(params=MTAS)
def run(request: pytest.FixtureRequest) -> MtaRun:
    return request.getfixturevalue(f"{request.param}_run")


def test_log_holds_every_case(run: MtaRun) -> None:
    """The harness did what it claims: each case left its marks in the MTA's own log."""
    lines = run.log.read_text().splitlines()
    missing = []
    for case in run.cases:
        # A refusal at MAIL FROM names no recipient; every other mark sits on a line naming it.
        wanted = [] if case.size_option else [case.recipient]
        for mark in case.log_marks:
            if not any(mark in line and all(w in line for w in wanted) for line in lines):
                missing.append(f"{case.name}: {mark!r}")
    assert not missing, "not in the log:\n" + "\n".join(missing)


def test_counts_per_code_and_outcome_are_exact(run: MtaRun, request: pytest.FixtureRequest) -> None:
    exporter = run.require_exporter()
    samples = read_whole_file(exporter, run.log)
    expected = expected_counts(run.cases)
    got = status_counts(samples)
    assert got == expected, _diff(expected, got)
    assert status_mtas(samples) == {request.node.callspec.params["run"]}


def test_every_line_read_once_and_none_unparsed(run: MtaRun) -> None:
    exporter = run.require_exporter()
    samples = read_whole_file(exporter, run.log)
    total = run.log.read_bytes().count(b"\n")
    assert lines_read(samples, run.log.name) == total
    assert unparsed_lines(samples, run.log.name) == 0


def _diff(expected: Counter[tuple[str, str]], got: Counter[tuple[str, str]]) -> str:
    rows = [f"  {code:>8} {outcome:<10} expected {expected[(code, outcome)]:>3}  got {got[(code, outcome)]:>3}"
            for code, outcome in sorted(set(expected) | set(got))
            if expected[(code, outcome)] != got[(code, outcome)]]
    return "counts differ (code, outcome):\n" + "\n".join(rows)
