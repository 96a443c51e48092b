"""The stdin source: count lines piped into the daemon (`cat mail.log | ndr-exporter --source.stdin`).

Part of the source stage. A thread reads sys.stdin.buffer in large blocks and
passes complete lines to the pipeline (see queued.py). At end of input that
source is done; the daemon keeps serving what it counted. Nothing to
checkpoint: a pipe cannot be read again.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, BinaryIO, Callable

from exporter.config import SourceConfig
from exporter.sources import BLOCK_BYTES, LineCutter, Sink
from exporter.sources.queued import DOWN, LINES, OVERSIZED, READ_ERROR, QueuedSource

log = logging.getLogger("ndr_exporter.sources.stdin")


class StdinSource(QueuedSource):
    def __init__(self, config: SourceConfig, sink: Sink, wake: Callable[[], None],
                 stream: BinaryIO | None = None) -> None:
        super().__init__(config.name, config.format, sink, wake)
        self.max_line = config.max_line_bytes
        self.stream = stream if stream is not None else sys.stdin.buffer
        # A daemon thread: a blocking read on a pipe cannot be interrupted, and must not hold up exit.
        self._thread = threading.Thread(target=self._run, name=f"stdin-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cutter = LineCutter(self.max_line)
        while not self.closed.is_set():
            try:
                data = self.stream.read1(BLOCK_BYTES)  # type: ignore[attr-defined]
            except (OSError, ValueError) as err:
                log.warning("%s: cannot read stdin: %s; stopping this source", self.name, err)
                self.put(READ_ERROR, 1)
                return
            if not data:
                break
            whole, oversized = cutter.feed(data)
            if oversized:
                self.put(OVERSIZED, oversized)
            if whole:
                self.put(LINES, (whole, None))
        last = cutter.finish()
        if last:
            self.put(LINES, (last, None))
        log.info("%s: end of stdin; this source is done, the exporter keeps serving", self.name)
        self.put(DOWN, 1)


# --- registration (exporter/sources/kinds.py) ---
KIND = "stdin"


def make_source(config: SourceConfig, sink: Sink, wake: Callable[[], None],
                state: dict[str, Any] | None, watcher: object) -> StdinSource:
    return StdinSource(config, sink, wake)
