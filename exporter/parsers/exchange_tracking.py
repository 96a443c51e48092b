"""Parser for Microsoft Exchange message tracking logs (MSGTRK*.LOG), format "exchange_tracking".

Part of the parser stage: a chunk of complete lines in, StatusEvents out
(parsers/base.py). The logs are CSV files whose columns are named by a `#Fields:`
directive; the column map comes from the newest `#Fields:` line seen, and until
one is seen (a follower that starts at the end of a file never sees the header)
the Exchange 2013-2019 layout is assumed.

What counts (docs/formats-exchange.md says why):
  FAIL          bounced; expired when the status carries a class-4 code (4.4.7 QUEUE.Expired)
  DEFER         deferred
  DELIVER       delivered (stored in a local mailbox)
  SENDEXTERNAL  delivered (handed to a host outside the organisation, Exchange 2013+)
  SEND          delivered, only in the Exchange 2007/2010 layout; from 2013 on SEND is an
                internal hop that a later DELIVER or SENDEXTERNAL line completes
  anything else (RECEIVE, DSN, EXPAND, ...) is ignored: a DSN line reports the NDR
  generated for a FAIL line already counted.
One event per (non-empty) recipient in recipient-address; each takes its own status from
recipient-status when the two lists line up, else the whole status text.

parse() is the reference, one event per status line. count() (what the daemon, report and
backfill read) gives the same tally by a fast count at the byte level ("the fast count" below),
whose labels come from the same label_parts(); tests/test_exchange_count.py holds the two equal.
NDR_EXPORTER_PURE_PYTHON=1 in the environment when a parser is made turns it off.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
import re
from typing import TYPE_CHECKING, Hashable

from exporter.events import BOUNCED, DEFERRED, DELIVERED, EXPIRED, StatusEvent
from exporter.parsers.base import Bucket, ChunkResult, Counted, EventParser, LabelFields, Tally, tally
from exporter.parsers.w3c import (
    count_lines, csv_fields, field_map, has_bad_bytes, iso_utc_seconds, read_chunk, split_reply,
)

# Exchange 2013, 2016 and 2019 (version 15.x).
FIELDS_2013 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
    "source,event-id,internal-message-id,message-id,network-message-id,recipient-address,"
    "recipient-status,total-bytes,recipient-count,related-recipient-address,reference,"
    "message-subject,sender-address,return-path,message-info,directionality,tenant-id,"
    "original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,schema-version"
).split(",")
# Exchange 2010 (version 14.x); 2007 writes the same columns up to custom-data's place.
FIELDS_2010 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
    "source,event-id,internal-message-id,message-id,recipient-address,recipient-status,"
    "total-bytes,recipient-count,related-recipient-address,reference,message-subject,"
    "sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,"
    "original-server-ip,custom-data"
).split(",")

MTA = "exchange"
_OUTCOMES = {
    "FAIL": BOUNCED,
    "DEFER": DEFERRED,
    "DELIVER": DELIVERED,
    "SENDEXTERNAL": DELIVERED,
    "SEND": DELIVERED,
}
# An event id standing as a whole CSV field; only lines with one of these are read.
_CANDIDATE = re.compile(r",(?:FAIL|DEFER|DELIVER|SENDEXTERNAL|SEND),")
# Where one recipient's status ends and the next begins: a ";" before a reply code,
# an enhanced code or a "[{LRT=...};{LED=...}]" block. A ";" inside one status
# ("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", or between the {...} parts of
# a block) is followed by none of these. The strict cut asks for the shape Exchange writes
# (reply, space or hyphen, enhanced code); it is tried first, so that a number after a ";"
# in a status's own text ("RecipLimit; 500 recipients at most") does not start a status.
# The loose cut also takes a reply with no enhanced code ("550 Requested action ...").
_NEXT_STATUS_STRICT = re.compile(
    r";(?=\s*(?:[245][0-9]{2}[ -][245]\.[0-9]{1,3}\.[0-9]|[245]\.[0-9]{1,3}\.[0-9]|\[\{))")
_NEXT_STATUS = re.compile(r";(?=\s*(?:[245][0-9]{2}(?![0-9])|[245]\.[0-9]|\[\{))")


class _Layout:
    """The column positions the parser needs, from one `#Fields:` list."""

    def __init__(self, names: list[str]) -> None:
        columns = field_map(names)
        self.event_id = columns.get("event-id", -1)
        self.date_time = columns.get("date-time", -1)
        self.source = columns.get("source", -1)
        self.server_hostname = columns.get("server-hostname", -1)
        self.server_ip = columns.get("server-ip", -1)
        self.message_id = columns.get("internal-message-id", -1)
        self.recipients = columns.get("recipient-address", -1)
        self.status = columns.get("recipient-status", -1)
        # A row must reach the event id and the recipient status to be read.
        self.min_fields = max(self.event_id, self.status) + 1
        # From Exchange 2013 on, network-message-id is logged and SEND is an internal hop.
        self.send_is_final = "network-message-id" not in columns
        # The fast count's view (_count_fast): a pattern for the fields up to the last one it
        # reads, and its groups for the label fields (in label_parts' order), recipients, time.
        self.head, self.key_groups, self.recipients_group, self.date_time_group = _head_pattern(
            [self.event_id, self.source, self.server_hostname, self.server_ip, self.status],
            self.recipients, self.date_time)
        # Raw label fields (with the recipient count when not 1) -> _Labels, for this layout's lines.
        self.labels: dict[tuple, _Labels] = {}
        self.minutes: dict[bytes, int | None] = {}   # for _timestamp


def _field(row: list[str], index: int) -> str:
    return row[index] if 0 <= index < len(row) else ""


class ExchangeTrackingParser(EventParser):
    """Exchange message tracking log lines to StatusEvents (mta "exchange")."""

    format = "exchange_tracking"

    def __init__(self) -> None:
        self._layout = _Layout(FIELDS_2013)
        self._fast = not os.environ.get("NDR_EXPORTER_PURE_PYTHON")

    def parse(self, chunk: bytes) -> ChunkResult:
        return read_chunk(chunk, _CANDIDATE, self._set_fields, self._read_line)

    def count(self, chunk: bytes, bucket: Bucket | None = None) -> Counted:
        """parse()'s events added up (base.py), by the fast count where it applies."""
        if not self._fast or not _utf8(chunk):
            return tally(self.parse(chunk), bucket)
        if chunk.find(b"#Fields:") == -1:
            return self._count_rest(chunk, bucket)
        last = chunk.rfind(b"#Fields:")
        # The lines up to the last `#Fields:` line by parse(), then the rest in its layout.
        cut = chunk.find(b"\n", last) + 1 or len(chunk)
        return _joined(tally(self.parse(chunk[:cut]), bucket), self._count_rest(chunk[cut:], bucket))

    def _count_rest(self, chunk: bytes, bucket: Bucket | None) -> Counted:
        """count() of lines that hold no `#Fields:` line."""
        if self._layout.event_id < 0:
            return tally(self.parse(chunk), bucket)
        return _count_fast(self, chunk, bucket)

    def set_fields(self, names: list[str]) -> None:
        """Read the following lines with these column names (a `#Fields:` list, or the
        header of an Exchange Online extended message trace, exchange_trace.py)."""
        self._layout = _Layout(names)

    _set_fields = set_fields

    def read_line(self, line: str, clean: bool) -> list[StatusEvent] | None:
        """The events of one line: [] when it is not a status line, None when it does not parse."""
        if _CANDIDATE.search(line) is None:
            return []
        return self._read_line(line, clean)

    def _read_line(self, line: str, clean: bool) -> list[StatusEvent] | None:
        """The events of one candidate line: [] when it is not a status line, None when unparsable."""
        layout = self._layout
        if layout.event_id < 0 or line.count('"') % 2 or (not clean and has_bad_bytes(line)):
            return None  # no event-id column, a quote cut short by truncation, or not UTF-8
        row = csv_fields(line)
        if row is None or len(row) < layout.min_fields:
            return None
        found = label_parts(layout, row[layout.event_id], _field(row, layout.source),
                            _field(row, layout.server_hostname), _field(row, layout.server_ip),
                            recipient_count(_field(row, layout.recipients)), _field(row, layout.status))
        if not found:
            return []
        timestamp = iso_utc_seconds(_field(row, layout.date_time))
        queue_id = _field(row, layout.message_id) or None
        return [StatusEvent(MTA, outcome, code, reply, remote, timestamp, queue_id)
                for outcome, code, reply, remote in found]


