#!/usr/bin/env python3
"""Write the Grafana dashboards and the Grafana-managed alert rules of ndr-exporter.

    python3 dashboards/build.py          # rewrite the generated files
    python3 dashboards/build.py --check  # exit 1 if a generated file is out of date

Generated (do not edit by hand; edit this script or the Prometheus rules and run it again):
  dashboards/overview.json                                   the overview dashboard
  dashboards/code-drilldown.json                             one status code in detail
  dashboards/grafana/provisioning/alerting/ndr-alerts.json   the alerts of rules/ndr-alerts.yml
                                                             as Grafana-managed alert rules

The Prometheus rule files in dashboards/rules/ are the source of truth for the alerts: each
Grafana rule runs the same PromQL, with the same `for`, labels and annotations, against the
Prometheus data source whose uid is DATASOURCE_UID (set by the provisioned data source in
grafana/provisioning/datasources/ndr-prometheus.yml).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OVERVIEW_PATH = HERE / "overview.json"
DRILLDOWN_PATH = HERE / "code-drilldown.json"
ALERT_RULES_PATH = HERE / "rules" / "ndr-alerts.yml"
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

def overview() -> dict[str, Any]:
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
        query_variable("job", "Job", "label_values(ndr_exporter_build_info, job)", match_all=False),
        query_variable("instance", "Instance", 'label_values(ndr_exporter_build_info{job=~"$job"}, instance)',
                       match_all=False),
        query_variable("mta", "MTA", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance"}, mta)'),
        query_variable("class", "Class", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance", '
                                         'mta=~"$mta"}, class)'),
        query_variable("code", "Code", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance", '
                                       'mta=~"$mta", class=~"$class"}, code)'),
    ]
    links = [{"title": "Code drill-down", "type": "link", "url": f"/d/{DRILLDOWN_UID}/ndr-code-drill-down",
              "icon": "dashboard", "keepTime": True, "includeVars": False, "targetBlank": False,
              "tooltip": "One status code in detail", "asDropdown": False, "tags": []}]
    return dashboard(OVERVIEW_UID, "NDR exporter / Overview",
                     "SMTP status codes found in mail-server logs by ndr-exporter: outcomes, codes and what they "
                     "mean, breakdowns, and the exporter's own health.", variables, b, links)


# --- the code drill-down ------------------------------------------------------------------

def drilldown() -> dict[str, Any]:
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
        query_variable("job", "Job", "label_values(ndr_exporter_build_info, job)", match_all=False),
        query_variable("instance", "Instance", 'label_values(ndr_exporter_build_info{job=~"$job"}, instance)',
                       match_all=False),
        query_variable("code", "Code", 'label_values(ndr_status_codes_total{job=~"$job", instance=~"$instance"}, code)',
                       multi=False),
    ]
    links = [{"title": "Overview", "type": "link", "url": f"/d/{OVERVIEW_UID}/ndr-exporter-overview",
              "icon": "dashboard", "keepTime": True, "includeVars": False, "targetBlank": False,
              "tooltip": "All codes", "asDropdown": False, "tags": []}]
    return dashboard(DRILLDOWN_UID, "NDR exporter / Code drill-down",
                     "One SMTP status code: its meaning, class and subject, where it comes from, and its alerts.",
                     variables, b, links)


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


def grafana_alerts() -> dict[str, Any]:
    source = yaml.safe_load(ALERT_RULES_PATH.read_text())
    groups = []
    for group in source["groups"]:
        rules = []
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            rules.append({
                "uid": rule_uid(rule["alert"]),
                "title": rule["alert"],
                "condition": "C",
                "data": [
                    # A: the alert's PromQL; it returns a series only while the condition holds
                    {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": DATASOURCE_UID,
                     "model": {"refId": "A", "expr": rule["expr"].strip(), "instant": True, "range": False,
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
                "for": rule["for"],
                "labels": dict(rule.get("labels", {})),
                "annotations": {k: grafana_template(v) for k, v in rule["annotations"].items()}
                | {"__dashboardUid__": DRILLDOWN_UID if "code" in rule["expr"] else OVERVIEW_UID},
                "isPaused": False,
            })
        groups.append({"orgId": 1, "name": group["name"], "folder": ALERT_FOLDER, "interval": ALERT_INTERVAL,
                       "rules": rules})
    return {"apiVersion": 1, "groups": groups}


# --- output -------------------------------------------------------------------------------

def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    return {
        OVERVIEW_PATH: json.dumps(overview(), indent=2) + "\n",
        DRILLDOWN_PATH: json.dumps(drilldown(), indent=2) + "\n",
        # JSON, which Grafana's alerting provisioning reads as well as YAML: a YAML file with a
        # top-level "groups:" looks like a Prometheus rule file to tools that check those.
        GRAFANA_ALERTS_PATH: json.dumps(grafana_alerts(), indent=2) + "\n",
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in rendered().items():
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
