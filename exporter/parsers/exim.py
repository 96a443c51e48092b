"""Exim's log messages: deliveries, deferrals, failures and rejections -> StatusEvents.

Part of the parser stage. The syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is "exim" or "exim4"; the mainlog parser
(exporter/parsers/exim_files.py) calls parse_body on the text after each line's time
stamp. The message is what Exim writes to its mainlog after the date:

    [pid] 1abcDE-000123-AB ** user@example.net R=dnslookup T=remote_smtp H=mx.example.net [192.0.2.1]: SMTP error from remote mail server after RCPT TO:<user@example.net>: 550 5.1.1 No such user
    1abcDE-000123-AB == user@example.net R=dnslookup T=remote_smtp defer (-44): SMTP error from remote mail server after RCPT TO:<user@example.net>: host mx.example.net [192.0.2.1]: 451 4.7.1 Try later
    1abcDE-000123-AB => user@example.net R=dnslookup T=remote_smtp H=mx.example.net [192.0.2.1] C="250 2.0.0 Ok: queued as 4F2A"
    H=client.example.org [198.51.100.7] F=<a@example.org> rejected RCPT <b@example.net>: 550 5.7.1 relay not permitted

What counts, and as what:
  "**"              bounced; "expired" (code 4.4.7) when Exim gave up because the retry
                    time ran out ("retry timeout exceeded")
  "=="              deferred; not counted when the text is "retry time not reached": Exim
                    writes that on every queue run while it waits, without an attempt
  "=>" "->" ">>"    delivered (first address, further addresses of the same delivery,
                    cutthrough delivery)
  "*>"              not counted: Exim writes it when delivery was suppressed (-N), so no
                    attempt was made
  "rejected RCPT|MAIL|after DATA|EHLO|HELO|connection in|by local_scan()|by non-SMTP ACL"
                    rejected, "temporarily rejected" too. Exim logs the reply only when the
                    ACL's message starts with one; a "temporarily rejected" line without one
                    gets reply 451, the reply Exim always sends then (and its class, 4, is
                    certain: Exim refuses a configured code of another class)
Not counted: "<=" arrivals, "Completed", authenticator failures (535 to a login attempt is
about a password, not about a message), protocol and synchronisation errors, sender
verification notes (the "rejected" line that follows them is counted).

Where the codes are read: after "SMTP error from remote mail server after <command>: " (or
"LMTP error after <command>: "), skipping the older "host NAME [IP]: " part; inside C="..."
of a delivery; at the start of the message text after the first ": " of a failure,
deferral or rejection: a reply and code ("550 5.7.1 ..."), or an enhanced code standing
first on its own ("5.7.1 relay not permitted"): an ACL's message, a :fail: or :defer:
redirect text, a router's message that starts with a code, which Exim sends behind its own
3-digit reply without logging that reply.

Through syslog, Exim's default syslog_duplication writes each rejection twice in a row (main
log, reject log); the second copy is ignored (see _RejectCopies). A multi-line reply is logged with a literal "\\n" between lines;
its first line carries the code.

Remote: the H= field ("H=name [ip]", "H=name (helo) [ip]", "H=[ip]"): the name when Exim
logged a verified one, else the IP; for the older layout, "host NAME [IP]" in the error.
"""

from __future__ import annotations

import re
from typing import Callable

from exporter.events import (
    BOUNCED, DEFERRED, DELIVERED, EXPIRED, REJECTED, UNPARSED, MessageResult, StatusEvent,
)
from exporter.parsers.smtp_reply import code_at, reply_at

MTA = "exim"
PROGRAMS: tuple[str, ...] = ("exim", "exim4")
# Every status line has a delivery flag between spaces or the word "rejected". Plain fixed
# strings, shared with other parsers where they can be, keep the syslog parser's search fast
# (exporter/parsers/prefilter.py).
PREFILTERS: tuple[bytes, ...] = (rb" \*\* ", rb" == ", rb" => ", rb" -> ", rb" >> ", rb" rejected")

# Message ids: 16 characters before Exim 4.97 ("1abcDE-000123-AB"), 23 since
# ("1abcDE-00000001234-ABCD").
MESSAGE_ID = r"[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4})"

