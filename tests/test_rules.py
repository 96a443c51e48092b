"""The Prometheus rule files in dashboards/rules: checked and unit-tested with the real promtool.

- every rule file passes `promtool check rules`, with as many rules as the YAML holds;
- every promtool unit-test file in dashboards/rules/tests passes `promtool test rules`;
- the unit tests cover every alert: each fires on its surge and resolves within one test
  group, stays silent in a group where it never fires (its baseline), and, when it compares
  against a day or week before, stays silent on a steady high volume after the first day.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
    assert [p.name for p in RULE_FILES] == ["ndr-alerts.yml", "ndr-recording.yml"]
    assert len(UNIT_TEST_FILES) >= 7


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
        assert set(rule["annotations"]) == {"summary", "description", "hint"}, name
        assert all(text.strip() for text in rule["annotations"].values()), name


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
    if "offset" in rule["expr"]:
        assert any("steady" in group and any(t > 86400 and not f for t, f in cs)
                   for (_, group), cs in groups.items()), f"{name}: no steady-high-volume group after a day"


def _run_with_mutated_expiry_rule(tmp_path: Path, old: str, new: str) -> str:
    """Run tests/expiry_test.yml against a copy of the alerts whose NdrQueueExpirySurge has `old` -> `new`."""
    text = (RULES_DIR / "ndr-alerts.yml").read_text()
    start = text.index("- alert: NdrQueueExpirySurge")
    end = text.index("- alert:", start + 1)
    block = text[start:end]
    assert block.count(old) == 1, old
    (tmp_path / "rules" / "tests").mkdir(parents=True)
    (tmp_path / "rules" / "ndr-alerts.yml").write_text(text[:start] + block.replace(old, new) + text[end:])
    shutil.copy(RULES_DIR / "tests" / "expiry_test.yml", tmp_path / "rules" / "tests")
    result = subprocess.run([PROMTOOL, "test", "rules", "expiry_test.yml"], cwd=tmp_path / "rules" / "tests",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, "the unit tests pass with a broken rule"
    return result.stdout + result.stderr


def test_unit_tests_catch_a_missing_baseline(tmp_path: Path):
    # without the multiple of the baseline, a steady high volume fires
    out = _run_with_mutated_expiry_rule(tmp_path, "> 3 * (", "> 0 * (")
    assert "name: steady high volume stays silent" in out
    assert "name: quiet server, surge fires after its for and resolves" not in out


def test_unit_tests_catch_a_wrong_floor(tmp_path: Path):
    # with a floor nobody reaches, the surges no longer fire
    out = _run_with_mutated_expiry_rule(tmp_path, ">= 10\n", ">= 1000\n")
    assert "name: quiet server, surge fires after its for and resolves" in out
    assert "name: busy server fires at four times its baseline, not at twice" in out