def recipient_count(recipients: str) -> int:
    """How many events a line gives: one per non-empty address in recipient-address, at least one."""
    return max(1, sum(1 for address in recipients.split(";") if address.strip()))


def label_parts(layout: _Layout, event_id: str, source: str, server_hostname: str, server_ip: str,
                count: int, status: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """(outcome, code, reply, remote) of each event of a line with these fields; [] when the
    event id is not counted. The reference path and the fast count (exchange_count.py) both
    read a line's labels here, so the two share one grammar."""
    outcome = _OUTCOMES.get(event_id)
    if outcome is None or (event_id == "SEND" and not layout.send_is_final):
        return []
    remote = None
    if source == "SMTP":
        remote = server_hostname or server_ip or None
    found = []
    for text in _statuses(status, count):
        reply, code = split_reply(text)
        this_outcome = outcome
        if outcome == BOUNCED and code is not None and code[0] == "4":
            this_outcome = EXPIRED
        found.append((this_outcome, code, reply, remote))
    return found


def _statuses(status: str, count: int) -> list[str]:
    """One status text per recipient: recipient-status cut where the next status starts.

    When neither cut gives exactly `count` pieces the lists do not line up, and every
    recipient gets the whole text (so the first code in it): a count is never lost.
    """
    if count == 1:
        return [status]
    for cut in (_NEXT_STATUS_STRICT, _NEXT_STATUS):
        parts = cut.split(status)
        if len(parts) == count:
            return parts
    return [status] * count


# --- the fast count -------------------------------------------------------------------------
# count() gives what tally(parse()) gives, reading the chunk as bytes: it finds the candidate
# lines as parse() finds them, reads each line's fields up to the last one it needs with the
# layout's head pattern (a field quoted whole with no quote inside, or plain: the two shapes the
# csv module reads without doubt), and takes the line's label fields from a cache keyed by the
# raw fields they come from (a log repeats few event ids, sources, servers and statuses), made by
# label_parts() as parse() makes its events. Without a time bucket only the newest time is read
# (_newest). A line the pattern does not read (another quoting, a quoted recipient list or time, a
# CR inside, fewer fields), or longer than the csv module's field limit, goes to parse()'s own
# line reader, as does every chunk that is not UTF-8; the lines up to a `#Fields:` line go to
# parse() itself. tests/test_exchange_count.py compares the two.

_CANDIDATE_BYTES = re.compile(_CANDIDATE.pattern.encode())
_UNSEEN = object()
# Bytes looked for with `in` as ints: `in` tries its operand as an int first, and for a bytes
# operand makes and clears a TypeError (CPython 3.11) each time. (find and count take bytes.)
_CR, _QUOTE, _SEMICOLON = 0x0D, 0x22, 0x3B
# The minute of Exchange's date-time ("2019-03-14T08:15"), hour and minute in range.
_MINUTE = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]")
# Date-time fields of Exchange's shape one after the other, each read as one time by _timestamp.
_STAMPS = re.compile(rb"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z)*")
# One CSV field as the csv module reads it without doubt: quoted whole with no quote inside
# (read without its quotes), or not starting with a quote and holding no comma (read as it is,
# a quote inside included: the csv module takes it as a plain character there).
_FIELD = rb'(?:"[^"]*"|(?!")[^,]*)'
_PLAIN_FIELD = rb'(?!")[^,]*'


