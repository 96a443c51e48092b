"""Envelopes: split one log line into (timestamp, program, message).

Part of the parser stage, used by the syslog parser (exporter/parsers/syslog.py) on
candidate lines only. A mail program's message is the same text whichever way it reached
the file; what differs is the wrapper around it. This module recognises the wrappers by
their first byte and takes them off:

  "<"   <PRI> then RFC 5424 ("<34>1 2026-... host app procid msgid [sd] msg"),
        or RFC 3164 ("<34>Nov 29 04:12:47 host prog[pid]: msg"), or a BSD priority tag
  "A-Z" RFC 3164 without <PRI>, space- or zero-padded day, optional host. Postfix's own
        maillog_file (postlogd, Postfix 3.4+) writes this shape with a zero-padded day
        ("Nov 02 04:12:47 host postfix/smtp[123]: msg", strftime "%b %d %H:%M:%S").
  "0-9" RFC 3339 (rsyslog high precision: "2026-11-29T04:12:47.123456+01:00 host prog[pid]: msg"),
        or Kubernetes CRI ("2026-11-29T04:12:47.1Z stdout F msg")
  "{"   journald JSON (journalctl -o json) or Docker json-file ({"log": ..., "time": ...})
  "@"   TAI64N stamps of daemontools/multilog ("@4000000065... msg"), used by qmail and others

CRI and Docker wrap the text a container wrote; that text may carry a syslog envelope of its
own (split off as well) or be bare program output (program None). Their outer time stamp
is used: it is complete and in UTC.

Time: timestamps become Unix seconds (UTC). RFC 3164 has no year and no zone. The zone is
the exporter's local time zone (set TZ to the mail server's zone when they differ). The
year is the one that puts the line no more than two days after "now" (YearClock), so a
December line read in January is last year's.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import NamedTuple


class Envelope(NamedTuple):
    timestamp: float | None   # Unix seconds (UTC), when the line gives one
    program: str | None       # syslog tag without [pid] ("postfix/smtp"), None when unknown
    message: str              # the program's own text
    partial: bool = False     # a CRI partial line ("P"): message continues on a later line


_MONTHS = {name: index for index, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_FUTURE_SLACK = 2 * 86400  # a line may be this far ahead of "now" (clock skew) before it is last year's


class YearClock:
    """Turns RFC 3164 "Mmm dd HH:MM:SS" (no year, local zone) into Unix seconds.

    Built once per chunk with the current time; remembers the stamps it converted, since
    the lines of a chunk share few distinct seconds. A second not seen yet is worked out
    from its minute: when seconds :00 and :59 of a minute convert 59 s apart (the same
    year, no change of UTC offset inside the minute), every second in between is the
    minute's :00 plus the seconds, exactly what the full conversion gives. The same holds one
    level up: when :00:00 and :59:59 of an hour convert 3599 s apart, each minute's :00 is the
    hour's plus its minutes. So a busy log costs two conversions per hour, not one per second.
    Other hours and minutes (an offset change, a line near the two days' slack, a leap
    second :60) take the full conversion.
    """

    def __init__(self, now: float) -> None:
        self.now = now
        self.year = time.localtime(now).tm_year
        self._cache: dict[str, float | None] = {}
        self._minutes: dict[str, float | None] = {}   # "Mmm dd HH:MM:" -> value of its :00, or None
        self._hours: dict[str, float | None] = {}     # "Mmm dd HH:" -> value of its :00:00, or None

    def stamp(self, text: str) -> float | None:
        """text is "Mmm dd HH:MM:SS" (day space- or zero-padded, or one digit)."""
        cached = self._cache.get(text, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        result = self._from_minute(text)
        if len(self._cache) > 4096:   # each table is bounded on its own: a clock may live long
            self._cache.clear()
        if len(self._minutes) > 4096:
            self._minutes.clear()
        if len(self._hours) > 4096:
            self._hours.clear()
        self._cache[text] = result
        return result

    def latest(self, minute: str, seconds: int) -> float | None:
        """The latest value of the stamps minute + "SS" for each second SS (0-99) whose bit is
        set in seconds; None when none converts. minute is a stamp without its two digits of
        seconds ("Nov 28 00:00:"), as the compiled scanner (exporter/_fastscan.c) reports them."""
        best: float | None = None
        second = seconds.bit_length() - 1
        while second >= 0:
            if seconds >> second & 1:
                value = self.stamp(f"{minute}{second:02d}")
                if value is not None:
                    if best is None or value > best:
                        best = value
                    if second <= 59 and self._minutes.get(minute) is not None:
                        break  # one year and offset for the whole minute: the earlier seconds are earlier
            second -= 1
        return best

    def _from_minute(self, text: str) -> float | None:
        minute, seconds = text[:-2], text[-2:]
        if not ("00" <= seconds <= "59" and seconds.isdigit()):
            return self._convert(text)
        base = self.minute_start(minute)
        if base is None:
            return self._convert(text)
        return base + int(seconds)

    def minute_start(self, minute: str) -> float | None:
        """The value of minute + "00" when each second :00-:59 of that minute is it plus the
        seconds (one year, one UTC offset); else None. minute: "Nov 28 00:00:"."""
        base = self._minutes.get(minute, False)
        if base is not False:
            return base  # type: ignore[return-value]
        base = None
        hour, minutes = minute[:-3], minute[-3:-1]
        if "00" <= minutes <= "59" and minutes.isdigit():
            hour_base = self._hours.get(hour, False)
            if hour_base is False:
                first = self._convert(hour + "00:00")
                last = self._convert(hour + "59:59")
                hour_base = first if first is not None and last is not None and last - first == 3599 else None
                self._hours[hour] = hour_base
            if hour_base is not None:
                base = hour_base + int(minutes) * 60
        if base is None:
            first = self._convert(minute + "00")
            last = self._convert(minute + "59")
            base = first if first is not None and last is not None and last - first == 59 else None
        self._minutes[minute] = base
        return base

    def _convert(self, text: str) -> float | None:
        month = _MONTHS.get(text[:3])
        day_text, _, clock_text = text[4:].lstrip(" ").partition(" ")
        try:
            day = int(day_text)
            hour, minute, second = (int(part) for part in clock_text.split(":"))
        except ValueError:
            return None
        if month is None or not (1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
            return None
        for year in (self.year, self.year - 1, self.year - 2, self.year - 3, self.year - 4):
            try:
                datetime(year, month, day)  # rejects Feb 30, and Feb 29 outside leap years
            except ValueError:
                continue
            # datetime, not time.mktime: for the hour that repeats when daylight saving ends,
            # mktime's answer depends on the call before it (a line could land in either hour
            # as other files were read first); datetime always takes the earlier (fold=0).
            # The seconds are added, as mktime normalised a leap second's 60.
            value = datetime(year, month, day, hour, minute).timestamp() + second
            if value <= self.now + _FUTURE_SLACK:
                return value
        return None


# --- RFC 3164 and its relatives -------------------------------------------------------------
# "Nov 29 04:12:47", "Nov  9 04:12:47", "Nov 09 04:12:47", optional fraction; then an optional
# BSD priority tag ("<4.3>", "<auth.info>"), an optional host, and the tag "prog[pid]:" or "prog:".
_TAG = r"(?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>[0-9]+)\])?:(?: |$)"
_RFC3164 = re.compile(
    r"(?P<stamp>[A-Z][a-z]{2} {1,2}[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.[0-9]+)?"
    r" (?:<[\w.]+> )?(?:(?P<host>[^\s\[\]]*[^\s\[\]:]) )?" + _TAG
)
# RFC 3339 stamp then host and tag (rsyslog RSYSLOG_FileFormat, syslog-ng ISO dates).
_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
_RFC3339 = re.compile(r"(?P<ts>" + _ISO + r") (?:(?P<host>[^\s\[\]]*[^\s\[\]:]) )?" + _TAG)
# RFC 5424 after "<PRI>": VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
_RFC5424 = re.compile(r"1 (?P<ts>\S+) \S+ (?P<app>\S+) \S+ \S+ (?P<rest>.*)", re.DOTALL)
# Kubernetes CRI: TIMESTAMP SP STREAM SP TAG SP CONTENT
_CRI = re.compile(r"(?P<ts>" + _ISO + r") (?P<stream>stdout|stderr) (?P<tag>[PF])(?:\S*)(?: |$)")
_PRI = re.compile(r"<[0-9]{1,3}>")


def split(line: str, clock: YearClock) -> Envelope | None:
    """The envelope of one line (newline already removed); None when no envelope is recognised.

    Text a container wrote (CRI, Docker) or a multilog line may have no program: program None.
    """
    first = line[:1]
    if "A" <= first <= "Z":
        return _split_3164(line, clock)
    if "0" <= first <= "9":
        return _split_iso(line, clock)
    if first == "<":
        pri = _PRI.match(line)
        if pri is None:
            return None
        rest = line[pri.end():]
        if rest.startswith("1 "):
            found = _split_5424(rest)
            if found is not None:
                return found
        return _split_3164(rest, clock) or _split_3339(rest)
    if first == "{":
        return _split_json(line, clock)
    if first == "@":
        return _split_tai64n(line)
    return None


def split_cri(line: str) -> tuple[float | None, str, bool, str] | None:
    """(timestamp, stream, partial, content) of a Kubernetes CRI line, or None for other lines."""
    match = _CRI.match(line)
    if match is None:
        return None
    return parse_iso(match.group("ts")), match.group("stream"), match.group("tag") == "P", line[match.end():]


def split_docker(line: str) -> tuple[float | None, str, bool, str] | None:
    """(timestamp, stream, partial, content) of a Docker json-file record, as split_cri gives
    for a CRI line, or None for other lines. Docker splits a line longer than 16 KiB into
    records whose "log" does not end in a newline (partial) and a last one that does; the
    syslog parser joins the parts of one stream as it joins CRI's "P" parts."""
    if not line.startswith('{"log":'):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    text = record.get("log") if isinstance(record, dict) else None
    if not isinstance(text, str):
        return None
    stream = record.get("stream")
    stamp = record.get("time")
    partial = not text.endswith("\n")
    if not partial:
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return (parse_iso(stamp) if isinstance(stamp, str) else None,
            "docker:" + (stream if isinstance(stream, str) else ""), partial, text)


