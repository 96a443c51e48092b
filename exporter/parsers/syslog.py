"""The syslog parser (format "syslog"): finds status lines in a syslog-style stream.

Part of the parser stage. A chunk of complete lines goes in, a ChunkResult comes out.
One mail log often holds several programs (Postfix, Dovecot, ...), so each line's program
name picks the message parser:

  1. every message parser's PREFILTERS, the generic ones and two envelope markers are searched
     over the whole chunk (exporter/parsers/prefilter.py: the OR of them, taken apart so each
     piece is searched at memory speed); the lines they do not hit are counted ignored
     without any per-line Python work (DESIGN.md section 6);
  2. (count() only, when the compiled scanner is built) a hit line that is a Postfix delivery
     record or reject, or an Exim delivery line (=> -> >> ** ==), in a plain RFC 3164 line is
     read and counted in C, exactly as step 3 would read it (exporter/_fastscan.c;
     tests/test_fastscan.py compares the two);
  3. every other hit line is decoded (invalid UTF-8 is replaced, not refused: the fields that
     carry a status are ASCII, and one stray byte in a remote's reply text must not lose a
     bounce), its envelope split off (exporter/parsers/envelope.py), and its message handed to the
     parser that claims the program (MESSAGE_PARSERS below), else to the generic fallback.
     A line with no envelope at all (a comment, a stray fragment) is ignored: no program
     wrote it. Text a container wrote without a syslog envelope (CRI, Docker) has no
     program: generic reads it.

Kubernetes CRI partial lines ("P") are joined with the lines of the same stream that follow
until the final one ("F"); the joined record is counted on its "F" line and every "P" line is
counted ignored. The unfinished parts wait in the parser instance between chunks.

parse() does steps 1 to 3 in Python, one event per status line: the reference. count()
(what every consumer reads, base.py) lets the compiled scanner (exporter/_fastscan.c), when
it is built, do steps 1 and 2 for the whole chunk in C: it reads the Postfix and Exim lines
of step 2 itself, adds their events up, and hands back only the other hit lines, which go on
to step 3 here. exim.py remembers the last rejection it read (its parse_message's forget()
drops that memory); the scanner says where it read Exim lines, and the memory is dropped
there, as reading them here would have done. It decides no line differently, only faster (tests/test_fastscan.py).
NDR_EXPORTER_PURE_PYTHON=1 in the environment when a parser is made turns it off. Nothing is
built at import: each SyslogParser loads the message parsers and makes its own scanner.
"""

from __future__ import annotations

import logging
import os
import re
import time
from types import ModuleType
from typing import Any, Callable, Hashable, Iterator

from exporter.parsers import envelope
from exporter.events import REJECTED, UNPARSED, MessageResult, StatusEvent
from exporter.parsers import exim, generic, postfix, registry
from exporter.parsers.base import Bucket, ChunkResult, Counted, LabelFields, Tally, bucket_of, tally
from exporter.parsers.prefilter import CandidateFinder

# The message parsers are the modules of exporter/parsers/ that declare MTA, PROGRAMS (exact
# syslog names they claim), PREFILTERS and parse_message() (exporter/parsers/registry.py).
# Postfix also claims every program name with a "/" (postfix/smtp, postfix-out/smtp,
# postfix/submission/smtpd); exact names are looked up first.

# A CRI partial line must be seen even when it holds no status text, and journald writes a
# message that is not valid UTF-8 as a byte array, which no text pattern can see into.
# (" stdout P" can also stand in other lines; envelope.split_cri decides.)
_CRI_PARTIAL = (rb" stdout P", rb" stderr P")
# Docker json-file: a part of a line Docker split at 16 KiB is a record whose "log" does not
# end in the escaped newline every whole line ends in. No prefilter pattern can say "not
# after \n" (the compiled scanner reads plain bytes and classes, and a class in front is
# slow on every log), so a chunk that holds Docker records at all is searched for parts once
# more (_with_docker_parts); their lines join the candidates, and the lines after them are
# read while the record is unfinished, as for CRI.
_DOCKER_RECORD = b'","stream":"'
_DOCKER_WHOLE = b'\\n","stream":"'
_DOCKER_PART = re.compile(rb'(?<!\\n)","stream":"')
_JOURNALD_BYTES = rb'"MESSAGE":\['
MAX_PARTIAL_CHARS = 1024 * 1024  # a CRI record longer than this is dropped and counted unparsed

ParseMessage = Callable[[str, str, "float | None"], MessageResult]


