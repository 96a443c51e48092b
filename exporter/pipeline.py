"""Glue between the stages for one chunk: parser -> classifier -> metrics.

Sources call process_chunk with complete lines; the same function serves the
daemon, the one-shot report and the tests.
"""

from __future__ import annotations

from exporter.metrics import Metrics
from exporter.parsers.base import ChunkResult, Parser


def process_chunk(source: str, parser: Parser, chunk: bytes, metrics: Metrics) -> ChunkResult:
    """Parse one chunk of complete lines and count what it holds."""
    result = parser.parse(chunk)
    metrics.add_bytes(source, len(chunk))
    metrics.add_lines(source, result.matched, result.ignored, result.unparsed)
    metrics.add_events(source, result.events)
    if result.tally:
        metrics.add_tally(source, result.tally, result.newest)
    return result
