"""Dovecot's delivery agents (LMTP, LDA): mail stored in a mailbox or refused -> StatusEvents.

Part of the parser stage: the syslog dispatcher (exporter/parsers/syslog.py) hands this
module the message of each line whose program is "dovecot" or "dovecot-lda". Most Dovecot
lines are about IMAP/POP3 logins and authentication; they are not status lines and are
ignored. Shapes read (2.2 and 2.3; "Info: "/"Error: " appear when Dovecot writes its own
log file, "<pid><session>" since 2.3):

    lmtp(bob@example.org)<4711><AbCdEf>: msgid=<x@example.net>: saved mail to INBOX
    lmtp(4711, bob@example.org): vwQ8DCqjqlqdHgAAwl8aWQ: msgid=<x@example.net>: saved mail to INBOX (2.2)
    lda(bob@example.org): msgid=<x@example.net>: saved mail to INBOX
    lmtp(bob@example.org)<4711><AbCdEf>: sieve: msgid=<x@example.net>: stored mail into mailbox 'Junk'
    lmtp(bob@example.org)<4711><AbCdEf>: msgid=<x@example.net>: rejected: Quota exceeded (mailbox for user is full)
    lmtp(4711): Error: ...: 552 5.2.2 <bob@example.org> Mailbox is full

Stored -> delivered; "rejected: " -> rejected (the LMTP client, usually Postfix or Exim,
got a refusal; Dovecot does not log the reply it sent, so no code); an "Error: " line that
quotes an SMTP/LMTP reply -> rejected with that reply's codes. "save failed" notes are not
counted: the outcome follows on its own line. No remote: these are local deliveries.
The user name in "lmtp(user)" is never read.
"""

from __future__ import annotations

import re

from exporter.events import DELIVERED, REJECTED, MessageResult, StatusEvent
from exporter.parsers.smtp_reply import reply_at

MTA = "dovecot"
# "lmtp", "lda", "deliver": the agent itself as the program, as in Dovecot's own log file
# ("lmtp(user)<pid><session>: Info: msgid=...") and Dovecot 1.x ("deliver(user): ..."),
# once the dispatcher looks such a name up without its "(user)" part.
PROGRAMS: tuple[str, ...] = ("dovecot", "dovecot-lda", "lmtp", "lda", "deliver")
# "saved mail to", "stored mail into mailbox", " rejected: " (found by the plain " rejected"
# shared with Exim) and any lmtp(...) / lda(...) line, for its errors. Few fixed strings keep
# the syslog parser's search fast (exporter/parsers/prefilter.py).
PREFILTERS: tuple[bytes, ...] = (rb"ed mail to ", rb"ed mail into ", rb" rejected", rb": lmtp\(", rb": lda\(")

# Dovecot 2.2 writes the LMTP session id after the agent ("lmtp(1234, bob@example.org):
# vwQ8DCqjqlqdHgAAwl8aWQ: msgid=..."; 2.3 moved it into "<pid><session>"): 22 base64 characters.
_SESSION = r"(?:[A-Za-z0-9+/]{16,32}: )?"
_AGENT = re.compile(r"(?:dovecot: )?(?:lmtp|lda|deliver)\([^)]*\)(?:<[^>]*>)*: (Info: |Error: )?" + _SESSION
                    + r"(?:sieve: )?")
# The same, when the agent was the program name and the message starts after it.
_AGENT_AS_PROGRAM = re.compile(r"(Info: |Error: )?" + _SESSION + r"(?:sieve: )?")
_AGENT_NAMES = ("lmtp", "lda", "deliver")
_MSGID = re.compile(r"msgid=(?:<[^>]*>|[^ :]*): ")
_STORED = ("saved mail to ", "stored mail into mailbox ")
_ERROR_REPLY = re.compile(r": ([45][0-9][0-9][ \-])")


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One syslog message from Dovecot: events, None (not a status line) or UNPARSED.

    A raise would be a bug: the syslog parser counts the line unparsed and goes on."""
    agent = _AGENT.match(message)
    if agent is None:
        if program.split("(", 1)[0] not in _AGENT_NAMES:
            return None  # logins, authentication, IMAP/POP3 sessions: not about delivery
        agent = _AGENT_AS_PROGRAM.match(message)
    pos = agent.end()
    if agent.group(1) == "Error: ":
        found = _ERROR_REPLY.search(message, pos)
        if found is None:
            return None  # an error without a reply (a config or storage problem)
        reply, code = reply_at(message, found.start(1))
        return [StatusEvent(MTA, REJECTED, code, reply, None, timestamp)]
    msgid = _MSGID.match(message, pos)
    if msgid is not None:
        pos = msgid.end()
    if message.startswith(_STORED, pos):
        return [StatusEvent(MTA, DELIVERED, None, None, None, timestamp)]
    if message.startswith("rejected: ", pos):
        return [StatusEvent(MTA, REJECTED, None, None, None, timestamp)]
    return None
