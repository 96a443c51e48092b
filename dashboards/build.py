#!/usr/bin/env python3
"""Write the ndr-exporter rules and dashboards from one table and one parameter file.

    python3 dashboards/build.py          # rewrite the generated files
    python3 dashboards/build.py --check  # exit 1 if a generated file is out of date
    python3 dashboards/build.py --params FILE   # another parameter file (exit 2 naming a bad field)

The numbers a team tunes (the selector of the exporter's series, every threshold, severity and
`for`, the runbook base URL) are in dashboards/params.yml, each once. What the rules compute
(the recording rules, and each alert's kind, codes and texts) is the table in this script.
From the two it writes (do not edit these by hand):
  dashboards/rules/ndr-recording.yml      fleet rates, and the 15- and 30-minute increases per server
  dashboards/rules/ndr-baselines.yml      the same windows a day and a week before, and their larger
  dashboards/rules/ndr-alerts.yml         the alerts, each a short expression over the two above
  dashboards/grafana/provisioning/alerting/ndr-alerts.json   the same alerts as Grafana-managed rules
  dashboards/overview.json                the overview dashboard
  dashboards/code-drilldown.json          one status code in detail

Pipeline place: none at run time; this is the monitoring side of the exporter's metrics contract
(docs/metrics.md). The promtool unit tests in dashboards/rules/tests/ check the rules it writes.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OVERVIEW_PATH = HERE / "overview.json"
DRILLDOWN_PATH = HERE / "code-drilldown.json"
PARAMS_PATH = HERE / "params.yml"
RULES_DIR = HERE / "rules"
RECORDING_PATH = RULES_DIR / "ndr-recording.yml"
BASELINES_PATH = RULES_DIR / "ndr-baselines.yml"
ALERT_RULES_PATH = RULES_DIR / "ndr-alerts.yml"
GRAFANA_ALERTS_PATH = HERE / "grafana" / "provisioning" / "alerting" / "ndr-alerts.json"

OVERVIEW_UID = "ndr-overview"
DRILLDOWN_UID = "ndr-code-drilldown"
DATASOURCE_UID = "ndr-prometheus"   # the provisioned Prometheus data source the Grafana alerts query
ALERT_FOLDER = "NDR exporter"       # the Grafana folder of the alert rules and the dashboards
ALERT_INTERVAL = "1m"               # how often Grafana evaluates the alert group
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
ATTEMPTS = 'outcome=~"delivered|deferred|bounced|expired"'


# --- panels -------------------------------------------------------------------------------

class Board:
    """Collects panels, numbering them in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []

    def add(self, panel: dict[str, Any], x: int, y: int, w: int, h: int) -> dict[str, Any]:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        self.panels.append(panel)
        return panel

    def row(self, title: str, y: int) -> None:
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 0, y, 24, 1)


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series") -> dict[str, Any]:
    """One Prometheus query of a panel."""
    return {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
            "range": not instant, "instant": instant, "format": fmt, "editorMode": "code"}


def field_defaults(unit: str, decimals: int | None = None, **custom: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "palette-classic"},
                                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]}}
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom:
        defaults["custom"] = custom
    return defaults


def timeseries(title: str, description: str, targets: list[dict[str, Any]], unit: str = "ops",
               stack: bool = False) -> dict[str, Any]:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 20 if stack else 0, "showPoints": "never",
              "spanNulls": False, "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return {"type": "timeseries", "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": field_defaults(unit, **custom), "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                                   "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, description: str, targets: list[dict[str, Any]], unit: str = "ops",
         text_mode: str = "value", color: str = "blue", steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    defaults = field_defaults(unit)
    defaults["color"] = {"mode": "thresholds"}
    defaults["thresholds"] = {"mode": "absolute", "steps": steps or [{"color": color, "value": None}]}
    return {"type": "stat", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "textMode": text_mode, "colorMode": "value", "graphMode": "none" if text_mode == "name" else "area",
                        "justifyMode": "auto", "orientation": "auto"}}


def bargauge(title: str, description: str, targets: list[dict[str, Any]], unit: str = "ops") -> dict[str, Any]:
    defaults = field_defaults(unit)
    defaults["color"] = {"mode": "continuous-GrYlRd"}
    return {"type": "bargauge", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True}}


def table(title: str, description: str, targets: list[dict[str, Any]], columns: dict[str, str],
          sort_by: str | None = None, overrides: list[dict[str, Any]] | None = None,
          units: dict[str, str] | None = None) -> dict[str, Any]:
    """A table of instant queries; `columns` maps field names to the headers shown, in order."""
    transformations: list[dict[str, Any]] = []
    if len(targets) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append({"id": "organize", "options": {
        "excludeByName": {"Time": True},
        "indexByName": {name: i for i, name in enumerate(columns)},
        "renameByName": columns,
        "includeByName": {name: True for name in columns}}})
    all_overrides = list(overrides or [])
    for field, unit in (units or {}).items():
        all_overrides.append({"matcher": {"id": "byName", "options": field},
                              "properties": [{"id": "unit", "value": unit}]})
    options: dict[str, Any] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": columns.get(sort_by, sort_by), "desc": True}]
    return {"type": "table", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"custom": {"align": "auto", "filterable": True}},
                            "overrides": all_overrides},
            "options": options, "transformations": transformations}


def heatmap(title: str, description: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "heatmap", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False}}},
                            "overrides": []},
            "options": {"calculate": False, "cellGap": 1,
                        "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5,
                                  "fill": "dark-orange", "reverse": False},
                        "yAxis": {"axisPlacement": "left", "reverse": False},
                        "rowsFrame": {"layout": "auto"},
                        "legend": {"show": True}, "tooltip": {"mode": "single", "yHistogram": False},
                        "cellValues": {"unit": "short"}, "showValue": "never"}}


# --- variables ----------------------------------------------------------------------------

def datasource_variable() -> dict[str, Any]:
    return {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False,
            "options": []}


def query_variable(name: str, label: str, query: str, multi: bool = True, match_all: bool = True) -> dict[str, Any]:
    """A variable from label_values(); with match_all, "All" is the regex .* rather than the list of values."""
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": query, "query": {"query": query, "refId": f"{name}-values", "qryType": 1},
            "refresh": 2, "sort": 1, "regex": "", "hide": 0, "multi": multi, "includeAll": multi,
            "allValue": ".*" if multi and match_all else None, "current": {}, "options": []}


