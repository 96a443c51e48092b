"""Framing: how bytes read from a log become chunks of complete lines. One of each, for all readers.

Shared by the source stage (exporter/sources/: followed files, journald, stdin) and the
one-shot reading of whole files (exporter/logfiles.py: report, backfill):

  LineCutter   the one line cutter: holds back an unfinished line, drops (and counts) a
               line longer than the limit without holding it in memory;
  open_log     the one compression rule: a file is gzip when it starts with gzip's magic
               bytes, whatever its name; is_gzip() and head() follow the same rule;
  open_regular how a follower opens a file: O_NONBLOCK, and only a regular file (a FIFO
               named like a rotated copy must never block the pipeline thread).
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import stat
import zlib
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def open_regular(path: str) -> BinaryIO:
    """Open a regular file for reading without ever blocking: O_NONBLOCK, so that a FIFO or a
    device at the path does not hang the caller, then OSError when it is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(mode)})", path)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words, for log lines."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a file"


def is_gzip(path: str) -> bool:
    """True when the file starts with gzip's magic bytes (False when it cannot be read)."""
    try:
        with open_regular(path) as f:
            return f.read(2) == GZIP_MAGIC
    except OSError:
        return False


def open_log(path: str, regular_only: bool = False) -> BinaryIO:
    """Open a log file for reading, decompressing it when it is gzip. regular_only (the followed
    files' rotated copies): never block and refuse anything but a regular file (open_regular);
    otherwise a pipe such as `report <(zcat mail.log.2.gz)` is read too."""
    raw = open_regular(path) if regular_only else open(path, "rb")
    try:
        magic = raw.read(2)
        raw.seek(0)
    except OSError:
        raw.close()   # a directory opens on some systems and fails on read
        raise
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def head(path: str, n: int) -> bytes:
    """The first n bytes of a regular log file's content (decompressed when gzip); b"" when unreadable."""
    try:
        with open_log(path, regular_only=True) as f:
            return f.read(n)
    except (OSError, EOFError, zlib.error):
        return b""


class LineCutter:
    """Turns a byte stream into chunks of complete lines, holding back an unfinished line.

    At most max_line bytes of an unfinished line are held. A line longer than that
    is dropped and counted as oversized: the bytes up to its newline are skipped
    as they arrive, so memory stays bounded however long the line is.
    """

    def __init__(self, max_line: int, skipping: bool = False) -> None:
        self.max_line = max_line
        self.rest = b""          # the start of a line whose newline has not arrived yet
        self.skipping = skipping  # inside an oversized line: drop bytes up to the next newline
        self._long_line = re.compile(rb"(?m)^[^\n]{%d,}\n" % (max_line + 1))

    def feed(self, data: bytes | bytearray) -> tuple[bytes, int]:
        """Add bytes; returns (complete lines, number of oversized lines dropped).

        data may be a bytearray the caller reads into again: what is kept of it is copied.
        The complete lines are copied once (the held start of a line, then data up to its
        last newline), not joined and then cut."""
        oversized = 0
        start = 0
        if self.skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return b"", 0
            start = newline + 1
            self.skipping = False
        view = memoryview(data)
        cut = data.rfind(b"\n", start) + 1   # 0: no newline in data
        if cut == 0:
            whole, tail = b"", self.rest + view[start:]
        else:
            whole = self.rest + view[start:cut] if self.rest else bytes(view[start:cut])
            tail = bytes(view[cut:])
        view.release()
        if len(tail) > self.max_line:
            oversized += 1
            self.skipping = True
            tail = b""
        self.rest = tail
        if len(whole) > self.max_line and self._may_hold_long_line(whole):
            whole, dropped = self._long_line.subn(b"", whole)
            oversized += dropped
        return whole, oversized

    def _may_hold_long_line(self, whole: bytes) -> bool:
        """False when no line of whole can be longer than max_line, found with a few find()s.

        A line longer than max_line fully covers at least one of the windows of max_line // 2
        bytes that start at multiples of that size, so when every window holds a newline no
        line is too long, and the regex pass over the whole chunk (several ms per MB) is not
        needed.
        """
        step = max(self.max_line // 2, 1)
        find = whole.find
        for start in range(0, len(whole) - step + 1, step):
            if find(b"\n", start, start + step) < 0:
                return True
        return False

    def finish(self) -> bytes:
        """At the end of a stream that will not grow (stdin EOF): the last line, newline added."""
        rest, self.rest = self.rest, b""
        return rest + b"\n" if rest and not self.skipping else b""

    def reset(self) -> None:
        self.rest = b""
        self.skipping = False
