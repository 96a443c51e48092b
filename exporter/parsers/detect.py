"""Format detection: which parser reads a source, from the first bytes of its file.

Part of the parser stage, called by the daemon's stream, `report` and `backfill` when a
source's format is "auto" (config can name the format instead). It reads the first
DETECT_BYTES of the file: the header lines ("#Software:", "#Log-type:") and the first
SAMPLE_LINES records, and asks each format module (exporter/parsers/registry.py) in its
DETECT_ORDER whether the sample is its format; when none says yes, the FALLBACK format
(syslog: it reads every syslog-style envelope and ignores what it does not know), which
includes an empty sample. What each format looks for is written in its own module's detects().

Formats known by their headers (Exchange, IIS) are decided by the headers. The others by a
vote over the sample's records: Sample.syslog counts the records that carry a syslog envelope
(parsers/envelope.py: the fallback's votes), and a record-based format wins only with more
votes than that (exim_files.detects: records starting "YYYY-MM-DD HH:MM:SS"); a tie is syslog.
So one date-first line at the top of a Postfix log does not make it Exim.

A file read while it is still short (a new file after a rotation holds one line when it is
first read) gives a sample that more lines can still change: detect() says whether its
answer is final (a header decided, or the window is full: SAMPLE_LINES records or
DETECT_BYTES bytes). The daemon's stream votes again as lines come until it is.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from exporter.parsers import registry
from exporter.parsers.envelope import YearClock, split

SAMPLE_LINES = 20  # records that vote
# How much of a stream's start is read to detect its format: the one window of the daemon
# (exporter/stream.py), `report` and `backfill` (exporter/logfiles.py), so they agree on a file.
DETECT_BYTES = 64 * 1024

_BOM = b"\xef\xbb\xbf"


class Sample(NamedTuple):
    """What detection reads of a file's start."""

    software: bytes        # the "#Software:" header's value, or b""
    log_type: bytes        # the "#Log-type:" header's value, or b""
    records: list[bytes]   # the first SAMPLE_LINES lines that are not headers or blank
    syslog: int = 0        # how many of the records carry a syslog envelope (the fallback's votes)


class Detection(NamedTuple):
    """A format, and whether more of the file could change it (False: the sample is not full)."""

    format: str
    final: bool


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
    clock = YearClock(time.time())
    syslog = sum(1 for record in records if split(record.decode("utf-8", "replace"), clock) is not None)
    return Sample(software, log_type, records, syslog)


def detect(head: bytes) -> Detection:
    """The format for a file that starts with head, and whether that answer is final."""
    sample = sample_of(head)
    final = bool(sample.software or sample.log_type) or len(sample.records) >= SAMPLE_LINES \
        or len(head) >= DETECT_BYTES
    candidates = [f for f in registry.formats().values() if f.detect_order is not None]
    for fmt in sorted(candidates, key=lambda f: f.detect_order or 0):
        if fmt.detects is not None and fmt.detects(sample):
            return Detection(fmt.name, final)
    return Detection(registry.fallback_format(), final)


def detect_format(head: bytes) -> str:
    """The format name (an exporter.parsers.FORMATS entry) for a file that starts with head."""
    return detect(head).format