def exporter_variables(params: Params) -> list[dict[str, Any]]:
    """The job and instance variables: only the targets the parameter file's selector picks."""
    sel = params.selector
    return [query_variable("job", "Job", f"label_values(ndr_exporter_build_info{{{sel}}}, job)", match_all=False),
            query_variable("instance", "Instance",
                           f'label_values(ndr_exporter_build_info{{{sel}, job=~"$job"}}, instance)', match_all=False)]


def dashboard(uid: str, title: str, description: str, variables: list[dict[str, Any]], board: Board,
              links: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["ndr-exporter", "mail", "smtp"],
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
        "timezone": "browser", "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "timepicker": {}, "links": links,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables},
        "panels": board.panels,
    }


# --- the overview -------------------------------------------------------------------------

def overview(params: Params) -> dict[str, Any]:
    base = 'job=~"$job", instance=~"$instance", mta=~"$mta"'
    sel = base + ', class=~"$class", code=~"$code"'
    rate = f"rate(ndr_status_codes_total{{{sel}}}[$__rate_interval])"
    exp_sel = 'job=~"$job", instance=~"$instance"'
    b = Board()

    b.row("Traffic", 0)
    for i, outcome in enumerate(("delivered", "deferred", "bounced", "expired", "rejected")):
        b.add(stat(f"{outcome.capitalize()} /s", f"Status lines with outcome {outcome} per second.",
                   [target(f'sum(rate(ndr_status_codes_total{{{sel}, outcome="{outcome}"}}[$__rate_interval])) or vector(0)',
                           outcome)],
                   color={"delivered": "green", "deferred": "orange", "bounced": "red",
                          "expired": "purple", "rejected": "yellow"}[outcome]),
              4 * i, 1, 4, 4)
    b.add(stat("Exporters up", "Selected exporters that answered their last scrape (the job and instance "
               "variables list only exporters, so All selects no other target).",
               [target(f"sum(up{{{exp_sel}}})", "up")], unit="none",
               steps=[{"color": "red", "value": None}, {"color": "green", "value": 1}]),
          20, 1, 4, 4)
    b.add(timeseries("Status rate per outcome", "Status lines per second, by outcome (one logged attempt each).",
                     [target(f"sum by (outcome) ({rate})", "{{outcome}}")], stack=True), 0, 5, 12, 8)
    b.add(timeseries(
        "Deferral and bounce ratios",
        "Share of delivery attempts (delivered, deferred, bounced, expired) that were deferred or bounced; "
        "dashed: the same time a day before.",
        [target(f'sum(rate(ndr_status_codes_total{{{base}, outcome="deferred"}}[$__rate_interval])) '
                f'/ sum(rate(ndr_status_codes_total{{{base}, {ATTEMPTS}}}[$__rate_interval]))', "deferred", "A"),
         target(f'sum(rate(ndr_status_codes_total{{{base}, outcome="bounced"}}[$__rate_interval])) '
                f'/ sum(rate(ndr_status_codes_total{{{base}, {ATTEMPTS}}}[$__rate_interval]))', "bounced", "B"),
         target(f'sum(rate(ndr_status_codes_total{{{base}, outcome="deferred"}}[$__rate_interval] offset 1d)) '
                f'/ sum(rate(ndr_status_codes_total{{{base}, {ATTEMPTS}}}[$__rate_interval] offset 1d))',
                "deferred a day before", "C"),
         target(f'sum(rate(ndr_status_codes_total{{{base}, outcome="bounced"}}[$__rate_interval] offset 1d)) '
                f'/ sum(rate(ndr_status_codes_total{{{base}, {ATTEMPTS}}}[$__rate_interval] offset 1d))',
                "bounced a day before", "D")],
        unit="percentunit"), 12, 5, 12, 8)
    ratio_panel = b.panels[-1]
    ratio_panel["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byRegexp", "options": ".*a day before"},
         "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]

    b.row("Status codes", 13)
    drill_url = (f"/d/{DRILLDOWN_UID}/ndr-code-drill-down?${{datasource:queryparam}}&${{job:queryparam}}"
                 f"&${{instance:queryparam}}&var-code=${{__value.raw}}&${{__url_time_range}}")
    b.add(table(
        "Status codes by rate",
        "Every code seen in the time range with its class, subject and meaning, sorted by its rate. "
        "Click a code for its drill-down.",
        [target(f"sort_desc(sum by (code, class, subject, meaning) (rate(ndr_status_codes_total{{{sel}}}[$__range])))",
                "", instant=True, fmt="table")],
        {"code": "Code", "class": "Class", "subject": "Subject", "meaning": "Meaning", "Value": "Rate /s"},
        sort_by="Value",
        overrides=[{"matcher": {"id": "byName", "options": "code"},
                    "properties": [{"id": "links", "value": [{"title": "Drill down into code ${__value.text}",
                                                               "url": drill_url}]}]}],
        units={"Value": "ops"}), 0, 14, 24, 10)
    b.add(timeseries("Rate per subject", "Status lines per second by the code's subject (RFC 3463).",
                     [target(f"sum by (subject) ({rate})", "{{subject}}")], stack=True), 0, 24, 12, 8)
    b.add(timeseries("Rate per class", "Status lines per second by class: success, transient, permanent.",
                     [target(f"sum by (class) ({rate})", "{{class}}")], stack=True), 12, 24, 12, 8)
    b.add(heatmap("Codes over time", "Status lines per code in each interval; darker is more.",
                  [target(f"sum by (code) (increase(ndr_status_codes_total{{{sel}}}[$__rate_interval]))",
                          "{{code}}")]), 0, 32, 24, 9)
    # rising codes: the last hour's count minus the same hour a day before (0 for a code new since)
    last_hour = f"sum by (code, meaning) (increase(ndr_status_codes_total{{{sel}}}[1h]))"
    day_before = f"sum by (code, meaning) (increase(ndr_status_codes_total{{{sel}}}[1h] offset 1d))"
    rise = f"topk(20, {last_hour} - ({day_before} or {last_hour} * 0) > 0)"
    b.add(table(
        "Rising codes (last hour against the same hour a day before)",
        "Codes whose count in the last hour exceeds the same hour a day before, most risen first.",
        [target(f"sort_desc({rise})", "", "A", instant=True, fmt="table"),
         target(f"{last_hour} and on (code, meaning) ({rise})", "", "B", instant=True, fmt="table"),
         target(f"{day_before} and on (code, meaning) ({rise})", "", "C", instant=True, fmt="table")],
        {"code": "Code", "meaning": "Meaning", "Value #A": "Rise", "Value #B": "Last hour",
         "Value #C": "Same hour a day before"},
        sort_by="Value #A",
        overrides=[{"matcher": {"id": "byName", "options": "code"},
                    "properties": [{"id": "links", "value": [{"title": "Drill down into code ${__value.text}",
                                                               "url": drill_url}]}]}],
        units={"Value #A": "short", "Value #B": "short", "Value #C": "short"}), 0, 41, 24, 9)

    b.row("Breakdowns", 50)
    b.add(timeseries("Rate per MTA and outcome", "Status lines per second by the software that logged them.",
                     [target(f"sum by (mta, outcome) ({rate})", "{{mta}} {{outcome}}")]), 0, 51, 8, 8)
    b.add(timeseries("Rate per provider and outcome", "Status lines per second by the remote mailbox provider.",
                     [target(f"sum by (provider, outcome) ({rate})", "{{provider}} {{outcome}}")]), 8, 51, 8, 8)
    b.add(bargauge("Failures per provider", "Deferred, bounced and expired per second by provider over the time range.",
                   [target(f'sort_desc(sum by (provider) (rate(ndr_status_codes_total{{{sel}, '
                           f'outcome=~"deferred|bounced|expired"}}[$__range])))', "{{provider}}", instant=True)]),
          16, 51, 8, 8)

    b.row("Exporter health", 59)
    b.add(timeseries("Lines read per second", "Log lines read, by result: matched (a status line), ignored, "
                     "unparsed (looked like a status line but did not parse), oversized.",
                     [target(f"sum by (result) (rate(ndr_exporter_lines_total{{{exp_sel}}}[$__rate_interval]))",
                             "{{result}}")], stack=True), 0, 60, 8, 8)
    b.add(timeseries("Unparsed and oversized lines", "Lines the parsers could not read, per source; "
                     "a rise after an MTA upgrade means its log format changed.",
                     [target(f'sum by (instance, source, result) (rate(ndr_exporter_lines_total{{{exp_sel}, '
                             f'result=~"unparsed|oversized"}}[$__rate_interval]))',
                             "{{instance}} {{source}} {{result}}")]), 8, 60, 8, 8)
    b.add(timeseries("Bytes read per second", "Bytes read from each source.",
                     [target(f"sum by (instance, source) (rate(ndr_exporter_read_bytes_total{{{exp_sel}}}[$__rate_interval]))",
                             "{{instance}} {{source}}")], unit="Bps"), 16, 60, 8, 8)
    b.add(stat("Seconds since the last event", "Age of the newest status event each source logged "
               "(by the log's own timestamps).",
               [target(f"time() - max by (instance, source) (ndr_exporter_last_event_timestamp_seconds{{{exp_sel}}})",
                       "{{instance}} {{source}}")], unit="s",
               steps=[{"color": "green", "value": None}, {"color": "orange", "value": 3600},
                      {"color": "red", "value": 86400}]), 0, 68, 6, 5)
    b.add(stat("Rotations followed", "Log rotations and truncations followed in the time range.",
               [target(f"sum(increase(ndr_exporter_rotations_total{{{exp_sel}}}[$__range])) or vector(0)", "rotations")],
               unit="short"), 6, 68, 6, 5)
    b.add(stat("Read errors", "Errors opening or reading a source in the time range.",
               [target(f"sum(increase(ndr_exporter_read_errors_total{{{exp_sel}}}[$__range])) or vector(0)", "errors")],
               unit="short", steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 12, 68, 6, 5)
    b.add(stat("Codes folded into overflow", "Events whose code was beyond the cardinality cap in the time range.",
               [target(f"sum(increase(ndr_exporter_codes_folded_total{{{exp_sel}}}[$__range])) or vector(0)", "folded")],
               unit="short", steps=[{"color": "green", "value": None}, {"color": "orange", "value": 1}]), 18, 68, 6, 5)
    b.add(table("Exporter versions", "Version of each exporter and the Python it runs on.",
                [target(f"max by (instance, version, python_version) (ndr_exporter_build_info{{{exp_sel}}})", "",
                        instant=True, fmt="table")],
                {"instance": "Instance", "version": "Version", "python_version": "Python"}), 0, 73, 24, 5)

    variables = [
        datasource_variable(),
        *exporter_variables(params),
        query_variable("mta", "MTA", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance"}, mta)'),
        query_variable("class", "Class", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance", '
                                         'mta=~"$mta"}, class)'),
        query_variable("code", "Code", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance", '
                                       'mta=~"$mta", class=~"$class"}, code)'),
    ]
    links = [{"title": "Code drill-down", "type": "link", "url": f"/d/{DRILLDOWN_UID}/ndr-code-drill-down",
              "icon": "dashboard", "keepTime": True, "includeVars": True, "targetBlank": False,
              "tooltip": "One status code in detail", "asDropdown": False, "tags": []}]
    return dashboard(OVERVIEW_UID, "NDR exporter / Overview",
                     "SMTP status codes found in mail-server logs by ndr-exporter: outcomes, codes and what they "
                     "mean, breakdowns, and the exporter's own health.", variables, b, links)


# --- the code drill-down ------------------------------------------------------------------

def drilldown(params: Params) -> dict[str, Any]:
    sel = 'job=~"$job", instance=~"$instance", code="$code"'
    rate = f"rate(ndr_status_codes_total{{{sel}}}[$__rate_interval])"
    b = Board()
    label_query = f"group by (code, class, subject, meaning) (ndr_status_codes_total{{{sel}}})"
    b.add(stat("Meaning", "What the code means (as classified by the exporter; vendor codes get the vendor's meaning).",
               [target(label_query, "{{meaning}}", instant=True)], unit="none", text_mode="name"), 0, 0, 12, 4)
    b.add(stat("Class", "success (2), transient (4) or permanent (5).",
               [target(label_query, "{{class}}", instant=True)], unit="none", text_mode="name"), 12, 0, 6, 4)
    b.add(stat("Subject", "The RFC 3463 subject: addressing, mailbox, mail_system, network_routing, protocol, "
               "content, security_policy or other.",
               [target(label_query, "{{subject}}", instant=True)], unit="none", text_mode="name"), 18, 0, 6, 4)
    b.add(timeseries("Rate by MTA and outcome", "This code per second, by the MTA that logged it and the outcome.",
                     [target(f"sum by (mta, outcome) ({rate})", "{{mta}} {{outcome}}")]), 0, 4, 12, 8)
    b.add(timeseries("Rate by provider", "This code per second by remote mailbox provider.",
                     [target(f"sum by (provider) ({rate})", "{{provider}}")], stack=True), 12, 4, 12, 8)
    b.add(timeseries("Rate now and a day before", "This code per second, now and the same time a day and a week before.",
                     [target(f"sum({rate})", "now", "A"),
                      target(f"sum(rate(ndr_status_codes_total{{{sel}}}[$__rate_interval] offset 1d))", "a day before", "B"),
                      target(f"sum(rate(ndr_status_codes_total{{{sel}}}[$__rate_interval] offset 1w))", "a week before", "C")]),
          0, 12, 12, 8)
    b.add(timeseries("Rate by instance", "This code per second on each server.",
                     [target(f"sum by (instance) ({rate})", "{{instance}}")]), 12, 12, 12, 8)
    b.add(bargauge("By provider over the time range", "This code per second by provider over the whole time range.",
                   [target(f"sort_desc(sum by (provider) (rate(ndr_status_codes_total{{{sel}}}[$__range])))",
                           "{{provider}}", instant=True)]), 0, 20, 8, 8)
    b.add(table("Where it comes from", "This code's count over the time range by MTA, outcome, provider and "
                "meaning (a vendor's code can carry a vendor meaning).",
                [target(f"sort_desc(sum by (mta, outcome, provider, meaning) (increase(ndr_status_codes_total{{{sel}}}[$__range])))",
                        "", instant=True, fmt="table")],
                {"mta": "MTA", "outcome": "Outcome", "provider": "Provider", "meaning": "Meaning", "Value": "Count"},
                sort_by="Value", units={"Value": "short"}), 8, 20, 16, 8)
    b.add(stat("Alerts firing for this code", "Prometheus alerts about this code that fire now.",
               [target('count(ALERTS{alertstate="firing", code="$code"}) or vector(0)', "firing", instant=True)],
               unit="none", steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 0, 28, 6, 6)
    b.add(table("Alert state", "Alerts about this code (pending or firing) from the Prometheus rules in "
                "dashboards/rules/ndr-alerts.yml.",
                [target('max by (alertname, alertstate, severity, instance) (ALERTS{code="$code"})', "",
                        instant=True, fmt="table")],
                {"alertname": "Alert", "alertstate": "State", "severity": "Severity", "instance": "Instance"}),
          6, 28, 18, 6)

    variables = [
        datasource_variable(),
        *exporter_variables(params),
        query_variable("code", "Code", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance"}, code)',
                       multi=False),
    ]
    links = [{"title": "Overview", "type": "link", "url": f"/d/{OVERVIEW_UID}/ndr-exporter-overview",
              "icon": "dashboard", "keepTime": True, "includeVars": True, "targetBlank": False,
              "tooltip": "All codes", "asDropdown": False, "tags": []}]
    return dashboard(DRILLDOWN_UID, "NDR exporter / Code drill-down",
                     "One SMTP status code: its meaning, class and subject, where it comes from, and its alerts.",
                     variables, b, links)


# --- parameters ---------------------------------------------------------------------------

ALERT_KEYS = {"severity", "for"}
SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class Params:
    """dashboards/params.yml, checked."""
    selector: str
    runbook_base_url: str
    alerts: dict[str, dict[str, Any]]

    def of(self, alert: str) -> dict[str, Any]:
        return self.alerts[alert]


class ParamsError(ValueError):
    """A missing or unusable field in the parameter file; the message names it."""


def load_params(path: Path = PARAMS_PATH) -> Params:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ParamsError(f"{path}: cannot read it: {err}") from None
    if not isinstance(doc, dict):
        raise ParamsError(f"{path.name}: not a mapping")
    for key in ("selector", "runbook_base_url", "alerts"):
        if key not in doc:
            raise ParamsError(f"{path.name}: {key}: missing")
    selector = str(doc["selector"]).strip()
    if not selector or "{" in selector or "}" in selector:
        raise ParamsError(f"{path.name}: selector: label matchers without braces, such as job=\"ndr-exporter\"")
    alerts = doc["alerts"]
    names = {a.name for a in ALERTS}
    if set(alerts) != names:
        missing, unknown = sorted(names - set(alerts)), sorted(set(alerts) - names)
        raise ParamsError(f"{path.name}: alerts: missing {missing}, unknown {unknown}")
    for alert in ALERTS:
        values = alerts[alert.name]
        wanted = ALERT_KEYS | set(alert.thresholds)
        if set(values) != wanted:
            raise ParamsError(f"{path.name}: alerts.{alert.name}: wants exactly {sorted(wanted)}, has {sorted(values)}")
        if values["severity"] not in SEVERITIES:
            raise ParamsError(f"{path.name}: alerts.{alert.name}.severity: one of {', '.join(SEVERITIES)}")
        if not re.fullmatch(r"(\d+[smhdw])+", str(values["for"])):
            raise ParamsError(f"{path.name}: alerts.{alert.name}.for: a duration such as 10m")
        for key in alert.thresholds:
            if not isinstance(values[key], (int, float)) or isinstance(values[key], bool) or values[key] <= 0:
                raise ParamsError(f"{path.name}: alerts.{alert.name}.{key}: a positive number")
    return Params(selector, str(doc["runbook_base_url"]).rstrip("#"), alerts)


# --- recorded series ----------------------------------------------------------------------
# Names follow level:metric:operation. The raw counters are read only here (through the
# selector); the alerts read only recorded series. `sum without (...)` keeps job, instance and any
# target or external labels (cluster, env, ...).

INC = "instance_code_outcome:ndr_status_codes:increase15m"          # per server, code and outcome
MEANING = "instance_code:ndr_status_codes_meaning:group"            # one meaning per server and code
ATTEMPTS_INC = "instance:ndr_status_codes_attempts:increase15m"     # delivery attempts per server
SHARE = "instance_outcome:ndr_status_codes_attempts:ratio15m"       # each outcome's share of them
LINES = "instance_source:ndr_exporter_matched_lines:increase30m"    # status lines read per source
ATTEMPT_OUTCOMES = "delivered|deferred|bounced|expired"
INC_DROP = "mta, provider, class, subject, meaning"


@dataclass(frozen=True)
class Rule:
    """One recording or alerting rule, with the comment written above it."""
    comment: str
    expr: str
    record: str = ""
    alert: str = ""
    for_: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


def fleet_rules(sel: str) -> list[Rule]:
    """Fleet-wide 5-minute rates without the instance label (for dashboards and federation)."""
    raw = f"rate(ndr_status_codes_total{{{sel}}}[5m])"
    attempts = f'sum without (outcome) (outcome:ndr_status_codes:rate5m{{outcome=~"{ATTEMPT_OUTCOMES}"}})'

    def share(outcome: str) -> str:
        return (f'(\n  sum without (outcome) (outcome:ndr_status_codes:rate5m{{outcome="{outcome}"}})\n'
                f"  or {attempts} * 0\n)\n/\n({attempts} > 0)")

    return [
        Rule("Per code and outcome; class, subject and meaning follow from the code.",
             f"sum without (instance, mta, provider) ({raw})", "code_outcome:ndr_status_codes:rate5m"),
        Rule("Per code, all outcomes together.",
             f"sum without (instance, mta, provider, outcome) ({raw})", "code:ndr_status_codes:rate5m"),
        Rule("Per class (success, transient, permanent).",
             f"sum without (instance, mta, provider, outcome, code, subject, meaning) ({raw})",
             "class:ndr_status_codes:rate5m"),
        Rule("Per class and subject (addressing, mailbox, mail_system, ...).",
             f"sum without (instance, mta, provider, outcome, code, meaning) ({raw})",
             "class_subject:ndr_status_codes:rate5m"),
        Rule("Per outcome (delivered, deferred, bounced, expired, rejected).",
             f"sum without (instance, mta, provider, code, class, subject, meaning) ({raw})",
             "outcome:ndr_status_codes:rate5m"),
        Rule("Per MTA software and outcome.",
             f"sum without (instance, provider, code, class, subject, meaning) ({raw})",
             "mta_outcome:ndr_status_codes:rate5m"),
        Rule("Per remote mailbox provider and outcome.",
             f"sum without (instance, mta, code, class, subject, meaning) ({raw})",
             "provider_outcome:ndr_status_codes:rate5m"),
        Rule("Share of delivery attempts that were deferred (0 when none were); absent without attempts.",
             share("deferred"), "job:ndr_status_codes_deferred:ratio_rate5m"),
        Rule("Share of delivery attempts that bounced (0 when none did); absent without attempts.",
             share("bounced"), "job:ndr_status_codes_bounced:ratio_rate5m"),
        Rule("The exporter's own work: log lines per result (matched, ignored, unparsed, oversized).",
             f"sum without (instance, source) (rate(ndr_exporter_lines_total{{{sel}}}[5m]))",
             "result:ndr_exporter_lines:rate5m"),
    ]


def share_of_attempts(increase: str) -> str:
    """Each outcome's share of the delivery attempts in a recorded per-code increase; absent without attempts."""
    att = f'{increase}{{outcome=~"{ATTEMPT_OUTCOMES}"}}'
    return (f"sum without (code) ({att})\n"
            f"  / ignoring (outcome) group_left ()\n"
            f"(sum without (code, outcome) ({att}) > 0)")


def window_rules(sel: str) -> list[Rule]:
    """The windows the alerts compare: now."""
    return [
        Rule("Status lines in the last 15 minutes per server, code and outcome.",
             f"sum without ({INC_DROP}) (increase(ndr_status_codes_total{{{sel}}}[15m]))", INC),
        Rule("The meaning of each code on each server (one, where a vendor gives a code two), for alert texts.",
             f"topk without (meaning) (1, group without (mta, provider, outcome, class, subject) "
             f"(ndr_status_codes_total{{{sel}}}))", MEANING),
        Rule("Delivery attempts (delivered, deferred, bounced, expired) in the last 15 minutes per server.",
             f'sum without (code, outcome) ({INC}{{outcome=~"{ATTEMPT_OUTCOMES}"}})', ATTEMPTS_INC),
        Rule("Each outcome's share of the delivery attempts in the last 15 minutes; absent without attempts.",
             share_of_attempts(INC), SHARE),
        Rule("Status lines read in the last 30 minutes per source.",
             f'sum without (result) (increase(ndr_exporter_lines_total{{{sel}, result="matched"}}[30m]))', LINES),
    ]


def larger(a: str, b: str) -> str:
    """The larger of two recorded series per label set, or whichever exists."""
    return f"{a} > {b}\nor {b}\nor {a}"


def baseline_rules(sel: str) -> list[Rule]:
    """The same windows a day and a week before, and their larger: the baselines of the alerts.

    Each day or week before reads the recorded series with `offset`; where that does not exist yet
    (the first day or week after these rules are loaded) it falls back to the raw counter, which
    Prometheus may hold for longer."""
    rules = []
    for ago, word in (("1d", "a day"), ("1w", "a week")):
        rules.append(Rule(
            f"The same 15 minutes {word} before: recorded, or from the raw counter while no recording is {ago} old.",
            f"{INC} offset {ago}\nor\nsum without ({INC_DROP}) (increase(ndr_status_codes_total{{{sel}}}[15m] offset {ago}))",
            f"{INC}_{ago}"))
    rules.append(Rule("The baseline of the surge alerts: the larger of a day and a week before, 0 where neither exists.",
                      larger(f"{INC}_1d", f"{INC}_1w") + f"\nor {INC} * 0", f"{INC}_baseline"))
    for ago, word in (("1d", "a day"), ("1w", "a week")):
        rules.append(Rule(f"Each outcome's share of the delivery attempts in the same 15 minutes {word} before.",
                          share_of_attempts(f"{INC}_{ago}"), f"{SHARE}_{ago}"))
    rules.append(Rule("The baseline of the ratio alerts: the larger share of a day and a week before, 0 where neither exists.",
                      larger(f"{SHARE}_1d", f"{SHARE}_1w") + f"\nor {SHARE} * 0", f"{SHARE}_baseline"))
    for ago, word in (("1d", "a day"), ("1w", "a week")):
        rules.append(Rule(
            f"Status lines read in the same 30 minutes {word} before: recorded, or from the raw counter.",
            f"{LINES} offset {ago}\nor\nsum without (result) "
            f'(increase(ndr_exporter_lines_total{{{sel}, result="matched"}}[30m] offset {ago}))',
            f"{LINES}_{ago}"))
    rules.append(Rule("The baseline of NdrLogQuiet: the larger of a day and a week before (absent where neither exists).",
                      larger(f"{LINES}_1d", f"{LINES}_1w"), f"{LINES}_baseline"))
    return rules


# --- the alerts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """One alert of the table: its kind decides its expression and the thresholds it takes."""
    name: str
    kind: str                   # code_surge, ratio, log_quiet, log_stale, exporter_down, exporter_absent,
                                # counts_folded, checkpoint_failing
    summary: str
    comment: str
    codes: tuple[str, ...] = ()  # code_surge: label matchers over the recorded increases, or-ed
    outcome: str = ""            # ratio: the outcome whose share counts
    subject: str = ""            # code_surge and ratio: the words of the description

    @property
    def thresholds(self) -> tuple[str, ...]:
        return {"code_surge": ("floor", "multiple"), "ratio": ("ratio", "attempts", "multiple"),
                "log_quiet": ("baseline_floor",), "log_stale": ("age_seconds",)}.get(self.kind, ())

    @property
    def about_a_code(self) -> bool:
        """An alert per code (it carries a code label): Grafana links it to the code drill-down."""
        return self.kind == "code_surge"


ALERTS: tuple[Alert, ...] = (
    Alert("NdrQueueExpirySurge", "code_surge",
          "Messages expiring in the queue on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "4.4.7: messages that stayed queued past the queue lifetime and were returned.",
          codes=('code="4.4.7"',)),
    Alert("NdrMailLoop", "code_surge",
          "Mail loop on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "Loops: 5.4.6 routing loop, 5.4.8 (Exchange) message sent to itself, 4.4.6 too many hops, "
          "5.4.14 (Microsoft) hop count exceeded.",
          codes=('code=~"5[.]4[.]6|5[.]4[.]8|4[.]4[.]6|5[.]4[.]14"',)),
    Alert("NdrRelayDenied", "code_surge",
          "Relay or delivery denials on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "5.7.1: delivery not authorized, relay denied (sent or received).",
          codes=('code="5.7.1"',)),
    Alert("NdrPolicyDenialSurge", "code_surge",
          "Policy denials on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "The rest of the 5.7.x security and policy family: everything but 5.7.1 (NdrRelayDenied), "
          "5.7.8 and 5.7.0 rejected here (NdrAuthFailureSurge).",
          codes=('code=~"5[.]7[.][0-9]+", code!~"5[.]7[.][018]"', 'code="5.7.0", outcome!="rejected"')),
    Alert("NdrAuthFailureSurge", "code_surge",
          "Authentication failures on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "Authentication failures: 5.7.8 (credentials invalid, any outcome) and 5.7.0 refused while "
          "receiving (on a submission service, a failed or missing SMTP AUTH).",
          codes=('code="5.7.8"', 'code="5.7.0", outcome="rejected"')),
    Alert("NdrMailSystemFull", "code_surge",
          "Mail system full on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "Storage: 4.3.1 and 5.3.3, the mail system (queue or spool disk) is full.",
          codes=('code=~"4[.]3[.]1|5[.]3[.]3"',)),
    Alert("NdrMailboxFullSurge", "code_surge",
          "Mailboxes full on {{ $labels.instance }} (code {{ $labels.code }}: {{ $labels.meaning }})",
          "Storage: 4.2.2 and 5.2.2, mailboxes over quota.",
          codes=('code=~"4[.]2[.]2|5[.]2[.]2"',)),
    Alert("NdrDeferralRatioHigh", "ratio", "High deferral ratio on {{ $labels.instance }}",
          "Share of delivery attempts (delivered, deferred, bounced, expired) that were deferred.",
          outcome="deferred", subject="were deferred"),
    Alert("NdrBounceRatioHigh", "ratio", "High bounce ratio on {{ $labels.instance }}",
          "Share of delivery attempts that bounced.", outcome="bounced", subject="bounced"),
    Alert("NdrLogQuiet", "log_quiet", "Log {{ $labels.source }} went quiet on {{ $labels.instance }}",
          "No status line read from a source for 30m, though the same 30m a day or a week before had some. "
          "Counts lines, so it does not depend on the log's clock or time zone."),
    Alert("NdrLogStale", "log_stale",
          "No status event from {{ $labels.source }} on {{ $labels.instance }} for over a day",
          "The newest status event a source logged is too old (by the log's own timestamps)."),
    Alert("NdrExporterDown", "exporter_down", "ndr-exporter on {{ $labels.instance }} is down",
          "The scrape of ndr-exporter fails."),
    Alert("NdrExporterAbsent", "exporter_absent", "No ndr-exporter target is scraped",
          "No ndr-exporter target at all (service discovery lost it, or the job was renamed)."),
    Alert("NdrCountsFolded", "counts_folded",
          "ndr-exporter on {{ $labels.instance }} folds status counts into overflow",
          "Events counted under code=\"overflow\" in the last hour: a new code past the code cap, or a new "
          "series past the series cap. Their totals stay right, but not which code they had."),
    Alert("NdrCheckpointFailing", "checkpoint_failing",
          "ndr-exporter on {{ $labels.instance }} cannot write its checkpoint",
          "Checkpoint writes failed in the last 15 minutes and none succeeded: the counts go on, but a "
          "restart would count again what was read since the last checkpoint."),
)

DURATION_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}


def in_words(duration: str) -> str:
    """10m -> 10 minutes, 1h30m -> 1 hour 30 minutes."""
    parts = re.findall(r"(\d+)([smhdw])", duration)
    return " ".join(f"{n} {DURATION_WORDS[u]}{'' if n == '1' else 's'}" for n, u in parts)


def times(multiple: float) -> str:
    return "twice" if multiple == 2 else f"{multiple:g} times"


def alert_expr(alert: Alert, p: dict[str, Any], sel: str) -> str:
    """The alert's PromQL, over the recorded series (the raw metrics only where none is recorded)."""
    if alert.kind == "code_surge":
        def over(name: str) -> str:
            return "sum without (outcome) (" + " or ".join(f"{name}{{{m}}}" for m in alert.codes) + ")"
        return (f"(\n  {over(INC)}\n    > {p['multiple']:g} * {over(INC + '_baseline')}\n    >= {p['floor']:g}\n)\n"
                f"* ignoring (meaning) group_left (meaning) {MEANING}")
    if alert.kind == "ratio":
        return (f'sum without (outcome) (\n  {SHARE}{{outcome="{alert.outcome}"}}\n'
                f"    > {p['multiple']:g} * {SHARE}_baseline\n    >= {p['ratio']:g}\n)\n"
                f"and {ATTEMPTS_INC} >= {p['attempts']:g}")
    if alert.kind == "log_quiet":
        return f"{LINES} == 0\nand {LINES}_baseline >= {p['baseline_floor']:g}"
    if alert.kind == "log_stale":
        return f"time() - ndr_exporter_last_event_timestamp_seconds{{{sel}}} > {p['age_seconds']:g}"
    if alert.kind == "exporter_down":
        return f"up{{{sel}}} == 0"
    if alert.kind == "exporter_absent":
        return f"absent(up{{{sel}}})"
    if alert.kind == "counts_folded":
        return (f"increase(ndr_exporter_codes_folded_total{{{sel}}}[1h])\n"
                f"+ increase(ndr_exporter_series_folded_total{{{sel}}}[1h]) > 0")
    if alert.kind == "checkpoint_failing":
        return (f"increase(ndr_exporter_checkpoint_failures_total{{{sel}}}[15m]) > 0\n"
                f"unless time() - ndr_exporter_checkpoint_last_success_timestamp_seconds{{{sel}}} < 900")
    raise ValueError(f"{alert.name}: unknown kind {alert.kind}")


def alert_description(alert: Alert, p: dict[str, Any], sel: str) -> str:
    if alert.kind == "code_surge":
        return ("{{ $value | humanize }} status lines with code {{ $labels.code }} ({{ $labels.meaning }}) on "
                f"{{{{ $labels.instance }}}} in the last 15 minutes: at least {p['floor']:g} and more than "
                f"{times(p['multiple'])} the same 15 minutes a day or a week before.")
    if alert.kind == "ratio":
        return (f"{{{{ $value | humanizePercentage }}}} of the delivery attempts on {{{{ $labels.instance }}}} in the "
                f"last 15 minutes {alert.subject}: at least {p['ratio'] * 100:g}% and more than "
                f"{times(p['multiple'])} the share in the same 15 minutes a day or a week before.")
    if alert.kind == "log_quiet":
        return ("No status lines were read from {{ $labels.source }} on {{ $labels.instance }} in the last 30 "
                f"minutes, though the same 30 minutes a day or a week before had at least {p['baseline_floor']:g}.")
    if alert.kind == "log_stale":
        return ("The newest status event read from {{ $labels.source }} on {{ $labels.instance }} is "
                "{{ $value | humanizeDuration }} old.")
    if alert.kind == "exporter_down":
        return ("Prometheus has failed to scrape ndr-exporter on {{ $labels.instance }} for "
                f"{in_words(p['for'])}; its status-code counts are not being recorded.")
    if alert.kind == "exporter_absent":
        return f"Prometheus has had no target matching {{{sel}}} for {in_words(p['for'])}."
    if alert.kind == "counts_folded":
        return ("{{ $value | humanize }} status events on {{ $labels.instance }} in the last hour were counted "
                "under code=\"overflow\": past the code cap (--metrics.code-cap) or the series cap "
                "(--metrics.series-cap). Their totals are right, but not their codes.")
    if alert.kind == "checkpoint_failing":
        return ("Writing the checkpoint (state file) of ndr-exporter on {{ $labels.instance }} failed in the last "
                "15 minutes, with no success since: a restart would count again what was read since the last "
                "checkpoint written.")
    raise ValueError(f"{alert.name}: unknown kind {alert.kind}")


def runbook_anchor(name: str) -> str:
    """The anchor of an alert's section in docs/runbooks.md (a heading that is the alert's name)."""
    return name.lower()


def alert_rules(params: Params) -> list[Rule]:
    rules = []
    for alert in ALERTS:
        p = params.of(alert.name)
        numbers = ", ".join(f"{k} {p[k]}" for k in alert.thresholds)
        rules.append(Rule(
            alert.comment + (f" Parameters: {numbers}; for {p['for']}." if numbers else f" For {p['for']}."),
            alert_expr(alert, p, params.selector), alert=alert.name, for_=str(p["for"]),
            labels={"severity": p["severity"]},
            annotations={"summary": alert.summary, "description": alert_description(alert, p, params.selector),
                         "runbook_url": f"{params.runbook_base_url}#{runbook_anchor(alert.name)}"}))
    return rules


# --- rule files -----------------------------------------------------------------------------

GENERATED = "# Generated by dashboards/build.py from dashboards/params.yml: edit those, not this file.\n"


def quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text, ensure_ascii=False)


def rule_yaml(rule: Rule) -> str:
    lines = [f"      # {line}" for line in textwrap.wrap(rule.comment, 96)]
    if rule.record:
        lines.append(f"      - record: {rule.record}")
    else:
        lines.append(f"      - alert: {rule.alert}")
    lines.append("        expr: |")
    lines += [f"          {line}" for line in rule.expr.splitlines()]
    if rule.alert:
        lines.append(f"        for: {rule.for_}")
        lines.append("        labels:")
        lines += [f"          {k}: {v}" for k, v in (rule.labels or {}).items()]
        lines.append("        annotations:")
        lines += [f"          {k}: {quoted(v)}" for k, v in (rule.annotations or {}).items()]
    return "\n".join(lines) + "\n"


def rule_file(header: str, groups: list[tuple[str, list[Rule]]]) -> str:
    text = GENERATED + "".join(f"# {line}\n" if line else "#\n" for line in header.strip("\n").split("\n"))
    text += "groups:\n"
    text += "\n".join(f"  - name: {name}\n    rules:\n" + "\n".join(rule_yaml(r) for r in rules)
                      for name, rules in groups)
    return text


RECORDING_HEADER = """\
Recording rules for ndr-exporter. Load into every Prometheus that scrapes ndr-exporter (or the
Thanos / Mimir ruler), together with ndr-baselines.yml and ndr-alerts.yml.

ndr-exporter.recording: fleet-wide 5-minute rates without the instance label (dashboards,
federation). ndr-exporter.windows: the windows the alerts look at now, per server: status lines
in 15 minutes per code and outcome, delivery attempts and each outcome's share of them, status
lines read per source in 30 minutes. Delivery attempts are the outcomes delivered, deferred,
bounced and expired; `rejected` (refused while receiving) is inbound traffic and is left out."""

BASELINES_HEADER = """\
The baselines of the ndr-exporter alerts: the windows of ndr-recording.yml a day and a week
before, and the larger of the two. A busy server does not page on its ordinary volume, nor a
server whose peaks come on the same hour each day or each week.

Each reads the recorded series with `offset`. In the first day (or week) after the rules are
loaded no recording is that old: it then falls back to the raw counter, which Prometheus may hold
for longer. Where neither exists (a new server, a code never seen before) the baseline of the
surge and ratio alerts is 0, and only their floor applies."""

ALERTS_HEADER = """\
Alerting rules for ndr-exporter: each a short expression over the series of ndr-recording.yml and
ndr-baselines.yml (load all three). Every threshold, severity and `for` comes from
dashboards/params.yml; docs/runbooks.md has a section per alert (its runbook_url).
A surge alert fires where the status lines of its codes in 15 minutes reach a floor AND exceed a
multiple of the baseline; the baseline of a code seen with several outcomes is the sum of each
outcome's baseline. The series keep job, instance and the code; the meaning is joined from the
exporter's labels so that the texts can say what the code means."""


def prometheus_rule_files(params: Params) -> dict[Path, str]:
    sel = params.selector
    return {
        RECORDING_PATH: rule_file(RECORDING_HEADER, [("ndr-exporter.recording", fleet_rules(sel)),
                                                     ("ndr-exporter.windows", window_rules(sel))]),
        BASELINES_PATH: rule_file(BASELINES_HEADER, [("ndr-exporter.baselines", baseline_rules(sel))]),
        ALERT_RULES_PATH: rule_file(ALERTS_HEADER, [("ndr-exporter.alerts", alert_rules(params))]),
    }


# --- Grafana-managed alert rules ----------------------------------------------------------

def grafana_template(text: str) -> str:
    """Prometheus annotation templates in Grafana's dialect: $value becomes the reduced query value."""
    text = re.sub(r"\{\{ \$value \| (\w+) \}\}", r"{{ \1 $values.B.Value }}", text)
    return text.replace("{{ $value }}", "{{ $values.B.Value }}")


def rule_uid(name: str) -> str:
    """NdrQueueExpirySurge -> ndr-queue-expiry-surge (Grafana uids: at most 40 characters)."""
    uid = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    assert len(uid) <= 40, uid
    return uid


def grafana_alerts(params: Params) -> dict[str, Any]:
    """The alerts as Grafana-managed rules: the same PromQL against the provisioned data source
    (whose Prometheus must load ndr-recording.yml and ndr-baselines.yml, which the PromQL reads)."""
    by_name = {a.name: a for a in ALERTS}
    rules = []
    for rule in alert_rules(params):
        alert = by_name[rule.alert]
        rules.append({
            "uid": rule_uid(rule.alert),
            "title": rule.alert,
            "condition": "C",
            "data": [
                # A: the alert's PromQL; it returns a series only while the condition holds
                {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": DATASOURCE_UID,
                 "model": {"refId": "A", "expr": rule.expr.strip(), "instant": True, "range": False,
                           "intervalMs": 60000, "maxDataPoints": 43200,
                           "datasource": {"type": "prometheus", "uid": DATASOURCE_UID}}},
                # B: one number per series
                {"refId": "B", "datasourceUid": "__expr__",
                 "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                           "settings": {"mode": "dropNN"}, "datasource": {"type": "__expr__", "uid": "__expr__"}}},
                # C: every returned series fires (all values are >= 0; the threshold is in A)
                {"refId": "C", "datasourceUid": "__expr__",
                 "model": {"refId": "C", "type": "math", "expression": "$B >= 0",
                           "datasource": {"type": "__expr__", "uid": "__expr__"}}},
            ],
            "noDataState": "OK",
            "execErrState": "Error",
            "for": rule.for_,
            "labels": dict(rule.labels or {}),
            "annotations": {k: grafana_template(v) for k, v in (rule.annotations or {}).items()}
            | {"__dashboardUid__": DRILLDOWN_UID if alert.about_a_code else OVERVIEW_UID},
            "isPaused": False,
        })
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": "ndr-exporter.alerts", "folder": ALERT_FOLDER,
                                         "interval": ALERT_INTERVAL, "rules": rules}]}


# --- output -------------------------------------------------------------------------------

def rendered(params: Params | None = None) -> dict[Path, str]:
    """Every generated file and its content."""
    params = params or load_params()
    return {
        **prometheus_rule_files(params),
        OVERVIEW_PATH: json.dumps(overview(params), indent=2) + "\n",
        DRILLDOWN_PATH: json.dumps(drilldown(params), indent=2) + "\n",
        # JSON, which Grafana's alerting provisioning reads as well as YAML: a YAML file with a
        # top-level "groups:" looks like a Prometheus rule file to tools that check those.
        GRAFANA_ALERTS_PATH: json.dumps(grafana_alerts(params), indent=2) + "\n",
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    params_path = Path(argv[argv.index("--params") + 1]) if "--params" in argv[:-1] else PARAMS_PATH
    try:
        files = rendered(load_params(params_path))
    except ParamsError as err:
        print(f"dashboards/build.py: {err}", file=sys.stderr)
        return 2
    stale = []
    for path, text in files.items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if check and stale:
        print("out of date (run python3 dashboards/build.py):", *[str(p) for p in stale], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
