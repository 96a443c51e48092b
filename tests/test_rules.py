"""The Prometheus rule files in dashboards/rules: checked and unit-tested with the real promtool.

- every rule file passes `promtool check rules`, with as many rules as the YAML holds;
- every promtool unit-test file in dashboards/rules/tests passes `promtool test rules`;
- the unit tests cover every alert: each fires on its surge and resolves within one test
  group, stays silent in a group where it never fires (its baseline), and, when it compares
  against a day or week before, stays silent on a steady high volume after the first day;
- the unit tests fail when a rule is broken (a missing baseline, a wrong floor, no raw fallback);
- every alert is short (at most 600 characters) and reads recorded series, has the standard
  annotations, and a runbook_url whose anchor is a section of docs/runbooks.md;
- dashboards/params.yml is the one place of each number: changing it changes the rules, and a
  bad field is refused naming it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_dashboards import build

REPO = Path(__file__).resolve().parents[1]
RULES_DIR = REPO / "dashboards" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
UNIT_TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """A Prometheus duration such as 1d1h30m, in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


def alerting_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_rule_files_exist():
    assert [p.name for p in RULE_FILES] == ["ndr-alerts.yml", "ndr-baselines.yml", "ndr-recording.yml"]
    assert len(UNIT_TEST_FILES) >= 11


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path):
    expected = sum(len(g["rules"]) for g in yaml.safe_load(path.read_text())["groups"])
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {expected} rules found" in result.stdout


