"""Courier MTA's log messages: delivery status records and refusals at reception -> StatusEvents.

Part of the parser stage: the syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is one of PROGRAMS. Shapes read (Courier's
libs/comctlfile.c writes the delivery records, courieresmtpd the refusals):

    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,status: deferred
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,status: failure
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,size=2013,success: delivered: mx.example.net [192.0.2.1]
    id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>,size=2013,status: success
    error,relay=::ffff:192.0.2.7,from=<a@example.org>,to=<b@example.net>: 550 User unknown.
    error,relay=::ffff:192.0.2.7,msg="535 Authentication failed.",cmd: AUTH LOGIN

One event per delivery record: ",status: success" and ",success: <text>" -> delivered,
",status: deferred" -> deferred, ",status: failure" -> bounced. Courier writes the remote's
reply on its own line just before a deferred or failed record ("id=...,addr=<...>: 550 5.1.1
..."); this parser reads one line at a time and does not join the two, so those records are
counted with code "none" and the reply lines themselves are not counted (counting both would
count each attempt twice).

courieresmtpd's "error,relay=..." lines are refusals at reception -> rejected, with the reply
they quote. Refused AUTH (535) and other commands outside the mail transaction are not
counted: they are about logins and protocol, not about a message.

Remote: "delivered: NAME [IP]" of a success record; relay= of a refusal (the IPv4-mapped
prefix "::ffff:" removed).
"""

from __future__ import annotations

import re

from exporter.events import (
    BOUNCED, DEFERRED, DELIVERED, REJECTED, UNPARSED, MessageResult, StatusEvent,
)
from exporter.parsers.smtp_reply import reply_at

MTA = "courier"
PROGRAMS: tuple[str, ...] = ("courierd", "courieresmtp", "courieresmtpd", "courierlocal")
PREFILTERS: tuple[bytes, ...] = (rb",status: ", rb",success: ", rb"error,relay=")

_RECORD = re.compile(r"id=([0-9A-Fa-f.]+),from=<[^>]*>,addr=<[^>]*>(?:,size=[0-9]+)?,(status: |success: )")
_STATUSES = {"success": DELIVERED, "deferred": DEFERRED, "failure": BOUNCED}
_DELIVERED_TO = re.compile(r"delivered: ([^\s\[\]]+) \[(?:::ffff:)?([0-9A-Fa-f:.]+)\]")
_REFUSAL = re.compile(r"error,relay=(?:::ffff:)?([^,\s]+),")
_ADDRESS_END = re.compile(r"(?:from|to)=<[^>]*>: ")
_MSG = re.compile(r'msg="')
_CMD = re.compile(r'",cmd: ([A-Za-z]*)')
_COUNTED_COMMANDS = ("MAIL", "RCPT", "DATA", "BDAT", "EHLO", "HELO")


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One syslog message from Courier: events, None (not a status line) or UNPARSED.

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    record = _RECORD.match(message)
    if record is not None:
        return _record(message, record, timestamp)
    refusal = _REFUSAL.match(message)
    if refusal is not None:
        return _refusal(message, refusal, timestamp)
    return None


def _record(message: str, record: re.Match[str], timestamp: float | None) -> MessageResult:
    queue_id = record.group(1)
    rest = message[record.end():]
    if record.group(2) == "status: ":
        outcome = _STATUSES.get(rest.strip())
        if outcome is None:
            return UNPARSED
        return [StatusEvent(MTA, outcome, None, None, None, timestamp, queue_id)]
    reply, code = reply_at(rest)
    host = _DELIVERED_TO.search(rest)
    remote = (host.group(1) or host.group(2)) if host is not None else None
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
