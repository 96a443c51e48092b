"""Directory watching for the file source: one inotify descriptor and one thread for all files.

Part of the source stage. Files are watched through the directory that holds them,
because a rotation creates a new file there. The watcher thread does no reading: it
tells the listening FileSource, which only wakes the pipeline thread.

The inotify layer is watchdog's (`watchdog.observers.inotify_c.InotifyFD`: the descriptor,
the watches and their callbacks, reading and decoding events), used without its observer
and without starting its threads: a log written 20 times a second raises 20 IN_MODIFY
events a second, and watchdog's observer carried each across four threads (reader, raw
dispatcher, emitter, observer), about 0.5 ms of CPU per event (issue 14). Here one thread
of ours calls InotifyFD.read_events() (it blocks in poll() on the descriptor) and
handle_event(), which calls our per-directory callbacks in this same thread. Measured
against the ctypes reader this module had before (bench: the reading thread's CPU per
wake-up, 10 to 100 writes a second): 108-129 us against 114-124 us, the same within noise.

  - the kernel is told only the events a follower needs (MASK): new bytes, a file created,
    moved or deleted, the directory itself going away. Nobody's open, close or read of a
    file (ours included) raises anything;
  - the first event of a burst is told at once (a lone line is read at once); then the thread
    waits `gather` seconds (with a state file, the daemon's checkpoint gap, as /metrics cannot
    change sooner anyway) before reading again, so the rest of the burst arrives in one read
    (the kernel also merges repeated IN_MODIFY of a file meanwhile) and wakes the pipeline
    once: at most 1/gather wake-ups a second;
  - when the queue overflowed (IN_Q_OVERFLOW), every listener is woken: its poll finds out.

The descriptor and the thread are made at the first watch, so a daemon that only polls
uses no inotify.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, InotifyFD

log = logging.getLogger("ndr_exporter.sources.files")

IN_MODIFY = InotifyConstants.IN_MODIFY
IN_DELETE_SELF = InotifyConstants.IN_DELETE_SELF
IN_MOVE_SELF = InotifyConstants.IN_MOVE_SELF
# IN_ATTRIB: a chmod can make an unreadable file readable (its retry then need not wait).
MASK = (InotifyConstants.IN_MODIFY | InotifyConstants.IN_ATTRIB | InotifyConstants.IN_MOVED_FROM
        | InotifyConstants.IN_MOVED_TO | InotifyConstants.IN_CREATE | InotifyConstants.IN_DELETE
        | InotifyConstants.IN_DELETE_SELF | InotifyConstants.IN_MOVE_SELF | InotifyConstants.IN_ONLYDIR)
GATHER = 0.05          # seconds: after telling of an event, wait this long before reading the next ones
# A listener is told the paths that changed in its directory, and whether bytes were only
# written to them (every event IN_MODIFY: nothing was created, moved or deleted).
Listener = Callable[[list[str], bool], None]


class _Batch:
    """What one read of the descriptor brought, by directory."""

    def __init__(self) -> None:
        self.touched: dict[str, list[str]] = {}
        self.structural: set[str] = set()   # directories where more than bytes were written
        self.overflow = False

    def add(self, directory: str, path: str, written: bool) -> None:
        paths = self.touched.setdefault(directory, [])
        if not written:
            self.structural.add(directory)
        if path not in paths:
            paths.append(path)


class _DirCallback:
    """watchdog's WatchCallback for one watched directory: files what it hears in the batch."""

    def __init__(self, watcher: "DirWatcher", directory: str) -> None:
        self.watcher = watcher
        self.directory = directory

    def on_event(self, event: InotifyEvent) -> None:
        batch = self.watcher._batch
        if event.mask & (IN_DELETE_SELF | IN_MOVE_SELF) or not event.name:
            batch.add(self.directory, self.directory, False)   # the directory itself went: re-watched
        else:
            batch.add(self.directory, os.path.join(self.directory, os.fsdecode(event.name)),
                      event.mask == IN_MODIFY)

    def on_watch_deleted(self, wd: int) -> None:
        """The kernel dropped the watch (IN_IGNORED: the directory went, or its filesystem)."""
        self.watcher._forget_watch(self.directory, wd)
        self.watcher._batch.add(self.directory, self.directory, False)

    def on_queue_overflow(self) -> None:
        self.watcher._batch.overflow = True

    def on_events_lost(self) -> None:
        pass   # on_queue_overflow already woke every listener


class DirWatcher:
    """One inotify descriptor for all file sources; each directory is watched once."""

    def __init__(self, gather: float = GATHER) -> None:
        self.gather = gather
        self._inotify: InotifyFD | None = None   # made at the first watch: polling-only daemons need no inotify
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._watches: dict[str, tuple[int, tuple[int, int]]] = {}   # dir -> (wd, (dev, ino))
        self._listeners: dict[str, list[Listener]] = {}
        self._batch = _Batch()   # filled by the callbacks during one handle_event() round (watcher thread only)

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            thread, self._thread = self._thread, None
            inotify, self._inotify = self._inotify, None
        if inotify is not None:
            inotify.close()   # wakes a read_events() under way; the descriptor is closed after it
        if thread is not None:
            thread.join(5)

    def _started(self) -> InotifyFD:
        """The inotify descriptor, made (with its thread) at the first watch."""
        with self._lock:
            if self._stopped.is_set():
                raise OSError("the directory watcher is stopped")
            if self._inotify is None:
                self._inotify = InotifyFD()   # not started: our thread reads it (see the docstring)
                self._thread = threading.Thread(target=self._run, args=(self._inotify,), name="inotify",
                                                daemon=True)
                self._thread.start()
            return self._inotify

    def ensure(self, directory: str, listener: Listener) -> None:
        """Watch directory for listener (again, if it was replaced); OSError when it cannot be watched."""
        try:
            st = os.stat(directory)
        except OSError:
            self._drop(directory)
            raise
        ident = (st.st_dev, st.st_ino)
        with self._lock:
            listeners = self._listeners.setdefault(directory, [])
            if listener not in listeners:
                listeners.append(listener)
            current = self._watches.get(directory)
            if current is not None and current[1] == ident:
                return
        self._drop(directory)
        inotify = self._started()
        wd = inotify.add_callback(os.fsencode(directory), MASK, _DirCallback(self, directory), directory)
        with self._lock:
            self._watches[directory] = (wd, ident)

    def _drop(self, directory: str) -> None:
        with self._lock:
            current = self._watches.pop(directory, None)
            inotify = self._inotify
        if current is not None and inotify is not None:
            # a watch the kernel dropped already is let go quietly
            inotify.remove_callbacks([(current[0], directory)])

    def _forget_watch(self, directory: str, wd: int) -> None:
        with self._lock:
            if self._watches.get(directory, (None,))[0] == wd:
                del self._watches[directory]

    def forget(self, listener: Listener) -> None:
        """Stop telling listener; directories nobody listens to any more are unwatched."""
        with self._lock:
            empty = []
            for directory, listeners in self._listeners.items():
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    empty.append(directory)
            for directory in empty:
                del self._listeners[directory]
        for directory in empty:
            self._drop(directory)

    # --- the watcher thread ---
    def _run(self, inotify: InotifyFD) -> None:
        while not self._stopped.is_set():
            try:
                events = inotify.read_events()   # blocks until events, or close() from stop()
            except OSError:
                if not self._stopped.is_set():
                    log.exception("directory watcher: reading inotify failed; watching stops")
                return
            if self._stopped.is_set():
                return
            if not events:
                continue
            self._batch = _Batch()
            try:
                for event in events:
                    inotify.handle_event(event)   # our _DirCallback files it in self._batch
                self._deliver(self._batch)
            except Exception:   # a listener's bug must not end watching
                log.exception("directory watcher: a listener failed")
            # The first event of a burst was told at once; the rest queues up meanwhile (the
            # kernel merges repeated IN_MODIFY of a file) and the next wake-up carries all of it.
            if self._stopped.wait(self.gather):
                return

    def _deliver(self, batch: _Batch) -> None:
        with self._lock:
            touched, structural = batch.touched, batch.structural
            if batch.overflow:
                touched = {directory: [directory] for directory in self._listeners}
                structural = set(touched)
            calls = [(listener, paths, directory not in structural) for directory, paths in touched.items()
                     for listener in self._listeners.get(directory, ())]
        for listener, paths, written in calls:
            listener(paths, written)

    def dispatch(self, directory: str, paths: list[str], written: bool = False) -> None:
        """Tell directory's listeners that these paths changed (as an event would)."""
        with self._lock:
            listeners = list(self._listeners.get(directory, ()))
        for listener in listeners:
            listener(paths, written)
