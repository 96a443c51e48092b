"""End to end with real Postfix and Exim: every code they log is counted exactly once, per outcome.

For each MTA a module-scoped fixture (conftest.py) runs its scenario (postfix_scenario.py,
exim_scenario.py) against a private instance while the real exporter follows the MTA's log;
these tests compare what the exporter serves on /metrics with what was sent.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import MtaRun
from tests.e2e.responder import Responder
from tests.e2e.following import lines_read, read_whole_file, status_counts, status_mtas, unparsed_lines
from tests.e2e.scenario import BOUNCED, DELIVERED, VERIFIED, VERIFY_FAILED, expected_counts

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


def test_postfix_verify_probes_counted_as_the_responder_answered_them(
        postfix_run: MtaRun, responders: tuple[Responder, Responder]) -> None:
    """Each address-verification probe that reached the responder is one verified / verify_failed
    event with the code the responder gave it, and no probe is counted as a delivery or bounce."""
    exporter = postfix_run.require_exporter()
    samples = read_whole_file(exporter, postfix_run.log)
    probes = [r for r in responders[0].rcpts if r.sender.startswith("double-bounce@")]
    told: Counter[tuple[str, str]] = Counter()
    for probe in probes:
        code = probe.reply.split(" ")[1]
        told[(code, VERIFIED if probe.reply.startswith("2") else VERIFY_FAILED)] += 1
    assert told == Counter({("2.1.5", VERIFIED): 1, ("5.1.1", VERIFY_FAILED): 1, ("4.2.1", VERIFY_FAILED): 1})
    got = status_counts(samples)
    assert Counter({key: n for key, n in got.items() if key[1] in (VERIFIED, VERIFY_FAILED)}) == told
    # The probes' codes appear nowhere else: 2.1.5 and 4.2.1 are given only to probes here, and
    # the one 5.1.1 bounce is the remote case's, not a probe's.
    assert got[("2.1.5", DELIVERED)] == 0 and got[("4.2.1", BOUNCED)] == 0 and got[("5.1.1", BOUNCED)] == 1
    assert unparsed_lines(samples, postfix_run.log.name) == 0


def _diff(expected: Counter[tuple[str, str]], got: Counter[tuple[str, str]]) -> str:
    rows = [f"  {code:>8} {outcome:<10} expected {expected[(code, outcome)]:>3}  got {got[(code, outcome)]:>3}"
            for code, outcome in sorted(set(expected) | set(got))
            if expected[(code, outcome)] != got[(code, outcome)]]
    return "counts differ (code, outcome):\n" + "\n".join(rows)
