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

parse() is the reference, in Python. count() (what every consumer reads) lets the compiled
scanner (exporter/_fastscan.c, grammar "exim"), when it is built, read the whole chunk in
C first: it counts the lines it can read exactly as parse_body would (printable ASCII, a
plain date, the commonest shapes), adds their events up by label fields and minute, and
hands back by offset every other line that may be a status line, which is read here as
parse() reads it. tests/test_fastscan_exim.py holds the two equal; NDR_EXPORTER_PURE_PYTHON=1
turns the scanner off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable

import calendar
import os
import re
from datetime import datetime, timedelta

from exporter.events import EXPIRED, REJECTED, UNPARSED, MessageResult, StatusEvent
from exporter.parsers import exim
from exporter.parsers.base import Bucket, ChunkResult, Counted, EventParser, LabelFields, tally
from exporter.parsers.syslog import merge_scanned

# Found anywhere in the chunk: the marks every status line carries. Searching for them is
# several times faster than anchoring a pattern at every line start.
_MARK = re.compile(rb" (?:\*\*|==|=>|->|>>) | rejected ")
# Matched at the start of a line that holds a mark: the date (group 1: all of it, zone
# included; 2: up to the hour; 3, 4: minutes, seconds; 5: fraction; 6: zone), the pid, then
# a message id and a delivery flag, or the word "rejected" later on the line. Group 7 is
# empty and stands where the text after date and pid begins.
_LINE = re.compile(
    rb"(([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{3,6})?(?: ([+-][0-9]{4}))?)"
    rb"(?: \[[0-9]+\])? ()"
    rb"(?=" + exim.MESSAGE_ID.encode() + rb" (?:\*\*|==|=>|->|>>) |(?:[^\n]*? )?rejected )"
)
_CACHE_LIMIT = 4096
_EPOCH = datetime(1970, 1, 1)   # naive: wall-clock fields counted as seconds, then read as local time


def compiled_scanner() -> Any:
    """The compiled scanner for mainlog lines, or None: not built, or turned off."""
    if os.environ.get("NDR_EXPORTER_PURE_PYTHON"):
        return None
    try:
        from exporter import _fastscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _fastscan.Scanner([], [], {**exim.FLAG_OUTCOMES, "expired": EXPIRED}, REJECTED, exim.MTA, grammar="exim")


