"""Reading whole log files once, for the one-shot commands (report, backfill) and the benchmark.

Source stage for files that are read from start to end rather than followed: plain
or gzip-compressed (by their magic bytes, not their name), read in large blocks and
cut at the last newline, so the parsers get chunks of complete lines (DESIGN.md
section 1). A line longer than the limit is skipped and counted, never buffered whole.
"""

from __future__ import annotations

import gzip
import os
from typing import BinaryIO, Iterator, NamedTuple

from exporter.parsers import make_parser
from exporter.parsers.base import Parser

MAX_LINE_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class Chunk(NamedTuple):
    data: bytes       # complete lines, each ending in b"\n"; may be empty
    oversized: int    # lines skipped since the previous chunk because they were too long
    position: int     # bytes of the (uncompressed) file consumed so far


def open_log(path: str) -> BinaryIO:
    """Open a log file for reading, decompressing it when it is gzip."""
    raw = open(path, "rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    raw.seek(0)
    return raw


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
        return detect_format(stream.read(64 * 1024))


def parser_for(path: str, fmt: str = "auto") -> Parser:
    return make_parser(sniff_format(path) if fmt == "auto" else fmt)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
