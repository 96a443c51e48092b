"""The contract every format parser keeps (DESIGN.md section 1, docs/ARCHITECTURE.md).

A stream hands a parser a chunk: bytes holding one or more complete lines, each ending
in b"\\n" (half a line is never passed). A parser never raises on any input, does no I/O
and keeps no state but what the lines themselves set up (an Exchange "#Fields:" header,
a CRI partial line waiting for its end). It answers in two ways:

  parse(chunk) -> ChunkResult    the reference: every event one by one (StatusEvent, with
                                 its time and queue id), and how many lines matched, were
                                 ignored or did not parse. Golden files and `explain` read it.
  count(chunk, bucket) -> Counted
                                 what every consumer reads: the same lines, with the events
                                 added up by their LabelFields, per time bucket. The consumer
                                 chooses the bucket: `None` (the daemon: one bucket, None),
                                 `report`'s UTC hour, `backfill`'s step. A bucket is any
                                 function of an event's timestamp (None when the line had no
                                 time); its values must be hashable.

count() must give exactly what tally(parse(chunk), bucket) gives (EventParser.count does
just that). A parser may count faster, as the syslog parser does with its compiled
scanner (exporter/_fastscan.c); tests/test_fastscan.py proves the two equal.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable, NamedTuple, Protocol

from exporter.events import StatusEvent

Bucket = Callable[[float], Hashable]   # an event's timestamp -> the bucket it is counted in


class LabelFields(NamedTuple):
    """What the metric labels of one event are made from (the classifier and the code cap
    turn these into the label values; remote is classifier input, never a label)."""

    mta: str
    outcome: str
    code: str | None
    reply: str | None
    remote: str | None

    @classmethod
    def of(cls, event: StatusEvent) -> "LabelFields":
        return cls(event.mta, event.outcome, event.code, event.reply, event.remote)


# Events added up: label fields -> time bucket -> how many. Fields are in the order each first
# appears in the chunk (so codes meet the cardinality cap in the order the log has them).
Tally = dict[LabelFields, dict[Hashable, int]]


class ChunkResult(NamedTuple):
    """parse(): the chunk's events one by one, and its line counts."""

    events: list[StatusEvent]
    lines: int      # lines in the chunk
    matched: int    # lines that gave at least one event
    ignored: int    # lines that are not status lines
    unparsed: int   # lines that look like status lines but do not parse (bad UTF-8 included)


class Counted(NamedTuple):
    """count(): the chunk's events added up by label fields and time bucket, and its line counts."""

    tally: Tally
    newest: float | None   # the latest event timestamp in the chunk, or None
    lines: int
    matched: int
    ignored: int
    unparsed: int


def bucket_of(bucket: Bucket | None, timestamp: float | None) -> Hashable:
    """The bucket an event with this timestamp is counted in: None without a bucket or a time."""
    if bucket is None or timestamp is None:
        return None
    return bucket(timestamp)


def tally(result: ChunkResult, bucket: Bucket | None = None) -> Counted:
    """The reference count: parse()'s events added up, in the order each first appears."""
    return count_events(result.events, bucket, result.lines, result.matched, result.ignored, result.unparsed)


def count_events(events: Iterable[StatusEvent], bucket: Bucket | None = None, lines: int = 0,
                 matched: int = 0, ignored: int = 0, unparsed: int = 0) -> Counted:
    """Events added up as count() hands them over (also what a test uses to count a few events)."""
    counts: Tally = {}
    newest: float | None = None
    for event in events:
        stamp = event.timestamp
        where = counts.setdefault(LabelFields.of(event), {})
        key = bucket_of(bucket, stamp)
        where[key] = where.get(key, 0) + 1
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    return Counted(counts, newest, lines, matched, ignored, unparsed)


class Parser(Protocol):
    format: str  # the format's name, as used in config ("syslog", "exim", ...)

    def parse(self, chunk: bytes) -> ChunkResult: ...

    def count(self, chunk: bytes, bucket: Bucket | None = None) -> Counted: ...


class EventParser:
    """Base of a parser that reads events one by one: count() adds parse()'s events up."""

    format = ""

    def parse(self, chunk: bytes) -> ChunkResult:
        raise NotImplementedError

    def count(self, chunk: bytes, bucket: Bucket | None = None) -> Counted:
        return tally(self.parse(chunk), bucket)
