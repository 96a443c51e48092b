"""`ndr-exporter report --trace FILE`: every status line beside its event, the unparsed lines,
and counts that agree with `report` (exporter/trace.py), through the real CLI process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.exporter_process import run_exporter

DATA = Path(__file__).parent / "testdata" / "parsers"
UTC = {"TZ": "UTC"}
FILES = [DATA / "postfix" / "as-users-see-them.log", DATA / "postfix" / "malformed.log",
         DATA / "exim" / "real-e2e-exim-4.96-acl-router-codes.log", DATA / "courier" / "real-forum-2010.log"]


def _trace_json(path: Path) -> list[dict]:
    result = run_exporter(["report", "--trace", "--json", str(path)], env=UTC)
    assert (result.returncode, result.stderr) == (0, "")
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_trace_counts_are_report_counts(path: Path) -> None:
    rows = _trace_json(path)
    summary = rows[-1]["summary"]
    result = run_exporter(["report", "--json", str(path)], env=UTC)
    report = json.loads(result.stdout)
    assert {k: summary[k] for k in report["lines"]} == report["lines"]
    assert summary["events"] == report["events"]
    traced = [r for r in rows[:-1]]
    assert sum(len(r["events"]) for r in traced) == report["events"]
    assert sum(r["result"] == "unparsed" for r in traced) == report["lines"]["unparsed"]
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for row in traced:  # each printed line is the file's line at that number
        assert row["text"] == lines[row["line"] - 1]


def test_trace_shows_code_outcome_and_meaning_beside_the_line() -> None:
    path = DATA / "exim" / "real-e2e-exim-4.96-acl-router-codes.log"
    result = run_exporter(["report", "--trace", str(path)], env=UTC)
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout.splitlines()
    at = out.index(f"{path}:28  rejected  code=5.7.1  reply=-  permanent  delivery not authorized  [exim]")
    assert out[at + 1] == ("  | 2026-12-07 21:07:37 H=(client.e2e.test) [127.0.0.1] F=<sender@mx.e2e.test> "
                           "rejected RCPT <policy@mx.e2e.test>: 5.7.1 relay not permitted")
    assert out[-1] == "lines: 159 total, 50 matched, 109 ignored, 0 unparsed, 0 oversized; 50 events"


def test_trace_prints_unparsed_lines() -> None:
    path = DATA / "postfix" / "malformed.log"
    result = run_exporter(["report", "--trace", str(path)], env=UTC)
    out = result.stdout.splitlines()
    assert out[0] == f"{path}:1  UNPARSED"
    assert out[1].startswith("  | Nov 29 06:00:01 mx1 postfix/smtp[4101]: 1A1A1A1A1A: to=<a@example.org>")


def test_trace_of_a_missing_file_names_it_and_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.log"
    result = run_exporter(["report", "--trace", str(missing)], env=UTC)
    assert result.returncode == 1
    assert result.stderr.startswith(f"ndr-exporter report: cannot read {missing}")