def _head_pattern(keys: list[int], recipients: int,
                  date_time: int) -> tuple[re.Pattern[bytes], tuple[int, ...], int, int]:
    """The pattern that reads a line's fields up to the last of these columns (-1: absent), and
    the numbers of its groups: the key fields' (as a tuple), the recipients' and the time's.
    The recipients and the time must be plain; an absent column is an empty group at the end."""
    wanted = [c for c in (*keys, recipients, date_time) if c >= 0]
    head = max(wanted, default=0) + 1   # (no event-id column: the fast count is not used)
    pieces = []
    group_of: dict[int, int] = {}
    for column in range(head):
        if column in (recipients, date_time):
            group_of[column] = len(group_of) + 1
            pieces.append(b"(" + _PLAIN_FIELD + b")")
        elif column in keys:
            group_of[column] = len(group_of) + 1
            pieces.append(b"(" + _FIELD + b")")
        else:
            pieces.append(_FIELD)
    pattern = b",".join(pieces) + rb"(?:,|\Z)()"   # the head ends at a comma or the line's end
    absent = len(group_of) + 1
    number = [group_of.get(c, absent) for c in (*keys, recipients, date_time)]
    return re.compile(pattern), tuple(number[:len(keys)]), number[-2], number[-1]


class _Labels:
    """The label fields of the events one line gives (a line gives one per recipient)."""

    __slots__ = ("fields",)

    def __init__(self, fields: tuple[LabelFields, ...]) -> None:
        self.fields = fields


