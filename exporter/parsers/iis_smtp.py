"""Parser for the IIS SMTP service's W3C extended logs, format "iis_smtp".

Part of the parser stage: a chunk of complete lines in, StatusEvents out
(parsers/base.py). Fields are separated by spaces, named by the newest `#Fields:`
line, and a space inside a value is written "+". Two kinds of lines hold statuses:

  inbound   a client's command and our answer: cs-method is the verb (RCPT, DATA, ...)
            and sc-status the 3-digit reply. A 4xx/5xx answer to MAIL, RCPT, DATA or
            BDAT is one rejected event (IIS logs no enhanced code here).
  outbound  cs-username "OutboundConnectionCommand" (our command, verb in cs-method) or
            "OutboundConnectionResponse" (the remote's reply text in cs-uri-query);
            c-ip is the remote server. smtp_dialogue.Dialogue pairs replies with
            commands, per remote, and counts one event per recipient attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re

from exporter.events import REJECTED, StatusEvent
from exporter.parsers.base import ChunkResult, EventParser
from exporter.parsers.smtp_dialogue import Dialogue, command_verb
from exporter.parsers.w3c import field_map, has_bad_bytes, iso_utc_seconds, read_chunk, split_reply

# The SMTP service's default W3C field list.
FIELDS = ("date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method "
          "cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken "
          "cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)").split()

_CANDIDATE = re.compile(r" (?:OutboundConnection|(?:MAIL|RCPT|DATA|BDAT|mail|rcpt|data|bdat)\b)")
_TRANSACTION = frozenset({"MAIL", "RCPT", "DATA", "BDAT"})


class _Layout:
    def __init__(self, names: list[str]) -> None:
        columns = field_map(names)
        self.date = columns.get("date", -1)
        self.time = columns.get("time", -1)
        self.client = columns.get("c-ip", -1)
        self.user = columns.get("cs-username", -1)
        self.method = columns.get("cs-method", -1)
        self.query = columns.get("cs-uri-query", -1)
        self.status = columns.get("sc-status", -1)
        # Inbound lines need the verb and the status; outbound ones also cs-username and
        # cs-uri-query (a log without them holds only inbound lines).
        self.min_fields = max(self.method, self.status) + 1
        self.usable = min(self.method, self.status) >= 0
        # Split no further than the last column read; the rest stays in one piece.
        self.max_split = max(self.date, self.time, self.client, self.user, self.method,
                             self.query, self.status) + 1


def _field(row: list[str], index: int) -> str:
    value = row[index] if 0 <= index < len(row) else "-"
    return "" if value == "-" else value


class IisSmtpParser(EventParser):
    """IIS SMTP W3C log lines to StatusEvents (mta "iis")."""

    format = "iis_smtp"

    def __init__(self) -> None:
        self._layout = _Layout(FIELDS)
        self._dialogue = Dialogue()

    def parse(self, chunk: bytes) -> ChunkResult:
        return read_chunk(chunk, _CANDIDATE, self._set_fields, self._read_line)

    def _set_fields(self, names: list[str]) -> None:
        self._layout = _Layout(names)

    def _timestamp(self, row: list[str]) -> float | None:
        layout = self._layout
        date, time = _field(row, layout.date), _field(row, layout.time)
        if not date or not time:
            return None
        return iso_utc_seconds(f"{date}T{time}")

    def _read_line(self, line: str, clean: bool) -> list[StatusEvent] | None:
        """The events of one candidate line: [] when none, None when the line does not parse."""
        if line.startswith("#"):
            return []
        layout = self._layout
        if not layout.usable or (not clean and has_bad_bytes(line)):
            return None
        row = line.split(None, layout.max_split)
        if len(row) < layout.min_fields:
            return None
        user = _field(row, layout.user)
        remote = _field(row, layout.client) or None
        if user.startswith("OutboundConnection") and len(row) <= layout.query:
            return None  # cut short before the command's argument or the reply text
        if user == "OutboundConnectionCommand":
            verb = row[layout.method].upper()
            if verb == "BDAT":  # "BDAT 2048 LAST": the size and LAST are in cs-uri-query
                verb = command_verb(f"BDAT {row[layout.query].replace('+', ' ')}")
            if remote is not None:
                self._dialogue.command(remote, verb)
            return []
        if user == "OutboundConnectionResponse":
            reply, code = split_reply(_field(row, layout.query).replace("+", " "))
            if remote is None or reply is None:
                return []
            decided = self._dialogue.reply(remote, reply)
            if decided is None:
                return []
            outcome, count = decided
            return [StatusEvent("iis", outcome, code, reply, remote, self._timestamp(row))] * count
        status = row[layout.status]
        if row[layout.method].upper() not in _TRANSACTION or status[:1] not in ("4", "5"):
            return []
        if len(status) != 3 or not status.isdigit():
            return None
        return [StatusEvent("iis", REJECTED, None, status, remote, self._timestamp(row))]


if TYPE_CHECKING:
    from exporter.parsers.detect import Sample


# --- registration (exporter/parsers/registry.py) ---
FORMAT = "iis_smtp"
PARSER = IisSmtpParser
ORDER = 40          # where the format is listed
DETECT_ORDER = 30   # when detection asks detects()


def detects(sample: "Sample") -> bool:
    """Detection (parsers/detect.py): the W3C header names IIS (asked after Exchange's formats)."""
    return sample.software.startswith(b"Microsoft Internet Information Services")