def split_inner(text: str, timestamp: float | None, clock: YearClock) -> Envelope:
    """The envelope of text a container wrote (CRI, Docker); the outer timestamp wins."""
    inner = split(text, clock) if text[:1] != "{" else None
    if inner is None or inner.partial or inner.program is None:
        return Envelope(timestamp, None, text)
    return Envelope(timestamp if timestamp is not None else inner.timestamp, inner.program, inner.message)


def _split_3164(line: str, clock: YearClock) -> Envelope | None:
    match = _RFC3164.match(line)
    if match is None or line[:3] not in _MONTHS:
        return None
    return Envelope(clock.stamp(match.group("stamp")), match.group("prog"), line[match.end():])


def _split_iso(line: str, clock: YearClock) -> Envelope | None:
    cri = _CRI.match(line)
    if cri is not None:
        stamp = parse_iso(cri.group("ts"))
        content = line[cri.end():]
        if cri.group("tag") == "P":
            return Envelope(stamp, None, content, True)
        return split_inner(content, stamp, clock)
    return _split_3339(line)


def _split_3339(line: str) -> Envelope | None:
    match = _RFC3339.match(line)
    if match is None:
        return None
    return Envelope(parse_iso(match.group("ts")), match.group("prog"), line[match.end():])


def _split_5424(rest: str) -> Envelope | None:
    match = _RFC5424.match(rest)
    if match is None:
        return None
    app = match.group("app")
    body = _skip_structured_data(match.group("rest"))
    if body is None:
        return None
    if body.startswith("\ufeff"):
        body = body[1:]
    stamp = None if match.group("ts") == "-" else parse_iso(match.group("ts"))
    return Envelope(stamp, None if app == "-" else app, body)


