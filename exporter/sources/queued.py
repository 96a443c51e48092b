"""Sources that read in a thread of their own (journald, stdin) hand their lines over here.

Part of the source stage. The reading thread cuts what it reads into chunks of
complete lines and puts them on a small bounded queue (it waits when the
pipeline is behind); the daemon's pipeline thread takes them off in poll(), so
counting and checkpoints stay in that one thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from exporter.metrics import Metrics
from exporter.parsers.base import Parser
from exporter.sources import DETECT_BYTES, Emit, parser_for

QUEUE_CHUNKS = 8      # chunks waiting at most (each up to about 1 MiB)
POLL_CHUNKS = 16      # chunks counted per poll before other sources get a turn

LINES = "lines"            # value: (chunk, marker) - marker is what state() resumes from (a cursor)
OVERSIZED = "oversized"    # value: number of lines dropped as too long
READ_ERROR = "read_error"  # value: None (the reading thread has logged what went wrong)


class QueuedSource:
    """The pipeline side of a threaded source: a queue, a parser and the last marker counted."""

    def __init__(self, name: str, fmt: str, metrics: Metrics, wake: Callable[[], None]) -> None:
        self.name = name
        self.fmt = fmt
        self.metrics = metrics
        self.wake = wake
        self.marker: Any = None     # marker of the last chunk counted
        self.closed = threading.Event()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._parser: Parser | None = None
        metrics.declare_source(name)

    # --- reading thread side ---
    def put(self, kind: str, value: Any) -> bool:
        """Hand something to the pipeline; waits while the queue is full. False once closed."""
        while not self.closed.is_set():
            try:
                self._queue.put((kind, value), timeout=0.5)
            except queue.Full:
                continue
            self.wake()
            return True
        return False

    # --- pipeline side (the Source protocol) ---
    def poll(self, emit: Emit) -> bool:
        for _ in range(POLL_CHUNKS):
            try:
                kind, value = self._queue.get_nowait()
            except queue.Empty:
                return False
            if kind == LINES:
                chunk, marker = value
                if self._parser is None:
                    self._parser = parser_for(self.fmt, chunk[:DETECT_BYTES])
                emit(self._parser, chunk)
                if marker is not None:
                    self.marker = marker
            elif kind == OVERSIZED:
                self.metrics.add_lines(self.name, 0, 0, 0, oversized=int(value))
            elif kind == READ_ERROR:
                self.metrics.add_read_error(self.name)
        return not self._queue.empty()

    def deadline(self) -> float | None:
        return None

    def state(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.closed.set()