def _joined(first: Counted, then: Counted) -> Counted:
    """Two counts of consecutive lines as one (the tally in the order each first appears)."""
    counts: Tally = {fields: dict(buckets) for fields, buckets in first.tally.items()}
    for fields, buckets in then.tally.items():
        into = counts.setdefault(fields, {})
        for key, n in buckets.items():
            into[key] = into.get(key, 0) + n
    stamps = [stamp for stamp in (first.newest, then.newest) if stamp is not None]
    return Counted(counts, max(stamps, default=None), first.lines + then.lines, first.matched + then.matched,
                   first.ignored + then.ignored, first.unparsed + then.unparsed)


def _utf8(chunk: bytes) -> bool:
    """True when the chunk is UTF-8 (parse() then reads each line without checking its bytes)."""
    if chunk.isascii():
        return True
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unquote(raw: bytes) -> str:
    """A field as the csv module reads it, when _FIELD matched it."""
    return (raw[1:-1] if raw[:1] == b'"' else raw).decode("utf-8")


def _labels(layout: _Layout, key: tuple) -> _Labels:
    """The cache entry for a line's raw label fields (with the recipient count when it is not 1)."""
    count = 1
    if isinstance(key[1], int):
        key, count = key
    event_id, source, server_hostname, server_ip, status = map(_unquote, key)
    found = label_parts(layout, event_id, source, server_hostname, server_ip, count, status)
    return _Labels(tuple(LabelFields(MTA, *parts) for parts in found))


def _minute(raw: bytes, minutes: dict[bytes, int | None]) -> int | None:
    """Microseconds since the epoch at the start of "YYYY-MM-DDTHH:MM" (UTC), or None."""
    if len(minutes) > 4096:
        minutes.clear()
    stamp = iso_utc_seconds(raw.decode() + ":00Z") if _MINUTE.fullmatch(raw) else None
    base = minutes[raw] = None if stamp is None else int(stamp) * 1_000_000
    return base


def _timestamp(raw: bytes, minutes: dict[bytes, int | None]) -> float | None:
    """iso_utc_seconds() of a date-time field: Exchange's own shape ("2019-03-14T08:15:02.193Z")
    from a cache of its minutes, any other by iso_utc_seconds itself."""
    if len(raw) == 24 and raw[16] == 0x3A and raw[19] == 0x2E and raw[23] == 0x5A:
        base = minutes.get(raw[:16], _UNSEEN)
        if base is _UNSEEN:
            base = _minute(raw[:16], minutes)
        second, milli = raw[17:19], raw[20:23]
        if base is not None and second.isdigit() and second < b"60" and milli.isdigit():
            # What datetime.timestamp() computes: whole microseconds over 10**6.
            return (base + int(second) * 1_000_000 + int(milli) * 1000) / 1_000_000   # type: ignore[operator]
    return iso_utc_seconds(raw.decode("utf-8"))


def _newest(stamps: list[bytes], minutes: dict[bytes, int | None]) -> float | None:
    """The latest time among these date-time fields (None when none has a time).

    When every one has Exchange's shape, digits where the digits go, their order as bytes is
    their order in time, so the greatest alone is read (unless it names no real day)."""
    if set(map(len, stamps)) == {24} and _STAMPS.fullmatch(b"".join(stamps)):
        latest = _timestamp(max(stamps), minutes)
        if latest is not None:
            return latest
    times = [t for t in map(lambda raw: _timestamp(raw, minutes), set(stamps)) if t is not None]
    return max(times, default=None)


