"""The file source: follow log files (a path or a glob) through rotation, crashes and restarts.

Part of the source stage (see exporter/sources/__init__.py). Watchdog (inotify)
reports changes in the directories that hold the files (watch.py); its handler
only wakes the daemon's pipeline thread, which then calls poll(). With
`poll: true` no watch is set and the pipeline polls at poll_interval instead
(for filesystems that send no events, such as NFS).

Each open file is a Tail: a file descriptor, the (device, inode) it had when
opened, how far it has been read, and a fingerprint of its first bytes. On
every poll the source:
  1. resolves the path (or glob) and opens files it does not follow yet; a new
     inode at a plain path is a rotation (rename-and-create, delete-and-recreate,
     symlink swap): the old file stays open and is drained for ROTATE_WAIT
     seconds more, so the writer's last lines are read before it is closed;
  2. notices a file that shrank or whose first bytes changed (truncation,
     copytruncate): the lines not read yet are taken from the rotated copy when
     one is found (mail.log.1 or mail.log.1.gz), then reading restarts at 0;
  3. reads every open file from its position to the end in large blocks.

State for the checkpoint: per file path, device, inode, offset (the end of the
last complete line read), whether an oversized line is being skipped, and the
fingerprint. On start these are found again by rotated.same_file (device and
inode, or inode and first bytes after a remount, or a full fingerprint alone) at
the path or among its rotated siblings (rotated.py), so a rotation while the
daemon was down is followed too; a file shorter than its offset with the same
first bytes is resumed at its end. Positions belong to files: `known` (the
daemon's list of entries of sources that are gone) lets a renamed or re-added
source resume a file it recognises.

Nothing here blocks or mistakes an error for "gone": files are opened with
O_NONBLOCK and only regular ones are read (a FIFO is skipped, logged); a glob's
folder that cannot be listed is a read error and its files stay open; files
left unopened for want of descriptors (FD_RESERVE are kept free) are a read
error naming the limit, retried.
"""

from __future__ import annotations

import errno
import glob
import gzip
import logging
import os
import re
import resource
import stat
import threading
import time
from typing import Any, Callable

from exporter.config import SourceConfig
from exporter.framing import file_kind, head, is_gzip, open_log
from exporter.sources import (
    BLOCK_BYTES, OVERSIZED, READ_ERROR, ROTATED, TRUNCATED, UP, Backoff, LineCutter, Sink,
)
from exporter.sources.rotated import FP_BYTES, NUMBERED, find_rotated, fingerprint, same_file, siblings
from exporter.sources.watch import DirWatcher

log = logging.getLogger("ndr_exporter.sources.files")

ALL: set[str] = set()     # FileSource._heard: look at everything (a sentinel, compared by identity)
ROTATE_WAIT = 5.0         # seconds a rotated-away file is still drained before it is closed
POLL_BUDGET = 16 * BLOCK_BYTES  # bytes read from one file per poll before others get a turn
FIRST_BLOCK_BYTES = 64 * 1024   # the read buffer until a read fills it (a trickle never does)
FD_RESERVE = 128          # descriptors left for HTTP connections, watches, checkpoints, journalctl
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC   # a FIFO must never block an open
ENTRY_KEYS = {"path": str, "dev": int, "ino": int, "offset": int, "fp": str, "fp_len": int}
_PREADV = hasattr(os, "preadv")


def _pread_into(fd: int, block: bytearray, offset: int) -> int:
    """os.preadv where the platform lacks it."""
    data = os.pread(fd, len(block), offset)
    block[:len(data)] = data
    return len(data)


def _plain_root(pattern: str) -> str:
    """The deepest folder of a glob pattern without wildcards: the one to list."""
    directory = os.path.dirname(pattern)
    while glob.has_magic(directory):
        directory = os.path.dirname(directory)
    return directory


def _open_files_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 30 if soft == resource.RLIM_INFINITY else int(soft)


def _resume_point(fd: int, offset: int, size: int) -> tuple[int, bool]:
    """Where to resume a recognised file: its offset, or its end when it is shorter than that (it
    lost its tail in a crash: what it still holds was counted). True when that end is inside a
    line (the rest of that line, already counted, is skipped up to its newline)."""
    if size >= offset:
        return offset, False
    torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    return size, torn


