"""`ndr-exporter backfill`: OpenMetrics that the real promtool imports and a real Prometheus serves.

The real Postfix log (RFC 3164 stamps: no year, read as UTC here, the year inferred as the
latest that is not in the future) and Exim's test-suite mainlog (full stamps, 1999) are
backfilled at a one-second step, turned into blocks by `promtool tsdb create-blocks-from
openmetrics`, and a Prometheus started on those blocks answers range queries with the logs'
history. Expected values come from the per-line tables in tests/test_report.py.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from tests.helpers.exporter_process import run_exporter
from tests.helpers.prometheus import PROMTOOL, PrometheusServer
from tests.test_report import (
    CLASSES, EXIM_EVENTS, EXIM_LOG, MEANINGS, POSTFIX_EVENTS, POSTFIX_LOG, POSTFIX_YEAR, SUBJECTS, UTC_ENV,
)

OUTPUT = "ndr-backfill.om"


def postfix_time(second: int) -> int:
    """Unix time of "Nov 29 05:38:SS" in the year the parser infers, read as UTC."""
    return int(datetime(POSTFIX_YEAR, 11, 29, 5, 38, second, tzinfo=timezone.utc).timestamp())


EXIM_TIME = int(datetime(1999, 3, 2, 9, 44, 33, tzinfo=timezone.utc).timestamp())


def backfill(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_exporter(["backfill", "--output", str(out), *args], env=UTC_ENV)


def om_samples(path: Path) -> dict[int, dict[str, int]]:
    """An OpenMetrics file's samples: {timestamp: {labels text: value}}."""
    found: dict[int, dict[str, int]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        series, value, stamp = line.rsplit(" ", 2)
        found.setdefault(int(stamp), {})[series] = int(value)
    return found


def range_query(server: PrometheusServer, query: str, start: int, end: int,
                by: tuple[str, ...]) -> dict[tuple[str, ...], list[tuple[int, int]]]:
    """A range query at a one-second step: {label values: [(time, value), ...]}."""
    result = server.api("query_range", query=query, start=str(start), end=str(end), step="1")["result"]
    return {tuple(r["metric"].get(k, "") for k in by): [(int(t), int(float(v))) for t, v in r["values"]]
            for r in result}


def promtool_import(om: Path, blocks: Path) -> None:
    # --max-block-duration=24h, as the command prints and the docs advise (fewer passes over the file)
    result = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                             str(om), str(blocks)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_imports_it_and_prometheus_answers_with_the_logs_history(
        tmp_path: Path, prometheus_factory: Callable[..., PrometheusServer]) -> None:
    # promtool writes the blocks where the Prometheus below keeps its TSDB (its workdir/data); no
    # scrape targets; a retention long enough to keep 1999's block.
    blocks = tmp_path / "prometheus0" / "data"
    postfix = backfill(tmp_path / "postfix", "--step", "1", "--until", "now", "--label", "job=ndr",
                       "--label", "instance=mx.e2e.test:19798", str(POSTFIX_LOG))
    assert postfix.returncode == 0, postfix.stderr
    exim = backfill(tmp_path / "exim", "--step", "1", str(EXIM_LOG))
    assert exim.returncode == 0, exim.stderr
    promtool_import(tmp_path / "postfix" / OUTPUT, blocks)
    promtool_import(tmp_path / "exim" / OUTPUT, blocks)
    server = prometheus_factory([], extra_args=["--storage.tsdb.retention.time=100y"])

    # Every (outcome, code, provider) series of the Postfix log, second by second from 05:38:10 to
    # 05:38:40: absent before the second ahead of its first event, 0 there, then the number of its
    # events up to that second; after 05:38:23 the last value holds (5 minutes of lookback).
    start, end = postfix_time(10), postfix_time(40)
    by = ("outcome", "code", "provider")
    seconds: dict[tuple[str, str, str], list[int]] = {}
    for _line, second, outcome, code, provider in POSTFIX_EVENTS:
        seconds.setdefault((outcome, code, provider), []).append(second)
    want = {key: [(postfix_time(s), sum(1 for e in secs if e <= s)) for s in range(min(secs) - 1, 41)]
            for key, secs in seconds.items()}
    got = range_query(server, 'sum by (outcome, code, provider) '
                              '(ndr_status_codes_total{job="ndr", instance="mx.e2e.test:19798"})', start, end, by)
    assert got == want
    # a few by name: 14 deliveries (13 local, 1 to the responder), 5 expiries at :23, 5.1.1 twice
    assert got[("delivered", "2.0.0", "none")][-1] == (end, 13)
    assert got[("expired", "4.4.7", "none")][:2] == [(postfix_time(22), 0), (postfix_time(23), 5)]
    assert got[("rejected", "5.1.1", "other")][:2] == [(postfix_time(15), 0), (postfix_time(16), 1)]
    assert got[("bounced", "5.1.1", "other")][:2] == [(postfix_time(17), 0), (postfix_time(18), 1)]
    # all 39 together: 2 at :14, 4 at :15, 7, 11, 16, 20, 24 at :20, then 39 at :23
    total = range_query(server, "sum(ndr_status_codes_total)", postfix_time(13), postfix_time(24), ())
    assert [v for _, v in total[()]] == [0, 2, 4, 7, 11, 16, 20, 24, 24, 24, 39, 39]

    # Exim's 45 events, all at 1999-03-02 09:44:33: 0 a second before, the counts at it.
    exim_got = range_query(server, 'sum by (outcome, code, provider) (ndr_status_codes_total{job=""})',
                            EXIM_TIME - 3, EXIM_TIME + 2, by)
    counts = Counter((outcome, code, provider) for _line, outcome, code, provider in EXIM_EVENTS)
    assert counts == {("delivered", "none", "other"): 12, ("delivered", "none", "none"): 12,
                      ("deferred", "4.5.3", "other"): 7, ("rejected", "4.5.3", "other"): 14}
    assert exim_got == {key: [(EXIM_TIME - 1, 0)] + [(EXIM_TIME + i, n) for i in range(3)]
                        for key, n in counts.items()}


def test_exact_openmetrics_for_the_exim_mainlog(tmp_path: Path) -> None:
    result = backfill(tmp_path, str(EXIM_LOG))   # default step 60 s: 09:44:33 -> sample at 09:45:00
    assert result.returncode == 0
    minute = EXIM_TIME - 33 + 60
    keys = Counter(("exim", outcome, code, CLASSES["2" if code == "none" else code[0]],
                    "other" if code == "none" else SUBJECTS[code.split(".")[1]], MEANINGS[code][0], provider)
                   for _line, outcome, code, provider in EXIM_EVENTS)
    labels = ("mta", "outcome", "code", "class", "subject", "meaning", "provider")
    body = ""
    for stamp, value_of in ((minute - 60, lambda n: 0), (minute, lambda n: n)):
        for key in sorted(keys):
            text = ",".join(f'{name}="{v}"' for name, v in zip(labels, key))
            body += f"ndr_status_codes_total{{{text}}} {value_of(keys[key])} {stamp}\n"
    assert (tmp_path / OUTPUT).read_text() == (
        "# HELP ndr_status_codes SMTP status codes found in mail logs, by code and its meaning.\n"
        "# TYPE ndr_status_codes counter\n" + body + "# EOF\n")
    assert result.stderr.splitlines()[0] == (
        f"wrote 8 samples of 4 series from 45 events, 1999-03-02T09:44:00Z to 1999-03-02T09:45:00Z, "
        f"to {tmp_path / OUTPUT}")
    assert result.stderr.splitlines()[1:] == [
        f"import with: promtool tsdb create-blocks-from openmetrics --max-block-duration=24h {tmp_path / OUTPUT} "
        "BLOCKDIR", "then move BLOCKDIR/* into Prometheus's data directory (see 'backfill' in the README)"]


def test_files_in_any_order_give_the_same_output(tmp_path: Path) -> None:
    lines = POSTFIX_LOG.read_bytes().split(b"\n")[:-1]
    older, newer = tmp_path / "mail.log.1", tmp_path / "mail.log"
    older.write_bytes(b"\n".join(lines[:100]) + b"\n")
    newer.write_bytes(b"\n".join(lines[100:]) + b"\n")
    whole = backfill(tmp_path / "whole", "--step", "1", "--until", "now", str(POSTFIX_LOG))
    shuffled = backfill(tmp_path / "parts", "--step", "1", "--until", "now", str(newer), str(older))
    assert whole.returncode == shuffled.returncode == 0
    assert (tmp_path / "parts" / OUTPUT).read_bytes() == (tmp_path / "whole" / OUTPUT).read_bytes()


def test_until_leaves_out_later_events(tmp_path: Path) -> None:
    # Before 05:38:17 the table has 7 events (2 at :14, 2 at :15, 3 at :16); the other 32 are left out.
    until = datetime.fromtimestamp(postfix_time(17), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = backfill(tmp_path, "--step", "1", "--until", until, str(POSTFIX_LOG))
    assert result.returncode == 0
    samples = om_samples(tmp_path / OUTPUT)
    assert max(samples) == postfix_time(16)
    assert sum(samples[postfix_time(16)].values()) == 7
    assert f"left out 32 events at or after {until} (--until; the live exporter counts them)" in result.stderr


def test_by_default_the_last_three_hours_are_left_out(tmp_path: Path) -> None:
    # The real lines, re-dated: lines 1-100 four hours ago, lines 101-205 one hour ago. Lines 1-100
    # hold 15 status lines (13 ... 100 in the table), the rest 24.
    now = time.time()
    lines = POSTFIX_LOG.read_text().splitlines()
    log = tmp_path / "mail.log"
    log.write_text("".join(time.strftime("%b %e %H:%M:%S", time.gmtime(now - (4 if i < 100 else 1) * 3600))
                           + line[15:] + "\n" for i, line in enumerate(lines)))
    assert sum(1 for row in POSTFIX_EVENTS if row[0] <= 100) == 15
    result = backfill(tmp_path / "out", str(log))
    assert result.returncode == 0, result.stderr
    samples = om_samples(tmp_path / "out" / OUTPUT)
    assert sum(samples[max(samples)].values()) == 15
    assert "left out 24 events at or after " in result.stderr


def test_a_large_output_is_refused_naming_the_flag(tmp_path: Path) -> None:
    # 1999 to today at a one-second step is ~10^9 steps: far over the default 20 000 000 samples.
    result = backfill(tmp_path, "--step", "1", "--until", "now", str(EXIM_LOG), str(POSTFIX_LOG))
    assert result.returncode == 2
    assert "ndr-exporter backfill: error: --max-samples: the output would hold " in result.stderr
    assert not (tmp_path / OUTPUT).exists()


def test_errors_and_exit_codes(tmp_path: Path) -> None:
    missing = tmp_path / "gone.log"
    result = backfill(tmp_path / "out", str(missing))
    assert (result.returncode, result.stderr) == (
        1, f"ndr-exporter backfill: cannot read {missing}: No such file or directory\n")
    assert not (tmp_path / "out").exists()
    cases = {
        ("--step", "0"): "ndr-exporter backfill: error: --step: must be at least 1 second, not 0",
        ("--until", "yesterday"): "ndr-exporter backfill: error: --until: cannot read 'yesterday'",
        ("--until", "2026-01-01T00:00:00"): "ndr-exporter backfill: error: --until: cannot read "
                                            "'2026-01-01T00:00:00': give the time zone (Z or +hh:mm)",
        ("--label", "job"): "ndr-exporter backfill: error: --label: 'job' is not NAME=VALUE with a "
                            "Prometheus label name",
        ("--label", "code=5.1.1"): "ndr-exporter backfill: error: --label: 'code' is one of the metric's own "
                                   "labels (mta, outcome, code, class, subject, meaning, provider)",
    }
    for args, message in cases.items():
        result = backfill(tmp_path / "out", *args, str(POSTFIX_LOG))
        assert result.returncode == 2, args
        assert result.stderr.splitlines()[-1].startswith(message), result.stderr
    result = run_exporter(["backfill", str(POSTFIX_LOG)])
    assert result.returncode == 2
    assert "the following arguments are required: --output" in result.stderr
