"""Postfix message parser: one StatusEvent per delivery record, reject and expiry.

Part of the parser stage. The syslog parser (exporter/parsers/syslog.py) hands this module
the message text of every candidate line whose program is Postfix's: "postfix" itself or any
name with a "/" ("postfix/smtp", "postfix-out/smtp", "postfix/submission/smtpd"). Only the
positions Postfix defines are read; nothing is taken from addresses, subjects, message-ids
or host names.

What gives an event (the outcome each maps to is in docs/formats.md):
- the delivery status record every delivery agent and qmgr write (src/global/log_adhoc.c):
      QID: to=<a>, [orig_to=<b>, ]relay=R, [conn_use=N, ]delay=D, delays=a/b/c/d, [tls=T, ]
      dsn=X.Y.Z, status=S (reason)
  code from dsn=; reply from the reason ("host ... said: 550 5.1.1 ...", or a reason that
  starts with the reply as lmtp and smtp write for "sent"); remote is relay's host name
  ("none", other relays without "[address]", and UNIX sockets "host[private/x]" give None).
- smtpd/postscreen/cleanup rejects: "QID|NOQUEUE: reject: STAGE from client: 550 5.7.1 text; from=<..."
  and "milter-reject:" (a milter may give only an enhanced code, or no code at all);
  cleanup's header/body rejects "QID: reject: header ... from client; from=<> to=<>: 5.7.1 text".
- qmgr's "QID: from=<a>, status=expired, returned to sender" (and "force-expired"): no code is
  logged; counted as outcome expired with code 4.4.7 (the registered code for a message
  that stayed queued too long).

Not counted: "reject_warning:" (warn_if_reject: the mail was accepted), "hold:", "discard:",
smtp's session notes that name no recipient ("QID: host X said: ..."; the recipient record
that follows carries the outcome), "status=deferred (bounce failed)" (no recipient).
A record whose dsn= is not a valid RFC 3463 code, or a reject whose reply is not a valid
3-digit reply, is UNPARSED: Postfix never writes one.
"""

from __future__ import annotations

import re

from exporter.codes import is_valid_code
from exporter.events import (
    BOUNCED, DELIVERED, DEFERRED, EXPIRED, REJECTED, UNPARSED, VERIFIED, VERIFY_FAILED, MessageResult,
    StatusEvent,
)

MTA = "postfix"
# Exact syslog names; every name with a "/" is Postfix's too (see claims()).
PROGRAMS: tuple[str, ...] = ("postfix",)
# Every line that can give an event holds one of these.
PREFILTERS: tuple[bytes, ...] = (rb"status=", rb"reject: ")

# status= word -> outcome.
#   sent -> delivered
#   deferred, SOFTBOUNCE (soft_bounce=yes: Postfix logs the 5xx as 4xx and keeps the mail) -> deferred
#   bounced -> bounced
#   expired -> expired
#   deliverable, undeliverable, undeliverable-but-not-cached: the result of an address
#   verification probe (reject_unverified_recipient/sender, `sendmail -bv`; src/global/verify.c
#   writes "-but-not-cached" when address_verify_negative_cache = no) -> verified /
#   verify_failed, outcomes of their own: no message was sent, so they stay out of the
#   delivery and bounce ratios.
STATUS_OUTCOMES: dict[str, str] = {
    "sent": DELIVERED,
    "deferred": DEFERRED,
    "SOFTBOUNCE": DEFERRED,
    "bounced": BOUNCED,
    "expired": EXPIRED,
    "deliverable": VERIFIED,
    "undeliverable": VERIFY_FAILED,
    "undeliverable-but-not-cached": VERIFY_FAILED,
}
EXPIRED_CODE = "4.4.7"

