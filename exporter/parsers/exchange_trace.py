"""Parser for Exchange Online message-trace CSV files, format "exchange_trace".

Part of the parser stage: a chunk of complete lines in, StatusEvents out (parsers/base.py).
Exchange Online keeps no log files an admin can follow; what admins download is a message
trace, a CSV file whose first line names its columns. Three layouts are read, told apart by
the columns the header names (case and "_" ignored):

  extended report   (historical search "Extended report"): date_time_utc, ..., event_id, ...,
                    recipient_address, recipient_status, ... - the message tracking log's
                    columns with "_" for "-". Each row is read as exchange_tracking reads a
                    tracking log line (FAIL, DEFER, DELIVER, SENDEXTERNAL; one event per
                    recipient, each with its own status and code).
  enhanced summary  (historical search "Enhanced summary report"): origin_timestamp_utc,
                    sender_address, recipient_status, ... where recipient_status lists
                    "address##Event, Event, ..." per recipient, ";" between recipients. The
                    last event of each recipient counts: Deliver / Send / SendExternal ->
                    delivered, Fail -> bounced, Defer -> deferred; no code is given.
  summary           (Get-MessageTrace | Export-Csv, the admin center's summary download):
                    Received, SenderAddress, RecipientAddress, Status, ... Status Delivered
                    -> delivered, Failed -> bounced, Pending -> deferred; no code is given.
                    Expanded (a group), Quarantined, FilteredAsSpam, GettingStatus and None
                    are not delivery attempts and give nothing.
A summary row has no code: it counts with code "none" (its class from the outcome).

Lines before a header, the header itself, a row of a layout that names no status and rows
whose status gives nothing are ignored; a row that cannot be read as CSV (an unbalanced
quote: a subject holding a line break) is unparsed. The remote is the extended report's
server_hostname for an SMTP row, else none. Time stamps: ISO 8601 (UTC unless a zone is
given), or the "M/D/YYYY h:mm:ss AM" form of an en-US Export-Csv; any other culture's date is
counted without a time.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from typing import TYPE_CHECKING

from exporter.events import BOUNCED, DEFERRED, DELIVERED, StatusEvent
from exporter.parsers.base import ChunkResult, EventParser
from exporter.parsers.exchange_tracking import ExchangeTrackingParser
from exporter.parsers.w3c import count_lines, csv_fields, decode, has_bad_bytes, iso_utc_seconds

MTA = "exchange"

_SUMMARY_STATUS = {"delivered": DELIVERED, "failed": BOUNCED, "pending": DEFERRED}
_LAST_EVENT = {"deliver": DELIVERED, "send": DELIVERED, "sendexternal": DELIVERED,
               "fail": BOUNCED, "defer": DEFERRED}
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)\Z")


def _key(name: str) -> str:
    return name.strip().strip('"').lstrip("\ufeff").lower().replace("_", "").replace("-", "")


def _timestamp(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    if text[:4].isdigit():
        return iso_utc_seconds(text)
    us = _US_DATE.match(text)
    if us is None:
        return None
    month, day, year, hour, minute, second = (int(us.group(i)) for i in range(1, 7))
    hour = hour % 12 + (12 if us.group(7) == "PM" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


class ExchangeTraceParser(EventParser):
    """Exchange Online message-trace CSV rows to StatusEvents (mta "exchange")."""

    format = "exchange_trace"

    def __init__(self) -> None:
        self._layout: str | None = None
        self._columns: dict[str, int] = {}
        self._tracking = ExchangeTrackingParser()

    def parse(self, chunk: bytes) -> ChunkResult:
        lines = count_lines(chunk)
        text, clean = decode(chunk)
        events: list[StatusEvent] = []
        matched = unparsed = 0
        for line in text.split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            if self._header(line):
                continue
            found = self._row(line, clean)
            if found is None:
                unparsed += 1
            elif found:
                matched += 1
                events.extend(found)
        return ChunkResult(events, lines, matched, lines - matched - unparsed, unparsed)

    def _header(self, line: str) -> bool:
        """True when the line is a header row (and then its layout is the current one)."""
        names = csv_fields(line)
        if not names:
            return False
        keys = [_key(name) for name in names]
        if "eventid" in keys and "recipientstatus" in keys and "datetimeutc" in keys:
            self._layout = "extended"
            # The tracking log's names: "date_time_utc" is its "date-time".
            self._tracking.set_fields(["date-time" if k == "datetimeutc" else name.strip().strip('"')
                                       .lstrip("\ufeff").replace("_", "-") for k, name in zip(keys, names)])
        elif "origintimestamputc" in keys and "recipientstatus" in keys:
            self._layout = "enhanced"
        elif "received" in keys and "status" in keys and "recipientaddress" in keys:
            self._layout = "summary"
        else:
            return False
        self._columns = {}
        for position, key in enumerate(keys):
            self._columns.setdefault(key, position)
        return True

    def _field(self, row: list[str], key: str) -> str:
        position = self._columns.get(key, -1)
        return row[position] if 0 <= position < len(row) else ""

    def _row(self, line: str, clean: bool) -> list[StatusEvent] | None:
        if self._layout is None:
            return []  # no header seen: not a message trace we know
        if self._layout == "extended":
            return self._tracking.read_line(line, clean)
        if line.count('"') % 2 or (not clean and has_bad_bytes(line)):
            return None
        row = csv_fields(line)
        if row is None or len(row) < len(self._columns):
            return None
        if self._layout == "summary":
            outcome = _SUMMARY_STATUS.get(self._field(row, "status").strip().lower())
            if outcome is None:
                return []
            stamp = _timestamp(self._field(row, "received"))
            queue_id = self._field(row, "messagetraceid") or None
            return [StatusEvent(MTA, outcome, None, None, None, stamp, queue_id)]
        stamp = _timestamp(self._field(row, "origintimestamputc"))
        queue_id = self._field(row, "networkmessageid") or None
        events = []
        for recipient in self._field(row, "recipientstatus").split(";"):
            _address, _, trail = recipient.partition("##")
            last = trail.split(",")[-1].strip().lower()
            outcome = _LAST_EVENT.get(last)
            if outcome is not None:
                events.append(StatusEvent(MTA, outcome, None, None, None, stamp, queue_id))
        return events


if TYPE_CHECKING:
    from exporter.parsers.detect import Sample


# --- registration (exporter/parsers/registry.py) ---
FORMAT = "exchange_trace"
PARSER = ExchangeTraceParser
ORDER = 50          # where the format is listed
DETECT_ORDER = 35   # when detection asks detects(): after the W3C headers, before Exim's dates


def detects(sample: "Sample") -> bool:
    """Detection (parsers/detect.py): the first record is a message-trace CSV header (it names
    Received, Status and RecipientAddress, or origin_timestamp_utc and recipient_status, or
    date_time_utc, event_id and recipient_status)."""
    if not sample.records:
        return False
    names = {name.strip().strip(b'"').lower().replace(b"_", b"") for name in sample.records[0].split(b",")}
    return ({b"received", b"status", b"recipientaddress"} <= names
            or {b"origintimestamputc", b"recipientstatus"} <= names
            or {b"datetimeutc", b"eventid", b"recipientstatus"} <= names)
