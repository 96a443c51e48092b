"""The Grafana dashboards and provisioning files in dashboards/ hold together.

- the generated files are what dashboards/build.py writes now;
- each dashboard: current schema, unique panel ids, no overlapping panels, only current panel
  types, every panel and query on the `datasource` variable, the variables it promises;
- every metric a dashboard (or a rule) names is in the exposition of the real exporter process
  following a real log, or is defined by a recording rule, or is made by Prometheus (up, ALERTS);
- the code table links to the drill-down, with the code;
- the provisioning YAML parses, and the Grafana-managed alert rules are the Prometheus alerts,
  linked to the code drill-down exactly when the alert is about a code;
- header links keep the variables; each dashboard loads into grafana-foundation-sdk's typed
  model (the panels' options, field config and queries decoded by their plugin's type) and comes
  back out with every field we wrote.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.helpers.exporter_process import ExporterProcess

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = REPO / "dashboards"
PROVISIONING = DASHBOARDS / "grafana" / "provisioning"
from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)
CORPUS_POSTFIX = CORPUS / "fail2ban" / "postfix"

# dashboards/build.py, loaded under its own name (a pip package called `build` may be installed)
_spec = importlib.util.spec_from_file_location("ndr_dashboards_build", DASHBOARDS / "build.py")
build = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = build   # dataclasses look their module up there
_spec.loader.exec_module(build)

PANEL_TYPES = {"timeseries", "table", "heatmap", "stat", "bargauge", "row"}
PROMETHEUS_MADE = {"up", "ALERTS", "ALERTS_FOR_STATE"}

# Postfix delivery lines in the form postfix/smtp and postfix/qmgr write them: one each of
# delivered, deferred, bounced and expired. The public corpus sample is all smtpd rejections.
DELIVERY_LINES = """\
Nov 29 05:40:01 mx1 postfix/smtp[2101]: 4F2A31C0001: to=<alice@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK  1700000000 a1si123 - gsmtp)
Nov 29 05:40:02 mx1 postfix/smtp[2102]: 5B3C41C0002: to=<bob@outlook.com>, relay=none, delay=300, delays=0.1/0/300/0, dsn=4.4.1, status=deferred (connect to outlook-com.olc.protection.outlook.com[52.101.1.1]:25: Connection timed out)
Nov 29 05:40:03 mx1 postfix/smtp[2103]: 6C4D51C0003: to=<carol@yahoo.com>, relay=mta7.am0.yahoodns.net[67.195.1.1]:25, delay=2, delays=0.1/0/1/0.9, dsn=5.1.1, status=bounced (host mta7.am0.yahoodns.net[67.195.1.1] said: 550 5.1.1 <carol@yahoo.com>: Recipient address rejected: User unknown (in reply to RCPT TO command))
Nov 29 05:40:04 mx1 postfix/qmgr[900]: 8E6F71C0005: from=<sender@example.org>, status=expired, returned to sender
"""


def write_mail_log(path: Path) -> Path:
    """A real-format mail log: the public corpus's Postfix lines (its comments dropped) plus DELIVERY_LINES."""
    if not CORPUS_POSTFIX.is_file():
        pytest.skip(f"public corpus not found at {CORPUS_POSTFIX}")
    corpus = [line for line in CORPUS_POSTFIX.read_text(errors="replace").splitlines()
              if line.strip() and not line.startswith("#")]
    path.write_text("\n".join(corpus) + "\n" + DELIVERY_LINES)
    return path


# --- reading dashboards and PromQL ----------------------------------------------------------

def load(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / name).read_text())