_QID = r"(?P<qid>[0-9A-Za-z]+)"
_DELIVERY = re.compile(
    _QID + r": to=<.*?>, (?:orig_to=<.*?>, )?relay=(?P<relay>\S*?), (?:conn_use=[0-9]+, )?"
    r"delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, (?:tls=\S*?, )?"
    r"dsn=(?P<dsn>[^,\s]*), status=(?P<status>[A-Za-z-]+)(?: \((?P<reason>.*)\))?\Z",
    re.DOTALL,
)
# The same record as it reaches users in other ways, read when _DELIVERY does not match:
# - to=user@host without angle brackets (older Postfix, several public test suites);
# - no delays= and no dsn= (Postfix before 2.3 wrote neither; the event has no code);
# - something after the record: a log collector's field after the closing parenthesis
#   ("... status=sent (250 2.0.0 Ok: queued as X) 257"), the quote that ends a pasted line.
#   What follows the reason may hold no parenthesis, so the reason ends at the last ")".
_LOOSE_DELIVERY = re.compile(
    _QID + r": to=(?:<[^>]*>|[^<>,\s]+), (?:orig_to=(?:<[^>]*>|[^<>,\s]+), )?relay=(?P<relay>[^,\s]*), "
    r"(?:conn_use=[0-9]+, )?delay=[0-9.]+, (?:delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, )?(?:tls=[^,\s]*, )?"
    r"(?:dsn=(?P<dsn>[^,\s]*), )?status=(?P<status>[A-Za-z-]+)"
    r"(?: \((?P<reason>.*)\))?(?P<tail>[\"']+,? *| [^()]*)?\Z",
    re.DOTALL,
)
_EXPIRED = re.compile(_QID + r": from=<.*>, status=(?:force-)?expired, returned to sender\Z", re.DOTALL)
_REJECT = re.compile(
    r"(?P<qid>NOQUEUE|[0-9A-Za-z]+): (?P<action>reject|milter-reject): "
    r"(?P<stage>[A-Z][A-Z-]*) from (?P<client>\S+?): (?P<text>.*)\Z",
    re.DOTALL,
)
_CONTENT_REJECT = re.compile(
    _QID + r": reject: (?:header|body|mime-error) .*; from=<[^>]*> to=<[^>]*>"
    r"(?: proto=\S+ helo=<[^>]*>)?: (?P<text>.*)\Z",
    re.DOTALL,
)
# "550 5.1.1 text", "550-5.7.1 text", "450 text", "5.7.1 text" (milter), "text" (no code).
_REPLY_TEXT = re.compile(r"(?P<reply>[0-9]{3})(?:[ -](?P<code>[0-9]+\.[0-9]+\.[0-9]+))?(?![0-9.])")
_CODE_TEXT = re.compile(r"(?P<code>[0-9]+\.[0-9]+\.[0-9]+)(?![0-9.])")
# The remote's reply inside a delivery record's reason.
_SAID = re.compile(r" (?:said|refused to talk to me): (?P<reply>[0-9]{3})(?:[ -]|\Z)")
_REPLY_AT_START = re.compile(r"(?P<reply>[2-5][0-9]{2})[ -]")
_VALID_REPLY = re.compile(r"[2-5][0-9]{2}\Z")


def claims(program: str) -> bool:
    """True for Postfix's syslog names: "postfix" or any name with a "/"."""
    return program == "postfix" or "/" in program


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """Events of one Postfix message; None when it is not a status line; never raises."""
    if "status=" in message:
        return _status_line(message, timestamp)
    if "reject: " in message:
        return _reject_line(message, timestamp)
    return None


def _status_line(message: str, timestamp: float | None) -> MessageResult:
    match = _DELIVERY.match(message)
    if match is not None:
        qid, relay, dsn, status, reason = match.group("qid", "relay", "dsn", "status", "reason")
        return delivery(qid, relay, dsn, status, reason, timestamp)
    match = _EXPIRED.match(message)
    if match is not None:
        return [StatusEvent(MTA, EXPIRED, EXPIRED_CODE, None, None, timestamp, match.group("qid"))]
    match = _LOOSE_DELIVERY.match(message)
    if match is not None:
        qid, relay, dsn, status, reason = match.group("qid", "relay", "dsn", "status", "reason")
        return delivery(qid, relay, dsn, status, reason, timestamp)
    if "dsn=" in message:
        return UNPARSED  # a delivery record that does not have Postfix's shape
    return None