def valid_entries(state: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The usable file entries of a checkpointed state, and what was wrong with it (None: nothing)."""
    if state is None:
        return [], None
    if not isinstance(state, dict):
        return [], f"a JSON {type(state).__name__}, not an object"
    files = state.get("files", [])
    if not isinstance(files, list):
        return [], f'"files" is a JSON {type(files).__name__}, not a list'
    good = [e for e in files if isinstance(e, dict) and all(
        isinstance(e.get(k), t) and not isinstance(e.get(k), bool) for k, t in ENTRY_KEYS.items())]
    bad = len(files) - len(good)
    if bad:
        return good, (f"{bad} of {len(files)} file entries lack a path, dev, ino, offset, fp or fp_len "
                      "of the right type")
    return good, None


# --- one open file --------------------------------------------------------------------------

class Tail:
    """One open log file and how far it has been read."""

    open_count = 0                          # Tails open in this process (each holds a descriptor)

    def __init__(self, path: str, fd: int, pos: int, max_line: int, skipping: bool = False) -> None:
        st = os.fstat(fd)
        Tail.open_count += 1
        self._open = True
        self.path = path
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.pos = pos                      # bytes read so far
        self.start = pos                    # where reading began (a parser may need the file's header)
        self.cutter = LineCutter(max_line, skipping)
        self.announced = False              # the sink has been told of this reader (Sink.opened)
        self.gone_since: float | None = None  # when it stopped being the file at the path
        self.deleted = False                  # it was deleted (not renamed)
        self.size = -1
        self.mtime = -1
        self.fp = ""
        self.fp_len = 0
        self.refresh_fingerprint()

    @property
    def offset(self) -> int:
        """Where the next complete line starts: the checkpoint resumes here."""
        return self.pos - len(self.cutter.rest)

    def head(self, n: int) -> bytes:
        return os.pread(self.fd, n, 0)

    def refresh_fingerprint(self) -> None:
        if self.fp_len < FP_BYTES:
            head = self.head(FP_BYTES)
            if len(head) > self.fp_len:
                self.fp, self.fp_len = fingerprint(head), len(head)

    def rewritten(self, size: int) -> bool:
        """True when the file shrank below what was read, or its first bytes are not what they were."""
        if size < self.pos:
            return True
        return self.fp_len > 0 and fingerprint(self.head(self.fp_len)) != self.fp

    def state(self) -> dict[str, Any]:
        return {"path": self.path, "dev": self.dev, "ino": self.ino, "offset": self.offset,
                "skipping": self.cutter.skipping, "fp": self.fp, "fp_len": self.fp_len,
                "rotated": self.gone_since is not None}

    def reopen(self, fd: int) -> None:
        """The same file seen again through another descriptor (remounted): carry on at pos."""
        try:
            os.close(self.fd)
        except OSError:
            pass
        st = os.fstat(fd)
        self.fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
        self.size = self.mtime = -1

    def close(self) -> None:
        if self._open:
            self._open = False
            Tail.open_count -= 1
        try:
            os.close(self.fd)
        except OSError:
            pass


# --- the source -----------------------------------------------------------------------------

class FileSource:
    """Follows one configured path or glob; each matching file is a Tail (a reader of its own for the sink)."""

    def __init__(self, config: SourceConfig, sink: Sink, wake: Callable[[], None],
                 watcher: DirWatcher | None, state: Any = None,
                 known: list[dict[str, Any]] | None = None) -> None:
        assert config.path
        self.name = config.name
        self.config = config
        self.sink = sink
        self.wake = wake
        self.watcher = None if config.poll else watcher
        self.pattern = os.path.abspath(config.path)
        self.is_glob = glob.has_magic(self.pattern)
        base = os.path.basename(self.pattern)
        self._prefix = re.split(r"[*?\[]", base, maxsplit=1)[0]
        self.tails: list[Tail] = []
        self._block = bytearray(FIRST_BLOCK_BYTES)   # every tail's reads land here (see _read)
        # Files followed before under another source name (renamed, removed and re-added, a path
        # widened to a glob) or on another device: the daemon's list, entries taken out when used.
        self._known = known if known is not None else []
        entries, problem = valid_entries(state)
        # A checkpoint entry of the wrong shape: its files' lines were counted (the counts are
        # kept), so the files there now are read from their end, not from 0.
        self._at_end_once = problem is not None
        if problem is not None:
            log.error("%s: the checkpoint's entry for this source has the wrong shape (%s); "
                      "files not recognised are read from their end, as their lines were counted",
                      self.name, problem)
        self._restore: list[dict[str, Any]] | None = entries if state is not None else None
        # start_at applies to the files there at start; with a checkpoint, or once the path was
        # seen missing, a file not followed yet is new and is read from 0.
        self._apply_start_at = state is None
        self._skipped: set[str] = set()     # non-regular files already logged
        self._fd_waiting = 0                # files not opened for want of descriptors
        self._replaced = False              # the file at the path was deleted: the next one is a rotation
        self._errors: dict[str, str] = {}
        self._retry_at: float | None = None
        self._backoff = Backoff()
        self._next_poll: float | None = None
        self._counted_at = -1.0
        # What the watcher said since the last poll: None nothing; a set of paths that were only
        # written to; ALL when something was created, moved or deleted (or nothing is known yet).
        self._heard: set[str] | None = ALL
        self._heard_lock = threading.Lock()   # the watcher's thread adds to it, poll() takes it
        self._more = False   # the last poll stopped at POLL_BUDGET with more waiting
        sink.event(UP)

    # --- the Source protocol ---
    def poll(self) -> bool:
        now = time.monotonic()
        timed = self._retry_at is not None and now >= self._retry_at
        with self._heard_lock:
            heard, self._heard = self._heard, None
        if self.watcher is not None and not timed and not self._errors and self._restore is None \
                and heard is not ALL and not self._more and not self._draining(now):
            # Watched, and only bytes were written (or nothing happened here): read the files
            # written to; no stat of the directory, no glob, no look for a new file.
            more = False
            for tail in list(self.tails):
                if heard and tail.path in heard and tail.gone_since is None:
                    more |= self._follow(tail, now, timed)
            self._more = more
            return more
        if timed:
            self._retry_at = None
        self._watch(now, timed)
        if self._restore is not None:
            self._restore_checkpoint(now)
        self._scan(now, timed)
        self._at_end_once = False
        more = False
        for tail in list(self.tails):
            more |= self._follow(tail, now, timed)
        self._expire(now)
        if self.config.poll:
            self._next_poll = now + self.config.poll_interval
        self._more = more
        return more

    def _draining(self, now: float) -> bool:
        """A rotated-away file is still read (until ROTATE_WAIT): every poll reads every file."""
        return any(tail.gone_since is not None for tail in self.tails)

    def deadline(self) -> float | None:
        times = [t for t in (self._retry_at, self._next_poll) if t is not None]
        times += [tail.gone_since + ROTATE_WAIT for tail in self.tails if tail.gone_since is not None]
        return min(times) if times else None

    def state(self) -> dict[str, Any]:
        if self._restore is not None:   # not started yet: keep what the checkpoint held
            return {"files": self._restore}
        return {"files": [tail.state() for tail in self.tails]}

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.forget(self._on_event)
        for tail in self.tails:
            tail.close()
        self.tails = []

    # --- watching ---
    def _watch(self, now: float, timed: bool) -> None:
        if self.watcher is None:
            return
        directories = {os.path.dirname(self.pattern)}
        if not self.is_glob:
            directories.add(os.path.dirname(os.path.realpath(self.pattern)))  # a symlink's target
        for directory in directories:
            if glob.has_magic(directory):
                # No events for a wildcard directory: look again now and then.
                if self._retry_at is None:
                    self._retry_at = now + self._backoff.most
                continue
            try:
                self.watcher.ensure(directory, self._on_event)
            except OSError as err:   # a missing directory, a vanished mount: retry with backoff
                self._problem(directory, err, now, timed)
            else:
                self._recovered(directory)

    def _on_event(self, paths: list[str], written: bool = False) -> None:
        """Called from the watcher's thread: only note it and wake the pipeline.

        written: every event was bytes written to these paths (IN_MODIFY); then, when each of
        them is a file being followed, the next poll only reads those files."""
        for path in paths:
            base = os.path.basename(path)
            if base.startswith(self._prefix) or os.path.dirname(path) != os.path.dirname(self.pattern) \
                    or path == os.path.dirname(self.pattern):
                break
        else:
            return
        followed = {tail.path for tail in self.tails if tail.gone_since is None}
        mine = [path for path in paths if path in followed]
        with self._heard_lock:
            heard = self._heard
            if not written or len(mine) != len(paths) or heard is ALL:   # a symlink's target too
                self._heard = ALL
            else:
                self._heard = (heard or set()) | set(mine)
        self.wake()

    # --- finding files ---
    def _paths(self) -> list[str]:
        if self.is_glob:
            return sorted(glob.glob(self.pattern))
        return [self.pattern]

    def _live_tail(self, dev: int, ino: int) -> Tail | None:
        for tail in self.tails:
            if tail.dev == dev and tail.ino == ino and (tail.gone_since is None or self.is_glob):
                return tail
        return None

    def _scan(self, now: float, timed: bool) -> None:
        """Open files at the path (or matching the glob) that are not followed yet."""
        directory = os.path.dirname(self.pattern)
        if self.is_glob:
            # glob.glob() answers [] when the folder cannot be listed (gone for a while on NFS,
            # EMFILE): that is an error to retry, never "all files gone".
            root = _plain_root(self.pattern)
            try:
                os.listdir(root)
            except OSError as err:
                self._problem(root, err, now, timed, verb="cannot list",
                              after="keeping its files open")
                return
            self._recovered(root)
        elif self.watcher is None:
            try:   # with a watch, _watch() has checked the directory already
                os.stat(directory)
            except OSError as err:
                self._problem(directory, err, now, timed)
        seen: set[int] = set()
        inodes = {tail.ino for tail in self.tails}
        limit = _open_files_limit()
        self._fd_waiting = 0
        for path in self._paths():
            try:
                st = os.stat(path)
            except OSError as err:
                following = any(t.gone_since is None for t in self.tails)
                if not self.is_glob and not following and directory not in self._errors:
                    self._problem(path, err, now, timed)
                if isinstance(err, FileNotFoundError):
                    self._apply_start_at = False
                    if not self.is_glob:
                        self._let_go_of_deleted(now)
                continue
            if not stat.S_ISREG(st.st_mode):
                if not self.is_glob:
                    self._problem(path, OSError(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})"),
                                  now, timed)
                else:
                    self._skip(path, st.st_mode)
                continue
            tail = self._live_tail(st.st_dev, st.st_ino)
            if tail is None and st.st_ino in inodes:
                tail = self._seen_elsewhere(path, st)
            if tail is None:
                if Tail.open_count >= limit - FD_RESERVE:
                    self._fd_waiting += 1
                    continue
                tail = self._open(path, now, timed)
                if tail is None:
                    continue
            tail.path = path
            tail.gone_since = None
            seen.add(id(tail))
            self._apply_start_at = self._apply_start_at and self.is_glob
            self._recovered(path)
        if self._fd_waiting:
            self._out_of_descriptors(limit, now, timed)
        else:
            self._recovered("<open files>")
        if self.is_glob:
            for tail in self.tails:
                if id(tail) not in seen and tail.gone_since is None:
                    if not os.path.isdir(os.path.dirname(tail.path)):
                        continue   # its folder is away (a mount gone for a while): not rotated
                    tail.gone_since = now   # renamed out of the glob or deleted: drain, then close
            self._apply_start_at = False

    def _let_go_of_deleted(self, now: float) -> None:
        """The path is gone and the file followed was deleted (no link left): drain it for
        ROTATE_WAIT like a rotated file, then close it, so that its disk space is freed."""
        for tail in self.tails:
            if tail.gone_since is None:
                try:
                    deleted = os.fstat(tail.fd).st_nlink == 0
                except OSError:   # ESTALE on a network mount that is away: it may come back
                    deleted = False
                if deleted:
                    tail.gone_since = now
                    tail.deleted = True
                    self._replaced = True   # a file created at the path later is a rotation
                    log.info("%s: %s was deleted; reading what is left of it, then letting it go",
                             self.name, tail.path)

    def _skip(self, path: str, mode: int) -> None:
        if path not in self._skipped:
            self._skipped.add(path)
            log.warning("%s: skipping %s: not a regular file (%s)", self.name, path, file_kind(mode))

    def _seen_elsewhere(self, path: str, st: os.stat_result) -> Tail | None:
        """A followed file seen again under another device number (its filesystem remounted):
        the same inode and the same first bytes. Its descriptor is swapped for one on the new
        mount and reading carries on where it was."""
        for tail in self.tails:
            if tail.ino != st.st_ino or tail.dev == st.st_dev:
                continue
            try:
                fd = os.open(path, OPEN_FLAGS)
            except OSError:
                return None
            try:
                head = os.pread(fd, tail.fp_len, 0)
                same = stat.S_ISREG(os.fstat(fd).st_mode) and same_file(tail.fp, tail.fp_len, tail.ino,
                                                                        head, st.st_ino)
            except OSError:
                same = False
            if not same:
                os.close(fd)
                continue
            log.info("%s: %s seen again under another device (%d, was %d: remounted?); carrying on "
                     "at offset %d", self.name, path, st.st_dev, tail.dev, tail.offset)
            tail.reopen(fd)
            return tail
        return None

    def _open(self, path: str, now: float, timed: bool) -> Tail | None:
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError as err:
            if err.errno in (errno.EMFILE, errno.ENFILE):
                self._fd_waiting += 1
            else:
                self._problem(path, err, now, timed)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):   # replaced between stat() and open()
            os.close(fd)
            self._skip(path, st.st_mode)
            return None
        skipping = False
        entry = self._take_known(st, fd)
        if entry is not None:
            start, skipping = _resume_point(fd, int(entry["offset"]), st.st_size)
            log.info("%s: %s was followed before (known by its first bytes and inode, as %s): "
                     "resuming at offset %d", self.name, path, entry["path"], start)
            skipping = skipping or bool(entry.get("skipping", False))
        elif (self._apply_start_at and self.config.start_at == "end") or self._at_end_once:
            start = st.st_size
        else:
            start = 0
        tail = Tail(path, fd, start, self.config.max_line_bytes, skipping)
        if not self.is_glob:
            old = [t for t in self.tails if t.gone_since is None]
            for t in old:
                t.gone_since = now
            if old or self._replaced:
                self._replaced = False
                self.sink.event(ROTATED)
                log.info("%s: %s was replaced by a new file (rotation); finishing the old one, "
                         "reading the new one from the start", self.name, path)
        self.tails.append(tail)
        log.info("%s: following %s from offset %d", self.name, path, start)
        return tail

    def _take_known(self, st: os.stat_result, fd: int) -> dict[str, Any] | None:
        """The position of a file followed before under another source name, taken out of the list."""
        if not self._known:
            return None
        head = os.pread(fd, FP_BYTES, 0)
        for entry in sorted(self._known, key=lambda e: (e.get("dev") != st.st_dev, e.get("ino") != st.st_ino)):
            try:
                if same_file(str(entry["fp"]), int(entry["fp_len"]), int(entry["ino"]), head, st.st_ino):
                    self._known.remove(entry)
                    return entry
            except (KeyError, TypeError, ValueError):
                continue
        return None

    # --- reading ---
    def _follow(self, tail: Tail, now: float, timed: bool) -> bool:
        try:
            st = os.fstat(tail.fd)
            if st.st_size != tail.size or st.st_mtime_ns != tail.mtime:
                if tail.rewritten(st.st_size):
                    self._truncated(tail)
                tail.size, tail.mtime = st.st_size, st.st_mtime_ns
                tail.refresh_fingerprint()
            return self._read(tail)
        except OSError as err:   # EIO, ESTALE: a vanished mount
            self._problem(tail.path, err, now, timed)
            if tail.gone_since is not None:   # already replaced at the path: give it up
                self._drop(tail)
            return False

    def _read(self, tail: Tail) -> bool:
        """Read from tail.pos to the end (up to POLL_BUDGET); True when more is waiting.

        Blocks are read into one buffer kept for the source (the cutter copies what it
        keeps), so a backlog costs no fresh memory per block."""
        budget = POLL_BUDGET
        block = self._block
        while budget > 0:
            n = os.preadv(tail.fd, [block], tail.pos) if _PREADV else _pread_into(tail.fd, block, tail.pos)
            if not n:
                return False
            tail.pos += n
            budget -= n
            self._feed(tail, block if n == len(block) else bytes(memoryview(block)[:n]))
            if n < len(block):
                return False
            if len(block) < BLOCK_BYTES:   # a backlog: whole blocks from now on
                block = self._block = bytearray(BLOCK_BYTES)
        return True

    def _feed(self, tail: Tail, data: bytes | bytearray) -> None:
        whole, oversized = tail.cutter.feed(data)
        if oversized:
            self.sink.event(OVERSIZED, oversized)
            log.warning("%s: skipped %d line(s) longer than %d bytes in %s",
                        self.name, oversized, self.config.max_line_bytes, tail.path)
        if whole:
            self._announce(tail)
            self.sink.chunk(tail, whole)

    def _announce(self, tail: Tail) -> None:
        """Tell the sink of a file before its first lines (the stream then detects its format)."""
        if not tail.announced:
            tail.announced = True
            self.sink.opened(tail, self.config.format, tail.head, tail.start > 0)

    def _drop(self, tail: Tail) -> None:
        """Close a file that is done with, and tell the sink."""
        tail.close()
        self.tails.remove(tail)
        if tail.announced:
            self.sink.closed(tail)

    def _truncated(self, tail: Tail) -> None:
        """The file was truncated (copytruncate) or rewritten: finish the copy, restart at 0."""
        self.sink.event(TRUNCATED)
        exclude = {(t.dev, t.ino) for t in self.tails}
        copy = find_rotated(tail.path, None, tail.fp, tail.fp_len, exclude)
        if copy is not None:
            log.info("%s: %s was truncated; reading its last lines from %s, then it from the start",
                     self.name, tail.path, copy)
            self._announce(tail)
            self._finish(copy, tail.pos, tail.cutter, tail)
        else:
            log.info("%s: %s was truncated; reading it from the start", self.name, tail.path)
        tail.pos = 0
        tail.start = 0
        tail.cutter.reset()
        tail.fp, tail.fp_len = "", 0
        tail.refresh_fingerprint()

    def _finish(self, path: str, pos: int, cutter: LineCutter, reader: object) -> None:
        """Read a rotated file that nobody writes any more from pos to its end (gzip or plain)."""
        for attempt in range(10):
            try:
                with open_log(path, regular_only=True) as f:   # gzip by its magic bytes, as everywhere

                    f.seek(pos)
                    while True:
                        data = f.read(BLOCK_BYTES)
                        if not data:
                            return
                        pos += len(data)
                        whole, oversized = cutter.feed(data)
                        if oversized:
                            self.sink.event(OVERSIZED, oversized)
                        if whole:
                            self.sink.chunk(reader, whole)
            except EOFError:
                time.sleep(0.2)   # a .gz still being written by logrotate: wait for its end
            except (OSError, gzip.BadGzipFile) as err:
                self.sink.event(READ_ERROR)
                log.warning("%s: cannot read rotated file %s: %s", self.name, path, err)
                return
        log.warning("%s: rotated file %s ended early (incomplete gzip?); stopped at byte %d",
                    self.name, path, pos)

    def _expire(self, now: float) -> None:
        for tail in list(self.tails):
            if tail.gone_since is not None and now - tail.gone_since >= ROTATE_WAIT:
                try:
                    self._read(tail)
                except OSError:
                    pass
                self._drop(tail)
                log.info("%s: done with %s (%s)", self.name, tail.path,
                         "deleted" if tail.deleted else "rotated away")

    # --- restart ---
    def _restore_checkpoint(self, now: float) -> None:
        """Find each checkpointed file again and resume it at its offset (or finish its rotated copy)."""
        entries, self._restore = self._restore or [], None
        current: dict[str, os.stat_result] = {}
        for path in self._paths():
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                current[path] = st
        live = False
        finished: list[str] = []
        for entry in entries:
            try:
                found = self._restore_one(entry, current, now)
            except (OSError, KeyError, TypeError, ValueError) as err:
                log.warning("%s: cannot resume %s from the checkpoint: %s", self.name, entry.get("path"), err)
                continue
            if found == "":
                live = True
            elif found is not None:
                finished.append(found)
        if not self.is_glob and not live and finished:
            self._read_newer(finished, now)

    def _find_current(self, entry: dict[str, Any], current: dict[str, os.stat_result]) -> str | None:
        """The path, among those there now, of the checkpointed file: by (device, inode) first,
        then by inode and first bytes (remounted under another device number), then by a full
        fingerprint alone (another name, another filesystem)."""
        dev, ino = int(entry["dev"]), int(entry["ino"])
        taken = {(t.dev, t.ino) for t in self.tails}
        free = {p: st for p, st in current.items() if (st.st_dev, st.st_ino) not in taken}
        for path, st in free.items():
            if (st.st_dev, st.st_ino) == (dev, ino):
                return path
        fp, fp_len = str(entry["fp"]), int(entry["fp_len"])
        for path, st in sorted(free.items(), key=lambda item: item[1].st_ino != ino):
            if fp_len == 0 and st.st_ino != ino:
                continue
            try:
                with open_log(path, regular_only=True) as f:
                    head = f.read(fp_len)
            except OSError:
                continue
            if same_file(fp, fp_len, ino, head, st.st_ino):
                return path
        return None

    def _restore_one(self, entry: dict[str, Any], current: dict[str, os.stat_result],
                     now: float) -> str | None:
        """Resume one checkpointed file: "" when it is still at the path, else the rotated copy
        it was finished from, or None when it is lost."""
        ident: tuple[int, int] | None = (int(entry["dev"]), int(entry["ino"]))
        offset, fp, fp_len = int(entry["offset"]), str(entry["fp"]), int(entry["fp_len"])
        skipping = bool(entry.get("skipping", False))
        path = self._find_current(entry, current)
        if path is not None:
            fd = os.open(path, OPEN_FLAGS)
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and same_file(fp, fp_len, int(entry["ino"]),
                                                      os.pread(fd, fp_len, 0), st.st_ino):
                start, torn = _resume_point(fd, offset, st.st_size)
                tail = Tail(path, fd, start, self.config.max_line_bytes, skipping or torn)
                self.tails.append(tail)
                if start < offset:
                    log.warning("%s: %s is shorter than the checkpoint (%d bytes, the checkpoint is at %d) "
                                "but starts with the same bytes: it lost its end (a crash?); resuming at "
                                "its end", self.name, path, st.st_size, offset)
                elif (st.st_dev, st.st_ino) != ident:
                    log.info("%s: resuming %s at offset %d (the same file, now device %d inode %d, was "
                             "%d/%d: remounted or renamed)", self.name, path, offset, st.st_dev, st.st_ino,
                             ident[0], ident[1])
                else:
                    log.info("%s: resuming %s at offset %d", self.name, path, offset)
                return ""
            # Same inode, other content: truncated in place (copytruncate) while we were down, or
            # a new file that got the inode number of the old one. Either way this file is read
            # from 0 (by _scan) and the old content is looked for among the rotated copies.
            os.close(fd)
            ident = None
        # Rotated while we were down (or already being drained after a rotation at the
        # checkpoint: then the rotation was counted before): finish it from the offset.
        exclude = {(st.st_dev, st.st_ino) for st in current.values()} | {(t.dev, t.ino) for t in self.tails}
        rotated = find_rotated(str(entry["path"]), ident, fp, fp_len, exclude)
        if not entry.get("rotated"):
            self.sink.event(ROTATED)
        if rotated is None:
            log.warning("%s: the file checkpointed as %s (inode %d, offset %d) was rotated or truncated "
                        "and no rotated copy of it was found; lines written to it after the checkpoint "
                        "cannot be counted", self.name, entry["path"], int(entry["ino"]), offset)
            return None
        log.info("%s: %s was rotated while stopped; finishing %s from offset %d",
                 self.name, entry["path"], rotated, offset)
        self._resume_rotated(rotated, offset, skipping, now)
        return rotated

    def _read_newer(self, finished: list[str], now: float) -> None:
        """Read, from their start, the copies rotated after the newest checkpointed file.

        Only copies named the same way (mail.log.N or mail.log-DATE) count, so that a stray
        mail.log.bak beside mail.log.1 is not taken for a rotated log.
        """
        numbered = NUMBERED.search(finished[-1]) is not None
        names = [n for n in siblings(self.pattern) if (NUMBERED.search(n) is not None) == numbered]
        known = [names.index(f) for f in finished if f in names]
        if not known:
            return
        for path in names[max(known) + 1:]:
            if path in finished:
                continue
            self.sink.event(ROTATED)
            log.info("%s: %s was written and rotated while stopped; reading it", self.name, path)
            self._resume_rotated(path, 0, False, now)

    def _resume_rotated(self, path: str, offset: int, skipping: bool, now: float) -> None:
        if is_gzip(path):
            cutter = LineCutter(self.config.max_line_bytes, skipping)
            reader = object()   # a compressed copy is read here to its end: a reader of its own
            self.sink.opened(reader, self.config.format, lambda n: head(path, n), offset > 0)
            self._finish(path, offset, cutter, reader)
            self.sink.closed(reader)
            return
        fd = os.open(path, OPEN_FLAGS)
        tail = Tail(path, fd, offset, self.config.max_line_bytes, skipping)
        tail.gone_since = now   # drained by the normal loop, closed after ROTATE_WAIT
        self.tails.append(tail)

    # --- errors ---
    def _out_of_descriptors(self, limit: int, now: float, timed: bool) -> None:
        """Files left unopened for want of descriptors: a read error, retried; never "rotated away"."""
        err = OSError(errno.EMFILE, "too many open files")
        self._problem("<open files>", err, now, timed, message=(
            f"{self.name}: too many open files: {Tail.open_count} files open, the limit is {limit} "
            f"(raise LimitNOFILE); {self._fd_waiting} file(s) not followed yet"))

    def _problem(self, path: str, err: BaseException, now: float, timed: bool, verb: str = "cannot read",
                 after: str = "", message: str = "") -> None:
        """Log and count a failure to open or read (when new, and on each timed retry); retry later."""
        text = getattr(err, "strerror", None) or str(err)
        first = self._errors.get(path) != text
        self._errors[path] = text
        if not (first or timed or self._retry_at is None):
            return                      # an event-driven retry that failed the same way: stay quiet
        if self._retry_at is None or self._retry_at <= now:
            self._retry_at = now + self._backoff.next_delay()
        if self._counted_at != now:     # one failed attempt counts once, however many paths it touched
            self._counted_at = now
            self.sink.event(READ_ERROR)
        if not message:
            message = f"{self.name}: {verb} {path}: {text}" + (f"; {after}" if after else "")
        log.warning("%s; retrying in %.0f s", message, self._retry_at - now)

    def _recovered(self, path: str) -> None:
        if self._errors.pop(path, None) is not None:
            if path == "<open files>":
                log.info("%s: every matching file is open now", self.name)
            else:
                log.info("%s: reading %s again", self.name, path)
        if not self._errors:
            self._backoff.reset()


# --- registration (exporter/sources/kinds.py) ---
KIND = "file"
FOLLOWS_FILES = True   # make_source takes the daemon's `known` file positions


def make_source(config: SourceConfig, sink: Sink, wake: Callable[[], None],
                state: Any, watcher: DirWatcher | None,
                known: list[dict[str, Any]] | None = None) -> FileSource:
    """known: the daemon's list of files followed before by sources that are gone (renamed,
    removed, their path changed); the source takes an entry out when it recognises its file."""
    if not config.path:
        raise ValueError("a file source needs a path")
    return FileSource(config, sink, wake, watcher, state, known)
