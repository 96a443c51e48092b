"""Parser for Exchange SMTP send and receive protocol logs, format "exchange_protocol".

Part of the parser stage: a chunk of complete lines in, StatusEvents out
(parsers/base.py). Each line is one step of an SMTP session in CSV
(date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,
event,data,context), columns mapped by the newest `#Fields:` line. The event column
says the direction: ">" sent by this server, "<" received, "-" disconnected.

The data itself says which side speaks: a line whose data starts with a 3-digit
reply is an answer, any other data is a command. So send and receive logs need no
`#Log-type:` line: a reply received ("<") is a remote server's answer to our
delivery (send log), a reply sent (">") is our answer to a client (receive log).
smtp_dialogue.Dialogue pairs the replies with their commands and decides what is
counted (one event per recipient attempt; docs/formats-exchange.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re

from exporter.events import StatusEvent
from exporter.parsers.base import ChunkResult, EventParser
from exporter.parsers.smtp_dialogue import Dialogue, command_verb
from exporter.parsers.w3c import (
    csv_fields, field_map, has_bad_bytes, iso_utc_seconds, read_chunk, split_reply,
)

FIELDS = ("date-time,connector-id,session-id,sequence-number,local-endpoint,"
          "remote-endpoint,event,data,context").split(",")

# A sent or received line, or a disconnect; connects ("+") and notes ("*") are skipped.
_CANDIDATE = re.compile(r",[<>],|,-,")
_REPLY = re.compile(r"\s*[2-5][0-9][0-9](?![0-9])")


class _Layout:
    def __init__(self, names: list[str]) -> None:
        columns = field_map(names)
        self.date_time = columns.get("date-time", -1)
        self.session = columns.get("session-id", -1)
        self.remote = columns.get("remote-endpoint", -1)
        self.event = columns.get("event", -1)
        self.data = columns.get("data", -1)
        self.min_fields = max(self.session, self.event, self.data) + 1
        self.usable = min(self.session, self.event, self.data) >= 0


def _host(endpoint: str) -> str | None:
    """The address of "203.0.113.25:25" or "[2001:db8::25]:25"."""
    host = endpoint.rpartition(":")[0] if endpoint.count(":") == 1 or "]:" in endpoint else endpoint
    return host.strip("[]") or None


class ExchangeProtocolParser(EventParser):
    """Exchange SMTP protocol log lines to StatusEvents (mta "exchange")."""

    format = "exchange_protocol"

    def __init__(self) -> None:
        self._layout = _Layout(FIELDS)
        self._dialogue = Dialogue()

    def parse(self, chunk: bytes) -> ChunkResult:
        return read_chunk(chunk, _CANDIDATE, self._set_fields, self._read_line)

    def _set_fields(self, names: list[str]) -> None:
        self._layout = _Layout(names)

    def _read_line(self, line: str, clean: bool) -> list[StatusEvent] | None:
        """The events of one candidate line: [] when none, None when the line does not parse."""
        layout = self._layout
        if not layout.usable or line.startswith("#"):
            return [] if line.startswith("#") else None
        if line.count('"') % 2 or (not clean and has_bad_bytes(line)):
            return None
        row = csv_fields(line)
        if row is None or len(row) < layout.min_fields:
            return None
        event = row[layout.event]
        session = row[layout.session]
        data = row[layout.data]
        if event == "-":
            self._dialogue.end(session)
            return []
        if event not in ("<", ">"):
            return None
        if _REPLY.match(data) is None:
            if data:
                self._dialogue.command(session, command_verb(data))
            return []
        reply, code = split_reply(data)
        if reply is None:
            return []
        decided = self._dialogue.reply(session, reply, ours=event == ">")
        if decided is None:
            return []
        outcome, count = decided
        remote = _host(row[layout.remote]) if 0 <= layout.remote < len(row) else None
        stamp = iso_utc_seconds(row[layout.date_time]) if 0 <= layout.date_time < len(row) else None
        event_out = StatusEvent("exchange", outcome, code, reply, remote, stamp, session or None)
        return [event_out] * count


if TYPE_CHECKING:
    from exporter.parsers.detect import Sample


# --- registration (exporter/parsers/registry.py) ---
FORMAT = "exchange_protocol"
PARSER = ExchangeProtocolParser
ORDER = 30          # where the format is listed
DETECT_ORDER = 20   # when detection asks detects()


def detects(sample: "Sample") -> bool:
    """Detection (parsers/detect.py): Exchange's headers name an SMTP send or receive protocol log."""
    return sample.software.startswith(b"Microsoft Exchange Server") and \
        sample.log_type in (b"SMTP Send Protocol Log", b"SMTP Receive Protocol Log")
