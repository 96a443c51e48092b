"""The contract every format parser keeps (DESIGN.md section 1).

A source hands a parser a chunk: bytes holding one or more complete lines, each
ending in b"\\n" (a source never passes half a line). The parser returns a
ChunkResult. It never raises on any input, does no I/O and keeps no state but
what the lines themselves set up (an Exchange "#Fields:" header, a CRI partial
line waiting for its end).

A parser made with counts_only=True (the daemon's: it only counts) may hand back
its events already added up instead of one by one: `tally` maps the label fields
(mta, outcome, code, reply, remote) to how many events had them, in the order each
first appears in the chunk, and `newest` is the latest timestamp among them. Such a
result's `events` is empty; Metrics counts a tally exactly as it counts the events
it stands for. A parser made with hourly=True (report's) does the same with one more
element in each key: the start of the UTC hour of those events' time (Unix seconds,
a multiple of 3600), or None for events with no time. Every other parser, and every
parser made without either, leaves tally None.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from exporter.events import StatusEvent


class ChunkResult(NamedTuple):
    events: list[StatusEvent]
    lines: int      # lines in the chunk
    matched: int    # lines that gave at least one event
    ignored: int    # lines that are not status lines
    unparsed: int   # lines that look like status lines but do not parse (bad UTF-8 included)
    tally: "dict[tuple, int] | None" = None         # counts_only: events added up, see above
    newest: float | None = None                     # counts_only: the latest timestamp in tally


class Parser(Protocol):
    format: str  # the format's name, as used in config ("syslog", "exim", ...)

    def parse(self, chunk: bytes) -> ChunkResult: ...
