"""`ndr-exporter demo`: the real daemon following the bundled real Postfix log as it is replayed.

The counters are checked against the per-line table of the sample in tests/test_report.py
(tests/test_report.py::test_the_tables_match_the_fixtures reads it line by line), not
against the exporter's own report. That the sample is in a (non-editable) wheel is checked by
tests/test_packaging.py::test_wheel_holds_the_code_the_data_and_the_command, which
builds one and looks for every file under exporter/data/.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from tests.helpers.exporter_process import ExporterProcess, run_exporter, sample, total
from tests.test_report import POSTFIX_EVENTS, POSTFIX_LINES


def test_one_pass_of_the_sample_gives_its_exact_counts(exporter_factory: Callable[..., ExporterProcess]) -> None:
    started = time.time()
    exp = exporter_factory(["demo", "--rate", "200", "--passes", "1"])
    # All 205 lines read (about a second at 200 lines/s), then nothing more is written.
    samples = exp.wait_for_metrics(
        lambda s: total(s, "ndr_exporter_lines_total", source="mail.log") == POSTFIX_LINES, timeout=20)
    want = Counter((outcome, code, provider) for _line, _second, outcome, code, provider in POSTFIX_EVENTS)
    got: Counter = Counter()
    for (name, labels), value in samples.items():
        if name == "ndr_status_codes_total":
            found = dict(labels)
            assert found["mta"] == "postfix"
            got[(found["outcome"], found["code"], found["provider"])] += int(value)
    assert got == want
    assert total(samples, "ndr_status_codes_total") == 39
    assert sample(samples, "ndr_exporter_lines_total", source="mail.log", result="matched") == 39
    assert sample(samples, "ndr_exporter_lines_total", source="mail.log", result="ignored") == 166
    # the lines were given the current time as they were written
    last = sample(samples, "ndr_exporter_last_event_timestamp_seconds", source="mail.log")
    assert last is not None and started - 1 <= last <= time.time() + 1
    time.sleep(0.5)
    assert total(exp.metrics(), "ndr_status_codes_total") == 39   # one pass only
    status, headers, body = exp.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<a href="/metrics">' in body
    assert exp.stop(signal.SIGTERM) == 0
    assert "open http://127.0.0.1:" in exp.output()


def test_endless_by_default_and_sigint_exits_0(exporter_factory: Callable[..., ExporterProcess]) -> None:
    exp = exporter_factory(["demo", "--rate", "400"])
    # past one pass (39 events) the replay starts again from the top
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") > 39, timeout=20)
    assert exp.stop(signal.SIGINT) == 0


def test_bad_flags_exit_2_and_a_missing_sample_exits_1(tmp_path: Path) -> None:
    for args, message in (
        (["--rate", "0"], "ndr-exporter demo: error: --rate: must be more than 0 lines a second, not 0"),
        (["--passes", "-2"], "ndr-exporter demo: error: --passes: must be 0 (endless) or more, not -2"),
        (["--rate", "fast"], "ndr-exporter demo: error: argument --rate: invalid float value: 'fast'"),
    ):
        result = run_exporter(["demo", *args])
        assert (result.returncode, result.stderr.splitlines()[-1]) == (2, message)
    missing = tmp_path / "none.log"
    result = run_exporter(["demo", "--sample", str(missing)])
    assert (result.returncode, result.stderr) == (1, f"ndr-exporter demo: cannot read {missing}: "
                                                     "No such file or directory\n")
