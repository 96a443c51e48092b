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

from exporter.sources import DOWN, OVERSIZED, READ_ERROR, UP, Sink

QUEUE_CHUNKS = 8      # chunks waiting at most (each up to about 1 MiB)
POLL_CHUNKS = 16      # chunks counted per poll before other sources get a turn

LINES = "lines"   # value: (chunk, marker) - marker is what state() resumes from (a cursor)
# Any other kind is a source event (exporter/sources/__init__.py): OVERSIZED with the number of
# lines dropped, READ_ERROR (the reading thread has logged what went wrong), DOWN; value: n.
__all__ = ["LINES", "OVERSIZED", "READ_ERROR", "DOWN", "QueuedSource"]


class QueuedSource:
    """The pipeline side of a threaded source: a queue, its sink and the last marker counted."""

    def __init__(self, name: str, fmt: str, sink: Sink, wake: Callable[[], None]) -> None:
        self.name = name
        self.fmt = fmt
        self.sink = sink
        self.wake = wake
        self.marker: Any = None     # marker of the last chunk counted
        self.closed = threading.Event()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._opened = False
        sink.event(UP)

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
    def poll(self) -> bool:
        for _ in range(POLL_CHUNKS):
            try:
                kind, value = self._queue.get_nowait()
            except queue.Empty:
                return False
            if kind == LINES:
                chunk, marker = value
                if not self._opened:
                    self.sink.opened(self, self.fmt, None, False)   # the format is seen in the first chunk
                    self._opened = True
                self.sink.chunk(self, chunk)
                if marker is not None:
                    self.marker = marker
            else:
                self.sink.event(kind, int(value))
        return not self._queue.empty()

    def deadline(self) -> float | None:
        return None

    def state(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.closed.set()