@pytest.mark.parametrize("path", UNIT_TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path):
    result = subprocess.run([PROMTOOL, "test", "rules", path.name], cwd=path.parent,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_every_alert_has_labels_and_annotations():
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert all(text.strip() for text in rule["annotations"].values()), name


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text (lower case, spaces to dashes)."""
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.+?)\s*$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_runbook_url_is_a_section_of_the_runbooks():
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    anchors = github_anchors(runbooks)
    params = yaml.safe_load((REPO / "dashboards" / "params.yml").read_text())
    for rule in alerting_rules():
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base == params["runbook_base_url"] and base.endswith("docs/runbooks.md"), url
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in docs/runbooks.md"
    # one section per alert, each saying what it means, how to confirm, and what to do on each MTA
    sections = re.split(r"^## ", runbooks, flags=re.M)[1:]
    by_name = {s.split("\n", 1)[0].strip(): s for s in sections}
    for rule in alerting_rules():
        section = by_name[rule["alert"]]
        for heading in ("What it means", "How to confirm", "Postfix", "Exim", "Exchange"):
            assert re.search(rf"^### {heading}\s*$", section, flags=re.M), f"{rule['alert']}: no {heading!r}"


def test_github_anchors():
    assert github_anchors("# Runbooks\n## NdrMailLoop\n### How to confirm\n") == \
        {"runbooks", "ndrmailloop", "how-to-confirm"}


def test_alerts_are_short_and_read_recorded_series():
    recorded = {r["record"] for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]
                for r in g["rules"] if "record" in r}
    for rule in alerting_rules():
        assert len(rule["expr"]) <= 600, f"{rule['alert']}: {len(rule['expr'])} characters"
        assert "offset" not in rule["expr"], rule["alert"]
        if "ndr_status_codes" in rule["expr"] or "ndr_exporter_lines" in rule["expr"]:
            names = set(re.findall(r"\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b", rule["expr"]))
            assert names and names <= recorded, rule["alert"]
            assert "ndr_status_codes_total" not in rule["expr"] and "ndr_exporter_lines_total" not in rule["expr"]


def _expectations() -> dict[str, list[tuple[str, str, float, bool]]]:
    """alert name -> [(test file, group name, eval time in s, fires?)] over all unit tests."""
    found: dict[str, list[tuple[str, str, float, bool]]] = {}
    for path in UNIT_TEST_FILES:
        for group in yaml.safe_load(path.read_text()).get("tests", []):
            for case in group.get("alert_rule_test", []):
                found.setdefault(case["alertname"], []).append(
                    (path.name, group["name"], seconds(case["eval_time"]), bool(case.get("exp_alerts"))))
    return found


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: r["alert"])
def test_unit_tests_cover_the_alert(rule: dict):
    name = rule["alert"]
    cases = _expectations().get(name, [])
    groups: dict[tuple[str, str], list[tuple[float, bool]]] = {}
    for file, group, at, fires in cases:
        groups.setdefault((file, group), []).append((at, fires))

    # fires on its surge, then resolves: in one group, a firing expectation followed by a silent one
    assert any(any(f1 and not f2 and t2 > t1 for t1, f1 in cs for t2, f2 in cs) for cs in groups.values()), \
        f"{name}: no test group where it fires and later resolves"
    # stays silent on its baseline: a group where it is expected never to fire
    assert any(not any(f for _, f in cs) for cs in groups.values()), f"{name}: no group where it stays silent"
    # compared with a day or week before: silent on a steady high volume once the baseline exists
    if "_baseline" in rule["expr"]:
        assert any("steady" in group and any(t > 86400 and not f for t, f in cs)
                   for (_, group), cs in groups.items()), f"{name}: no steady-high-volume group after a day"


def _run_mutated(tmp_path: Path, file: str, old: str, new: str, test_file: str, count: int = 1) -> str:
    """Run one unit-test file against a copy of the rule files where `file` has `old` -> `new`."""
    (tmp_path / "rules" / "tests").mkdir(parents=True)
    for path in RULE_FILES:
        shutil.copy(path, tmp_path / "rules")
    text = (RULES_DIR / file).read_text()
    assert text.count(old) == count, old
    (tmp_path / "rules" / file).write_text(text.replace(old, new))
    shutil.copy(RULES_DIR / "tests" / test_file, tmp_path / "rules" / "tests")
    result = subprocess.run([PROMTOOL, "test", "rules", test_file], cwd=tmp_path / "rules" / "tests",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, "the unit tests pass with a broken rule"
    return result.stdout + result.stderr


def test_unit_tests_catch_a_missing_baseline(tmp_path: Path):
    # without the multiple of the baseline, a steady high volume fires
    out = _run_mutated(tmp_path, "ndr-alerts.yml", "> 3 * sum without (outcome) "
                       "(instance_code_outcome:ndr_status_codes:increase15m_baseline{code=\"4.4.7\"})",
                       "> 0 * sum without (outcome) (instance_code_outcome:ndr_status_codes:increase15m_baseline"
                       "{code=\"4.4.7\"})", "expiry_test.yml")
    assert "name: steady high volume stays silent" in out
    assert "name: quiet server, surge fires after its for and resolves" not in out


def test_unit_tests_catch_a_wrong_floor(tmp_path: Path):
    # with a floor nobody reaches, the surges no longer fire
    block = "{code=\"4.4.7\"})\n              >= 10\n"
    out = _run_mutated(tmp_path, "ndr-alerts.yml", block, block.replace(">= 10", ">= 1000"), "expiry_test.yml")
    assert "name: quiet server, surge fires after its for and resolves" in out
    assert "name: busy server fires at four times its baseline, not at twice" in out


@pytest.mark.parametrize("test_file", ["fallback_test.yml", "fallback_week_test.yml"])
def test_unit_tests_catch_a_missing_raw_fallback(tmp_path: Path, test_file: str):
    # the baselines without their fallback to the raw counters: in the first day and week after the
    # rules are loaded a steady volume fires, a weekly peak fires, and a quiet log stays silent
    text = (RULES_DIR / "ndr-baselines.yml").read_text()
    fallbacks = re.findall(r"\n\s*or\n\s*sum without \([^\n]*offset 1[dw]\)\)", text)
    assert len(fallbacks) == 4
    (tmp_path / "rules" / "tests").mkdir(parents=True)
    for path in RULE_FILES:
        shutil.copy(path, tmp_path / "rules")
    for fallback in fallbacks:
        text = text.replace(fallback, "")
    (tmp_path / "rules" / "ndr-baselines.yml").write_text(text)
    shutil.copy(RULES_DIR / "tests" / test_file, tmp_path / "rules" / "tests")
    result = subprocess.run([PROMTOOL, "test", "rules", test_file], cwd=tmp_path / "rules" / "tests",
                            capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode != 0, "the fallback tests pass without the fallback"
    if test_file == "fallback_test.yml":
        assert "steady high volume stays silent and a surge fires,\n    alertname: NdrQueueExpirySurge, time: 1d20m" in out
        assert "a log that stops fires and resolves,\n    alertname: NdrLogQuiet, time: 1d45m" in out
    else:
        assert "the raw week before covers a weekly peak,\n    alertname: NdrQueueExpirySurge, time: 7d30m" in out
        assert "without the raw peak a week before the same hour fires" not in out


# --- the parameter file ----------------------------------------------------------------------

def _params(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load((REPO / "dashboards" / "params.yml").read_text())
    change(doc)
    path = tmp_path / "params.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_params_change_every_rule_and_dashboard(tmp_path: Path):
    def tune(doc):
        doc["selector"] = 'job="mail", env="prod"'
        doc["runbook_base_url"] = "https://wiki.example.net/ndr/runbooks.md"
        doc["alerts"]["NdrQueueExpirySurge"].update({"floor": 25, "multiple": 4, "for": "20m", "severity": "critical"})
        doc["alerts"]["NdrBounceRatioHigh"]["ratio"] = 0.15
    files = build.rendered(build.load_params(_params(tmp_path, tune)))
    alerts = yaml.safe_load(files[build.ALERT_RULES_PATH])["groups"][0]["rules"]
    expiry = next(r for r in alerts if r["alert"] == "NdrQueueExpirySurge")
    assert ">= 25\n" in expiry["expr"] and "> 4 * sum" in expiry["expr"]
    assert expiry["for"] == "20m" and expiry["labels"] == {"severity": "critical"}
    assert "at least 25 and more than 4 times" in expiry["annotations"]["description"]
    assert expiry["annotations"]["runbook_url"] == "https://wiki.example.net/ndr/runbooks.md#ndrqueueexpirysurge"
    bounce = next(r for r in alerts if r["alert"] == "NdrBounceRatioHigh")
    assert ">= 0.15\n" in bounce["expr"] and "at least 15% and more" in bounce["annotations"]["description"]
    down = next(r for r in alerts if r["alert"] == "NdrExporterDown")
    assert down["expr"].strip() == 'up{job="mail", env="prod"} == 0'
    # every raw read, in every rule file and both dashboards' job variables, goes through the selector
    for path in (build.RECORDING_PATH, build.BASELINES_PATH, build.ALERT_RULES_PATH):
        for raw in re.findall(r"\b(?:ndr_status_codes_total|ndr_exporter_\w+|up)\{[^}]*\}", files[path]):
            assert raw.split("{")[1].startswith('job="mail", env="prod"'), raw
        assert 'job="ndr-exporter"' not in files[path]
    for path in (build.OVERVIEW_PATH, build.DRILLDOWN_PATH):
        variables = {v["name"]: v for v in json.loads(files[path])["templating"]["list"]}
        assert variables["job"]["query"]["query"] == 'label_values(ndr_exporter_build_info{job="mail", env="prod"}, job)'
    grafana = json.loads(files[build.GRAFANA_ALERTS_PATH])
    (rule,) = [r for g in grafana["groups"] for r in g["rules"] if r["title"] == "NdrQueueExpirySurge"]
    assert rule["for"] == "20m" and rule["labels"] == {"severity": "critical"}
    # the tuned rules are valid Prometheus rules
    for path in (build.RECORDING_PATH, build.BASELINES_PATH, build.ALERT_RULES_PATH):
        out = tmp_path / path.name
        out.write_text(files[path])
        result = subprocess.run([PROMTOOL, "check", "rules", str(out)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("selector"), "params.yml: selector: missing"),
    (lambda d: d.update(selector='{job="x"}'), "params.yml: selector: label matchers without braces"),
    (lambda d: d["alerts"].pop("NdrMailLoop"), "params.yml: alerts: missing ['NdrMailLoop'], unknown []"),
    (lambda d: d["alerts"]["NdrMailLoop"].update(severity="page"), "alerts.NdrMailLoop.severity: one of warning, critical"),
    (lambda d: d["alerts"]["NdrMailLoop"].update({"for": "ten minutes"}), "alerts.NdrMailLoop.for: a duration"),
    (lambda d: d["alerts"]["NdrMailLoop"].update(floor=-1), "alerts.NdrMailLoop.floor: a positive number"),
    (lambda d: d["alerts"]["NdrMailLoop"].pop("floor"), "alerts.NdrMailLoop: wants exactly"),
])
def test_bad_params_are_refused_naming_the_field(tmp_path: Path, change, message: str):
    with pytest.raises(build.ParamsError) as err:
        build.load_params(_params(tmp_path, change))
    assert message in str(err.value)


def test_build_exits_2_on_bad_params(tmp_path: Path):
    path = _params(tmp_path, lambda d: d["alerts"]["NdrLogStale"].update(age_seconds="a day"))
    result = subprocess.run([sys.executable, str(REPO / "dashboards" / "build.py"), "--check", "--params", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "dashboards/build.py: params.yml: alerts.NdrLogStale.age_seconds: a positive number\n"


def test_build_exits_2_on_a_missing_params_file(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO / "dashboards" / "build.py"), "--params",
                             str(tmp_path / "none.yml")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"dashboards/build.py: {tmp_path / 'none.yml'}: cannot read it: ")
