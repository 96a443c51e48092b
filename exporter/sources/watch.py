"""Directory watching for the file source: one watchdog (inotify) observer for all files.

Part of the source stage. Files are watched through the directory that holds them,
because a rotation creates a new file there. A handler does no work in watchdog's
thread: it tells the listening FileSource, which only wakes the pipeline thread.
The observer is made at the first watch, so a daemon that only polls uses no inotify.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("ndr_exporter.sources.files")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "DirWatcher", directory: str) -> None:
        self.watcher = watcher
        self.directory = directory

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Our own reads open and close files: those events say nothing new.
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        self.watcher.dispatch(self.directory, paths)


class DirWatcher:
    """One watchdog Observer for all file sources; each directory is watched once."""

    def __init__(self) -> None:
        self._observer: Any = None   # made at the first watch: polling-only daemons need no inotify
        self._stopped = False
        self._lock = threading.Lock()
        self._watches: dict[str, tuple[Any, tuple[int, int]]] = {}   # dir -> (watch, (dev, ino))
        self._listeners: dict[str, list[Callable[[list[str]], None]]] = {}

    def stop(self) -> None:
        with self._lock:
            observer, self._observer, self._stopped = self._observer, None, True
        if observer is not None:
            observer.stop()
            observer.join(5)

    def _started_observer(self) -> Any:
        with self._lock:
            if self._stopped:
                raise OSError("the directory watcher is stopped")
            if self._observer is None:
                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            return self._observer

    def ensure(self, directory: str, listener: Callable[[list[str]], None]) -> None:
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
        watch = self._started_observer().schedule(_Handler(self, directory), directory, recursive=False)
        with self._lock:
            self._watches[directory] = (watch, ident)

    def _drop(self, directory: str) -> None:
        with self._lock:
            current = self._watches.pop(directory, None)
        if current is not None and self._observer is not None:
            try:
                self._observer.unschedule(current[0])
            except (KeyError, OSError):
                pass

    def forget(self, listener: Callable[[list[str]], None]) -> None:
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

    def dispatch(self, directory: str, paths: list[str]) -> None:
        with self._lock:
            listeners = list(self._listeners.get(directory, ()))
        for listener in listeners:
            listener(paths)
