"""Sendmail's log messages: delivery attempts (to=... dsn= stat=) and rejections -> StatusEvents.

Part of the parser stage: the syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is one of PROGRAMS. Shapes read:

    s1P819mk027713: to=<bob@example.net>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=120,
        relay=mx.example.net. [192.0.2.1], dsn=4.0.0, stat=Deferred: 421 4.7.0 Try again later
    6AT63sKl015160: to=<r@example.net>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=120054,
        relay=mx.example.net. [192.0.2.1], dsn=5.7.606, reply=550 5.7.606 Access denied, stat=User unknown
    s1P819mk027713: ruleset=check_rcpt, arg1=<x@example.org>, relay=host.example [192.0.2.9],
        reject=550 5.7.1 <x@example.org>... Relaying denied
    ruleset=check_relay, arg1=..., arg2=192.0.2.9, relay=[192.0.2.9], reject=421 4.3.2 Connection rate limit exceeded.
    s1P819mk027713: Milter: to=<x@example.org>, reject=550 5.7.1 Blocked

Outcome of a to= line: from the class of dsn= (2 delivered, 4 deferred, 5 bounced); a line
without dsn= (sendmail before 8.10) goes by stat= ("Sent", "Deferred", anything else a
failure); "stat=queued" is not an attempt and is not counted. A to= line lists every
recipient of one attempt ("to=<a@x>,<b@x>"): each recipient is one event, as each gets its
own DSN. When the queue lifetime runs out, sendmail writes "QID: NEWQID: DSN: Cannot send
message for 5 days" (or "return to sender:", "postmaster notify:") as it returns the
message: one expired event, with 4.4.7, the code its DSN carries (and the code the Postfix
parser gives an expiry).

Which code: the remote server's own reply wins. Sendmail 8.17 logs it in reply= ("reply=550
5.7.606 Access denied"), older versions quote it in stat= ("stat=Deferred: 421 4.7.0 Try
again later"); its enhanced code is counted, and its 3-digit code is the reply. Only when
neither holds a code is dsn= used: dsn= is sendmail's summary of the attempt, which can be
coarse (dsn=4.0.0 beside a quoted 4.7.0, or Gmail's own 4.7.28) while stat= is often
sendmail's own words ("User unknown" for a remote's 550 5.7.606).

Rejections: a reject= field (rulesets check_relay, check_mail, check_rcpt, check_compat,
milters) carries the reply sendmail sent: "reject=550 5.7.1 ...".

Not counted: "<addr>... User unknown" notes (no code, and the same note is written both when
a recipient is refused at RCPT and just before that recipient's to= line, so counting it
would count some failures twice), DSN and "return to sender" notes (the bounce itself is the
to= line), AUTH failures, "did not issue MAIL", "lost input channel", EXPN/VRFY refusals.

Remote: relay= ("relay=name. [ip]", "relay=[ip]"); when sendmail marks the name "(may be
forged)" the IP is taken instead, since the name proves nothing.
"""

from __future__ import annotations

import re

from exporter.events import (
    BOUNCED, DEFERRED, DELIVERED, EXPIRED, REJECTED, UNPARSED, MessageResult, StatusEvent,
)
from exporter.parsers.smtp_reply import code_at, reply_at

MTA = "sendmail"
PROGRAMS: tuple[str, ...] = ("sendmail", "sm-mta", "sm-msp-queue", "sm-acceptingconnections", "sm-mta-rx")
# Plain strings: a fast search (exporter/parsers/prefilter.py).
PREFILTERS: tuple[bytes, ...] = (rb"stat=", rb"reject=", rb"Cannot send message for")

_QUEUE_ID = re.compile(r"([0-9A-Za-z]{8,20}): ")
_TO = re.compile(r"to=(.*?), (?=[a-z]+=)")
_DSN = re.compile(r", dsn=")
_STAT = re.compile(r", stat=")
_REPLY_FIELD = re.compile(r", reply=")
_EXPIRY = re.compile(r"[0-9A-Za-z]{8,20}: (?:DSN|return to sender|postmaster notify): Cannot send message for ")
EXPIRED_CODE = "4.4.7"  # RFC 3463 "delivery time expired": the status sendmail's DSN gives
_REJECT = re.compile(r"(?:^|, |: )reject=")
_RELAY = re.compile(
    r"(?:^|, )relay=(?:([^\s,\[\]]+) )?\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]( \(may be forged\))?"
    r"|(?:^|, )relay=([^\s,\[\]]+)"
)
_OUTCOME_BY_CLASS = {"2": DELIVERED, "4": DEFERRED, "5": BOUNCED}


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One syslog message from sendmail: events, None (not a status line) or UNPARSED.

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    queue = _QUEUE_ID.match(message)
    queue_id = queue.group(1) if queue else None
    pos = queue.end() if queue else 0
    stat = _STAT.search(message, pos)
    if stat is not None:
        to = _TO.match(message, pos)
        if to is None:
            return None  # a stat= on a line that is not about recipients
        return _attempt(message, pos, to.group(1), stat.end(), queue_id, timestamp)
    if _EXPIRY.match(message, pos):
        return [StatusEvent(MTA, EXPIRED, EXPIRED_CODE, None, None, timestamp, queue_id)]
    reject = _REJECT.search(message, pos)
    if reject is None:
        return None
    reply, code = reply_at(message, reject.end())
    if reply is None:
        return UNPARSED
    return [StatusEvent(MTA, REJECTED, code, reply, _remote(message, pos, reject.start()), timestamp, queue_id)]


def _attempt(message: str, pos: int, recipients: str, stat_at: int, queue_id: str | None,
             timestamp: float | None) -> MessageResult:
    stat = message[stat_at:]
    dsn = _DSN.search(message, pos, stat_at)
    dsn_code = code_at(message, dsn.end()) if dsn is not None else None
    if dsn is not None and dsn_code is None:
        return UNPARSED  # dsn= present but not a valid code
    if dsn_code is not None:
        outcome = _OUTCOME_BY_CLASS[dsn_code[0]]
    elif stat.startswith("queued") or stat.startswith("quarantined"):
        return None
    elif stat.startswith("Sent"):
        outcome = DELIVERED
    elif stat.startswith("Deferred"):
        outcome = DEFERRED
    else:
        outcome = BOUNCED
    reply = code = None
    field = _REPLY_FIELD.search(message, pos, stat_at)
    if field is not None:
        reply, code = reply_at(message, field.end())
    if reply is None:
        reply, code = _quoted_reply(stat)
    if code is None:
        code = dsn_code
    remote = _remote(message, pos, stat_at)
    count = recipients.count(",") + 1 if recipients else 1
    event = StatusEvent(MTA, outcome, code, reply, remote, timestamp, queue_id)
    return [event] * count


def _quoted_reply(stat: str) -> tuple[str | None, str | None]:
    """The remote's reply quoted at the start of stat= text, after "Deferred: " or "Sent ("."""
    for lead in ("Deferred: ", "Sent (", ""):
        if stat.startswith(lead):
            reply, code = reply_at(stat, len(lead))
            if reply is not None:
                return reply, code
    return None, None


def _remote(message: str, pos: int, end: int) -> str | None:
    relay = _RELAY.search(message, pos, end)
    if relay is None:
        return None
    if relay.group(2) is None:
        name = relay.group(4)
        return None if "@" in name or name == "local" else name.rstrip(".")
    if relay.group(1) and not relay.group(3):
        return relay.group(1).rstrip(".")
    return relay.group(2)
