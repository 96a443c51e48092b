"""Exim's own log files (mainlog, rejectlog) -> ChunkResult: the "exim" format.

Part of the parser stage (exporter/parsers/base.py contract). Exim writes each line as

    2026-11-29 04:12:47 [+0100] [pid] [message-id] <text>

(the zone with log_timezone, the pid with log_selector +pid, the id when the line is about
one message). One compiled pattern over the whole chunk finds the candidate lines: a date,
then a delivery flag (** == => -> >>) right after a message id, or the word "rejected".
Only those lines are decoded and handed to exporter/parsers/exim.py; every other line is
counted as ignored from the number of newlines, without Python work per line.

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

_CANDIDATE = re.compile(
    rb"^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{3,6})?"
    rb"(?: ([+-])([0-9]{2})([0-9]{2}))?(?: \[[0-9]+\])? ()"
    rb"(?=" + exim.MESSAGE_ID.encode() + rb" (?:\*\*|==|=>|->|>>) |[^\n]*? rejected )"
    rb"[^\n]*",
    re.MULTILINE,
)
_CACHE_LIMIT = 4096


class EximMainlogParser:
    """Parser for Exim mainlog / rejectlog files; keeps only a cache of converted time stamps."""

    format = "exim"

    def __init__(self) -> None:
        self._stamps: dict[bytes, float | None] = {}

    def parse(self, chunk: bytes) -> ChunkResult:
        lines = chunk.count(b"\n")
        if chunk and not chunk.endswith(b"\n"):
            lines += 1  # tolerate a last line without its newline
        events: list[StatusEvent] = []
        matched = unparsed = 0
        for candidate in _CANDIDATE.finditer(chunk):
            try:
                text = candidate.group().decode("utf-8")
            except UnicodeDecodeError:
                unparsed += 1
                continue
            # Group 11 is empty and stands where the text after date and pid begins;
            # date and pid are ASCII, so byte and character offsets agree.
            body = candidate.start(11) - candidate.start()
            try:
                result = exim.parse_body(text, body, self._timestamp(candidate))
            except Exception:  # noqa: BLE001 - bad input must never stop the daemon
                result = UNPARSED
            if result is UNPARSED:
                unparsed += 1
            elif result:
                matched += 1
                events.extend(result)
        return ChunkResult(events, lines, matched, lines - matched - unparsed, unparsed)

    def _timestamp(self, candidate: re.Match[bytes]) -> float | None:
        # The date through the zone: the pid after it would only spoil the cache.
        if candidate.group(8):
            end = candidate.end(10)
        else:
            end = candidate.end(7) if candidate.group(7) else candidate.end(6)
        key = candidate.group(0)[:end - candidate.start()]
        cached = self._stamps.get(key, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        value = _convert(candidate)
        if len(self._stamps) >= _CACHE_LIMIT:
            self._stamps.clear()
        self._stamps[key] = value
        return value


def _convert(candidate: re.Match[bytes]) -> float | None:
    year, month, day, hour, minute, second = (int(candidate.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    fields = (year, month, day, hour, minute, second, 0, 0, -1)
    fraction = float(candidate.group(7)) if candidate.group(7) else 0.0
    if candidate.group(8) is None:
        try:
            return time.mktime(fields) + fraction
        except (OverflowError, ValueError):
            return None
    offset = int(candidate.group(9)) * 3600 + int(candidate.group(10)) * 60
    if candidate.group(8) == b"-":
        offset = -offset
    return calendar.timegm(fields) - offset + fraction