# What may stand before the message when Exim logs through syslog or journald: the part
# marker of a message Exim split ("[1\3] " first of three parts, "[3/3] " the last), its own
# date (Debian's build writes it; journald keeps it), the pid with log_selector +pid.
_SYSLOG_PREFIX = re.compile(
    r"(?:\[([0-9]+)[\\/][0-9]+\] )?"
    r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3,6})?(?: [+-][0-9]{4})? )?"
    r"(?:\[[0-9]+\] )?"
)
_DELIVERY = re.compile(r"(" + MESSAGE_ID + r") (\*\*|==|=>|->|>>) ")
_ARRIVAL_OR_ID = re.compile(r"(" + MESSAGE_ID + r") (<= )?")
# How smtp_in.c (smtp_handle_acl_fail) and receive.c name the stage of a rejection.
_REJECTED = re.compile(
    r"(?<!\S)(temporarily )?rejected "
    r"(RCPT|MAIL|after DATA|during MIME ACL checks|EHLO or HELO|EHLO|HELO|connection in|"
    r"by local_scan\(\)|by non-SMTP ACL|DATA|BDAT|DKIM|PRDR|VRFY|EXPN|ETRN|AUTH|STARTTLS|MAILAUTH)"
    r"(?= |:|$)"
)
# The reply Exim sends for every temporary ACL failure whose message sets no code of its own
# (smtp_in.c: "rc == FAIL ? acl_wherecodes[where] : 451"); a code in the message must start
# with 4 as well, so the class of a "temporarily rejected" line is always 4.
_TEMPORARY_REPLY = "451"
_HOST_FIELD = re.compile(
    r"(?<!\S)H=(?:([^\s()\[\]]+) )?(?:\([^)]*\) )?\[([0-9A-Fa-f:.]+)\]"
)
_SMTP_ERROR = re.compile(
    r"(?:SMTP error from remote (?:mail )?server|LMTP error) after "
    r"(?:pipelined )?(?:RCPT TO:<[^>]*>|MAIL FROM:<[^>]*>[^:]*|[^:<]*): "
    r"(?:host ([^\s\[\]]+) \[([0-9A-Fa-f:.]+)\]: )?"
)
# The first ": " that is not inside a quoted field value (DN="...", C="...").
_MESSAGE_START = re.compile(r'(?:[^":]|"[^"]*"|:(?! ))*: ')
_NOT_ATTEMPTED = "retry time not reached"
_EXPIRY_WORDS = ("retry timeout exceeded", "retry time not reached for any host after a long failure")
# RFC 3463 "delivery time expired", given to every expiry (the Postfix and sendmail parsers
# do the same), as Exim logs no code when it gives up.
EXPIRED_CODE = "4.4.7"
# Each delivery flag's outcome (the compiled scanner, exporter/_fastscan.c, reads them in this order too).
FLAG_OUTCOMES = {"**": BOUNCED, "==": DEFERRED, "=>": DELIVERED, "->": DELIVERED, ">>": DELIVERED}


def make_parse_message() -> Callable[[str, str, float | None], MessageResult]:
    """A parse_message with its own memory of the last rejection (syslog_duplication's copies):
    the syslog parser makes one per parser (exporter/parsers/registry.py), so two streams never
    share it and a fresh parser starts with none."""
    copies = _RejectCopies()

    def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
        return _parse_message(message, timestamp, copies)
    # The syslog parser's compiled scanner reads Exim's delivery lines itself; after such a
    # line, as after any status line read here, the last rejection is no longer the line before.
    parse_message.forget = copies.forget  # type: ignore[attr-defined]
    return parse_message


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One syslog message from Exim read on its own (no line before it to be a copy of):
    events, None (not a status line) or UNPARSED. A stream is read with make_parse_message().

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    return _parse_message(message, timestamp, _RejectCopies())


def _parse_message(message: str, timestamp: float | None, copies: "_RejectCopies") -> MessageResult:
    prefix = _SYSLOG_PREFIX.match(message)
    if prefix is None:
        return parse_body(message, 0, timestamp)
    if prefix.group(1) is not None and prefix.group(1) != "1":
        return None  # a later part of a split message: header lines of a rejectlog entry
    result = parse_body(message, prefix.end(), timestamp)
    if result and result is not UNPARSED and result[0].outcome == REJECTED:  # type: ignore[index]
        # The text without the part marker "[1\\N] ", which only the reject log's copy has.
        text = message[message.index("] ") + 2:] if prefix.group(1) is not None else message
        if copies.is_copy(text, timestamp):
            return None
    else:
        copies.forget()
    return result