DASHBOARD_FILES = ["overview.json", "code-drilldown.json"]


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL text in a dashboard: panel targets and variable queries."""
    queries = [t["expr"] for p in all_panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            queries.append(var["query"]["query"] if isinstance(var["query"], dict) else var["query"])
    return queries


PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression (or a label_values() variable query) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)          # string literals
    text = re.sub(r"\{[^}]*\}", "{}", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)                     # range and subquery windows
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"label_values\(([^,()]+),[^)]*\)", r"\1", text)  # label_values(metric{..}, label)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def rule_files() -> list[Path]:
    return sorted((DASHBOARDS / "rules").glob("*.yml"))


def recorded_names() -> set[str]:
    names = set()
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names


def prometheus_alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DASHBOARDS / "rules" / "ndr-alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


# --- the real exposition ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def exposed_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Sample names the real exporter exposes after following a real log from the beginning."""
    work = tmp_path_factory.mktemp("log")
    log = write_mail_log(work / "mail.log")
    # with a state file, so that the checkpoint health metrics exist
    with ExporterProcess(["--source.path", str(log), "--start-at", "beginning",
                          "--state-file", str(work / "state.json")]) as exporter:
        samples = exporter.wait_for_metrics(
            lambda s: any(name == "ndr_exporter_last_event_timestamp_seconds" for name, _ in s)
            and sum(v for (name, labels), v in s.items()
                    if name == "ndr_status_codes_total") >= 4)
    return {name for name, _ in samples}


# --- tests -------------------------------------------------------------------------------------

