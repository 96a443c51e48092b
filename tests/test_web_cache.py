"""/metrics served from the rendered-exposition cache (exporter/web.py's Exposition), through the
real process: each format (text 0.0.4, OpenMetrics), plain and gzip, is exactly what
prometheus_client renders for the families it holds, gzip is one stream holding all of them,
and every variant shows the new counts after a publish."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.exporter_process import ExporterProcess, parse_exposition, total

BOUNCE = (b"Nov 28 00:00:01 mx postfix/smtp[123]: ABCDEF: to=<a@b.c>, relay=x[192.0.2.1]:25, delay=1, "
          b"delays=0/0/0/1, dsn=5.1.1, status=bounced (host x said: 550 5.1.1 no such user)\n")
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class _Families:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self) -> list:
        return self.families


def rendered_by_prometheus_client(text: str, openmetrics: bool) -> str:
    """What prometheus_client's own encoder renders for the families in text."""
    registry = CollectorRegistry()
    if openmetrics:
        registry.register(_Families(list(om_parser.text_string_to_metric_families(text))))
        return om_exposition.generate_latest(registry).decode()
    registry.register(_Families(list(text_string_to_metric_families(text))))
    return generate_latest(registry).decode()


def one_gzip_stream(body: bytes) -> bytes:
    """Decompress body as a single gzip member (as curl does), checking nothing follows it."""
    d = zlib.decompressobj(31)
    out = d.decompress(body) + d.flush()
    assert d.eof and d.unused_data == b""
    return out


def fetch(exp: ExporterProcess, openmetrics: bool, compressed: bool) -> str:
    headers = {}
    if openmetrics:
        headers["Accept"] = OPENMETRICS
    if compressed:
        headers["Accept-Encoding"] = "gzip"
    status, reply, body = exp.get(headers=headers)
    assert status == 200
    assert reply.get("Content-Encoding") == ("gzip" if compressed else None)
    assert reply["Content-Type"].startswith("application/openmetrics-text" if openmetrics else "text/plain")
    return (one_gzip_stream(body) if compressed else body).decode()


def test_every_variant_is_prometheus_clients_rendering_and_follows_publishes(
        tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(BOUNCE * 3)
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning",
                            "--state.file", str(tmp_path / "state.json")])
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total", code="5.1.1") == 3)
    for expected in (3, 5):
        if expected == 5:
            with log.open("ab") as f:
                f.write(BOUNCE * 2)
            exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total", code="5.1.1") == 5)
        for openmetrics in (False, True):
            for compressed in (False, True):
                text = fetch(exp, openmetrics, compressed)
                assert text == rendered_by_prometheus_client(text, openmetrics), (openmetrics, compressed)
                assert text.count("# EOF\n") == (1 if openmetrics else 0)
                assert not openmetrics or text.endswith("# EOF\n")
                if openmetrics:   # the OpenMetrics parser needs no "_total" rewriting for this check
                    text = text[:-len("# EOF\n")]
                samples = parse_exposition(text)
                assert total(samples, "ndr_status_codes_total", code="5.1.1") == expected, (openmetrics, compressed)
                assert total(samples, "ndr_exporter_lines_total", result="matched") == expected
                # the live part is there, after the cached one, in every variant
                assert total(samples, "process_cpu_seconds_total") >= 0
                assert text.index("ndr_exporter_build_info") < text.index("process_cpu_seconds_total")


def _counts_only(text: str) -> str:
    """The exposition without the process series (read at different moments by two scrapes)."""
    return "".join(line + "\n" for line in text.splitlines() if "process_" not in line)


def test_a_gzip_scrape_first_after_a_publish_holds_what_a_plain_one_does(
        tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]) -> None:
    """Prometheus asks for gzip only: the cached text is compressed without being kept, and a
    later plain scrape (or the other format) renders it again from the same snapshot."""
    log = tmp_path / "mail.log"
    log.write_bytes(BOUNCE)
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning",
                            "--state.file", str(tmp_path / "state.json")])
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total", code="5.1.1") == 1)
    with log.open("ab") as f:
        f.write(BOUNCE * 6)
    # wait on gzip scrapes only, so that the first scrape of the new snapshot is a gzip one
    deadline = time.monotonic() + 30
    while total(parse_exposition(fetch(exp, False, True)), "ndr_status_codes_total", code="5.1.1") != 7:
        assert time.monotonic() < deadline, "the new counts did not show within 30 s"
    for openmetrics in (False, True):
        compressed = fetch(exp, openmetrics, True)
        plain = fetch(exp, openmetrics, False)
        assert _counts_only(compressed) == _counts_only(plain)
        assert compressed == rendered_by_prometheus_client(compressed, openmetrics)
        text = compressed[:-len("# EOF\n")] if openmetrics else compressed
        assert total(parse_exposition(text), "ndr_status_codes_total", code="5.1.1") == 7


def _bounce(code: str) -> bytes:
    return BOUNCE.replace(b"5.1.1", code.encode())


def test_many_series_render_as_prometheus_client_does_as_new_ones_come(
        tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]) -> None:
    """The status lines are rendered from each series' label text kept from its first rendering
    (MetricsCollector.render): with series added between publishes, and codes folded by the cap,
    every variant is still exactly prometheus_client's rendering, with the exact counts."""
    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(_bounce(f"5.1.{i}") * (i + 1) for i in range(20)))
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning",
                            "--state.file", str(tmp_path / "state.json"), "--metrics.code-cap", "30"])
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == sum(range(1, 21)))
    for round_, expected in ((1, 20), (2, 31)):
        if round_ == 2:   # 15 new codes: 10 take the cap's last places, 5 fold into "overflow"
            with log.open("ab") as f:
                f.write(b"".join(_bounce(f"5.7.{i}") * 2 for i in range(15)))
            exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == sum(range(1, 21)) + 30)
        for openmetrics in (False, True):
            for compressed in (True, False):
                text = fetch(exp, openmetrics, compressed)
                assert text == rendered_by_prometheus_client(text, openmetrics), (round_, openmetrics, compressed)
                body = text[:-len("# EOF\n")] if openmetrics else text
                samples = parse_exposition(body)
                series = [line for line in body.splitlines() if line.startswith("ndr_status_codes_total{")]
                assert len(series) == expected
                assert total(samples, "ndr_status_codes_total", code="5.1.19") == 20
                if round_ == 2:
                    assert total(samples, "ndr_status_codes_total", code="5.7.9") == 2
                    assert total(samples, "ndr_status_codes_total", code="overflow") == 10
                    assert total(samples, "ndr_exporter_codes_folded_total") == 10