def _count_fast(parser: ExchangeTrackingParser, chunk: bytes, bucket: Bucket | None) -> Counted:
    """count() for UTF-8 lines without a `#Fields:` line (see above)."""
    layout = parser._layout
    cache = layout.labels
    if len(cache) > 10_000:
        cache.clear()
    read_head = layout.head.match
    groups = (*layout.key_groups, layout.recipients_group, layout.date_time_group)
    limit = csv.field_size_limit()
    minutes = layout.minutes
    # A _Labels (or a _Labels and a bucket) for each line or event counted; added up at the end,
    # in the order each first appears (the tally's order).
    hits: list[Hashable] = []
    by_event: dict[LabelFields, _Labels] = {}
    matched = unparsed = 0   # of the lines parse()'s line reader reads
    newest: float | None = None
    stamps: list[bytes] = []   # the date-time fields of the lines counted without a bucket
    reference_hits = 0   # the hits that are events of lines parse()'s line reader read
    search = _CANDIDATE_BYTES.search
    find, rfind = chunk.find, chunk.rfind
    found = search(chunk)
    while found is not None:
        start = rfind(b"\n", 0, found.start()) + 1
        end = find(b"\n", found.end())
        if end == -1:
            end = len(chunk)
        found = search(chunk, end)
        line = chunk[start:end].rstrip(b"\r")
        if _QUOTE in line and line.count(b'"') & 1:
            unparsed += 1   # the reference's first test: a quote cut short
            continue
        # A CR inside the line, or a field that may pass the csv module's limit: the reference.
        fields = read_head(line) if _CR not in line and len(line) < limit else None
        if fields is not None:
            values = fields.group(*groups)   # the label fields, the recipients, the time
            key = values[:5]
            if _SEMICOLON in values[5]:
                key = (key, recipient_count(values[5].decode("utf-8")))
            entry = cache.get(key, _UNSEEN)
            if entry is _UNSEEN:
                entry = cache[key] = _labels(layout, key)
            if not entry.fields:
                continue
            if bucket is None:
                stamps.append(values[6])   # only the newest is needed: _newest()
                hits.append(entry)
            else:
                stamp = _timestamp(values[6], minutes)
                if stamp is None:
                    hits.append(entry)
                else:
                    if newest is None or stamp > newest:
                        newest = stamp
                    hits.append((entry, bucket(stamp)))
            continue
        events = parser._read_line(line.decode("utf-8"), True)
        if events is None:
            unparsed += 1
            continue
        if events:
            matched += 1
        reference_hits += len(events)
        for event in events:
            label_fields = LabelFields.of(event)
            labels = by_event.get(label_fields)
            if labels is None:
                labels = by_event[label_fields] = _Labels((label_fields,))
            stamp = event.timestamp
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
            hits.append(labels if bucket is None or stamp is None else (labels, bucket(stamp)))
    matched += len(hits) - reference_hits   # a line read here is one hit
    counts: Tally = {}
    for where, lines in Counter(hits).items():
        labels, key = (where, None) if isinstance(where, _Labels) else where  # type: ignore[misc]
        for label_fields in labels.fields:
            into = counts.setdefault(label_fields, {})
            into[key] = into.get(key, 0) + lines
    if stamps:
        latest = _newest(stamps, minutes)
        if latest is not None and (newest is None or latest > newest):
            newest = latest
    total = count_lines(chunk)
    return Counted(counts, newest, total, matched, total - matched - unparsed, unparsed)


if TYPE_CHECKING:
    from exporter.parsers.detect import Sample


# --- registration (exporter/parsers/registry.py) ---
FORMAT = "exchange_tracking"
PARSER = ExchangeTrackingParser
ORDER = 20          # where the format is listed
DETECT_ORDER = 10   # when detection asks detects()


def detects(sample: "Sample") -> bool:
    """Detection (parsers/detect.py): Exchange's headers name a message tracking log."""
    return sample.software.startswith(b"Microsoft Exchange Server") and sample.log_type == b"Message Tracking Log"
