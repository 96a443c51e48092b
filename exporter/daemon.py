"""The daemon loop: read every source, count, checkpoint, then publish.

This is where the stages meet at run time (source -> parser -> classifier ->
metrics). One pipeline thread does all the reading, counting and
checkpointing, so a checkpoint always holds exactly what was counted:

  - it blocks on an Event until a source has something (watchdog handlers and
    the journald/stdin reader threads set it) or a source's deadline comes (a
    retry, a poll interval, a rotated file to close): an idle daemon uses no CPU;
  - it polls every source; a source hands each chunk of complete lines, and its events
    (rotated, read error, ...), to its Stream (exporter/stream.py), which detects the
    format, parses, and counts into the live counts and the self-metrics;
  - when something changed, it writes the checkpoint (source positions +
    Metrics.state()) and only then Metrics.commit() publishes the counts, so
    /metrics never runs ahead of a restart (fsync'd at start, at stop and every
    checkpoint.SYNC_INTERVAL; between, a slot written in place: exporter/checkpoint.py).
    Checkpoints are at least half of checkpoint_interval (default 1 s) apart: a busy log is checkpointed about
    twice a second, and a line shows in /metrics within checkpoint_interval.
    Without a state file there is nothing to write, so the counts are
    published after every poll that read something: a backlog shows in
    /metrics the moment it is read, not up to half an interval later.

Used by exporter.cli: Daemon(config), .metrics, .start(), .stop(), and
.reload(sources) on SIGHUP.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from exporter import checkpoint
from exporter.config import ServeConfig, SourceConfig
from exporter.metrics import Counts, Metrics
from exporter.parsers import FORMATS, make_parser
from exporter.sources import READ_ERROR, UP, Source
from exporter.sources import kinds
from exporter.sources.files import valid_entries
from exporter.sources.watch import GATHER, DirWatcher
from exporter.stream import Stream

log = logging.getLogger("ndr_exporter.daemon")



class Daemon:
    """The sources of one ServeConfig, the pipeline thread that counts them, and the checkpoint."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._writer = checkpoint.Writer(config.state_file) if config.state_file else None
        saved = self._writer.load() if self._writer is not None else None
        counts = None
        self._saved_sources: dict[str, Any] = {}
        if saved is not None:
            try:
                counts = Counts.from_state(saved["metrics"])
                self._saved_sources = dict(saved["sources"])
                for source in counts.clamp_future(time.time(), saved.get("written_at")):
                    logging.getLogger("ndr_exporter.checkpoint").warning(
                        "checkpoint %s: the last event time of %s was ahead of the clock; brought back to "
                        "when the checkpoint was written", config.state_file, source)
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                logging.getLogger("ndr_exporter.checkpoint").error(
                    "checkpoint %s holds unusable counters (%s): starting fresh", config.state_file, err)
                counts, self._saved_sources = None, {}
        # Positions of files that no configured source follows now (positions belong to files, not
        # to source names): a file source that finds one of these files again resumes it.
        self._known: list[dict[str, Any]] = []
        if saved is not None:
            configured = {source.name for source in config.sources}
            self._known = valid_entries({"files": saved.get("files", [])})[0]
            for name, state in self._saved_sources.items():
                if name not in configured:
                    self._known += valid_entries(state)[0]
        self.metrics = Metrics(code_cap=config.code_cap, counts=counts, checkpointing=self._writer is not None,
                               series_cap=config.series_cap)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._sources: dict[str, Source] = {}
        self._streams: dict[str, Stream] = {}   # each source's: where it hands its lines and events
        self._configs: dict[str, SourceConfig] = {}
        self._reload_lock = threading.Lock()
        self._pending_reload: list[SourceConfig] | None = None
        # Events gathered for one wake-up: with a state file, /metrics changes no oftener than a
        # checkpoint gap, so a burst waits that long; without one, a read is published at once.
        self._watcher = DirWatcher(gather=self._gap() if self._writer is not None else GATHER)
        self._thread: threading.Thread | None = None
        self._dirty = False
        self._last_save = 0.0
        self._backlog = False   # the last poll left data waiting (a catch-up is under way)
        self._last_poll = 0.0
        self._last_sig: Any = None

    # --- the API the CLI uses ---
    def start(self) -> None:
        """Open the sources and read what is there now; then follow in the pipeline thread."""
        _load_parsers({source.format for source in self.config.sources})
        kinds.kinds()   # every source module loads, or the start fails naming it
        for source_config in self.config.sources:
            self._add(source_config)
        # The first poll runs here, before start() returns, so that with start_at "end" every
        # line written after start() is counted; a large backlog continues in the thread.
        more = self._poll_all()
        self._backlog = more
        self._save()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)
        self._thread.start()
        if more:
            self._wake.set()

    def stop(self) -> None:
        """Read what is left, write the final checkpoint, publish, and release everything."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for source in self._sources.values():
            source.close()
        self._sources.clear()
        self._watcher.stop()
        if self._writer is not None:
            self._writer.close()

    def reload(self, sources: list[SourceConfig]) -> None:
        """Follow a new list of sources (SIGHUP); unchanged sources carry on where they are."""
        with self._reload_lock:
            self._pending_reload = list(sources)
        self._wake.set()

    # --- the pipeline thread ---
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._wake.wait(self._timeout())
                if self._stopping.is_set():
                    break
                self._wake.clear()
                self._step()
            except Exception:   # a bug must not stop counting: log it, pause, go on
                log.exception("pipeline error; carrying on")
                self._stopping.wait(1.0)
        try:
            self._apply_reload()
            while self._poll_all():   # drain what is there before the last checkpoint
                pass
        finally:
            self._save(durable=True)

    def _step(self) -> None:
        self._apply_reload()
        self._backlog = self._poll_all()   # True: more was waiting; read on at once
        if self._backlog:
            self._wake.set()
        if self._dirty and (self._writer is None or self._due()):
            self._save()
        owed = self._sync_owed()
        if owed is not None and time.monotonic() >= owed:
            self._save(durable=True)   # the last checkpoint was in a slot and nothing came after it

    def _timeout(self) -> float | None:
        times = [t for t in (s.deadline() for s in self._sources.values()) if t is not None]
        if self._dirty:
            times.append(self._last_save + self._gap() * 0.9)
        owed = self._sync_owed()
        if owed is not None:
            times.append(owed)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _sync_owed(self) -> float | None:
        """When a durable checkpoint is owed although nothing new was read: the log went quiet
        after a checkpoint that is only in a slot. While lines come, the next checkpoint after
        checkpoint.SYNC_INTERVAL is durable by itself (Writer.write), so this comes two gaps
        later and only when nothing waits to be checkpointed: a write out of the trickle's
        rhythm would put the next publishes up to a gap behind the watcher's wake-ups."""
        owed = self._writer.sync_deadline() if self._writer is not None else None
        if owed is None or self._dirty:
            return None
        return owed + 2 * self._gap()

    def _gap(self) -> float:
        """The least time between two checkpoints, and the watcher's gathering window."""
        return self.config.checkpoint_interval / 2

    def _due(self) -> bool:
        """A checkpoint may be written now. The watcher wakes us about one gap after the last
        wake-up: a tenth of slack lets that wake-up write it, rather than a timer a moment later."""
        return time.monotonic() - self._last_save >= self._gap() * 0.9

    def _poll_all(self) -> bool:
        self._last_poll = time.monotonic()
        more = False
        for name, source in list(self._sources.items()):
            try:
                more |= source.poll()
            except Exception:   # a bug in one source must not stop the others
                log.exception("%s: reading failed", name)
                self._streams[name].event(READ_ERROR)
        sig = self._signature()
        if sig != self._last_sig:
            self._last_sig = sig
            self._dirty = True
        return more

    def _signature(self) -> Any:
        """What a checkpoint would hold besides the status counts (those change only through emit)."""
        live = self.metrics.live
        return ([s.state() for s in self._sources.values()],
                sum(live.rotations.values()), sum(live.read_errors.values()), sum(live.lines.values()))

    def _changed(self) -> None:
        self._dirty = True

    def _save(self, durable: bool = False) -> None:
        """Checkpoint (when there is a state file), then publish. The checkpoint is fsync'd at
        the first and the last, and at most checkpoint.SYNC_INTERVAL apart between (see
        exporter/checkpoint.py: a process crash loses nothing, a machine crash re-reads lines)."""
        states = {name: source.state() for name, source in self._sources.items()}
        if self._writer is not None:
            del self._known[:-checkpoint.KNOWN_FILES]
            self.metrics.checkpoint_written(
                self._writer.write(states, self.metrics.state(), self._known, durable=durable))
        self.metrics.commit(states)
        self._dirty = False
        self._last_save = time.monotonic()

    # --- sources ---
    def _add(self, config: SourceConfig) -> None:
        state = self._saved_sources.get(config.name)
        stream = self._streams[config.name] = Stream(config.name, self.metrics, self._changed)
        try:
            source = self._make(config, stream, state)
        except Exception as err:
            log.error("%s: cannot start this source: %s", config.name, err)
            stream.event(UP)
            stream.event(READ_ERROR)
            return
        self._sources[config.name] = source
        self._configs[config.name] = config

    def _make(self, config: SourceConfig, stream: Stream, state: dict[str, Any] | None) -> Source:
        return kinds.make(config, stream, self._wake.set, state, self._watcher, known=self._known)

    def _apply_reload(self) -> None:
        with self._reload_lock:
            wanted, self._pending_reload = self._pending_reload, None
        if wanted is None:
            return
        new = {c.name: c for c in wanted}
        for name in list(self._sources):
            old = self._configs[name]
            if new.get(name) == old:
                continue
            source = self._sources.pop(name)
            del self._configs[name]
            state = source.state()
            source.close()
            self._saved_sources.pop(name, None)
            if name in new and _same_input(old, new[name]):
                self._saved_sources[name] = state   # same files or journal: keep the position
            elif old.kind == "file":
                self._known += valid_entries(state)[0]   # its files may be followed again
            log.info("%s: source %s", name, "changed" if name in new else "removed")
        for name, config in new.items():
            if name not in self._sources:
                self._add(config)
                log.info("%s: source added", name)
        self._dirty = True


def _load_parsers(formats: set[str]) -> None:
    """Load the parser modules of these formats (all of them for "auto") now, so that the first
    lines a source reads do not also pay for importing the parsers and compiling their patterns."""
    for fmt in (FORMATS if "auto" in formats else formats):
        if fmt in FORMATS:
            make_parser(fmt)


def _same_input(a: SourceConfig, b: SourceConfig) -> bool:
    return (a.kind, a.path, a.journal_file, a.units, a.identifiers) == \
        (b.kind, b.path, b.journal_file, b.units, b.identifiers)
