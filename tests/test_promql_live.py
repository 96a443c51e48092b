"""Every PromQL expression of the dashboards and rule files, run against a real Prometheus.

The test starts the real exporter following a real log (the public corpus's Postfix lines and
a few delivery lines, see tests/test_dashboards.py), and a real Prometheus (/usr/bin/prometheus
on a free loopback port, a temporary TSDB) that scrapes it every second with the rule files
loaded. Halfway through, the log grows by the same lines again, so that rates are not zero.

Dashboard variables are expanded: regex matchers (=~"$instance") to .*, the drill-down's
code="$code" to 5.7.1, $__rate_interval to 1m, $__interval to 15s, $__range to 5m.
Checked: no expression errors; every rule evaluates without error; the key panels (status
rate per outcome, the code table) and the recording rules return the data the exporter exposes.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.helpers.exporter_process import ExporterProcess, parse_exposition, total
from tests.helpers.prometheus import PrometheusServer
from tests.test_dashboards import DASHBOARDS, all_panels, load, write_mail_log

DRILLDOWN_CODE = "5.7.1"   # a code the corpus sample holds (smtpd relay and HELO rejections)
RULE_FILES = sorted((DASHBOARDS / "rules").glob("*.yml"))
OUTCOMES = {"delivered", "deferred", "bounced", "expired", "rejected"}


def expand(expr: str) -> str:
    """A dashboard expression with its Grafana variables replaced by concrete values."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "5m")
    expr = re.sub(r'=~"\$\w+"', '=~".*"', expr)
    expr = expr.replace('="$code"', f'="{DRILLDOWN_CODE}"')
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return expr


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expanded expression) for every panel query."""
    found = []
    for name in ("overview.json", "code-drilldown.json"):
        for panel in all_panels(load(name)):
            for t in panel.get("targets", []):
                found.append((name, panel["title"], expand(t["expr"])))
    return found


def variable_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard file, variable, label, expanded series selector) for every label_values() variable."""
    found = []
    for name in ("overview.json", "code-drilldown.json"):
        for var in load(name)["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            found.append((name, var["name"], m.group(2), expand(m.group(1))))
    return found


def rule_expressions() -> list[tuple[str, str, str]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((path.name, rule.get("alert") or rule["record"], rule["expr"]))
    return found


def api_get(server: PrometheusServer, path: str, params: list[tuple[str, str]]) -> Any:
    """GET the HTTP API; returns data, or raises AssertionError with Prometheus's error text."""
    url = f"{server.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as err:
        body = json.load(err)
    assert body["status"] == "success", f"{body.get('errorType')}: {body.get('error')}"
    return body["data"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, dict]]:
    """A Prometheus that has scraped the exporter through one growth of the log; and the last exposition."""
    work = tmp_path_factory.mktemp("live")
    log = write_mail_log(work / "mail.log")
    first = log.read_bytes()
    with ExporterProcess(["--source.path", str(log), "--start-at", "beginning"]) as exporter:
        lines = first.count(b"\n")
        exporter.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total") == lines)
        server = PrometheusServer(work / "prometheus", [f"127.0.0.1:{exporter.port}"], job="ndr-exporter",
                                  rule_files=[str(p) for p in RULE_FILES], interval="1s")
        with server:
            server.wait_for_targets_up()
            server.wait_for_query("ndr_status_codes_total", lambda r: len(r) > 0)
            time.sleep(2)
            with log.open("ab") as f:      # the log grows: the same lines once more
                f.write(first)
            server.wait_for_query("sum(ndr_exporter_lines_total)",
                                  lambda r: bool(r) and float(r[0]["value"][1]) == 2 * lines)
            # the recording rules see the growth (every rule is evaluated each second)
            server.wait_for_query("sum(outcome:ndr_status_codes:rate5m) > 0", lambda r: len(r) == 1)
            exposition = parse_exposition(exporter.scrape())
            yield server, exposition


@pytest.mark.parametrize("dashboard,title,expr", dashboard_targets(),
                         ids=[f"{d}:{t}:{i}" for i, (d, t, _) in enumerate(dashboard_targets())])
def test_dashboard_query_runs(live, dashboard: str, title: str, expr: str):
    server, _ = live
    data = api_get(server, "query", [("query", expr)])
    assert data["resultType"] in ("vector", "scalar")
    now = time.time()
    data = api_get(server, "query_range", [("query", expr), ("start", str(now - 120)), ("end", str(now)),
                                           ("step", "5")])
    assert data["resultType"] == "matrix"


@pytest.mark.parametrize("dashboard,variable,label,selector", variable_queries(),
                         ids=[f"{d}:{v}" for d, v, _, _ in variable_queries()])
def test_variable_query_returns_values(live, dashboard: str, variable: str, label: str, selector: str):
    server, _ = live
    values = api_get(server, f"label/{label}/values", [("match[]", selector)])
    assert values, f"{variable}: no values for {label} in {selector}"


@pytest.mark.parametrize("file,name,expr", rule_expressions(), ids=[n for _, n, _ in rule_expressions()])
def test_rule_expression_runs(live, file: str, name: str, expr: str):
    server, _ = live
    data = api_get(server, "query", [("query", expr)])
    assert data["resultType"] == "vector"


def test_every_rule_evaluates_without_error(live):
    server, _ = live
    groups = api_get(server, "rules", [])["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {name for _, name, _ in rule_expressions()}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"


def _panel_expr(title: str, dashboard: str = "overview.json") -> str:
    """The first (expanded) query of a panel."""
    return [e for d, t, e in dashboard_targets() if d == dashboard and t == title][0]


def test_status_rate_per_outcome_returns_every_outcome(live):
    server, exposition = live
    result = server.query(_panel_expr("Status rate per outcome"))
    rates = {r["metric"]["outcome"]: float(r["value"][1]) for r in result}
    assert set(rates) == OUTCOMES
    assert all(rate > 0 for rate in rates.values()), rates


def test_code_table_lists_the_exposed_codes(live):
    server, exposition = live
    result = server.query(_panel_expr("Status codes by rate"))
    rows = {r["metric"]["code"]: r["metric"] for r in result}
    exposed = {dict(labels)["code"]: dict(labels) for (name, labels), _ in exposition.items()
               if name == "ndr_status_codes_total"}
    assert set(rows) == set(exposed)
    for code, row in rows.items():
        assert (row["class"], row["subject"], row["meaning"]) == \
            (exposed[code]["class"], exposed[code]["subject"], exposed[code]["meaning"]), code
    assert rows["5.7.1"]["class"] == "permanent" and rows["5.7.1"]["subject"] == "security_policy"
    rates = [float(r["value"][1]) for r in result]
    assert rates == sorted(rates, reverse=True), "the table query sorts by rate"


def test_drilldown_label_panels_return_the_code(live):
    server, _ = live
    result = server.query(_panel_expr("Meaning", "code-drilldown.json"))
    assert {r["metric"]["code"] for r in result} == {DRILLDOWN_CODE}
    assert {r["metric"]["class"] for r in result} == {"permanent"}


def test_recording_rules_return_data(live):
    server, _ = live
    outcomes = server.query_values("outcome:ndr_status_codes:rate5m", "outcome")
    assert set(outcomes) == OUTCOMES
    assert server.query("code_outcome:ndr_status_codes:rate5m") != []
    assert all("instance" not in r["metric"] for r in server.query("code_outcome:ndr_status_codes:rate5m"))
    ratio = server.query("job:ndr_status_codes_deferred:ratio_rate5m")
    # one deferred of four delivery attempts in each copy of the log
    assert [round(float(r["value"][1]), 6) for r in ratio] == [0.25]


def test_rising_codes_lists_the_codes_that_grew(live):
    server, exposition = live
    result = server.query(_panel_expr("Rising codes (last hour against the same hour a day before)"))
    exposed = {dict(labels)["code"]: v for (name, labels), v in exposition.items() if name == "ndr_status_codes_total"}
    assert len(exposed) <= 20
    # every code is in both copies of the log, so each grew; with no day before, its rise is its growth
    assert {r["metric"]["code"] for r in result} == set(exposed)
    for r in result:
        assert float(r["value"][1]) > 0


def test_windows_and_baselines_return_data(live):
    server, exposition = live
    exposed = {dict(labels)["code"] for (name, labels), _ in exposition.items() if name == "ndr_status_codes_total"}
    window = server.query("instance_code_outcome:ndr_status_codes:increase15m")
    assert {r["metric"]["code"] for r in window} == exposed
    assert all(set(r["metric"]) == {"__name__", "job", "instance", "code", "outcome"} for r in window)
    # no day or week before exists yet (nor in the raw counter): every baseline is 0, one per window
    baseline = server.query("instance_code_outcome:ndr_status_codes:increase15m_baseline")
    assert sorted((r["metric"]["code"], r["metric"]["outcome"]) for r in baseline) == \
        sorted((r["metric"]["code"], r["metric"]["outcome"]) for r in window)
    assert {float(r["value"][1]) for r in baseline} == {0.0}
    # one deferred of four delivery attempts in each copy of the log
    # (the windows group is evaluated on its own schedule: wait for its first evaluation after the growth)
    share = server.wait_for_query('instance_outcome:ndr_status_codes_attempts:ratio15m{outcome="deferred"}',
                                  lambda r: len(r) == 1)
    assert [round(float(r["value"][1]), 6) for r in share] == [0.25]
    meanings = server.query("instance_code:ndr_status_codes_meaning:group")
    assert {r["metric"]["code"] for r in meanings} == exposed
    assert server.query_values("instance_source:ndr_exporter_matched_lines:increase30m", "source")
