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

from typing import TYPE_CHECKING

import re

from exporter.events import BOUNCED, DEFERRED, DELIVERED, EXPIRED, StatusEvent
from exporter.parsers.base import ChunkResult, EventParser
from exporter.parsers.w3c import (
    csv_fields, field_map, has_bad_bytes, iso_utc_seconds, read_chunk, split_reply,
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


def _field(row: list[str], index: int) -> str:
    return row[index] if 0 <= index < len(row) else ""


class ExchangeTrackingParser(EventParser):
    """Exchange message tracking log lines to StatusEvents (mta "exchange")."""

    format = "exchange_tracking"

    def __init__(self) -> None:
        self._layout = _Layout(FIELDS_2013)

    def parse(self, chunk: bytes) -> ChunkResult:
        return read_chunk(chunk, _CANDIDATE, self._set_fields, self._read_line)

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
        event_id = row[layout.event_id]
        outcome = _OUTCOMES.get(event_id)
        if outcome is None or (event_id == "SEND" and not layout.send_is_final):
            return []
        status = _field(row, layout.status)
        recipients = _field(row, layout.recipients)
        remote = None
        if _field(row, layout.source) == "SMTP":
            remote = _field(row, layout.server_hostname) or _field(row, layout.server_ip) or None
        timestamp = iso_utc_seconds(_field(row, layout.date_time))
        queue_id = _field(row, layout.message_id) or None

        count = max(1, sum(1 for address in recipients.split(";") if address.strip()))
        events = []
        for text in _statuses(status, count):
            reply, code = split_reply(text)
            this_outcome = outcome
            if outcome == BOUNCED and code is not None and code[0] == "4":
                this_outcome = EXPIRED
            events.append(StatusEvent("exchange", this_outcome, code, reply, remote, timestamp, queue_id))
        return events


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