def load_message_parsers() -> list[ModuleType]:
    """The message parser modules (exporter/parsers/registry.py), by module name."""
    return list(registry.message_parsers())


def program_table(modules: list[ModuleType]) -> dict[str, ParseMessage]:
    """Exact syslog program name -> that program's parse_message. A module whose lines depend on
    the lines before them declares make_parse_message(), and this parser gets its own one."""
    table: dict[str, ParseMessage] = {}
    for module in modules:
        maker = getattr(module, "make_parse_message", None)
        parse = maker() if maker is not None else module.parse_message
        for program in module.PROGRAMS:
            table.setdefault(program, parse)
    return table


def candidate_patterns(modules: list[ModuleType]) -> list[bytes]:
    """Every message parser's PREFILTERS, the generic ones and the envelope markers, once each."""
    patterns = [pattern for module in modules for pattern in module.PREFILTERS]
    patterns += [*generic.PREFILTERS, *_CRI_PARTIAL, _JOURNALD_BYTES]
    return list(dict.fromkeys(patterns))


def candidate_finder(modules: list[ModuleType]) -> CandidateFinder:
    """Finds every line any message parser (or the generic one) could use."""
    return CandidateFinder(candidate_patterns(modules))


def compiled_scanner(patterns: list[bytes], programs: dict[str, ParseMessage]) -> Any:
    """The compiled scanner for these patterns, or None: not built, turned off, or a pattern
    outside the syntax it reads (then the Python path, which reads any pattern, does all)."""
    if os.environ.get("NDR_EXPORTER_PURE_PYTHON"):
        return None
    try:
        from exporter import _fastscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return _fastscan.Scanner(patterns, list(programs), postfix.STATUS_OUTCOMES, REJECTED, postfix.MTA,
                                 exim_programs=list(exim_forgets(programs)), exim_outcomes=exim_outcomes(),
                                 exim_mta=exim.MTA)
    except ValueError as error:
        logging.getLogger("ndr_exporter.parsers").warning("compiled scanner not used: %s", error)
        return None


def exim_forgets(programs: dict[str, ParseMessage]) -> dict[str, Callable[[], None]]:
    """Exim's programs that this parser reads with exim.py, each with the way to drop that
    parse_message's memory of the last rejection: the scanner reads their delivery lines in C."""
    return {name: programs[name].forget for name in exim.PROGRAMS  # type: ignore[attr-defined]
            if hasattr(programs.get(name), "forget")}


def exim_outcomes() -> dict[str, str]:
    """The outcome of each Exim delivery flag, and of an expiry, as the scanner takes them."""
    from exporter.events import EXPIRED
    return {**exim.FLAG_OUTCOMES, "expired": EXPIRED}


_QMAIL_DELIVERY = re.compile(r"delivery \d+: ")


class _Partial:
    """The parts of one CRI stream's record seen so far."""

    def __init__(self, timestamp: float | None) -> None:
        self.timestamp = timestamp
        self.parts: list[str] = []
        self.size = 0
        self.overflow = False

    def add(self, content: str) -> None:
        self.size += len(content)
        if self.size > MAX_PARTIAL_CHARS:
            self.overflow = True
            self.parts = []
        elif not self.overflow:
            self.parts.append(content)