class EximMainlogParser(EventParser):
    """Parser for Exim mainlog / rejectlog files; keeps only caches of converted time stamps
    (and its own compiled scanner)."""

    format = "exim"

    def __init__(self) -> None:
        self._stamps: dict[bytes, float | None] = {}
        self._hours: dict[tuple[bytes, bytes | None], float | None] = {}
        self.scanner = compiled_scanner()

    def parse(self, chunk: bytes) -> ChunkResult:
        """Every line that holds a mark read in Python, one event per status line: the reference."""
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
            result = self._line(chunk, start, end)
            if result is UNPARSED:
                unparsed += 1
            elif result:
                matched += 1
                events.extend(result)  # type: ignore[arg-type]
        return ChunkResult(events, lines, matched, lines - matched - unparsed, unparsed)

    def count(self, chunk: bytes, bucket: Bucket | None = None) -> Counted:
        """What tally(parse(chunk), bucket) gives; with the compiled scanner when it is built."""
        if self.scanner is not None:
            counted = self._count_scanned(chunk, bucket)
            if counted is not None:
                return counted
        return tally(self.parse(chunk), bucket)

    def _count_scanned(self, chunk: bytes, bucket: Bucket | None) -> Counted | None:
        """The scanner's counts and the lines it hands back, read here; None when time buckets
        are asked for and a minute of the scanner's lines does not fall whole into one bucket
        (the caller then reads the chunk the Python way)."""
        starts, keys, minutes, lines, matched, unparsed = self.scanner.scan(chunk, by_minute=bucket is not None)
        starts_of_minutes = {minute: self._minute_start(minute) for minute in minutes}
        if bucket is None:
            scanned = [(first, LabelFields._make(fields), None, n) for first, fields, n in keys]
        else:
            buckets = _buckets_of(starts_of_minutes, minutes, bucket)
            if buckets is None:
                return None
            scanned = [(first, LabelFields._make(fields), buckets[minute], n) for first, fields, n, minute in keys]
        newest: float | None = None
        for minute, start in starts_of_minutes.items():
            if start is not None:
                latest = start + (minutes[minute].bit_length() - 1)
                if newest is None or latest > newest:
                    newest = latest
        found: list[tuple[int, StatusEvent]] = []
        size = len(chunk)
        for start in starts:
            end = chunk.find(b"\n", start)
            if end < 0:
                end = size
            if _MARK.search(chunk, start, end) is None:
                continue  # parse() never looks at a line without a mark
            result = self._line(chunk, start, end)
            if result is UNPARSED:
                unparsed += 1
            elif result:
                matched += 1
                for event in result:  # type: ignore[union-attr]
                    found.append((start, event))
                    if event.timestamp is not None and (newest is None or event.timestamp > newest):
                        newest = event.timestamp
        return Counted(merge_scanned(scanned, found, bucket), newest, lines, matched, lines - matched - unparsed,
                       unparsed)

    def _line(self, chunk: bytes, start: int, end: int) -> MessageResult:
        """The result of the line chunk[start:end], which holds a mark; never raises."""
        line = _LINE.match(chunk, start, end)
        if line is None:
            return None  # a mark, but not where a status line has one
        try:
            text = chunk[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return UNPARSED
        try:
            # Date and pid are ASCII, so byte and character offsets agree.
            return exim.parse_body(text, line.start(7) - start, self._timestamp(line))
        except Exception:  # noqa: BLE001 - bad input must never stop the daemon
            return UNPARSED

    def _minute_start(self, minute: str) -> float | None:
        """Unix seconds at the start of a minute the scanner reports ("YYYY-MM-DD HH:MM", then
        " +hhmm" when the lines had a zone), as _convert() reckons its lines' stamps; its
        minutes are below 60, as are their seconds."""
        raw = minute.encode("ascii")
        hour = self._hour(raw[:13], raw[17:22] or None)
        if hour is None:
            return None
        return hour + int(raw[14:16]) * 60

    def _hour(self, hour_text: bytes, zone: bytes | None) -> float | None:
        """_hour_start, cached by its text."""
        key = (hour_text, zone)
        hour = self._hours.get(key, False)
        if hour is False:
            hour = _hour_start(hour_text, zone)
            if len(self._hours) >= _CACHE_LIMIT:
                self._hours.clear()
            self._hours[key] = hour
        return hour  # type: ignore[return-value]

    def _timestamp(self, line: re.Match[bytes]) -> float | None:
        """Unix seconds of the line's date, cached by its text; hours are cached as well."""
        stamp = line.group(1)
        seconds = self._stamps.get(stamp, False)
        if seconds is False:
            seconds = self._convert(line)
            if len(self._stamps) >= _CACHE_LIMIT:
                self._stamps.clear()
            self._stamps[stamp] = seconds
        return seconds  # type: ignore[return-value]

    def _convert(self, line: re.Match[bytes]) -> float | None:
        hour = self._hour(line.group(2), line.group(6))
        if hour is None:
            return None
        minute, second = int(line.group(3)), int(line.group(4))
        if minute > 59 or second > 60:
            return None
        fraction = float(line.group(5)) if line.group(5) else 0.0
        return hour + minute * 60 + second + fraction  # type: ignore[operator]


def _buckets_of(starts: dict[str, float | None], minutes: dict[str, int], bucket: Bucket
                ) -> dict[str, Hashable] | None:
    """The bucket of every second of each minute the scanner read lines in, or None when some
    minute's seconds do not share one (a bucket edge inside it): buckets are spans of time, so
    its first and last second decide. A minute with no time (no such date) has bucket None."""
    buckets: dict[str, Hashable] = {}
    for minute, seconds in minutes.items():
        start = starts[minute]
        if start is None:
            buckets[minute] = None
            continue
        first = (seconds & -seconds).bit_length() - 1
        found = bucket(start + first)
        if bucket(start + seconds.bit_length() - 1) != found:
            return None
        buckets[minute] = found
    return buckets


def _hour_start(hour_text: bytes, zone: bytes | None) -> float | None:
    """Unix seconds at the start of an hour ("YYYY-MM-DD HH"), in its zone or else in local time.

    A day past the month's end runs on into the next month (Feb 30 is Mar 2). Local time goes
    through datetime, not time.mktime: for the hour that repeats when DST ends, mktime's answer
    depends on what it was asked before (glibc keeps its last guess), so the same line could
    get either hour; datetime takes the earlier one (fold=0), every time."""
    year, month, day, hour = int(hour_text[0:4]), int(hour_text[5:7]), int(hour_text[8:10]), int(hour_text[11:13])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24):
        return None
    fields = (year, month, day, hour, 0, 0, 0, 0, -1)
    try:
        if zone is None:
            return (_EPOCH + timedelta(seconds=calendar.timegm(fields))).timestamp()
        offset = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
        return float(calendar.timegm(fields) - (offset if zone[:1] == b"+" else -offset))
    except (OverflowError, ValueError):  # year 0 and the like
        return None


if TYPE_CHECKING:
    from exporter.parsers.detect import Sample


# --- registration (exporter/parsers/registry.py) ---
FORMAT = "exim"
PARSER = EximMainlogParser
ORDER = 10          # where the format is listed
DETECT_ORDER = 40   # when detection asks detects()


_DETECT_STAMP = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?(?: [+-][0-9]{4})? ")


def detects(sample: "Sample") -> bool:
    """Detection (parsers/detect.py, after the formats known by their headers), by a vote: more
    of the first records start "YYYY-MM-DD HH:MM:SS" (optional ".mmm" and "+hhmm" as
    log_timezone and millisec in log_selector add them) than carry a syslog envelope
    (sample.syslog); no syslog envelope starts with a date and a space. Lines that are
    neither do not vote: a rejectlog holds the rejected message's header lines between its
    records. A tie is not Exim (the fallback, syslog, wins)."""
    exim_like = sum(1 for record in sample.records if _DETECT_STAMP.match(record))
    return exim_like > sample.syslog
