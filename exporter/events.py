"""What a parser hands to the classifier: one StatusEvent per logged attempt.

This is the contract between the parser stage and the rest of the pipeline
(DESIGN.md section 2). Every value set used for a metric label is defined here
or in the classifier, never taken from a log.
"""

from __future__ import annotations

from typing import NamedTuple, Union

# What happened to one attempt. A bounded set: parsers map their own words to these.
DELIVERED = "delivered"   # accepted by the next hop or stored in a mailbox (class 2)
DEFERRED = "deferred"     # temporary failure, the message stays queued (class 4)
BOUNCED = "bounced"       # permanent failure after the message was accepted (class 5 / DSN)
EXPIRED = "expired"       # the message stayed queued too long and was returned
REJECTED = "rejected"     # refused while it was being received (SMTP reply to a client)
# Address-verification probes (Postfix's reject_unverified_recipient/sender, `sendmail -bv`):
# the MTA asked the next hop whether it would take an address and sent no message. Kept
# apart from deliveries and bounces, so that delivery and bounce ratios count real mail only.
VERIFIED = "verified"           # the probe found the address deliverable
VERIFY_FAILED = "verify_failed" # the probe found it undeliverable (cached or not)
OUTCOMES: tuple[str, ...] = (DELIVERED, DEFERRED, BOUNCED, EXPIRED, REJECTED, VERIFIED, VERIFY_FAILED)

# Which software wrote the line. "unknown" is the generic fallback parser's.
MTAS: tuple[str, ...] = (
    "postfix", "exim", "sendmail", "exchange", "opensmtpd", "qmail",
    "dovecot", "courier", "iis", "unknown",
)


class StatusEvent(NamedTuple):
    """One logged delivery or reception attempt that carries (or implies) a status."""

    mta: str                       # one of MTAS
    outcome: str                   # one of OUTCOMES
    code: str | None               # validated enhanced status code "5.1.1", or None
    reply: str | None = None       # 3-digit SMTP reply "550", or None
    remote: str | None = None      # remote host name or address; classifier input, never a label
    timestamp: float | None = None # Unix seconds (UTC) from the log line, when known
    queue_id: str | None = None    # for reports and de-duplication, never a label


class _Unparsed:
    """Marker a message parser returns for a line that looks like a status line but does not parse."""

    _instance: "_Unparsed | None" = None

    def __new__(cls) -> "_Unparsed":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNPARSED"


UNPARSED = _Unparsed()

# What a per-program message parser returns for one line's message text:
#   a list of events (the line is a status line; usually one event),
#   None (not a status line: ignored), or UNPARSED.
MessageResult = Union[list[StatusEvent], None, _Unparsed]