class SyslogParser:
    """Parser for syslog-style streams; keeps only unfinished CRI records between chunks."""

    format = "syslog"

    def __init__(self, now: Callable[[], float] | None = None) -> None:
        self._now = now or time.time   # for the year of RFC 3164 stamps; tests pass a fixed clock
        self._partial: dict[str, _Partial] = {}
        modules = load_message_parsers()
        self._programs = program_table(modules)
        self._candidates = candidate_finder(modules)
        self._candidate = self._candidates.any   # the same test for one line at a time
        # This parser's own scanner: it tunes itself to the first large chunk it reads.
        self.scanner = compiled_scanner(candidate_patterns(modules), self._programs)
        self._exim_forgets = list(exim_forgets(self._programs).values())

    def parse(self, chunk: bytes) -> ChunkResult:
        """Steps 1 to 3 in Python, one event per status line: the reference."""
        lines = _line_count(chunk)
        clock = envelope.YearClock(self._now())
        events: list[StatusEvent] = []
        matched = unparsed = 0
        for _start, result in self._results(chunk, _with_docker_parts(chunk, self._candidates.line_starts(chunk)), clock):
            if result is UNPARSED:
                unparsed += 1
            elif result:
                matched += 1
                events.extend(result)  # type: ignore[arg-type]
        return ChunkResult(events, lines, matched, lines - matched - unparsed, unparsed)

    def count(self, chunk: bytes, bucket: Bucket | None = None) -> Counted:
        """What tally(parse(chunk), bucket) gives; with the compiled scanner when it can."""
        if self.scanner is not None and not self._partial:
            counted = self._count_scanned(chunk, bucket)
            if counted is not None:
                return counted
        return tally(self.parse(chunk), bucket)

    def _count_scanned(self, chunk: bytes, bucket: Bucket | None) -> Counted | None:
        """Steps 1 and 2 by the compiled scanner, step 3 here; None when a CRI record starts in
        the chunk after the scanner read lines of it (its parts must be read line by line), or
        when time buckets are asked for and a minute of the scanner's lines does not fall
        whole into one bucket (see _buckets_of); the caller then reads the chunk the Python way."""
        starts, keys, minutes, lines, matched, unparsed, forgets = self.scanner.scan(
            chunk, by_minute=bucket is not None, forgets=True)
        starts = _with_docker_parts(chunk, starts)
        clock = envelope.YearClock(self._now())
        if bucket is None:
            scanned = [(first, LabelFields._make(fields), None, n) for first, fields, n in keys]
        else:
            buckets = _buckets_of(clock, minutes, bucket)
            if buckets is None:
                return None
            scanned = [(first, LabelFields._make(fields), buckets[minute], n) for first, fields, n, minute in keys]
        found: list[tuple[int, StatusEvent]] = []
        read_in_c = matched or unparsed
        for start, result in self._results(chunk, starts, clock, forgets):
            if self._partial and read_in_c:
                self._partial = {}
                return None
            if result is UNPARSED:
                unparsed += 1
            elif result:
                matched += 1
                found.extend((start, event) for event in result)  # type: ignore[union-attr]
        if forgets and forgets[-1] > (starts[-1] if starts else -1):
            self._forget_exim()   # an Exim line read in C after every line read here
        newest: float | None = None
        for minute, seconds in minutes.items():
            latest = clock.latest(minute, seconds)
            if latest is not None and (newest is None or latest > newest):
                newest = latest
        for _start, event in found:
            if event.timestamp is not None and (newest is None or event.timestamp > newest):
                newest = event.timestamp
        return Counted(merge_scanned(scanned, found, bucket), newest, lines, matched, lines - matched - unparsed, unparsed)

    def _forget_exim(self) -> None:
        for forget in self._exim_forgets:
            forget()

    def _results(self, chunk: bytes, starts: list[int], clock: envelope.YearClock, forgets: list[int] | None = None
                 ) -> Iterator[tuple[int, MessageResult]]:
        """(line start, result) of each candidate line at starts; while a CRI record is
        unfinished, of every line instead, since any may continue it. forgets: offsets of Exim
        lines the scanner read (exim.py's memory is dropped before the next line read here)."""
        size = len(chunk)
        next_start = 0
        next_forget = 0
        pos = 0
        while pos < size:
            if self._partial:
                start = pos
                end = chunk.find(b"\n", pos)
                if end < 0:
                    end = size
                result = self._line(chunk[pos:end], clock, False)
            else:
                while next_start < len(starts) and starts[next_start] < pos:
                    next_start += 1
                if next_start == len(starts):
                    break
                start = starts[next_start]
                next_start += 1
                if forgets and next_forget < len(forgets) and forgets[next_forget] < start:
                    while next_forget < len(forgets) and forgets[next_forget] < start:
                        next_forget += 1
                    self._forget_exim()
                end = chunk.find(b"\n", start)
                if end < 0:
                    end = size
                result = self._line(chunk[start:end], clock, True)
            pos = end + 1
            yield start, result

    def _line(self, raw: bytes, clock: envelope.YearClock, candidate: bool) -> MessageResult:
        """The result of one line; never raises (a failure counts the line unparsed)."""
        try:
            text = raw.decode("utf-8", "replace")
            if text.endswith("\r"):
                text = text[:-1]
            cri = envelope.split_cri(text) if text[:1].isdigit() else None
            if cri is None and text[:1] == "{" and _DOCKER_RECORD in raw:
                cri = envelope.split_docker(text)  # Docker's parts of a long line join like CRI's
            if cri is None:
                if not candidate and self._candidate.search(raw) is None:
                    return None
                return self._dispatch(envelope.split(text, clock))
            stamp, stream, partial, content = cri
            waiting = self._partial.get(stream)
            if partial:
                if waiting is None:
                    waiting = self._partial[stream] = _Partial(stamp)
                waiting.add(content)
                return None
            if waiting is not None:
                del self._partial[stream]
                if waiting.overflow:
                    return UNPARSED
                waiting.add(content)
                content = "".join(waiting.parts)
                stamp = waiting.timestamp
                if self._candidate.search(content.encode("utf-8", "replace")) is None:
                    return None
            elif not candidate and self._candidate.search(raw) is None:
                return None
            return self._dispatch(envelope.split_inner(content, stamp, clock))
        except Exception:  # noqa: BLE001 - bad input must never stop the daemon
            return UNPARSED

    def _dispatch(self, found: envelope.Envelope | None) -> MessageResult:
        if found is None:
            return None  # no envelope: not a log record of any program (a comment, a stray line)
        program = found.program
        parse: ParseMessage | None = None
        if program is not None:
            parse = self._programs.get(program)
            if parse is None and "/" in program:
                parse = postfix.parse_message
        elif _QMAIL_DELIVERY.match(found.message):
            # multilog writes qmail-send's reports with no program name: "@4000… delivery 1: …"
            parse = self._programs.get("qmail-send")
        if parse is None:
            parse = generic.parse_message
        return parse(program or "", found.message, found.timestamp)


