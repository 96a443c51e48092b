"""OpenSMTPD's log messages (program "smtpd"): relay and local delivery results, refused commands.

Part of the parser stage: the syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is "smtpd" (Postfix's smtpd logs as
"postfix/smtpd", so the exact name is OpenSMTPD's). Two line layouts exist.

Since OpenSMTPD 6.4 (2018), key=value events after a session id:

    5df87c9ffd0e785d mta delivery evpid=f6e94209918f7e7b from=<a@example.org> to=<b@example.com>
        rcpt=<-> source="192.0.2.5" relay="173.194.76.27 (ws-in-f27.1e100.net)" delay=2s
        result="Ok" stat="250 2.0.0 OK 1562385708 - gsmtp"
    5df87c9250bba470 mda delivery evpid=c405e39ad6bbc64f from=<a@example.org> to=<b@example.org>
        rcpt=<b@example.org> user=b delay=0s result=Ok stat=Delivered
    bf23567dd3150185 smtp failed-command command="RCPT TO:<x@example.org> " result="550 Invalid recipient: <x@example.org>"

Up to 6.0 (still seen in 2016 logs), sentences:

    delivery: Ok for 5d6a8c5c6b1c3e3f: from=<a@example.org>, to=<b@example.org>, user=b, method=mbox, delay=0s, stat=Delivered
    relay: TempFail for 4f1ca07a39a6e3cb: session=4f1ca07a2d8c6e6b, from=<a@example.org>, to=<c@example.net>,
        rcpt=<->, source=192.0.2.5, relay=mx.example.net [192.0.2.1], delay=1s, stat=421 4.7.0 Try again later
    smtp-in: Failed command on session 25a5d6ae3fd45a9f: "RCPT TO:<x@example.org>" => 550 5.7.1 Delivery not authorized

result Ok -> delivered, TempFail -> deferred, PermFail and Loop -> bounced. A failed MAIL,
RCPT, DATA, BDAT, HELO/EHLO or connection (empty command) -> rejected; failed AUTH,
STARTTLS and unknown commands are protocol errors and are not counted ("bad-input" neither).
Codes: the reply at the start of stat= (deliveries) or result= / after "=>" (refusals).
Remote: the host name in relay="IP (name)" / "relay=name [IP]", else the IP.
"""

from __future__ import annotations

import re

from exporter.events import (
    BOUNCED, DEFERRED, DELIVERED, REJECTED, UNPARSED, MessageResult, StatusEvent,
)
from exporter.parsers.smtp_reply import reply_at

MTA = "opensmtpd"
PROGRAMS: tuple[str, ...] = ("smtpd",)
# Every delivery line, in both layouts, carries "stat="; refusals say "failed-command"
# (6.4+) or "Failed command" (older). Few fixed strings keep the search fast.
PREFILTERS: tuple[bytes, ...] = (rb"stat=", rb"ailed[ -]command ")

_OUTCOMES = {"Ok": DELIVERED, "TempFail": DEFERRED, "PermFail": BOUNCED, "Loop": BOUNCED}
_NEW_DELIVERY = re.compile(r"[0-9a-f]{1,16} m[dt]a delivery evpid=([0-9a-f]{1,16}) ")
_NEW_RESULT = re.compile(r' result="?(Ok|TempFail|PermFail|Loop)"? stat=("?)')
_NEW_RELAY = re.compile(r' relay="([^" ]+)(?: \(([^)"]*)\))?"')
_NEW_FAILED = re.compile(r'[0-9a-f]{1,16} smtp failed-command command="([^"]*)" result="')
_OLD_DELIVERY = re.compile(r"(delivery|relay): (Ok|TempFail|PermFail|Loop) for ([0-9a-f]{1,16}): ")
_OLD_RELAY = re.compile(r", relay=(?:([^\s,\[\]]+) )?\[([0-9A-Fa-f:.]+)\]")
_OLD_STAT = ", stat="
_OLD_FAILED = re.compile(r'smtp-in: Failed command on session [0-9a-f]+: "([^"]*)" => ')
# Commands whose refusal is about the message or the client; AUTH, STARTTLS, NOOP and
# unknown commands are left out.
_COUNTED_COMMANDS = ("", "MAIL", "RCPT", "DATA", "BDAT", "HELO", "EHLO")


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One syslog message from OpenSMTPD: events, None (not a status line) or UNPARSED.

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    new = _NEW_DELIVERY.match(message)
    if new is not None:
        result = _NEW_RESULT.search(message, new.end())
        if result is None:
            return UNPARSED
        reply, code = reply_at(message, result.end())
        relay = _NEW_RELAY.search(message, new.end(), result.start() + 1)
        remote = (relay.group(2) or relay.group(1)) if relay is not None else None
        if remote == "-":
            remote = None
        return [StatusEvent(MTA, _OUTCOMES[result.group(1)], code, reply, remote, timestamp, new.group(1))]
    failed = _NEW_FAILED.match(message)
    if failed is not None:
        return _refusal(failed.group(1), message, failed.end(), timestamp)
    old = _OLD_DELIVERY.match(message)
    if old is not None:
        stat = message.find(_OLD_STAT, old.end())
        if stat < 0:
            return UNPARSED
        reply, code = reply_at(message, stat + len(_OLD_STAT))
        relay = _OLD_RELAY.search(message, old.end(), stat)
        remote = (relay.group(1) or relay.group(2)) if relay is not None else None
        return [StatusEvent(MTA, _OUTCOMES[old.group(2)], code, reply, remote, timestamp, old.group(3))]
    failed = _OLD_FAILED.match(message)
    if failed is not None:
        return _refusal(failed.group(1), message, failed.end(), timestamp)
    return None


def _refusal(command: str, message: str, pos: int, timestamp: float | None) -> MessageResult:
    verb = command.strip().split(" ", 1)[0].split(":", 1)[0].upper() if command.strip() else ""
    if verb not in _COUNTED_COMMANDS:
        return None
    reply, code = reply_at(message, pos)
    if reply is None:
        return UNPARSED
    if reply[0] == "2":
        return None
    return [StatusEvent(MTA, REJECTED, code, reply, None, timestamp)]
