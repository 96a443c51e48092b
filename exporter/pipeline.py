"""Glue between the stages for one chunk: parser -> classifier -> metrics.

The daemon's stream calls process_chunk with complete lines; the tests use it too.
"""

from __future__ import annotations

from exporter.metrics import Metrics
from exporter.parsers.base import Counted, Parser


def process_chunk(source: str, parser: Parser, chunk: bytes, metrics: Metrics) -> Counted:
    """Parse one chunk of complete lines and count what it holds (the daemon has no time buckets)."""
    counted = parser.count(chunk)
    metrics.add_bytes(source, len(chunk))
    metrics.add(source, counted)
    return counted
