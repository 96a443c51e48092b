"""Exim's own log files (mainlog, rejectlog) -> ChunkResult: the "exim" format.

Part of the parser stage (exporter/parsers/base.py contract). Exim writes each line as

    2026-11-29 04:12:47 [+0100] [pid] [message-id] <text>

(the zone with log_timezone, the pid with log_selector +pid, the id when the line is about
one message). One compiled pattern searched over the whole chunk finds the marks of status
lines (a delivery flag ** == => -> >> between spaces, or " rejected "); only the lines that
hold one are checked for a date and a message id, decoded and handed to
exporter/parsers/exim.py. Every other line is counted as ignored from the number of
newlines, without Python work per line.

A rejectlog repeats the message's header lines after each reject line. They start with a
flag character or white space, never with a date, so they are never candidates: the
reject itself is counted once. (Point the exporter at mainlog or rejectlog, not both: the
reject lines are in both files.)

Time: with a zone the time stamp is exact; without one it is read in the exporter's local
time zone (set TZ to the mail server's zone when they differ), as Exim wrote local time.
"""

from __future__ import annotations

import calendar
import re
import time

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import exim
from exporter.parsers.base import ChunkResult

# Found anywhere in the chunk: the marks every status line carries. Searching for them is
# several times faster than anchoring a pattern at every line start.
_MARK = re.compile(rb" (?:\*\*|==|=>|->|>>) | rejected ")
# Matched at the start of a line that holds a mark: the date, zone and pid, then a message
# id and a delivery flag, or the word "rejected" later on the line.
_LINE = re.compile(
    rb"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{3,6})?"
    rb"(?: ([+-])([0-9]{2})([0-9]{2}))?(?: \[[0-9]+\])? ()"
    rb"(?=" + exim.MESSAGE_ID.encode() + rb" (?:\*\*|==|=>|->|>>) |[^\n]*? rejected )"
)
_CACHE_LIMIT = 4096


class EximMainlogParser:
    """Parser for Exim mainlog / rejectlog files; keeps only a cache of converted time stamps."""

    format = "exim"

    def __init__(self) -> None:
        self._stamps: dict[tuple, float | None] = {}

    def parse(self, chunk: bytes) -> ChunkResult:
        lines = chunk.count(b"\n")
        size = len(chunk)
        if chunk and not chunk.endswith(b"\n"):
            lines += 1  # tolerate a last line without its newline
        events: list[StatusEvent] = []
        matched = unparsed = 0
        pos = 0
        while True:
            mark = _MARK.search(chunk, pos)
            if mark is None:
                break
            start = chunk.rfind(b"\n", 0, mark.start()) + 1
            end = chunk.find(b"\n", mark.end())
            if end < 0:
                end = size
            pos = end + 1
            line = _LINE.match(chunk, start, end)
            if line is None:
                continue  # a mark, but not where a status line has one
            try:
                text = chunk[start:end].decode("utf-8")
            except UnicodeDecodeError:
                unparsed += 1
                continue
            try:
                # Group 11 is empty and stands where the text after date and pid begins;
                # date and pid are ASCII, so byte and character offsets agree.
                result = exim.parse_body(text, line.start(11) - start, self._timestamp(line))
            except Exception:  # noqa: BLE001 - bad input must never stop the daemon
                result = UNPARSED
            if result is UNPARSED:
                unparsed += 1
            elif result:
                matched += 1
                events.extend(result)
        return ChunkResult(events, lines, matched, lines - matched - unparsed, unparsed)

    def _timestamp(self, line: re.Match[bytes]) -> float | None:
        """Unix seconds of the line's date: the start of its hour (cached) plus minutes and seconds."""
        zone = line.group(8)
        key = (line.group(1, 2, 3, 4), line.group(8, 9, 10) if zone else None)
        hour = self._stamps.get(key, False)
        if hour is False:
            hour = _hour_start(line)
            if len(self._stamps) >= _CACHE_LIMIT:
                self._stamps.clear()
            self._stamps[key] = hour
        if hour is None:
            return None
        minute, second = int(line.group(5)), int(line.group(6))
        if minute > 59 or second > 60:
            return None
        stamp = hour + minute * 60 + second
        return stamp + float(line.group(7)) if line.group(7) else float(stamp)


def _hour_start(line: re.Match[bytes]) -> float | None:
    """Unix seconds at the start of the line's hour, in its zone or else in local time."""
    year, month, day, hour = (int(value) for value in line.group(1, 2, 3, 4))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24):
        return None
    fields = (year, month, day, hour, 0, 0, 0, 0, -1)
    if line.group(8) is None:
        try:
            return time.mktime(fields)
        except (OverflowError, ValueError):
            return None
    offset = int(line.group(9)) * 3600 + int(line.group(10)) * 60
    if line.group(8) == b"-":
        offset = -offset
    try:
        return float(calendar.timegm(fields) - offset)
    except (OverflowError, ValueError):  # year 0 and the like
        return None
