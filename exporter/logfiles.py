"""Reading whole log files once, for the one-shot commands (report, backfill).

Source stage for files that are read from start to end rather than followed: plain
or gzip-compressed (by their magic bytes, not their name), read in large blocks and
cut at the last newline, so the parsers get chunks of complete lines (DESIGN.md
section 1). A line longer than the limit is skipped and counted, never buffered whole.

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

from exporter.parsers import make_parser
from exporter.parsers.base import ChunkResult, Parser

MAX_LINE_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64 * 1024
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


def open_log(path: str) -> BinaryIO:
    """Open a log file for reading, decompressing it when it is gzip."""
    raw = open(path, "rb")
    try:
        magic = raw.read(2)
        raw.seek(0)
    except OSError:
        raw.close()   # a directory opens on some systems and fails on read
        raise
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


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
    """Standard input as a log stream (gzip decompressed), and its first SNIFF_BYTES to detect the
    format from; the stream gives those bytes again."""
    raw: BinaryIO = sys.stdin.buffer
    magic = raw.read(2)
    stream: BinaryIO = io.BufferedReader(_Replay(magic, raw))  # type: ignore[assignment]
    if magic == GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    head = stream.read(SNIFF_BYTES)
    return io.BufferedReader(_Replay(head, stream)), head  # type: ignore[return-value]


def disk_position(stream: BinaryIO) -> int:
    """How far into the file on disk a stream from open_log has read (the compressed bytes for gzip)."""
    raw = getattr(stream, "fileobj", None) or stream
    return raw.tell()


def read_chunks(stream: BinaryIO, max_line: int = MAX_LINE_BYTES,
                blocks_per_chunk: int = 16) -> Iterator[Chunk]:
    """Yield chunks of complete lines; a last line without its newline is completed at the end.

    Blocks are read max_line bytes at a time, so a line longer than max_line can only be
    the first line of carry + block: one find() per block keeps the limit, with no
    per-line work.
    """
    carry = b""
    skipping = False   # inside an oversized line, dropping bytes until its newline
    position = 0
    pending: list[bytes] = []
    oversized = 0
    while True:
        block = stream.read(max_line)
        if not block:
            break
        position += len(block)
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            block = block[newline + 1:]
            skipping = False
        data = carry + block
        first_end = data.find(b"\n")
        if first_end > max_line:
            oversized += 1
            data = data[first_end + 1:]
        cut = data.rfind(b"\n") + 1
        if cut:
            pending.append(data[:cut])
        carry = data[cut:]
        if len(carry) > max_line:
            oversized += 1
            carry = b""
            skipping = True
        if len(pending) >= blocks_per_chunk:
            yield Chunk(b"".join(pending), oversized, position - len(carry))
            pending, oversized = [], 0
    if carry and not skipping:
        pending.append(carry + b"\n")
        carry = b""
    if pending or oversized:
        yield Chunk(b"".join(pending), oversized, position)


def sniff_format(path: str) -> str:
    """The format of a log file, from its first bytes."""
    from exporter.parsers.detect import detect_format

    with open_log(path) as stream:
        return detect_format(stream.read(SNIFF_BYTES))


def parser_for(path: str, fmt: str = "auto", hourly: bool = False) -> Parser:
    return make_parser(sniff_format(path) if fmt == "auto" else fmt, hourly=hourly)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def parse_file(path: str, fmt: str = "auto", progress: Progress | None = None,
               max_line: int = MAX_LINE_BYTES, hourly: bool = False) -> Iterator[tuple[Chunk, ChunkResult]]:
    """Each chunk of a file with what its format's parser found in it.

    hourly: the parser may hand back events added up by their label fields and UTC hour
    (ChunkResult.tally), as `report` needs them, instead of one by one.

    Raises LogFileError (never OSError, EOFError or zlib.error) when the file cannot be
    read to its end; the chunks before the failure have been yielded by then.
    """
    if path == STDIN:
        yield from _parse_stdin(fmt, max_line, hourly)
        return
    try:
        parser = parser_for(path, fmt, hourly)
        size = file_size(path)
        with open_log(path) as stream:
            for chunk in read_chunks(stream, max_line):
                yield chunk, parser.parse(chunk.data)
                if progress is not None:
                    progress(path, disk_position(stream), size)
    except _READ_ERRORS as err:
        raise LogFileError(path, _reason(err)) from None


def _parse_stdin(fmt: str, max_line: int, hourly: bool) -> Iterator[tuple[Chunk, ChunkResult]]:
    """parse_file() for standard input (no progress: its size is not known)."""
    from exporter.parsers.detect import detect_format

    try:
        stream, head = open_stdin()
        parser = make_parser(detect_format(head) if fmt == "auto" else fmt, hourly=hourly)
        for chunk in read_chunks(stream, max_line):
            yield chunk, parser.parse(chunk.data)
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