def _with_docker_parts(chunk: bytes, starts: list[int]) -> list[int]:
    """starts, with the starts of the lines that are parts of a Docker record split at 16 KiB."""
    if chunk[:1] != b"{":
        return starts  # json-file logs hold one JSON object a line, so their chunks start with "{"
    records = chunk.count(_DOCKER_RECORD)
    if not records or records == chunk.count(_DOCKER_WHOLE):
        return starts  # no Docker records, or only whole ones: two passes at memory speed
    parts = {chunk.rfind(b"\n", 0, found.start()) + 1 for found in _DOCKER_PART.finditer(chunk)}
    if not parts:
        return starts
    return sorted(parts.union(starts))


def _line_count(chunk: bytes) -> int:
    lines = chunk.count(b"\n")
    if chunk and not chunk.endswith(b"\n"):
        lines += 1
    return lines


def _buckets_of(clock: envelope.YearClock, minutes: dict[str, int], bucket: Bucket
                ) -> dict[str, Hashable] | None:
    """The bucket of every second of each minute (stamp text without its seconds), or None
    when some minute's seconds do not share one: a bucket edge inside it, an offset change or
    a year inside it, a leap second, an offset with seconds. A minute whose stamps are all no
    date (Feb 30) has bucket None, as each of its events has no time."""
    buckets: dict[str, Hashable] = {}
    for minute, seconds in minutes.items():
        if seconds >> 60:
            return None   # a :60 or later second: its own conversion
        start = clock.minute_start(minute)
        if start is None:
            values = [clock.stamp(f"{minute}{second:02d}") for second in range(60) if seconds >> second & 1]
            if any(value is not None for value in values):
                return None
            buckets[minute] = None
        elif start % 60:
            return None
        else:
            first = (seconds & -seconds).bit_length() - 1
            last = seconds.bit_length() - 1
            found = bucket(start + first)
            if bucket(start + last) != found:
                return None   # buckets are spans of time: the first and last second decide
            buckets[minute] = found
    return buckets


def merge_scanned(scanned: list[tuple[int, LabelFields, Hashable, int]], found: list[tuple[int, StatusEvent]],
           bucket: Bucket | None) -> Tally:
    """The scanner's counts (each with the offset of its first line) and the events read in
    Python (with their line's offset) as one tally, in the order each fields first appears."""
    if not found and bucket is None:
        # The scanner read every status line of the chunk, and its keys are distinct: the tally as it is.
        return {fields: {None: n} for _first, fields, _where, n in scanned}
    counts: Tally = {}
    index = 0
    for start, event in found:
        while index < len(scanned) and scanned[index][0] < start:
            _first, fields, where, n = scanned[index]
            inner = counts.setdefault(fields, {})
            inner[where] = inner.get(where, 0) + n
            index += 1
        inner = counts.setdefault(LabelFields.of(event), {})
        where = bucket_of(bucket, event.timestamp)
        inner[where] = inner.get(where, 0) + 1
    for _first, fields, where, n in scanned[index:]:
        inner = counts.setdefault(fields, {})
        inner[where] = inner.get(where, 0) + n
    return counts


# --- registration (exporter/parsers/registry.py) ---
FORMAT = "syslog"
PARSER = SyslogParser
ORDER = 0          # listed first
FALLBACK = True    # what detection gives when no other format says yes
