"""The real exporter following an MTA's log, and the numbers the suite reads back from it.

The exporter runs as the daemon does (`ndr-exporter --source.path LOG --start-at beginning`),
on a free loopback port, and is scraped over HTTP (tests/helpers/exporter_process.py).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.helpers.exporter_process import ExporterProcess, Samples

STATUS = "ndr_status_codes_total"
LINES = "ndr_exporter_lines_total"


def follow(log: Path, fmt: str | None = None) -> ExporterProcess:
    """Start the exporter on one log file, from its first line."""
    args = ["--source.path", str(log), "--start-at", "beginning"]
    if fmt:
        args += ["--source.format", fmt]
    return ExporterProcess(args).start(timeout=30)


def lines_read(samples: Samples, source: str) -> float:
    """Lines of a source the exporter has counted, whatever their result."""
    return sum(v for (name, labels), v in samples.items()
               if name == LINES and dict(labels).get("source") == source)


def unparsed_lines(samples: Samples, source: str) -> float:
    return sum(v for (name, labels), v in samples.items()
               if name == LINES and dict(labels).get("source") == source
               and dict(labels).get("result") == "unparsed")


def status_counts(samples: Samples) -> Counter[tuple[str, str]]:
    """ndr_status_codes_total summed per (code, outcome); zero values left out."""
    counts: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in samples.items():
        if name == STATUS and value:
            label = dict(labels)
            counts[(label["code"], label["outcome"])] += int(value)
    return counts


def status_mtas(samples: Samples) -> set[str]:
    """The mta label values that carry counts."""
    return {dict(labels)["mta"] for (name, labels), value in samples.items() if name == STATUS and value}


def read_whole_file(exporter: ExporterProcess, log: Path, timeout: float = 30) -> Samples:
    """Scrape until the exporter has counted every line of the (finished) log file."""
    total = log.read_bytes().count(b"\n")
    return exporter.wait_for_metrics(lambda s: lines_read(s, log.name) >= total, timeout=timeout)