def delivery(qid: str, relay: str, dsn: str | None, status: str, reason: str | None,
             timestamp: float | None) -> MessageResult:
    """The event of one delivery status record, from its fields (the compiled scanner,
    exporter/_fastscan.c, makes the same from the same fields). dsn is None for a record of
    a Postfix older than 2.3, which wrote no dsn=."""
    outcome = STATUS_OUTCOMES.get(status)
    if outcome is None:
        return UNPARSED  # a status word this parser does not know (or a cut-off line)
    if dsn is not None and not is_valid_code(dsn):
        return UNPARSED
    reason = reason or ""
    said = _SAID.search(reason)
    if said is not None:
        reply: str | None = said.group("reply")
    else:
        at_start = _REPLY_AT_START.match(reason)
        reply = at_start.group("reply") if at_start is not None else None
    if reply is not None and _VALID_REPLY.match(reply) is None:
        reply = None
    return [StatusEvent(MTA, outcome, dsn, reply, _relay_host(relay), timestamp, qid)]


def _relay_host(relay: str) -> str | None:
    """The host name of relay=host[address]:port; None for none, local, transports and sockets."""
    bracket = relay.find("[")
    if bracket <= 0 or "/" in relay[bracket:]:
        return None  # no host, or a UNIX socket ("host[private/dovecot-lmtp]"): nothing remote
    host = relay[:bracket]
    if host == "unknown":
        end = relay.find("]", bracket)
        return relay[bracket + 1:end] if end > bracket + 1 else None
    return host


def _reject_line(message: str, timestamp: float | None) -> MessageResult:
    match = _REJECT.match(message)
    if match is not None:
        return reject(match.group("qid"), match.group("client"), match.group("text"), timestamp)
    match = _CONTENT_REJECT.match(message)
    if match is not None:
        code_match = _CODE_TEXT.match(match.group("text"))
        code = code_match.group("code") if code_match is not None else None
        if code is not None and not is_valid_code(code):
            return UNPARSED
        return [StatusEvent(MTA, REJECTED, code, None, None, timestamp, match.group("qid"))]
    if ": reject: " in message or ": milter-reject: " in message:
        return UNPARSED
    return None


def reject(qid: str, client: str, text: str, timestamp: float | None) -> MessageResult:
    """The event of one smtpd/postscreen reject (or milter-reject), from its fields (the
    compiled scanner, exporter/_fastscan.c, makes the same from the same fields)."""
    reply, code, ok = _reply_and_code(text)
    if not ok:
        return UNPARSED
    return [StatusEvent(MTA, REJECTED, code, reply, _client_host(client), timestamp,
                        None if qid == "NOQUEUE" else qid)]


def _reply_and_code(text: str) -> tuple[str | None, str | None, bool]:
    """(reply, code, well-formed) of the reply text a reject line carries."""
    found = _REPLY_TEXT.match(text)
    if found is not None:
        reply = found.group("reply")
        code = found.group("code")
        if _VALID_REPLY.match(reply) is None or (code is not None and not is_valid_code(code)):
            return None, None, False
        return reply, code, True
    found = _CODE_TEXT.match(text)
    if found is not None:  # a milter's reply may be an enhanced code alone
        code = found.group("code")
        return (None, code, True) if is_valid_code(code) else (None, None, False)
    # No code at all: postscreen's "too many connections", a milter's bare text.
    return None, None, True


def _client_host(client: str) -> str | None:
    """smtpd's "name[address]" -> name, or the address when the name is "unknown";
    postscreen's "[address]:port" -> address."""
    bracket = client.find("[")
    if bracket < 0:
        return None
    end = client.find("]", bracket)
    if end < 0:
        return None
    name = client[:bracket]
    if name and name != "unknown":
        return name
    return client[bracket + 1:end] or None