def test_generated_files_are_up_to_date():
    result = subprocess.run([sys.executable, str(DASHBOARDS / "build.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_names_parser():
    assert metric_names('sum by (code) (rate(ndr_status_codes_total{code=~"5.7.1"}[$__rate_interval] offset 1d))') \
        == {"ndr_status_codes_total"}
    assert metric_names('label_values(ndr_status_codes_total{job=~"$job"}, mta)') == {"ndr_status_codes_total"}
    assert metric_names("time() - max by (source) (ndr_exporter_last_event_timestamp_seconds) > 1 or vector(0)") \
        == {"ndr_exporter_last_event_timestamp_seconds"}
    assert metric_names("up == 0 and on (job) code:ndr_status_codes:rate5m") == {"up", "code:ndr_status_codes:rate5m"}


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboard_structure(name: str):
    dash = load(name)
    assert dash["schemaVersion"] >= 39
    assert dash["uid"] in (build.OVERVIEW_UID, build.DRILLDOWN_UID)
    panels = list(all_panels(dash))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    assert {p["type"] for p in panels} <= PANEL_TYPES
    for panel in panels:
        assert panel.get("title"), panel["id"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() and t["refId"] for t in panel["targets"]), panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_no_overlapping_panels(name: str):
    boxes = [(p["title"], p["gridPos"]) for p in load(name)["panels"]]
    for title, g in boxes:
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, title
    for i, (title_a, a) in enumerate(boxes):
        for title_b, b in boxes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, f"{name}: {title_a!r} overlaps {title_b!r}"


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_datasource_is_the_variable(name: str):
    dash = load(name)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    wanted = {"type": "prometheus", "uid": "${datasource}"}
    for panel in all_panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == wanted, panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == wanted, panel["title"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == wanted, var["name"]
    assert "ndr-prometheus" not in json.dumps(dash), "a dashboard must not hard-code the data source"


def test_variables():
    overview = {v["name"]: v for v in load("overview.json")["templating"]["list"]}
    assert {"datasource", "instance", "mta", "class", "code"} <= set(overview)
    for name in ("instance", "mta", "class", "code"):
        assert overview[name]["includeAll"] and overview[name]["multi"], name
    drill = {v["name"]: v for v in load("code-drilldown.json")["templating"]["list"]}
    assert {"datasource", "code"} <= set(drill)
    assert drill["code"]["multi"] is False


def test_code_table_links_to_the_drilldown():
    overview = load("overview.json")
    table = next(p for p in overview["panels"] if p["title"] == "Status codes by rate")
    assert table["type"] == "table"
    expr = table["targets"][0]["expr"]
    assert expr.startswith("sort_desc(sum by (code, class, subject, meaning)")
    assert table["options"]["sortBy"] == [{"displayName": "Rate /s", "desc": True}]
    (override,) = [o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "code"]
    (links,) = [p["value"] for p in override["properties"] if p["id"] == "links"]
    url = links[0]["url"]
    assert url.startswith(f"/d/{build.DRILLDOWN_UID}/")
    assert "var-code=${__value.raw}" in url
    assert load("code-drilldown.json")["uid"] == build.DRILLDOWN_UID
    # the drill-down shows the alert state for the code
    drill_exprs = dashboard_queries(load("code-drilldown.json"))
    assert any('ALERTS{code="$code"}' in e for e in drill_exprs)


def test_overview_has_the_promised_panels():
    overview = load("overview.json")
    exprs = "\n".join(dashboard_queries(overview))
    titles = {p["title"] for p in overview["panels"]}
    for title in ("Status rate per outcome", "Deferral and bounce ratios", "Status codes by rate",
                  "Rate per subject", "Codes over time", "Rate per MTA and outcome",
                  "Rate per provider and outcome", "Lines read per second", "Seconds since the last event"):
        assert title in titles
    assert "offset 1d" in exprs
    assert {p["type"] for p in overview["panels"]} >= {"timeseries", "table", "heatmap", "stat", "bargauge"}
    for outcome in ("delivered", "deferred", "bounced", "expired", "rejected"):
        assert f'outcome="{outcome}"' in exprs
    for result in ("unparsed", "oversized"):
        assert result in exprs
    assert "ndr_exporter_rotations_total" in exprs


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_dashboard_metric_is_exposed(name: str, exposed_names: set[str]):
    known = exposed_names | recorded_names() | PROMETHEUS_MADE
    for expr in dashboard_queries(load(name)):
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        assert names <= known, f"{names - known} in {expr!r} is not exposed by the exporter"


# The checkpoint health metrics are agreed with the exporter side (issue 15 item 2), which adds
# them on another branch. Until the exporter's source names them they may be missing here; once
# it does, they must be exposed like every other metric (this tolerance then ends by itself).
AGREED_NOT_YET_IN_EXPORTER = {"ndr_exporter_checkpoint_failures_total",
                              "ndr_exporter_checkpoint_last_success_timestamp_seconds"}


def pending_metric_names() -> set[str]:
    """Agreed names that no module of the exporter mentions yet."""
    source = "\n".join(p.read_text() for p in (REPO / "exporter").rglob("*.py"))
    stem = {name: name.removesuffix("_total") for name in AGREED_NOT_YET_IN_EXPORTER}
    return {name for name in AGREED_NOT_YET_IN_EXPORTER if f'"{stem[name]}"' not in source and f'"{name}"' not in source}


def test_every_rule_metric_is_exposed(exposed_names: set[str]):
    known = exposed_names | recorded_names() | PROMETHEUS_MADE | pending_metric_names()
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names = metric_names(rule["expr"])
                assert names and names <= known, f"{path.name} {rule.get('alert') or rule.get('record')}: {names - known}"


def test_the_exposition_has_the_contract_metrics(exposed_names: set[str]):
    for name in ("ndr_status_codes_total", "ndr_exporter_lines_total", "ndr_exporter_read_bytes_total",
                 "ndr_exporter_rotations_total", "ndr_exporter_read_errors_total", "ndr_exporter_codes_folded_total",
                 "ndr_exporter_last_event_timestamp_seconds", "ndr_exporter_build_info"):
        assert name in exposed_names


def test_provisioning_yaml():
    ds = yaml.safe_load((PROVISIONING / "datasources" / "ndr-prometheus.yml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == build.DATASOURCE_UID
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "ndr-dashboards.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    alerts = yaml.safe_load((PROVISIONING / "alerting" / "ndr-alerts.json").read_text())
    assert alerts["apiVersion"] == 1
    for group in alerts["groups"]:
        assert group["folder"] and group["name"] and group["interval"]
        for rule in group["rules"]:
            refs = {d["refId"] for d in rule["data"]}
            assert rule["condition"] in refs
            queries = [d for d in rule["data"] if d["datasourceUid"] != "__expr__"]
            assert queries and all(d["datasourceUid"] == build.DATASOURCE_UID for d in queries)
            for d in rule["data"]:
                if d["datasourceUid"] == "__expr__":
                    assert d["model"]["type"] in ("reduce", "math", "threshold")
            assert len(rule["uid"]) <= 40


def test_grafana_alerts_are_the_prometheus_alerts():
    doc = yaml.safe_load((PROVISIONING / "alerting" / "ndr-alerts.json").read_text())
    grafana = {r["title"]: r for g in doc["groups"] for r in g["rules"]}
    prometheus = {r["alert"]: r for r in prometheus_alerts()}
    assert set(grafana) == set(prometheus)
    assert len(prometheus) == 15
    uids = [r["uid"] for r in grafana.values()]
    assert len(uids) == len(set(uids))
    for name, prom in prometheus.items():
        graf = grafana[name]
        (query,) = [d for d in graf["data"] if d["refId"] == "A"]
        assert query["model"]["expr"] == prom["expr"].strip(), name
        assert graf["for"] == prom["for"], name
        assert graf["labels"] == prom["labels"], name
        assert set(graf["annotations"]) == set(prom["annotations"]) | {"__dashboardUid__"}, name
        # an alert per code (a code label in what it returns) links to the code drill-down
        per_code = "group_left (meaning)" in prom["expr"]   # it keeps the code label and joins the meaning
        assert graf["annotations"]["__dashboardUid__"] == (build.DRILLDOWN_UID if per_code else build.OVERVIEW_UID), name
        for text in graf["annotations"].values():
            assert "$value " not in text and "$value}" not in text, name   # Grafana uses $values.B
        assert graf["noDataState"] == "OK", name


def test_grafana_template_translation():
    assert build.grafana_template("{{ $value | humanize }} lines") == "{{ humanize $values.B.Value }} lines"
    assert build.grafana_template("{{ $value | humanizePercentage }}") == "{{ humanizePercentage $values.B.Value }}"
    assert build.grafana_template("{{ $labels.code }}") == "{{ $labels.code }}"


def test_alerts_link_to_the_drilldown_only_when_about_a_code():
    # the ratio alerts read ndr_status_codes series but are per server, not per code
    doc = json.loads((PROVISIONING / "alerting" / "ndr-alerts.json").read_text())
    links = {r["title"]: r["annotations"]["__dashboardUid__"] for g in doc["groups"] for r in g["rules"]}
    per_code = {"NdrQueueExpirySurge", "NdrMailLoop", "NdrRelayDenied", "NdrPolicyDenialSurge",
                "NdrAuthFailureSurge", "NdrMailSystemFull", "NdrMailboxFullSurge"}
    assert {n for n, uid in links.items() if uid == build.DRILLDOWN_UID} == per_code
    assert links["NdrDeferralRatioHigh"] == links["NdrBounceRatioHigh"] == build.OVERVIEW_UID


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_header_links_keep_the_variables(name: str):
    links = load(name)["links"]
    assert links
    for link in links:
        assert link["includeVars"] is True and link["keepTime"] is True, link["title"]


# --- grafana-foundation-sdk ----------------------------------------------------------------------

# Fields Grafana reads that the SDK's dashboard model (generated from Grafana's schema) does not
# carry, so they cannot survive a round trip through it; null values are dropped too.
SDK_UNMODELLED = {
    "annotations/list/builtIn",           # Grafana's own "Annotations & Alerts" entry
    "templating/list/definition",         # the query text Grafana shows in the variable editor
    "panels/options/tooltip/mode",        # heatmap tooltip mode (Grafana 11; the SDK's heatmap has none)
}


def _dropped(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Paths of fields in ours that the round trip lost or changed."""
    if isinstance(ours, dict):
        lost = []
        for key, value in ours.items():
            where = f"{path}/{key}".lstrip("/")
            if value is None or re.sub(r"\[\d+\]", "", where) in SDK_UNMODELLED:
                continue
            if not isinstance(theirs, dict) or key not in theirs:
                lost.append(where)
            else:
                lost += _dropped(value, theirs[key], where)
        return lost
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [path]
        return [p for i, (a, b) in enumerate(zip(ours, theirs)) for p in _dropped(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {ours!r} became {theirs!r}"]


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboard_loads_into_the_sdk_typed_model(name: str):
    sdk = pytest.importorskip("grafana_foundation_sdk", reason="pip install grafana-foundation-sdk (test extras)")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models import dashboard as sdk_dashboard, prometheus as sdk_prometheus
    from grafana_foundation_sdk.models import bargauge, heatmap, stat, table, timeseries
    assert sdk
    register_default_plugins()
    ours = load(name)
    model = sdk_dashboard.Dashboard.from_json(ours)
    # each panel's options and field config are decoded by its plugin's types, each query as Prometheus's
    options_types = {"timeseries": timeseries.Options, "stat": stat.Options, "table": table.Options,
                     "bargauge": bargauge.Options, "heatmap": heatmap.Options}
    for panel in model.panels:
        if isinstance(panel, sdk_dashboard.RowPanel):
            continue
        assert isinstance(panel.options, options_types[panel.type_val]), panel.title
        assert all(isinstance(t, sdk_prometheus.Dataquery) for t in panel.targets), panel.title
    assert [type(p).__name__ for p in model.panels] == \
        ["RowPanel" if p["type"] == "row" else "Panel" for p in ours["panels"]]
    # and every field we wrote comes back out of the typed model unchanged
    theirs = json.loads(json.dumps(model, cls=JSONEncoder))
    assert _dropped(ours, theirs) == []


def test_sdk_round_trip_notices_an_unknown_field():
    pytest.importorskip("grafana_foundation_sdk")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models import dashboard as sdk_dashboard
    register_default_plugins()
    ours = load("overview.json")
    ours["panels"][1]["options"]["textMod"] = "value"             # a misspelt stat option
    ours["panels"][1]["fieldConfig"]["defaults"]["unitt"] = "ops"  # a misspelt field config key
    theirs = json.loads(json.dumps(sdk_dashboard.Dashboard.from_json(ours), cls=JSONEncoder))
    assert _dropped(ours, theirs) == ["panels[1]/fieldConfig/defaults/unitt", "panels[1]/options/textMod"]


# --- the compose example -------------------------------------------------------------------------

COMPOSE = REPO / "examples" / "compose"


def compose_services() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]


def test_compose_publishes_on_loopback_only():
    for name, service in compose_services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"


def test_compose_grafana_mounts_the_dashboards_only():
    grafana = compose_services()["grafana"]
    mounts = [v.split(":")[:2] for v in grafana["volumes"]]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "ndr-dashboards.yml").read_text())["providers"][0]
    in_provider = {src for src, dst in mounts if dst.startswith(provider["options"]["path"] + "/")}
    assert in_provider == {f"../../dashboards/{name}" for name in DASHBOARD_FILES}
    assert "../../dashboards" not in {src for src, _ in mounts}, "the whole folder would load the alert JSON as a dashboard"
    assert not any("alerting" in src or "alerting" in dst for src, dst in mounts), \
        "Grafana-managed alerts would send every alert a second time beside Prometheus and Alertmanager"


def test_compose_grafana_password_is_a_secret():
    doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    env = doc["services"]["grafana"]["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert doc["services"]["grafana"]["secrets"] == ["grafana_admin_password"]
    secret_file = doc["secrets"]["grafana_admin_password"]["file"]
    assert secret_file == "./grafana-admin-password"
    assert "grafana-admin-password" in (COMPOSE / ".gitignore").read_text().split()
    assert "admin/admin" not in (COMPOSE / "docker-compose.yml").read_text()


def test_compose_alerts_take_one_path_and_the_port_is_19798(tmp_path: Path):
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    config = yaml.safe_load((COMPOSE / "config.yml").read_text())
    assert config["web"]["listen_address"] == ":19798"
    (job,) = prom["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["ndr-exporter:19798"]
    assert compose_services()["ndr-exporter"]["ports"] == ["127.0.0.1:19798:19798"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    # Prometheus loads every rule file of the repository (recording, baselines, alerts)
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "../../dashboards/rules:/etc/prometheus/rules:ro" in compose_services()["prometheus"]["volumes"]
    # the real promtool accepts the configuration, with the rule files where the mount puts them
    prom["rule_files"] = [str(p) for p in sorted((DASHBOARDS / "rules").glob("*.yml"))]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom))
    result = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout
