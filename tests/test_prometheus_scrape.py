"""A real Prometheus scrapes the real exporter following a log that real Postfix lines are appended to;
PromQL over Prometheus' HTTP API gives the exact counts per code. promtool checks the exposition."""

from __future__ import annotations

import os

from pathlib import Path
from typing import Callable

import pytest

from tests.helpers.exporter_process import ExporterProcess, sample, total
from tests.helpers.prometheus import PrometheusServer, promtool_check_metrics

# Counted by hand from the reply and enhanced code ("554 5.7.1") in each line of the corpus file
# fail2ban/postfix; the other 37 lines (SASL failures, lost connections, postscreen) carry none.
EXPECTED_BY_CODE = {"4.1.8": 2, "4.7.1": 6, "4.7.25": 2, "5.1.1": 3, "5.5.2": 4, "5.5.3": 1,
                    "5.7.1": 7, "5.7.25": 1}
EXPECTED_BY_REPLY_CLASS = {"transient": 10, "permanent": 16}


def postfix_lines(corpus: Path) -> list[bytes]:
    """The log lines of fail2ban/postfix, without fail2ban's `# failJSON` annotations."""
    raw = (corpus / "fail2ban" / "postfix").read_bytes().split(b"\n")
    return [line + b"\n" for line in raw if line.strip() and not line.startswith(b"#")]


def assert_bounded_labels(samples: dict, sources: set[str]) -> None:
    """Every label value of the exporter's series comes from a fixed set or the config, none from a log."""
    import re

    from exporter import classifier, events, metrics, providers

    allowed = {
        "mta": set(events.MTAS), "outcome": set(events.OUTCOMES), "class": set(classifier.CLASSES.values()),
        "subject": set(classifier.SUBJECTS.values()), "provider": set(providers.PROVIDERS),
        "meaning": {e.meaning for e in classifier.TABLE} | {classifier.NO_CODE_MEANING, classifier.INVALID_MEANING,
                                                            "code beyond the cardinality cap"},
        "source": sources, "result": set(metrics.LINE_RESULTS),
    }
    code = re.compile(r"[245]\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\Z|none\Z|invalid\Z|overflow\Z")
    for name, labels in samples:
        if not name.startswith("ndr_") or name == "ndr_exporter_build_info":
            continue
        for label, value in labels:
            assert "@" not in value and "[" not in value, (name, label, value)
            if label == "code":
                assert code.match(value), value
            elif label == "path":   # a file the configured path or glob matched, not text from a log
                assert os.path.isabs(value) and os.path.isfile(value), value
            else:
                assert value in allowed[label], (name, label, value)


def test_promtool_accepts_the_exposition(tmp_path: Path, corpus: Path,
                                         exporter_factory: Callable[..., ExporterProcess]) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(postfix_lines(corpus)))
    exp = exporter_factory(["--source.path", str(log), "--start-at", "beginning"])
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 26)
    text = exp.scrape()
    result = promtool_check_metrics(text)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert "ndr_status_codes_total{" in text
    assert "_created" not in text
    assert_bounded_labels(exp.metrics(), sources={"mail.log"})
    # what Prometheus itself asks for: OpenMetrics, with no _created series either
    om = exp.scrape(headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.endswith("# EOF\n") and "_created" not in om


def test_prometheus_counts_each_code_exactly(tmp_path: Path, corpus: Path,
                                             exporter_factory: Callable[..., ExporterProcess],
                                             prometheus_factory: Callable[..., PrometheusServer]) -> None:
    lines = postfix_lines(corpus)
    assert len(lines) == 63
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    exp = exporter_factory(["--source.path", str(log)])  # from the end: only what the test appends counts
    prom = prometheus_factory([f"127.0.0.1:{exp.port}"])
    prom.wait_for_targets_up()

    # the first half, then the rest, as a mail server would write them
    with open(log, "ab") as f:
        f.writelines(lines[:30])
    with open(log, "ab") as f:
        f.writelines(lines[30:])

    by_code = 'sum by (code) (ndr_status_codes_total{job="ndr", mta="postfix", outcome="rejected"})'
    prom.wait_for_query(by_code, lambda r: sum(float(x["value"][1]) for x in r) == 26)
    assert prom.query_values(by_code, "code") == {k: float(v) for k, v in EXPECTED_BY_CODE.items()}
    assert prom.query_values('sum by (class) (ndr_status_codes_total)', "class") == \
        {k: float(v) for k, v in EXPECTED_BY_REPLY_CLASS.items()}
    lines_by_result = prom.query_values('ndr_exporter_lines_total{source="mail.log"}', "result")
    assert lines_by_result == {"matched": 26.0, "ignored": 37.0, "unparsed": 0.0, "oversized": 0.0}
    assert prom.query_values('ndr_exporter_read_bytes_total', "source") == \
        {"mail.log": float(sum(len(x) for x in lines))}

    # Prometheus and the exporter's own page agree
    samples = exp.metrics()
    for code, count in EXPECTED_BY_CODE.items():
        assert total(samples, "ndr_status_codes_total", code=code) == count
    assert sample(samples, "ndr_exporter_codes_folded_total") == 0


def test_code_cap_folds_into_overflow(tmp_path: Path, corpus: Path,
                                      exporter_factory: Callable[..., ExporterProcess]) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(postfix_lines(corpus)))
    exp = exporter_factory(["--source.path", str(log), "--start-at", "beginning", "--metrics.code-cap", "3"])
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 26)
    codes = {dict(labels)["code"] for (name, labels) in samples if name == "ndr_status_codes_total"}
    assert len(codes) == 4 and "overflow" in codes
    kept = sum(total(samples, "ndr_status_codes_total", code=c) for c in codes - {"overflow"})
    folded = total(samples, "ndr_status_codes_total", code="overflow")
    assert kept + folded == 26
    assert sample(samples, "ndr_exporter_codes_folded_total") == folded > 0
    assert promtool_check_metrics(exp.scrape()).returncode == 0


