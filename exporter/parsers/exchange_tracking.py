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
"""

from __future__ import annotations

import csv
import os
import re
from operator import itemgetter
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
        # The fast count's view (_count_fast): the fields that make a line's labels, in
        # _key's order, and the split that reaches all of them and the date-time.
        self.key_columns = (self.event_id, self.source, self.server_hostname, self.server_ip,
                            self.status)
        self.head = max(self.event_id, self.source, self.server_hostname, self.server_ip,
                        self.status, self.recipients, self.date_time) + 1
        # Raw key fields (with the recipient count when not 1) -> _Labels, for this layout's lines.
        self.labels: dict[tuple, _Labels | None] = {}
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
        if not self._fast or self._layout.event_id < 0 or b"#Fields:" in chunk or not _utf8(chunk):
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
# count() gives what tally(parse()) gives, reading the chunk as bytes: the candidate lines are
# found as parse() finds them, split at their first commas only as far as the fields the
# labels and the time come from, and the labels of a line come from a cache keyed by those
# raw fields (a log repeats few event id, source, server and status values); label_parts()
# makes each entry, as it makes the reference's events. A line whose quoting could make the
# csv module read those fields differently (a quote in any field before the split other than
# a key field quoted whole, a CR, a field near the csv module's size limit) is handed to the
# reference, and so is every chunk holding a `#Fields:` line or bytes that are not UTF-8.
# tests/test_exchange_count.py compares the two.

_CANDIDATE_BYTES = re.compile(_CANDIDATE.pattern.encode())
_UNSEEN = object()
# The minute of Exchange's date-time ("2019-03-14T08:15"), hour and minute in range.
_MINUTE = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]")


class _Labels:
    """The events one line gives, as label fields, and how many quotes its key fields hold."""

    __slots__ = ("fields", "quotes")

    def __init__(self, fields: tuple[LabelFields, ...], quotes: int) -> None:
        self.fields = fields
        self.quotes = quotes


def _utf8(chunk: bytes) -> bool:
    if chunk.isascii():
        return True
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unquote(raw: bytes) -> tuple[str, int] | None:
    """A field as the csv module reads it, and its quotes: plain, or quoted whole with no
    quote inside; None for any other quoting."""
    if b'"' not in raw:
        return raw.decode("utf-8"), 0
    if len(raw) >= 2 and raw[0] == raw[-1] == 0x22 and raw.count(b'"') == 2:
        return raw[1:-1].decode("utf-8"), 2
    return None


def _labels(layout: _Layout, key: tuple) -> _Labels | None:
    """The cache entry for a line's raw key fields (with the recipient count when it is not 1):
    None when their quoting needs the reference."""
    count = 1
    if isinstance(key[1], int):
        key, count = key
    texts = []
    quotes = 0
    for raw in key:
        read = _unquote(raw)
        if read is None:
            return None
        texts.append(read[0])
        quotes += read[1]
    event_id, source, server_hostname, server_ip, status = texts
    found = label_parts(layout, event_id, source, server_hostname, server_ip, count, status)
    return _Labels(tuple(LabelFields(MTA, *parts) for parts in found), quotes)


def _minute(raw: bytes, minutes: dict[bytes, int | None]) -> int | None:
    """Microseconds since the epoch at the start of "YYYY-MM-DDTHH:MM" (UTC), or None."""
    if len(minutes) > 10_000:
        minutes.clear()
    stamp = iso_utc_seconds(raw.decode() + ":00Z") if _MINUTE.fullmatch(raw) else None
    base = minutes[raw] = None if stamp is None else int(stamp) * 1_000_000
    return base


def _count_fast(parser: ExchangeTrackingParser, chunk: bytes, bucket: Bucket | None) -> Counted:
    """count() for a UTF-8 chunk without a `#Fields:` line (see above)."""
    layout = parser._layout
    cache = layout.labels
    if len(cache) > 50_000:
        cache.clear()
    key_of = itemgetter(*layout.key_columns)
    recipients, date_time, head, min_fields = layout.recipients, layout.date_time, layout.head, layout.min_fields
    padding = [b""] * (head + 1)
    limit = csv.field_size_limit()
    minutes = layout.minutes
    # (labels, bucket) -> lines, in the order each first appears; the tally is made from it.
    seen: dict[Hashable, int] = {}
    by_event: dict[LabelFields, _Labels] = {}
    matched = unparsed = 0
    newest: float | None = None
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
        quotes = line.count(b'"')
        if quotes & 1:
            unparsed += 1   # the reference's first test: a quote cut short
            continue
        if b"\r" not in line and len(line) < limit:
            parts = line.split(b",", head)
            fields = len(parts)
            if fields >= min_fields:
                in_head = quotes
                if quotes and fields > head:
                    in_head = line.count(b'"', 0, len(line) - len(parts[head]) - 1)
                if fields <= head:
                    parts += padding[fields:]
                parts.append(b"")   # what a column the layout lacks (-1) reads
                key = key_of(parts)
                rcpt = parts[recipients]
                if b";" in rcpt:
                    key = (key, recipient_count(rcpt.decode("utf-8")))
                entry = cache.get(key, _UNSEEN)
                if entry is _UNSEEN:
                    entry = cache[key] = _labels(layout, key)
                # Quotes in another field before the split, or key fields quoted otherwise
                # than whole: the reference reads the line.
                if entry is not None and entry.quotes == in_head:
                    if not entry.fields:
                        continue
                    matched += 1
                    raw = parts[date_time]
                    stamp = None
                    if len(raw) == 24 and raw[16] == 0x3A and raw[19] == 0x2E and raw[23] == 0x5A:
                        base = minutes.get(raw[:16], _UNSEEN)
                        if base is _UNSEEN:
                            base = _minute(raw[:16], minutes)
                        second, milli = raw[17:19], raw[20:23]
                        if base is not None and second.isdigit() and second < b"60" and milli.isdigit():
                            # What datetime.timestamp() computes: whole microseconds over 10**6.
                            stamp = (base + int(second) * 1_000_000 + int(milli) * 1000) / 1_000_000
                        else:
                            stamp = iso_utc_seconds(raw.decode("utf-8"))
                    else:
                        stamp = iso_utc_seconds(raw.decode("utf-8"))
                    if stamp is None:
                        where = entry
                    else:
                        if newest is None or stamp > newest:
                            newest = stamp
                        where = entry if bucket is None else (entry, bucket(stamp))
                    seen[where] = seen.get(where, 0) + 1
                    continue
            elif not quotes:
                unparsed += 1   # too few fields, as the csv module would read them too
                continue
        events = parser._read_line(line.decode("utf-8"), True)
        if events is None:
            unparsed += 1
            continue
        if events:
            matched += 1
        for event in events:
            fields = LabelFields.of(event)
            labels = by_event.get(fields)
            if labels is None:
                labels = by_event[fields] = _Labels((fields,), 0)
            stamp = event.timestamp
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
            where = labels if bucket is None or stamp is None else (labels, bucket(stamp))
            seen[where] = seen.get(where, 0) + 1
    counts: Tally = {}
    for where, lines in seen.items():
        labels, key = (where, None) if isinstance(where, _Labels) else where
        for fields in labels.fields:
            into = counts.setdefault(fields, {})
            into[key] = into.get(key, 0) + lines
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