class _RejectCopies:
    """Exim's default syslog_duplication: every rejection it writes to syslog goes out twice in
    a row, once for the main log and once for the reject log (the second copy split into
    parts when the message's header lines follow it). Where both land in one file the second
    copy must not be counted: it is the same text, at the same time stamp, right after the
    first. A rejection is taken for the copy of the one before it when its text (part marker
    left out) and time stamp are the same, no other Exim status line came between, and that
    one was not itself a copy: so the pairs
    A A' A A' of a client that repeats itself within a second still count twice. With
    syslog_duplication = false, two identical rejections within the same second count once
    (the text holds Exim's date to the second on Debian, the client's host and addresses).
    One per syslog parser (make_parse_message)."""

    def __init__(self) -> None:
        self._last: tuple[str, float | None] | None = None

    def is_copy(self, text: str, timestamp: float | None) -> bool:
        key = (text, timestamp)
        if key == self._last:
            self._last = None
            return True
        self._last = key
        return False

    def forget(self) -> None:
        """Another status line came between: what follows is not a copy."""
        self._last = None


def parse_body(text: str, pos: int, timestamp: float | None) -> MessageResult:
    """The Exim log text starting at text[pos] (after date and pid): events, None or UNPARSED."""
    delivery = _DELIVERY.match(text, pos)
    if delivery is not None:
        return _delivery(text, delivery.end(), delivery.group(2), delivery.group(1), timestamp)
    queue_id = None
    known = _ARRIVAL_OR_ID.match(text, pos)
    if known is not None:
        if known.group(2):
            return None  # "<=" arrival: not a status
        queue_id = known.group(1)
        pos = known.end()
    rejected = _REJECTED.search(text, pos)
    if rejected is None:
        return None
    return _rejection(text, pos, rejected, queue_id, timestamp)


def _delivery(text: str, pos: int, flag: str, queue_id: str, timestamp: float | None) -> MessageResult:
    outcome = FLAG_OUTCOMES[flag]
    reply = code = remote = None
    fields_end = len(text)
    if outcome == DELIVERED:
        confirm = text.find(' C="', pos)
        if confirm >= 0:
            reply, code = reply_at(text, confirm + 4)
            fields_end = confirm
    else:
        error = _SMTP_ERROR.search(text, pos)
        if error is not None:
            reply, code = reply_at(text, error.end())
            if reply is None:
                return UNPARSED  # the remote's answer is announced but not where it belongs
            fields_end = error.start()
            if error.group(2):
                remote = error.group(1) or error.group(2)
        else:
            start = _MESSAGE_START.match(text, pos)
            if start is not None:
                if outcome == DEFERRED and text.startswith(_NOT_ATTEMPTED, start.end()):
                    return None  # a queue run that waited: no attempt was made
                reply, code = _reply_or_code(text, start.end())
                fields_end = start.end()
        if outcome == BOUNCED and any(word in text for word in _EXPIRY_WORDS):
            outcome = EXPIRED
            if code is None:
                code = EXPIRED_CODE
    host = _HOST_FIELD.search(text, pos, fields_end)
    if host is not None:
        remote = host.group(1) or host.group(2)
    return [StatusEvent(MTA, outcome, code, reply, remote, timestamp, queue_id)]


def _reply_or_code(text: str, pos: int) -> tuple[str | None, str | None]:
    """The reply and code at the start of a logged message; an enhanced code alone when the
    message starts with one ("5.7.1 relay not permitted": an ACL's message = 5.7.1 ..., a
    :fail: alias's text, a defer router's message). Exim sends such a code behind its own
    3-digit reply, which it does not log."""
    reply, code = reply_at(text, pos)
    if reply is None:
        code = _leading_code(text, pos)
    return reply, code


def _leading_code(text: str, pos: int) -> str | None:
    """An enhanced code that stands as the first word at text[pos], or None."""
    code = code_at(text, pos)
    if code is None or text.startswith("#", pos):
        return None
    end = pos + len(code)
    if end < len(text) and text[end] not in " \\":
        return None  # "5.7.1.2 ..." or "5.7.1:" is not a code standing alone
    return code


def _rejection(text: str, pos: int, rejected: re.Match[str], queue_id: str | None,
               timestamp: float | None) -> MessageResult:
    after = rejected.end()
    if rejected.group(2) in ("RCPT", "MAIL") and text.startswith(" <", after):
        close = text.find(">", after)
        if close >= 0:
            after = close + 1
    reply = code = None
    colon = text.find(": ", after)
    if colon >= 0:
        reply, code = _reply_or_code(text, colon + 2)
    if reply is None and rejected.group(1):
        reply = _TEMPORARY_REPLY
    host = _HOST_FIELD.search(text, pos, rejected.start() + 1)
    if host is None:  # "rejected MAIL FROM:<a> H=(helo) [ip]: message too big" names it after
        host = _HOST_FIELD.search(text, after, colon if colon >= 0 else len(text))
    remote = (host.group(1) or host.group(2)) if host is not None else None
    return [StatusEvent(MTA, REJECTED, code, reply, remote, timestamp, queue_id)]
