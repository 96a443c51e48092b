"""Courier MTA's log messages: delivery status records and refusals at reception -> StatusEvents.

Part of the parser stage: the syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is one of PROGRAMS. Shapes read (Courier's
libs/comctlfile.c writes the delivery records, courieresmtpd the refusals):

    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>: 451 4.7.1 Greylisted
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,status: deferred
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,status: failure
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,size=2013,success: delivered: mx.example.net [192.0.2.1]
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,size=2013,status: success
    error,relay=::ffff:192.0.2.7,from=<a@example.org>,to=<b@example.net>: 550 User unknown.
    error,relay=::ffff:192.0.2.7,msg="535 Authentication failed.",cmd: AUTH LOGIN

One event per delivery attempt: ",success: <text>" and ",status: success" -> delivered,
",status: deferred" -> deferred, ",status: failure" -> bounced. For one remote delivery
Courier writes two lines (ctlfile_append_reply: ",success: delivered: HOST [IP]" with the
remote's text, then ",status: success"): the second is not counted again when it follows the
first for the same message id and address. Courier writes the remote's reply of a deferral
or failure on its own line just before the record ("id=...,from=<...>,addr=<...>: 550 5.1.1
..."); the reply line itself is not counted, and its reply and code are joined to the record
that follows for the same id and address. Both joins keep a small table of pending lines, one
per syslog parser (make_parse_message), so two streams never share it.

courieresmtpd's "error,relay=..." lines are refusals at reception -> rejected, with the reply
they quote. Refused AUTH (535) and other commands outside the mail transaction are not
counted: they are about logins and protocol, not about a message.

Remote: "delivered: NAME [IP]" of a success record; relay= of a refusal (the IPv4-mapped
prefix "::ffff:" removed).
"""

from __future__ import annotations

import re
from typing import Callable

from exporter.events import (
    BOUNCED, DEFERRED, DELIVERED, REJECTED, UNPARSED, MessageResult, StatusEvent,
)
from exporter.parsers.smtp_reply import reply_at

MTA = "courier"
PROGRAMS: tuple[str, ...] = ("courierd", "courieresmtp", "courieresmtpd", "courierlocal")
# ">: 2", ">: 4", ">: 5": the remote's reply on a line of its own ("...,addr=<b@example.net>: 550 ..."),
# which may hold no enhanced code for the generic patterns to find.
PREFILTERS: tuple[bytes, ...] = (rb",status: ", rb",success: ", rb"error,relay=", rb">: [245]")

_RECORD = re.compile(r"id=([0-9A-Fa-f.]+),from=<[^>]*>,addr=<([^>]*)>(?:,size=[0-9]+)?,(status: |success: )")
# The remote's reply on a line of its own, before the record of a deferral or failure.
_REPLY_LINE = re.compile(r"id=([0-9A-Fa-f.]+),from=<[^>]*>,addr=<([^>]*)>: ")
_PENDING_LIMIT = 4096
_STATUSES = {"success": DELIVERED, "deferred": DEFERRED, "failure": BOUNCED}
_DELIVERED_TO = re.compile(r"delivered: ([^\s\[\]]+) \[(?:::ffff:)?([0-9A-Fa-f:.]+)\]")
_REFUSAL = re.compile(r"error,relay=(?:::ffff:)?([^,\s]+),")
_ADDRESS_END = re.compile(r"(?:from|to)=<[^>]*>: ")
_MSG = re.compile(r'msg="')
_CMD = re.compile(r'",cmd: ([A-Za-z]*)')
_COUNTED_COMMANDS = ("MAIL", "RCPT", "DATA", "BDAT", "EHLO", "HELO")


def make_parse_message() -> Callable[[str, str, float | None], MessageResult]:
    """A parse_message with its own table of pending lines: the syslog parser makes one per
    parser (exporter/parsers/registry.py)."""
    pending = _Pending()

    def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
        return _parse_message(message, timestamp, pending)
    return parse_message


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One syslog message from Courier read on its own (nothing pending before it): events,
    None (not a status line) or UNPARSED. A stream is read with make_parse_message().

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    return _parse_message(message, timestamp, _Pending())


def _parse_message(message: str, timestamp: float | None, pending: "_Pending") -> MessageResult:
    record = _RECORD.match(message)
    if record is not None:
        return _record(message, record, timestamp, pending)
    reply_line = _REPLY_LINE.match(message)
    if reply_line is not None:
        reply, code = reply_at(message, reply_line.end())
        if reply is not None:
            pending.remember(("reply", reply_line.group(1), reply_line.group(2)), (reply, code))
        return None  # counted with the record that follows
    refusal = _REFUSAL.match(message)
    if refusal is not None:
        return _refusal(message, refusal, timestamp)
    return None


class _Pending(dict):  # type: ignore[type-arg]
    """(kind, message id, address) -> the reply and code of a reply line, or True for a
    "success:" record whose "status: success" line is still to come."""

    def remember(self, key: tuple[str, str, str], value: object) -> None:
        if len(self) >= _PENDING_LIMIT:
            self.clear()  # lines whose partner never came; bounded memory beats a perfect join
        self[key] = value


def _record(message: str, record: re.Match[str], timestamp: float | None, pending: _Pending) -> MessageResult:
    queue_id, address = record.group(1), record.group(2)
    rest = message[record.end():]
    if record.group(3) == "status: ":
        outcome = _STATUSES.get(rest.strip())
        if outcome is None:
            return UNPARSED
        if outcome == DELIVERED and pending.pop(("success", queue_id, address), None) is not None:
            return None  # the second line of a delivery already counted from its "success:" line
        reply = code = None
        if outcome != DELIVERED:
            said = pending.pop(("reply", queue_id, address), None)
            if isinstance(said, tuple):
                reply, code = said
        return [StatusEvent(MTA, outcome, code, reply, None, timestamp, queue_id)]
    reply, code = reply_at(rest)
    said = pending.pop(("reply", queue_id, address), None)
    if reply is None and isinstance(said, tuple):
        reply, code = said  # the remote's "250 ..." on the line before
    host = _DELIVERED_TO.search(rest)
    remote = (host.group(1) or host.group(2)) if host is not None else None
    pending.remember(("success", queue_id, address), True)
    return [StatusEvent(MTA, DELIVERED, code, reply, remote, timestamp, queue_id)]


def _refusal(message: str, refusal: re.Match[str], timestamp: float | None) -> MessageResult:
    remote = refusal.group(1)
    quoted = _MSG.search(message, refusal.end())
    if quoted is not None:
        command = _CMD.search(message, quoted.end())
        if command is None or command.group(1).upper() not in _COUNTED_COMMANDS:
            return None  # AUTH, STARTTLS, unknown commands: not about a message
        reply, code = reply_at(message, quoted.end())
    else:
        end = _ADDRESS_END.search(message, refusal.end())
        if end is None:
            return UNPARSED
        reply, code = reply_at(message, end.end())
    if reply is None:
        return UNPARSED
    return [StatusEvent(MTA, REJECTED, code, reply, remote, timestamp)]
