"""The contract every format parser keeps (DESIGN.md section 1).

A source hands a parser a chunk: bytes holding one or more complete lines, each
ending in b"\\n" (a source never passes half a line). The parser returns a
ChunkResult. It never raises on any input, does no I/O and keeps no state but
what the lines themselves set up (an Exchange "#Fields:" header, a CRI partial
line waiting for its end).
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


class Parser(Protocol):
    format: str  # the format's name, as used in config ("syslog", "exim", ...)

    def parse(self, chunk: bytes) -> ChunkResult: ...
