"""The daemon-side stream of one source: format detection, parsers and every self-metric.

Sits between the source stage and the parser stage at run time (source -> stream -> parser
-> metrics). A source only reads; it hands this Stream (its Sink, exporter/sources/__init__.py)
chunks of complete lines per reader (one file, one journal) and a few events. The stream:

  - on opened(reader, fmt, head, resumed) makes that reader's parser: for fmt "auto" the
    format is detected from the reader's first DETECT_BYTES (exporter/parsers/detect.py; the
    same window `report` and `backfill` use); a reader resumed in the middle of a file is
    first shown the file's header lines ("#Fields: ..."), not counted;
  - while that detection is not final (the file was still shorter than the window: a new file
    after a rotation is first read with one line in it), every chunk votes again, over the
    file's start as it is now, before it is counted; a changed answer changes the parser
    (logged). So the vote is over the same first lines as `report` sees, not over the first;
  - on chunk(reader, data) counts the chunk through exporter.pipeline.process_chunk (a
    parser that fails on a chunk is logged and its lines are counted unparsed);
  - once a reader's first WARN_AFTER_LINES lines are counted, warns when nearly all of them
    (IGNORED_SHARE) were "ignored": the wrong file, or the wrong format;
  - on event(kind, n) writes the self-metric of that event. This is the one place where
    the per-source self-metrics are written.
"""

from __future__ import annotations

import logging
from typing import Callable, Hashable

from exporter.metrics import Metrics
from exporter.parsers import make_parser
from exporter.parsers.base import Parser
from exporter.parsers.detect import DETECT_BYTES, Detection, detect
from exporter.pipeline import process_chunk
from exporter.sources import DOWN, OVERSIZED, READ_ERROR, ROTATED, TRUNCATED, UP, Head

log = logging.getLogger("ndr_exporter.stream")

WARN_AFTER_LINES = 1000   # lines of a reader counted before the "mostly ignored" check
IGNORED_SHARE = 0.99      # the share of those ignored that gets the warning


class Stream:
    """The Sink of one source: its readers' parsers, counting into metrics under its name."""

    def __init__(self, name: str, metrics: Metrics, changed: Callable[[], None]) -> None:
        self.name = name
        self.metrics = metrics
        self.changed = changed   # the daemon's: something was counted (a checkpoint is due)
        self._parsers: dict[Hashable, Parser | None] = {}
        self._formats: dict[Hashable, str] = {}
        # readers whose "auto" format is not final yet: their Head, or None and the bytes seen so far
        self._voting: dict[Hashable, Head | None] = {}
        self._seen: dict[Hashable, bytes] = {}
        # readers not yet past WARN_AFTER_LINES: [lines, matched, ignored, unparsed] counted so far
        self._tally: dict[Hashable, list[int]] = {}

    # --- the Sink protocol ---
    def opened(self, reader: Hashable, fmt: str, head: Head | None, resumed: bool) -> None:
        self._formats[reader] = fmt
        self._parsers[reader] = None
        self._tally[reader] = [0, 0, 0, 0]
        if head is not None:
            sample = head(DETECT_BYTES)
            parser = self._parsers[reader] = self._first_parser(reader, fmt, sample, head)
            if resumed:
                prime(parser, sample)

    def chunk(self, reader: Hashable, data: bytes) -> None:
        parser = self._parsers.get(reader)
        if parser is None:   # no head given (a pipe, a journal): the first chunk shows the format
            self._tally.setdefault(reader, [0, 0, 0, 0])
            parser = self._parsers[reader] = self._first_parser(reader, self._formats.get(reader, "auto"),
                                                                data[:DETECT_BYTES], None)
            if reader in self._voting:
                self._seen[reader] = data[:DETECT_BYTES]
        elif reader in self._voting:
            parser = self._vote_again(reader, parser, data)
        self.changed()
        try:
            counted = process_chunk(self.name, parser, data, self.metrics)
        except Exception:   # a parser bug: count the lines as unparsed and go on
            log.exception("%s: parser %s failed on a chunk", self.name, getattr(parser, "format", "?"))
            self.metrics.add_lines(self.name, 0, 0, data.count(b"\n"))
            return
        tally = self._tally.get(reader)
        if tally is not None:
            self._check_ignored(reader, parser, tally, counted.lines, counted.matched, counted.ignored,
                                counted.unparsed)

    def closed(self, reader: Hashable) -> None:
        for held in (self._parsers, self._formats, self._voting, self._seen, self._tally):
            held.pop(reader, None)

    # --- detection by vote, and the "mostly ignored" warning ---
    def _first_parser(self, reader: Hashable, fmt: str, sample: bytes, head: Head | None) -> Parser:
        """The reader's parser from its first bytes; an "auto" answer that is not final keeps it voting."""
        if fmt != "auto":
            return make_parser(fmt)
        found = detection(sample)
        if not found.final:
            self._voting[reader] = head
        return make_parser(found.format)

    def _vote_again(self, reader: Hashable, parser: Parser, data: bytes) -> Parser:
        """Detect again over the reader's start as it is now (this chunk included); a new answer
        gets a new parser for this chunk on. Stops once the answer is final."""
        head = self._voting[reader]
        if head is not None:
            try:
                sample = head(DETECT_BYTES)
            except OSError as err:   # the file's start cannot be read again: keep the answer
                log.info("%s: cannot read the start of %s again (%s): format stays %s", self.name,
                         _where(reader), err, getattr(parser, "format", "?"))
                self._voting.pop(reader, None)
                return parser
        else:
            sample = self._seen[reader] = (self._seen.get(reader, b"") + data)[:DETECT_BYTES]
        found = detection(sample)
        if found.final:
            self._voting.pop(reader, None)
            self._seen.pop(reader, None)
        old = getattr(parser, "format", None)
        if found.format == old:
            return parser
        log.info("%s: format of %s is now %s, not %s (a vote over its first %d lines)", self.name,
                 _where(reader), found.format, old, sample.count(b"\n"))
        parser = self._parsers[reader] = make_parser(found.format)
        return parser

    def _check_ignored(self, reader: Hashable, parser: Parser, tally: list[int], lines: int, matched: int,
                       ignored: int, unparsed: int) -> None:
        tally[0] += lines
        tally[1] += matched
        tally[2] += ignored
        tally[3] += unparsed
        if tally[0] < WARN_AFTER_LINES:
            return
        del self._tally[reader]
        if tally[2] >= IGNORED_SHARE * tally[0]:
            log.warning("%s: %d of the first %d lines of %s were ignored by the %s parser (%d matched, "
                        "%d unparsed): is this a mail log, and is its format right?", self.name, tally[2],
                        tally[0], _where(reader), getattr(parser, "format", "?"), tally[1], tally[3])

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
    return make_parser(detection(head).format if fmt == "auto" else fmt)


def detection(head: bytes) -> Detection:
    """detect(head), and syslog (final) if detection itself fails: a detector bug must not stop a source."""
    try:
        return detect(head)
    except Exception:
        log.exception("format detection failed; using syslog")
        return Detection("syslog", True)


def _where(reader: Hashable) -> str:
    """The file a reader reads, for a log line (a journal or stdin reader has no path)."""
    path = getattr(reader, "path", None)
    return str(path) if path else "its input"


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
