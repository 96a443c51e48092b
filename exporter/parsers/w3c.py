"""Shared pieces of the parsers for Microsoft's header-directed logs.

Part of the parser stage. Exchange message tracking logs, Exchange SMTP protocol
logs and IIS SMTP logs all follow the W3C extended log idea: `#Name: value`
directive lines, one of which (`#Fields:`) names the columns of the lines after
it. This module holds what the three parsers share: the loop over a chunk
(headers, candidate lines, line counts), reading a `#Fields:` directive into a
column map, reading a UTC timestamp, and splitting an SMTP reply into its 3-digit
reply and enhanced status code. It keeps no state; each parser holds its own
column map.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable

from exporter.events import StatusEvent
from exporter.parsers.base import ChunkResult
from exporter.parsers.smtp_reply import code_at, reply_at

def count_lines(chunk: bytes) -> int:
    """Lines in a chunk: each ends in a newline, and a final piece without one counts too."""
    lines = chunk.count(b"\n")
    if chunk and not chunk.endswith(b"\n"):
        lines += 1
    return lines


def decode(chunk: bytes) -> tuple[str, bool]:
    """(the chunk as text, True when it was all UTF-8).

    Bytes that are not UTF-8 become lone surrogates; only then does a parser need to
    check its lines one by one with has_bad_bytes.
    """
    try:
        return chunk.decode("utf-8"), True
    except UnicodeDecodeError:
        return chunk.decode("utf-8", errors="surrogateescape"), False


def has_bad_bytes(text: str) -> bool:
    """True when decode() had to stand in for bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def fields_directive(line: str) -> list[str] | None:
    """The field names of a `#Fields:` line (BOM, CR and spacing allowed), or None for other lines.

    Exchange separates the names with commas, IIS with spaces; both are read here.
    """
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line.startswith("#Fields:"):
        return None
    body = line[len("#Fields:"):].strip()
    if "," in body:
        return csv_fields(body) or []   # a header the csv module cannot read names no field
    return body.split()


def csv_fields(line: str) -> list[str] | None:
    """The fields of one CSV line, or None when the csv module cannot read it (a stray CR)."""
    if '"' not in line:
        return line.split(",")  # no quoting: the same fields the csv module would give
    try:
        return next(csv.reader((line,)), [])
    except csv.Error:
        return None


def field_map(names: list[str]) -> dict[str, int]:
    """Column positions by lower-cased field name, from the names a `#Fields:` line lists."""
    columns: dict[str, int] = {}
    for position, name in enumerate(names):
        name = name.strip().lower()
        if name and name not in columns:
            columns[name] = position
    return columns


def iso_utc_seconds(text: str) -> float | None:
    """Unix seconds from "2019-03-14T08:15:02.193Z" (Exchange's date-time), or None."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


@lru_cache(maxsize=4096)
def split_reply(text: str) -> tuple[str | None, str | None]:
    """(reply, code) from a logged SMTP reply or Exchange status; either may be None.

    The reply is read where these logs put it (smtp_reply.reply_at): at the start, or
    after "LED=" in Exchange's last-error block. "550 5.1.1 User unknown" -> ("550", "5.1.1");
    "550-5.7.26 ..." -> ("550", "5.7.26"); "[{LRT=};{LED=550 5.4.8 ...}]" -> ("550", "5.4.8");
    "2.1.5Recipient OK" -> (None, "2.1.5"); "354 Start mail input" -> ("354", None).
    """
    text = text.lstrip()
    if text.startswith("[{"):
        where = text.find("{LED=")
        return reply_at(text, where + 5) if where != -1 else (None, None)
    reply, code = reply_at(text)
    if reply is not None:
        return reply, code
    head = text[:3]
    if len(head) == 3 and head[0] == "3" and head.isascii() and head.isdigit() and text[3:4] in ("", " ", "-"):
        return head, None  # an intermediate reply (334, 354): no status of its own
    return None, code_at(text)


def segments(text: str) -> list[tuple[str | None, int, int]]:
    """The text cut at its `#Fields:` lines.

    Returns (header, start, end) triples: the `#Fields:` line that governs text[start:end],
    or None for the part before the first one (the parser's current column map applies).
    """
    parts: list[tuple[str | None, int, int]] = []
    header: str | None = None
    start = 0
    found = text.find("#Fields:")
    while found != -1:
        line_start = text.rfind("\n", 0, found) + 1
        line_end = text.find("\n", found)
        if line_end == -1:
            line_end = len(text)
        # Only a directive at the start of its line (after a BOM at most) counts.
        if text[line_start:found].lstrip("\ufeff") == "":
            parts.append((header, start, line_start))
            header = text[line_start:line_end]
            start = line_end
        found = text.find("#Fields:", line_end)
    parts.append((header, start, len(text)))
    return parts


def candidate_lines(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[str]:
    """Each distinct line of text[start:end] in which pattern matches, without its line end."""
    lines: list[str] = []
    last_start = -1
    for match in pattern.finditer(text, start, end):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if line_start == last_start:
            continue
        last_start = line_start
        line_end = text.find("\n", match.end())
        if line_end == -1:
            line_end = len(text)
        lines.append(text[line_start:line_end].rstrip("\r"))
    return lines


def read_chunk(chunk: bytes, pattern: re.Pattern[str],
               set_fields: Callable[[list[str]], None],
               read_line: Callable[[str, bool], list[StatusEvent] | None]) -> ChunkResult:
    """The loop the three parsers share: headers, candidate lines, and the line counts.

    set_fields gets the names of each `#Fields:` line in order; read_line gets each
    candidate line (and whether the chunk was all UTF-8) and returns its events, [] for
    a line that is not a status line, or None for one that does not parse.
    """
    lines = count_lines(chunk)
    events: list[StatusEvent] = []
    matched = unparsed = 0
    text, clean = decode(chunk)
    for header, start, end in segments(text):
        if header is not None:
            names = fields_directive(header)
            if names:
                set_fields(names)
        for line in candidate_lines(text, pattern, start, end):
            found = read_line(line, clean)
            if found is None:
                unparsed += 1
            elif found:
                matched += 1
                events.extend(found)
    return ChunkResult(events, lines, matched, lines - matched - unparsed, unparsed)
