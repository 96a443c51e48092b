"""qmail's log messages: qmail-send delivery results and rblsmtpd/qmail-smtpd refusals -> StatusEvents.

Part of the parser stage: the syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is one of PROGRAMS. splogger puts a Unix
time stamp in front of each message ("1157520813.485077 delivery 1: ..."), multilog a
TAI64N label ("@4000000065... delivery 1: ..."); both are skipped. Shapes read:

    delivery 3: success: 192.0.2.1_accepted_message./Remote_host_said:_250_2.0.0_Ok:_queued_as_4F2A/
    delivery 4: deferral: Connected_to_192.0.2.1_but_sender_was_rejected./Remote_host_said:_451_4.7.1_Try_later/
    delivery 5: failure: 192.0.2.1_does_not_like_recipient./Remote_host_said:_550_5.1.1_No_such_user/Giving_up_on_192.0.2.1./
    delivery 6: failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/
    rblsmtpd: 198.51.100.77 pid 19597 sbl-xbl.spamhaus.org: 451 http://www.spamhaus.org/query/bl?ip=198.51.100.77
    qmail-smtpd: 421 badiprbl: ip 198.51.100.54 rbl: example.com

qmail-send writes the report of qmail-remote/qmail-local with "_" for each space and "/"
for each line break. success -> delivered, deferral -> deferred, failure -> bounced, or
expired (code 4.4.7, as no code is logged) when qmail gave up because the message stayed
in the queue too long.

Which code: the remote server's reply after "Remote host said: " (reply code and enhanced
code); else qmail's own code in "(#5.1.1)", which qmail-local and qmail-remote append to
their messages. rblsmtpd refuses with a reply of its own ("451 ..." or "553 ..."): rejected.
Vanilla qmail-smtpd logs no refusals; patched ones that log "qmail-smtpd: NNN text" are read
the same way.

Remote: the IP qmail-remote reports ("192.0.2.1 accepted message.", "Connected to 192.0.2.1
but ...", "Giving up on 192.0.2.1."); for rblsmtpd the client's IP.
"""

from __future__ import annotations

import re

from exporter.events import (
    BOUNCED, DEFERRED, DELIVERED, EXPIRED, REJECTED, UNPARSED, MessageResult, StatusEvent,
)
from exporter.parsers.smtp_reply import code_at, reply_at

MTA = "qmail"
PROGRAMS: tuple[str, ...] = ("qmail", "qmail-send", "qmail-smtpd", "rblsmtpd")
# Plain strings: a fast search (exporter/parsers/prefilter.py); "delivery " also finds
# "starting delivery" notes, which parse to nothing.
PREFILTERS: tuple[bytes, ...] = (rb"delivery ", rb"rblsmtpd", rb"qmail-smtpd")

_STAMP = re.compile(r"(?:@[0-9a-f]{24} |[0-9]{9,10}\.[0-9]{1,9} )?")
_DELIVERY = re.compile(r"delivery [0-9]+: (success|deferral|failure): ")
_OUTCOMES = {"success": DELIVERED, "deferral": DEFERRED, "failure": BOUNCED}
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_REMOTE = re.compile(r"(?:^|/|Connected to |Giving up on )(" + _IPV4 + r")(?=[ .])")
_SAID = "Remote host said: "
_QMAIL_CODE = re.compile(r"\(#([245]\.[0-9]{1,3}\.[0-9]{1,3})\)")
_TOO_LONG = "this message has been in the queue too long"
EXPIRED_CODE = "4.4.7"  # RFC 3463 "delivery time expired", as the other parsers give an expiry
_RBL_REPLY = re.compile(r"(" + _IPV4 + r") pid [0-9]+(?: [^\s:]+)?: ")
_RBL_BLOCKED = re.compile(r"\S+ blocked (" + _IPV4 + r") ")


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One message from qmail: events, None (not a status line) or UNPARSED.

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    pos = _STAMP.match(message).end()  # type: ignore[union-attr]  # the pattern may match empty
    delivery = _DELIVERY.match(message, pos)
    if delivery is not None:
        return _delivery(message[delivery.end():].replace("_", " "), _OUTCOMES[delivery.group(1)], timestamp)
    if message.startswith("rblsmtpd: ", pos):
        return _rblsmtpd(message, pos + len("rblsmtpd: "), timestamp)
    if program == "rblsmtpd":
        return _rblsmtpd(message, pos, timestamp)
    if message.startswith("qmail-smtpd: ", pos):
        return _smtpd(message, pos + len("qmail-smtpd: "), timestamp)
    if program == "qmail-smtpd":
        return _smtpd(message, pos, timestamp)
    return None


def _delivery(report: str, outcome: str, timestamp: float | None) -> MessageResult:
    reply = code = None
    said = report.find(_SAID)
    if said >= 0:
        reply, code = reply_at(report, said + len(_SAID))
    if code is None:
        own = _QMAIL_CODE.search(report)
        if own is not None:
            code = code_at(own.group(1))
    if outcome == BOUNCED and _TOO_LONG in report:
        outcome = EXPIRED
        code = code or EXPIRED_CODE
    remote = _REMOTE.search(report)
    return [StatusEvent(MTA, outcome, code, reply, remote.group(1) if remote else None, timestamp)]


def _rblsmtpd(message: str, pos: int, timestamp: float | None) -> MessageResult:
    answered = _RBL_REPLY.match(message, pos)
    if answered is not None:
        reply, code = reply_at(message, answered.end())
        if reply is None:
            return UNPARSED
        return [StatusEvent(MTA, REJECTED, code, reply, answered.group(1), timestamp)]
    blocked = _RBL_BLOCKED.match(message, pos)
    if blocked is not None:  # an older rblsmtpd note: the client was refused, no reply logged
        return [StatusEvent(MTA, REJECTED, None, None, blocked.group(1), timestamp)]
    return None


def _smtpd(message: str, pos: int, timestamp: float | None) -> MessageResult:
    reply, code = reply_at(message, pos)
    if reply is None or reply[0] == "2":
        return None
    return [StatusEvent(MTA, REJECTED, code, reply, None, timestamp)]
