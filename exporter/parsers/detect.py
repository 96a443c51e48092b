"""Format detection: which parser reads a source, from the first bytes of its file.

Part of the parser stage, called by the daemon's stream, `report` and `backfill` when a
source's format is "auto" (config can name the format instead). It reads the first
DETECT_BYTES of the file: the header lines ("#Software:", "#Log-type:") and the first
SAMPLE_LINES records, and asks each format module (exporter/parsers/registry.py) in its
DETECT_ORDER whether the sample is its format; when none says yes, the FALLBACK format
(syslog: it reads every syslog-style envelope and ignores what it does not know), which
includes an empty sample. What each format looks for is written in its own module's detects().
"""

from __future__ import annotations

from typing import NamedTuple

from exporter.parsers import registry

SAMPLE_LINES = 20  # records looked at for the exim test
# How much of a stream's start is read to detect its format: the one window of the daemon
# (exporter/stream.py), `report` and `backfill` (exporter/logfiles.py), so they agree on a file.
DETECT_BYTES = 64 * 1024

_BOM = b"\xef\xbb\xbf"


class Sample(NamedTuple):
    """What detection reads of a file's start."""

    software: bytes        # the "#Software:" header's value, or b""
    log_type: bytes        # the "#Log-type:" header's value, or b""
    records: list[bytes]   # the first SAMPLE_LINES lines that are not headers or blank


def sample_of(head: bytes) -> Sample:
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    software = log_type = b""
    records: list[bytes] = []
    for line in head.split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"#"):
            if line.startswith(b"#Software:") and not software:
                software = line[len(b"#Software:"):].strip()
            elif line.startswith(b"#Log-type:") and not log_type:
                log_type = line[len(b"#Log-type:"):].strip()
        elif line.strip():
            records.append(line)
            if len(records) >= SAMPLE_LINES:
                break
    return Sample(software, log_type, records)


def detect_format(head: bytes) -> str:
    """The format name (an exporter.parsers.FORMATS entry) for a file that starts with head."""
    sample = sample_of(head)
    candidates = [f for f in registry.formats().values() if f.detect_order is not None]
    for fmt in sorted(candidates, key=lambda f: f.detect_order or 0):
        if fmt.detects is not None and fmt.detects(sample):
            return fmt.name
    return registry.fallback_format()
