"""The source stage: where log lines come from (files, journald, stdin). Sources only read.

A source reads bytes, cuts them into chunks of complete lines (each ending in b"\\n") and
hands them, with a few events about its reading, to the Sink it was made with (the
daemon-side stream, exporter/stream.py: it detects the format, owns the parsers and writes
every self-metric). No module here imports the parser or the metrics stage. All counting
happens in the daemon's one pipeline thread: sources that read in threads of their own
(journald, stdin) pass what they read through a queue, and the pipeline thread takes it out
in poll(). So a checkpoint taken between two polls always matches the counters.

What every source offers the daemon (the `Source` protocol below; it is made with its
SourceConfig, its Sink, a wake() callback and its checkpointed state, see daemon.py):
  name                 its name (the source label of the self-metrics)
  poll() -> bool       read what is ready now; True when more is waiting
  deadline()           a time.monotonic() moment when it wants a poll without
                       an event (a retry, a poll interval), or None
  state()              its part of the checkpoint (JSON-serialisable)
  close()              stop reading and release files and processes

What a source hands a Sink:
  opened(reader, fmt, head, resumed)
                         a new reader (one file, one stream) whose lines are in format fmt
                         (a format name, or "auto"); head(n) gives its first n bytes for
                         format detection, or is None to detect from its first chunk;
                         resumed: reading starts past its start (so the parser is first
                         shown the file's header lines)
  chunk(reader, data)    complete lines of that reader
  closed(reader)         that reader is done
  event(kind, n=1)       one of SOURCE_EVENTS: ROTATED, TRUNCATED, READ_ERROR, OVERSIZED
                         (n lines dropped), UP (about to read), DOWN (done for good)
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Protocol

from exporter.framing import LineCutter

__all__ = ["BLOCK_BYTES", "LineCutter", "Sink", "Source", "SOURCE_EVENTS", "Backoff"]

# Read in large blocks and cut at the last newline (DESIGN section 6).
BLOCK_BYTES = 1024 * 1024

# The events a source reports besides its lines (the stream turns them into self-metrics).
ROTATED = "rotated"        # the file at the path was replaced by a new one
TRUNCATED = "truncated"    # the file shrank or was rewritten in place (copytruncate)
READ_ERROR = "read_error"  # opening or reading failed (the source has logged why)
OVERSIZED = "oversized"    # n lines longer than max_line_bytes were dropped
UP = "up"                  # the source is about to read: its counters should show, at 0
DOWN = "down"              # the source is done (stdin at its end)
SOURCE_EVENTS = (ROTATED, TRUNCATED, READ_ERROR, OVERSIZED, UP, DOWN)

Head = Callable[[int], bytes]


class Sink(Protocol):
    """Where a source hands what it read (exporter/stream.py's Stream)."""

    def opened(self, reader: Hashable, fmt: str, head: Head | None, resumed: bool) -> None: ...

    def chunk(self, reader: Hashable, data: bytes) -> None: ...

    def closed(self, reader: Hashable) -> None: ...

    def event(self, kind: str, n: int = 1) -> None: ...


class Source(Protocol):
    name: str

    def poll(self) -> bool: ...

    def deadline(self) -> float | None: ...

    def state(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Backoff:
    """Retry delays for a failing source: 1 s doubling up to 30 s, reset on success."""

    def __init__(self, first: float = 1.0, most: float = 30.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    def next_delay(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first
