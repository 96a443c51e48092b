"""The daemon-side stream of one source: format detection, parsers and every self-metric.

Sits between the source stage and the parser stage at run time (source -> stream -> parser
-> metrics). A source only reads; it hands this Stream (its Sink, exporter/sources/__init__.py)
chunks of complete lines per reader (one file, one journal) and a few events. The stream:

  - on opened(reader, fmt, head, resumed) makes that reader's parser: for fmt "auto" the
    format is detected from the reader's first DETECT_BYTES (exporter/parsers/detect.py; the
    same window `report` and `backfill` use); a reader resumed in the middle of a file is
    first shown the file's header lines ("#Fields: ..."), not counted;
  - on chunk(reader, data) counts the chunk through exporter.pipeline.process_chunk (a
    parser that fails on a chunk is logged and its lines are counted unparsed);
  - on event(kind, n) writes the self-metric of that event. This is the one place where
    the per-source self-metrics are written.
"""

from __future__ import annotations

import logging
from typing import Callable, Hashable

from exporter.metrics import Metrics
from exporter.parsers import make_parser
from exporter.parsers.base import Parser
from exporter.parsers.detect import DETECT_BYTES, detect_format
from exporter.pipeline import process_chunk
from exporter.sources import DOWN, OVERSIZED, READ_ERROR, ROTATED, TRUNCATED, UP, Head

log = logging.getLogger("ndr_exporter.stream")


class Stream:
    """The Sink of one source: its readers' parsers, counting into metrics under its name."""

    def __init__(self, name: str, metrics: Metrics, changed: Callable[[], None]) -> None:
        self.name = name
        self.metrics = metrics
        self.changed = changed   # the daemon's: something was counted (a checkpoint is due)
        self._parsers: dict[Hashable, Parser | None] = {}
        self._formats: dict[Hashable, str] = {}

    # --- the Sink protocol ---
    def opened(self, reader: Hashable, fmt: str, head: Head | None, resumed: bool) -> None:
        self._formats[reader] = fmt
        self._parsers[reader] = None
        if head is not None:
            sample = head(DETECT_BYTES)
            parser = self._parsers[reader] = parser_for(fmt, sample)
            if resumed:
                prime(parser, sample)

    def chunk(self, reader: Hashable, data: bytes) -> None:
        parser = self._parsers.get(reader)
        if parser is None:   # no head given (a pipe, a journal): the first chunk shows the format
            parser = self._parsers[reader] = parser_for(self._formats.get(reader, "auto"), data[:DETECT_BYTES])
        self.changed()
        try:
            process_chunk(self.name, parser, data, self.metrics)
        except Exception:   # a parser bug: count the lines as unparsed and go on
            log.exception("%s: parser %s failed on a chunk", self.name, getattr(parser, "format", "?"))
            self.metrics.add_lines(self.name, 0, 0, data.count(b"\n"))

    def closed(self, reader: Hashable) -> None:
        self._parsers.pop(reader, None)
        self._formats.pop(reader, None)

    def event(self, kind: str, n: int = 1) -> None:
        metrics, name = self.metrics, self.name
        if kind == UP:
            metrics.declare_source(name)
        elif kind in (ROTATED, TRUNCATED):
            for _ in range(n):
                metrics.add_rotation(name)
        elif kind == READ_ERROR:
            for _ in range(n):
                metrics.add_read_error(name)
        elif kind == OVERSIZED:
            metrics.add_lines(name, 0, 0, 0, oversized=n)
        elif kind == DOWN:
            log.info("%s: source done", name)
        else:
            raise ValueError(f"unknown source event {kind!r}")


def parser_for(fmt: str, head: bytes) -> Parser:
    """A fresh parser: for "auto", the format is detected from the first bytes of the stream."""
    if fmt == "auto":
        try:
            fmt = detect_format(head)
        except Exception:  # a detector bug must not stop a source
            log.exception("format detection failed; using syslog")
            fmt = "syslog"
    return make_parser(fmt)


def prime(parser: Parser, head: bytes) -> None:
    """Show a parser the header lines ("#Fields: ...") of a file resumed in the middle; not counted."""
    header = []
    for line in head.split(b"\n")[:-1]:
        if not line.startswith(b"#"):
            break
        header.append(line + b"\n")
    if header:
        try:
            parser.parse(b"".join(header))
        except Exception:
            log.exception("parser failed on a file header")
