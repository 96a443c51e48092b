"""Issue 16, "series are not bounded, only codes are": the series cap beside the code cap.

Remote hosts of every provider times 500 codes made 6,000 series of ndr_status_codes_total while
the code cap (500) was never reached. The real exporter reads such a log; the series beyond
--metrics.series-cap fold into one series per (mta, outcome, class) and are counted in
ndr_exporter_series_folded_total; nothing is lost from the totals, and a restart keeps the set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.exporter_process import ExporterProcess, run_exporter, sample, total

# One remote host per provider label (exporter/providers.py), "relay=none" for none.
HOSTS = ("mx1.gmail.com", "mx.outlook.com", "mta5.am0.yahoodns.net", "mx01.mail.icloud.com", "mx00.gmx.net",
         "mx.yandex.ru", "mxs.mail.ru", "mx.zoho.com", "mail.protonmail.ch", "in1-smtp.messagingengine.com",
         "mx.example.org", None)
FOLD_MEANING = "series beyond the cardinality cap"


def codes(n: int = 500) -> list[str]:
    """n distinct valid enhanced codes, the 4.x.x ones first: 4.0.0 ... 4.7.31, 5.0.0 ..."""
    found = [f"{cls}.{subject}.{detail}" for cls in (4, 5) for subject in range(8) for detail in range(32)]
    return found[:n]


def line(i: int, code: str, host: str | None) -> bytes:
    """A real-shaped Postfix delivery record: bounced for a 5.x.x code, deferred for a 4.x.x one."""
    status = "bounced" if code.startswith("5") else "deferred"
    relay = f"{host}[192.0.2.{i % 250 + 1}]:25" if host else "none"
    said = f"host {host}[192.0.2.1] said: {code[0]}50 {code} refused" if host else "connect failed"
    return (f"Dec  7 10:{i // 60 % 60:02d}:{i % 60:02d} mx postfix/smtp[{1000 + i}]: {0x4A0000 + i:X}: "
            f"to=<u{i}@example.net>, relay={relay}, delay=1.2, delays=0.1/0/0.5/0.6, dsn={code}, "
            f"status={status} ({said} (in reply to RCPT TO command))\n").encode()


def many_series_log(path: Path, n_codes: int = 500) -> int:
    """Every code with every provider's host, one line each (each line a new series); the line count."""
    lines = [line(i, code, host) for i, (code, host) in enumerate((c, h) for c in codes(n_codes) for h in HOSTS)]
    path.write_bytes(b"".join(lines))
    return len(lines)


def status_series(samples: dict) -> dict[tuple, float]:
    return {labels: v for (name, labels), v in samples.items() if name == "ndr_status_codes_total"}


def test_series_beyond_the_cap_fold_and_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    written = many_series_log(log)
    assert written == 6000
    state = tmp_path / "state.json"
    args = ["--source.path", str(log), "--source.start-at", "beginning", "--state.file", str(state)]
    with ExporterProcess(args) as exp:
        samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == written)
        series = status_series(samples)
        # 2,000 series of their own (the default cap: the first 2,000 lines, one series each),
        # and the other 4,000 lines in one series per (mta, outcome, class): 4.x.x lines (256
        # codes x 12 hosts) up to line 3,071, 5.x.x lines after.
        assert len(series) == 2002
        assert sample(samples, "ndr_exporter_series_folded_total") == 4000
        assert sample(samples, "ndr_exporter_codes_folded_total") == 0   # 500 codes: the code cap holds them
        folded = {labels: v for labels, v in series.items() if dict(labels)["code"] == "overflow"}
        assert folded == {
            (("class", "transient"), ("code", "overflow"), ("meaning", FOLD_MEANING), ("mta", "postfix"),
             ("outcome", "deferred"), ("provider", "overflow"), ("subject", "overflow")): 1072.0,
            (("class", "permanent"), ("code", "overflow"), ("meaning", FOLD_MEANING), ("mta", "postfix"),
             ("outcome", "bounced"), ("provider", "overflow"), ("subject", "overflow")): 2928.0,
        }
        # The first series are kept whole: line 0 is 4.0.0 to Gmail, line 1,999 is 4.5.6 to Zoho,
        # line 2,000 (4.5.6 to Proton) is the first to fold.
        assert total(samples, "ndr_status_codes_total", code="4.0.0", provider="google") == 1
        assert total(samples, "ndr_status_codes_total", code="4.5.6", provider="zoho") == 1
        assert total(samples, "ndr_status_codes_total", code="4.5.6", provider="proton") == 0
        assert exp.stop() == 0
    saved = json.loads(state.read_text())
    assert len(saved["metrics"]["status"]) == 2002
    assert saved["metrics"]["series_folded"] == 4000


def test_the_cap_holds_across_a_restart(tmp_path: Path) -> None:
    """The series seen are restored from the checkpoint: a known series still counts as itself
    after a restart, a new one still folds, and the folded count goes on from the checkpoint."""
    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(line(i, "5.1.1", host) for i, host in enumerate(HOSTS[:4])))
    state = tmp_path / "state.json"
    args = ["--source.path", str(log), "--source.start-at", "beginning", "--state.file", str(state),
            "--metrics.series-cap", "3"]
    with ExporterProcess(args) as exp:
        samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 4)
        assert sample(samples, "ndr_exporter_series_folded_total") == 1
        assert exp.stop() == 0
    with log.open("ab") as f:   # a known series (Gmail), a new one (mail.ru)
        f.write(line(10, "5.1.1", HOSTS[0]) + line(11, "5.1.1", HOSTS[6]))
    with ExporterProcess(args) as exp:
        samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 6)
        assert sample(samples, "ndr_exporter_series_folded_total") == 2
        assert total(samples, "ndr_status_codes_total", provider="google") == 2
        assert total(samples, "ndr_status_codes_total", provider="overflow") == 2
        assert len(status_series(samples)) == 4


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_a_bad_series_cap_exits_2_naming_the_field(tmp_path: Path, how: str) -> None:
    args, env = ["--source.path", str(tmp_path / "mail.log")], None
    if how == "flag":
        args += ["--metrics.series-cap", "0"]
        field = "--metrics.series-cap: must be a whole number of at least 1, not 0"
    elif how == "env":
        env = {"NDR_EXPORTER_SERIES_CAP": "lots"}
        field = "NDR_EXPORTER_SERIES_CAP: must be a whole number of at least 1, not 'lots'"
    else:
        config = tmp_path / "c.yml"
        config.write_text("metrics:\n  series_cap: -1\n")
        args += ["--config.file", str(config)]
        field = "metrics.series_cap: must be a whole number of at least 1, not -1"
    for extra in ([], ["--config.check"]):
        result = run_exporter(args + extra, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", f"ndr-exporter: {field}\n")


def test_the_series_cap_setting_is_taken(tmp_path: Path) -> None:
    """The env var and the config key set the cap as the flag does (a flag wins)."""
    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(line(i, "5.1.1", host) for i, host in enumerate(HOSTS)))
    config = tmp_path / "c.yml"
    config.write_text(f"sources:\n  - name: mail\n    path: {log}\n    start_at: beginning\n"
                      "metrics:\n  series_cap: 5\n")
    for env, want in (({}, 7), ({"NDR_EXPORTER_SERIES_CAP": "2"}, 10)):
        with ExporterProcess(["--config.file", str(config)], env=env) as exp:
            samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == len(HOSTS))
            assert sample(samples, "ndr_exporter_series_folded_total") == want
