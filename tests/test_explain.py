"""`ndr-exporter explain`, run as the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess

import pytest

from exporter.classifier import read_table
from tests.helpers.exporter_process import run_exporter


def _explain(*args: str) -> subprocess.CompletedProcess[str]:
    # The CLI of this checkout (PYTHONPATH set to it), not whichever `ndr-exporter` is on PATH;
    # the console script itself is tested in test_packaging.py.
    return run_exporter(["explain", *args], timeout=60)


def _blocks(stdout: str) -> dict[str, list[str]]:
    blocks = {}
    for block in stdout.strip().split("\n\n"):
        lines = block.splitlines()
        blocks[lines[0]] = lines[1:]
    return blocks


def test_explain_four_codes_as_text() -> None:
    run = _explain("5.4.8", "4.4.7", "5.7.606", "4.7.28")
    assert (run.returncode, run.stderr) == (0, "")
    blocks = _blocks(run.stdout)
    assert list(blocks) == ["5.4.8", "4.4.7", "5.7.606", "4.7.28"]

    b = blocks["5.4.8"]
    assert b[0] == "  class    permanent        a permanent failure; resending the same message will fail again"
    assert b[1] == "  subject  network_routing  network and routing"
    assert b[3] == "    microsoft  message loops back to this server  <- used as the label"
    assert b[-1] == "               [Exchange Server NDR codes; table row 5.4.8]"
    assert "smarthost" in " ".join(b[4:-1])

    b = blocks["4.4.7"]
    assert b[0].split()[:2] == ["class", "transient"] and b[1].split()[:2] == ["subject", "network_routing"]
    assert b[3] == "    iana       delivery time expired  <- used as the label"

    b = blocks["5.7.606"]
    assert b[0].split()[:2] == ["class", "permanent"] and b[1].split()[:2] == ["subject", "security_policy"]
    assert b[3] == "    microsoft  banned sending ip  <- used as the label"
    assert b[-1] == "               [Exchange Online NDR codes; table row 5.7.606-649]"

    b = blocks["4.7.28"]
    assert b[0].split()[:2] == ["class", "transient"] and b[1].split()[:2] == ["subject", "security_policy"]
    meaning_lines = [line for line in b if line.startswith("    ") and not line.startswith("     ")]
    assert meaning_lines == ["    iana       mail flood detected  <- used as the label",
                             "    google     unusual rate of unsolicited mail"]


def test_explain_json_for_scripts() -> None:
    run = _explain("--json", "5.4.8", "4.4.7", "5.7.606", "4.7.28")
    assert (run.returncode, run.stderr) == (0, "")
    data = json.loads(run.stdout)
    summary = [(d["code"], d["class"], d["subject"], [(m["source"], m["meaning"]) for m in d["meanings"]],
                d["label"]["meaning"]) for d in data]
    assert summary == [
        ("5.4.8", "permanent", "network_routing", [("microsoft", "message loops back to this server")],
         "message loops back to this server"),
        ("4.4.7", "transient", "network_routing", [("iana", "delivery time expired")], "delivery time expired"),
        ("5.7.606", "permanent", "security_policy", [("microsoft", "banned sending ip")], "banned sending ip"),
        ("4.7.28", "transient", "security_policy",
         [("iana", "mail flood detected"), ("google", "unusual rate of unsolicited mail")], "mail flood detected"),
    ]
    assert data[2]["meanings"][0]["table_code"] == "5.7.606-649"
    assert data[3]["meanings"][0]["reference"] == "IANA registry"


def test_hints_choose_the_label_meaning() -> None:
    run = _explain("--json", "--mta", "exchange", "5.7.12")
    assert run.returncode == 0
    assert json.loads(run.stdout)[0]["label"] == {
        "meaning": "external sender rejected by organization", "source": "microsoft",
        "mta": "exchange", "provider": None}
    run = _explain("--host", "gmail-smtp-in.l.google.com", "4.7.27")
    assert run.returncode == 0
    assert run.stdout.splitlines()[-1] == "  label    with provider google: spf did not pass (google)"


def test_not_a_code_is_refused_on_stderr_with_status_2() -> None:
    run = _explain("1.2.3")
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "ndr-exporter explain: '1.2.3' is not an enhanced status code (class 2, 4 or 5, then subject "
        "and detail of 1-3 digits without leading zeros, e.g. 5.1.1) nor a 3-digit reply (2xx, 4xx or 5xx, "
        "e.g. 550)\n")


def test_good_codes_are_still_explained_beside_a_bad_one() -> None:
    run = _explain("--json", "5.01.1", "5.6.10")
    assert run.returncode == 2
    assert run.stderr.startswith("ndr-exporter explain: '5.01.1' is not an enhanced status code")
    data = json.loads(run.stdout)
    assert [(d["code"], d["meanings"][0]["meaning"], d["meanings"][0]["deprecated"]) for d in data] == [
        ("5.6.10", "deprecated utf-8 code", True)]


@pytest.mark.parametrize("args", [(), ("--provider", "nosuch", "5.1.1")])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    run = _explain(*args)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("usage: ndr-exporter explain")


def test_list_shows_every_possible_meaning() -> None:
    run = _explain("--list", "--json")
    assert (run.returncode, run.stderr) == (0, "")
    rows = json.loads(run.stdout)
    table = read_table()
    assert len(rows) == len(table) + 2
    assert [(r["table_code"], r["source"], r["meaning"]) for r in rows[:len(table)]] == [
        (e.pattern, e.source, e.meaning) for e in table]
    assert [(r["table_code"], r["meaning"]) for r in rows[len(table):]] == [
        ("none", "no enhanced status code logged"), ("invalid", "not a valid enhanced status code")]
    text = _explain("--list")
    assert text.stdout.splitlines()[0] == "X.0.0        iana       no detail beyond the class"
    assert "X.6.10       iana       deprecated utf-8 code  (deprecated)" in text.stdout.splitlines()