def _skip_structured_data(rest: str) -> str | None:
    """MSG after STRUCTURED-DATA: "-" or one or more [id param="value"...] elements."""
    if rest.startswith("-"):
        return rest[2:] if rest[1:2] == " " else rest[1:]
    index = 0
    while rest.startswith("[", index):
        index += 1
        while index < len(rest):
            char = rest[index]
            if char == "\\":
                index += 2
                continue
            if char == '"':
                index += 1
                while index < len(rest) and rest[index] != '"':
                    index += 2 if rest[index] == "\\" else 1
                index += 1
                continue
            if char == "]":
                break
            index += 1
        else:
            return None  # unterminated element
        index += 1
    if index == 0:
        return None
    return rest[index + 1:] if rest[index:index + 1] == " " else rest[index:]


def _split_json(line: str, clock: YearClock) -> Envelope | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    if "log" in record:
        return _docker(record, clock)
    if "MESSAGE" in record:
        return _journald(record)
    return None


def _docker(record: dict, clock: YearClock) -> Envelope | None:
    text = record.get("log")
    if not isinstance(text, str):
        return None
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    stamp = record.get("time")
    return split_inner(text, parse_iso(stamp) if isinstance(stamp, str) else None, clock)


def _journald(record: dict) -> Envelope | None:
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journald writes non-UTF-8 messages as a byte array
        try:
            message = bytes(message).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    if not isinstance(message, str):
        return None
    program = record.get("SYSLOG_IDENTIFIER")
    if not isinstance(program, str) or not program:
        program = record.get("_COMM") if isinstance(record.get("_COMM"), str) else None
    stamp: float | None = None
    micros = record.get("__REALTIME_TIMESTAMP")
    if isinstance(micros, str) and micros.isdigit():
        stamp = int(micros) / 1e6
    return Envelope(stamp, program, message)


def _split_tai64n(line: str) -> Envelope | None:
    # "@" + 16 hex digits of seconds (2**62 + TAI seconds) + 8 of nanoseconds, then a space.
    label = line[1:25]
    if len(label) != 24 or line[25:26] != " ":
        return None
    try:
        seconds = int(label[:16], 16) - 2**62 - 10  # TAI runs 10 s ahead of UTC in this scheme
        nanos = int(label[16:], 16)
    except ValueError:
        return None
    return Envelope(seconds + nanos / 1e9, None, line[26:])


def parse_iso(text: str) -> float | None:
    """RFC 3339 / ISO 8601 text to Unix seconds; a stamp without zone is local time."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
