"""Directory watching for the file source: one inotify descriptor and one thread for all files.

Part of the source stage. Files are watched through the directory that holds them,
because a rotation creates a new file there. The watcher thread does no reading: it
tells the listening FileSource, which only wakes the pipeline thread.

Why inotify directly and not through watchdog: a log written 20 times a second raises 20
IN_MODIFY events a second, and in watchdog (7.x) each one crossed four threads (reader,
raw dispatcher, emitter, observer) before it reached us, about 0.5 ms of CPU per event,
more than prometheus-postfix-exporter spends following the whole log (issue 14, measured
in docs/benchmark.md). Here:

  - the kernel is told only the events a follower needs (MASK): new bytes, a file created,
    moved or deleted, the directory itself going away. Nobody's open, close or read of a
    file (ours included) raises anything;
  - one thread blocks in poll() on the descriptor and tells the first event of a burst at
    once (a lone line is read at once); then it waits `gather` seconds (with a state file,
    the daemon's checkpoint gap, as /metrics cannot change sooner anyway) before reading again, so the
    rest of the burst arrives in one read (the kernel also merges repeated IN_MODIFY of a
    file meanwhile) and wakes the pipeline once: at most 1/gather wake-ups a second;
  - when the queue overflowed (IN_Q_OVERFLOW), every listener is woken: its poll finds out.

The descriptor and the thread are made at the first watch, so a daemon that only polls
uses no inotify.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import struct
import threading
from typing import Callable

log = logging.getLogger("ndr_exporter.sources.files")

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000

# IN_ATTRIB: a chmod can make an unreadable file readable (its retry then need not wait).
MASK = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF)
GATHER = 0.05          # seconds: after telling of an event, wait this long before reading the next ones
# A listener is told the paths that changed in its directory, and whether bytes were only
# written to them (every event IN_MODIFY: nothing was created, moved or deleted).
Listener = Callable[[list[str], bool], None]
_EVENT = struct.Struct("iIII")   # wd, mask, cookie, len (struct inotify_event, then the name)

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(result: int, what: str, path: str = "") -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}", path or None)
    return result


def parse_events(buffer: bytes) -> list[tuple[int, int, bytes]]:
    """(wd, mask, name) of each struct inotify_event in what one read() returned."""
    events = []
    at, end = 0, len(buffer)
    while at + _EVENT.size <= end:
        wd, mask, _cookie, length = _EVENT.unpack_from(buffer, at)
        at += _EVENT.size
        name = buffer[at:at + length].split(b"\0", 1)[0]
        at += length
        events.append((wd, mask, name))
    return events


class DirWatcher:
    """One inotify descriptor for all file sources; each directory is watched once."""

    def __init__(self, gather: float = GATHER) -> None:
        self.gather = gather
        self._fd = -1                 # made at the first watch: polling-only daemons need no inotify
        self._stop_r = self._stop_w = -1
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._watches: dict[str, tuple[int, tuple[int, int]]] = {}   # dir -> (wd, (dev, ino))
        self._dirs: dict[int, str] = {}                             # wd -> dir
        self._listeners: dict[str, list[Listener]] = {}

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        if thread is not None:
            os.write(self._stop_w, b"x")
            thread.join(5)
        for fd in (self._fd, self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._stop_r = self._stop_w = -1

    def _started(self) -> int:
        """The inotify descriptor, made (with its thread) at the first watch."""
        with self._lock:
            if self._stopped:
                raise OSError("the directory watcher is stopped")
            if self._fd < 0:
                self._fd = _check(_lib().inotify_init1(IN_CLOEXEC | IN_NONBLOCK), "inotify_init1")
                self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
                self._thread = threading.Thread(target=self._run, name="inotify", daemon=True)
                self._thread.start()
            return self._fd

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
        fd = self._started()
        wd = _check(_lib().inotify_add_watch(fd, os.fsencode(directory), MASK | IN_ONLYDIR),
                    "inotify_add_watch", directory)
        with self._lock:
            self._watches[directory] = (wd, ident)
            self._dirs[wd] = directory

    def _drop(self, directory: str) -> None:
        with self._lock:
            current = self._watches.pop(directory, None)
            if current is None:
                return
            if self._dirs.get(current[0]) == directory:
                del self._dirs[current[0]]
            fd = self._fd
        if fd >= 0:
            _lib().inotify_rm_watch(fd, current[0])   # fails harmlessly when the kernel dropped it already

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
    def _run(self) -> None:
        events = select.poll()
        events.register(self._fd, select.POLLIN)
        events.register(self._stop_r, select.POLLIN)
        stopping = select.poll()
        stopping.register(self._stop_r, select.POLLIN)
        while True:
            if any(fd == self._stop_r for fd, _ in events.poll()):
                return
            try:
                buffer = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            try:
                self._deliver(parse_events(buffer))
            except Exception:   # a listener's bug must not end watching
                log.exception("directory watcher: a listener failed")
            # The first event of a burst was told at once; the rest queues up meanwhile (the
            # kernel merges repeated IN_MODIFY of a file) and the next wake-up carries all of it.
            if stopping.poll(int(self.gather * 1000)):
                return

    def _deliver(self, events: list[tuple[int, int, bytes]]) -> None:
        touched: dict[str, list[str]] = {}
        structural: set[str] = set()   # directories where more than bytes were written
        overflow = False
        with self._lock:
            for wd, mask, name in events:
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                    continue
                directory = self._dirs.get(wd)
                if directory is None:
                    continue
                paths = touched.setdefault(directory, [])
                if mask != IN_MODIFY:
                    structural.add(directory)
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) or not name:
                    paths.append(directory)   # the directory itself went: the source re-watches
                    if mask & IN_IGNORED:
                        del self._dirs[wd]
                        if self._watches.get(directory, (None,))[0] == wd:
                            del self._watches[directory]
                else:
                    path = os.path.join(directory, os.fsdecode(name))
                    if path not in paths:
                        paths.append(path)
            if overflow:
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
