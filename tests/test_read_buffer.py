"""The file source's read buffer (exporter/sources/files.py), through the real process: reads
start in a 64 KiB buffer and move to 1 MiB blocks once a read fills it (a backlog), and every
line is counted exactly once across both sizes, whichever block boundary cuts it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tests.helpers.exporter_process import ExporterProcess, total

LINE = ("Nov 28 00:00:01 mx postfix/smtp[123]: {qid}: to=<a@b.c>, relay=x[192.0.2.1]:25, delay=1, "
        "delays=0/0/0/1, dsn=5.1.{code}, status=bounced (host x said: 550 5.1.{code} {pad})\n")


def _lines(start: int, count: int) -> bytes:
    # lengths vary line by line, so the 64 KiB and 1 MiB boundaries fall inside lines
    return "".join(LINE.format(qid=f"A{i:07X}", code=i % 7, pad="x" * (i % 97)) for i in range(start, start + count)
                   ).encode()


def test_a_backlog_read_in_growing_blocks_counts_every_line(
        tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]) -> None:
    log = tmp_path / "mail.log"
    backlog = _lines(0, 20_000)   # about 4 MB: a 64 KiB read, then 1 MiB blocks
    assert len(backlog) > 3 * 1024 * 1024
    log.write_bytes(backlog)
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning"])
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", result="matched") == 20_000)
    assert total(samples, "ndr_status_codes_total") == 20_000
    assert total(samples, "ndr_status_codes_total", code="5.1.3") == len(range(3, 20_000, 7))
    assert total(samples, "ndr_exporter_lines_total", result="unparsed") == 0
    with log.open("ab") as f:   # then a trickle, read into the grown buffer
        f.write(_lines(20_000, 5))
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", result="matched") == 20_005)
    assert total(samples, "ndr_status_codes_total") == 20_005
    assert total(samples, "ndr_exporter_read_bytes_total") == len(backlog) + len(_lines(20_000, 5))


def test_a_trickle_after_start_counts_every_line(
        tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning"])
    exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", result="matched") == 0)
    sent = 0
    for start in range(0, 400, 100):   # about 20 kB a write: each read fits the first buffer
        with log.open("ab") as f:
            f.write(_lines(start, 100))
        sent += 100
        exp.wait_for_metrics(lambda s, want=sent: total(s, "ndr_status_codes_total") == want)
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", result="matched") == 400)
    assert total(samples, "ndr_status_codes_total", code="5.1.0") == len(range(0, 400, 7))
