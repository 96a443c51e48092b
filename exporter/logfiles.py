"""Reading whole log files once, for the one-shot commands (report, backfill).

Source stage for files that are read from start to end rather than followed: plain
or gzip-compressed (framing.open_log: by their magic bytes, not their name), read in
large blocks and cut by the daemon's line cutter (framing.LineCutter), so the parsers
get chunks of complete lines (DESIGN.md section 1). A line longer than the limit is
skipped and counted, never buffered whole.

parse_file() joins this to the parser stage and turns every way a file can fail to be
read (missing, unreadable, a directory, a damaged or cut-off gzip stream) into one
LogFileError that names the file: the commands report it and exit 1. The path "-" is
standard input (`zcat mail.log.2.gz | ndr-exporter report -`, `journalctl ... | ...`),
plain or gzip too; its format is found from its first bytes, which are then read again.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple

from exporter.framing import GZIP_MAGIC, LineCutter, open_log
from exporter.parsers import make_parser
from exporter.parsers.base import Bucket, Counted, Parser
from exporter.parsers.detect import DETECT_BYTES, detect_format

MAX_LINE_BYTES = 64 * 1024
STDIN = "-"                      # the path that means standard input
STDIN_NAME = "standard input"    # how errors name it

# What reading a damaged file can raise besides OSError (gzip.BadGzipFile is an OSError).
_READ_ERRORS = (OSError, EOFError, zlib.error)

Progress = Callable[[str, int, int], None]   # (path, bytes of the file on disk read so far, its size)


class Chunk(NamedTuple):
    data: bytes       # complete lines, each ending in b"\n"; may be empty
    oversized: int    # lines skipped since the previous chunk because they were too long
    position: int     # bytes of the (uncompressed) file consumed so far


class LogFileError(Exception):
    """A log file that cannot be read to its end; str() names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class _Replay(io.RawIOBase):
    """A stream that gives `head` (bytes already read from `rest`) again, then the rest of `rest`."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def open_stdin() -> tuple[BinaryIO, bytes]:
    """Standard input as a log stream (gzip decompressed), and its first DETECT_BYTES to detect the
    format from; the stream gives those bytes again."""
    raw: BinaryIO = sys.stdin.buffer
    magic = raw.read(2)
    stream: BinaryIO = io.BufferedReader(_Replay(magic, raw))  # type: ignore[assignment]
    if magic == GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    head = stream.read(DETECT_BYTES)
    return io.BufferedReader(_Replay(head, stream)), head  # type: ignore[return-value]


def disk_position(stream: BinaryIO) -> int:
    """How far into the file on disk a stream from open_log has read (the compressed bytes for gzip)."""
    raw = getattr(stream, "fileobj", None) or stream
    return raw.tell()


def read_chunks(stream: BinaryIO, max_line: int = MAX_LINE_BYTES,
                blocks_per_chunk: int = 16) -> Iterator[Chunk]:
    """Yield chunks of complete lines (cut by framing.LineCutter, the daemon's cutter); a last
    line without its newline is completed at the end."""
    cutter = LineCutter(max_line)
    position = 0
    pending: list[bytes] = []
    oversized = 0
    while True:
        block = stream.read(max_line)
        if not block:
            break
        position += len(block)
        whole, dropped = cutter.feed(block)
        oversized += dropped
        if whole:
            pending.append(whole)
        if len(pending) >= blocks_per_chunk:
            yield Chunk(b"".join(pending), oversized, position - len(cutter.rest))
            pending, oversized = [], 0
    last = cutter.finish()
    if last:
        pending.append(last)
    if pending or oversized:
        yield Chunk(b"".join(pending), oversized, position)


def sniff_format(path: str) -> str:
    """The format of a log file, from its first bytes."""
    with open_log(path) as stream:
        return detect_format(stream.read(DETECT_BYTES))


def parser_for(path: str, fmt: str = "auto") -> Parser:
    return make_parser(sniff_format(path) if fmt == "auto" else fmt)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def parse_file(path: str, fmt: str = "auto", progress: Progress | None = None,
               max_line: int = MAX_LINE_BYTES, bucket: Bucket | None = None) -> Iterator[tuple[Chunk, Counted]]:
    """Each chunk of a file with what its format's parser counted in it, per time bucket
    (report: the UTC hour; backfill: the step).

    Raises LogFileError (never OSError, EOFError or zlib.error) when the file cannot be
    read to its end; the chunks before the failure have been yielded by then.
    """
    if path == STDIN:
        yield from _parse_stdin(fmt, max_line, bucket)
        return
    try:
        parser = parser_for(path, fmt)
        size = file_size(path)
        with open_log(path) as stream:
            for chunk in read_chunks(stream, max_line):
                yield chunk, parser.count(chunk.data, bucket)
                if progress is not None:
                    progress(path, disk_position(stream), size)
    except _READ_ERRORS as err:
        raise LogFileError(path, _reason(err)) from None


def _parse_stdin(fmt: str, max_line: int, bucket: Bucket | None) -> Iterator[tuple[Chunk, Counted]]:
    """parse_file() for standard input (no progress: its size is not known)."""
    try:
        stream, head = open_stdin()
        parser = make_parser(detect_format(head) if fmt == "auto" else fmt)
        for chunk in read_chunks(stream, max_line):
            yield chunk, parser.count(chunk.data, bucket)
    except _READ_ERRORS as err:
        raise LogFileError(STDIN_NAME, _reason(err)) from None


def _reason(err: BaseException) -> str:
    if isinstance(err, EOFError):
        return "the gzip stream ends early (the file is cut off)"
    if isinstance(err, gzip.BadGzipFile) or isinstance(err, zlib.error):
        return f"damaged gzip data ({err})"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__