@pytest.mark.parametrize("mode", ["tls", "basic_auth"])
def test_prometheus_scrapes_through_tls_and_basic_auth(mode: str, tmp_path: Path, corpus: Path,
                                                       pki: dict[str, Path],
                                                       exporter_factory: Callable[..., ExporterProcess],
                                                       prometheus_factory: Callable[..., PrometheusServer]) -> None:
    import ssl

    import bcrypt
    import yaml

    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(postfix_lines(corpus)[:12]))
    web = tmp_path / "web.yml"
    if mode == "tls":
        web.write_text(yaml.safe_dump({"tls_server_config": {
            "cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]),
            "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(pki["ca"])}}))
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        ctx.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
        exp = exporter_factory(["--source.path", str(log), "--start-at", "beginning", "--web.config.file", str(web)],
                               scheme="https", ssl_context=ctx)
        extra = {"scheme": "https", "tls_config": {"ca_file": str(pki["ca"]), "cert_file": str(pki["client_cert"]),
                                                   "key_file": str(pki["client_key"])}}
    else:
        web.write_text(yaml.safe_dump({"basic_auth_users": {
            "prometheus": bcrypt.hashpw(b"scrape me", bcrypt.gensalt(4)).decode()}}))
        exp = exporter_factory(["--source.path", str(log), "--start-at", "beginning", "--web.config.file", str(web)])
        extra = {"basic_auth": {"username": "prometheus", "password": "scrape me"}}
    prom = prometheus_factory([f"127.0.0.1:{exp.port}"], scrape_extra=extra)
    prom.wait_for_targets_up()
    # lines 1-12 of the file: 5.7.1 x4 (554), 4.7.1 x1, 4.1.8 x1, 5.1.1 x3, and 3 lines without a code
    result = prom.wait_for_query("sum by (code) (ndr_status_codes_total)", lambda r: len(r) == 4)
    assert {r["metric"]["code"]: float(r["value"][1]) for r in result} == \
        {"5.7.1": 4.0, "4.7.1": 1.0, "4.1.8": 1.0, "5.1.1": 3.0}


def test_fixed_code_values_do_not_use_up_the_cap() -> None:
    """code="none" (no code logged) and "invalid" are fixed values: only real codes count against the cap."""
    from exporter.events import StatusEvent
    from exporter.metrics import Metrics
    from exporter.parsers.base import count_events

    metrics = Metrics(code_cap=1)
    for code in (None, "5.1.1", None, "5.7.1", "4.4.7"):
        metrics.add("mail", count_events([StatusEvent("postfix", "bounced", code, "550", "mx.example.net")]))
    metrics.commit()
    by_code: dict[str, float] = {}
    for key, value in metrics.published().status.items():
        by_code[key[2]] = by_code.get(key[2], 0.0) + value
    assert by_code == {"none": 2.0, "5.1.1": 1.0, "overflow": 2.0}
    assert metrics.published().folded == 2.0
    # a restart from the checkpoint keeps the same codes and the same room under the cap
    again = Metrics(code_cap=1, counts=metrics.published())
    again.add("mail", count_events([StatusEvent("postfix", "bounced", "5.1.1", "550", None)]))
    again.add("mail", count_events([StatusEvent("postfix", "bounced", "5.2.2", "552", None)]))
    again.commit()
    assert again.published().folded == 3.0
