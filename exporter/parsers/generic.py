"""Generic fallback message parser: a status code in a reply position, from any program.

Part of the parser stage. The syslog parser hands this module the candidate lines whose
program no other message parser claims (and lines with no recognisable envelope). It knows
nothing about the program, so it reads a code only where a reply that was given stands:
- a 3-digit reply and the code right behind it ("550 5.1.1 ...", "451-4.7.1 ...") either at
  the start of the message (after a queue id "QID: " at most), or right after a word that
  says a reply came or an outcome happened: "said", "replied", "reply", "response",
  "answered", "returned", "failed", "rejected", "refused", "deferred", "bounced", "error",
  "status" (with ":" or "=" and spaces, or an opening parenthesis: "status=sent (250 2.0.0
  ok)");
- as the value of dsn=, stat= or status=: "dsn=5.1.1", "status=4.4.7".
A reply anywhere else is text, not a reply that was given: quoted configuration ("Reject
action: 550 5.7.23" of a policy service that accepted the message), a subject, a template.
A line gives at most one event, with mta "unknown" and the outcome from the code's class
(2 delivered, 4 deferred, 5 bounced). Version numbers, addresses and dates are not codes:
the code must be a valid RFC 3463 code standing alone in one of those positions.

The policy helpers that sit beside an MTA (policyd-spf, postgrey, opendkim, amavis, rspamd,
...; exporter/parsers/policy_helpers.py) give no event at all: the MTA logs the reply it sent.
"""

from __future__ import annotations

import re

from exporter.codes import is_valid_code
from exporter.events import BOUNCED, DELIVERED, DEFERRED, MessageResult, StatusEvent
from exporter.parsers.policy_helpers import is_policy_helper

MTA = "unknown"
PROGRAMS: tuple[str, ...] = ()
# Necessary for either position, and written so each alternative starts with fixed bytes
# (see exporter/parsers/prefilter.py): " 5." / "-5." before a code after a reply, "dsn=5." ...
PREFILTERS: tuple[bytes, ...] = (rb" [245]\.[0-9]", rb"-[245]\.[0-9]",
                                 rb"dsn=[245]\.", rb"stat=[245]\.", rb"status=[245]\.")

_CODE = r"[245]\.[0-9]{1,3}\.[0-9]{1,3}"
_AFTER_REPLY = re.compile(r"(?<![\w.\-])(?P<reply>[245][0-9]{2})[ -](?P<code>" + _CODE + r")(?![0-9]|\.[0-9])")
_IN_FIELD = re.compile(r"(?<![\w.\-])(?:dsn|stat|status)=(?P<code>" + _CODE + r")(?![0-9]|\.[0-9])")
# What may stand right before a reply that was given (matched at the end of the text before it).
_REPLY_POSITION = re.compile(
    r"(?:\A[ \t]*(?:[0-9A-Za-z]{5,}: )?"
    r"|(?<![\w-])(?:said|says|replied|reply|response|responded|answered|answer|returned|failed|failure|"
    r"rejected|reject|refused|deferred|bounced|error|status)(?:[:=][ \t]*|[ \t]+)"
    r"|(?<![\w-])status=[A-Za-z-]+ \()\Z",
    re.IGNORECASE,
)
_OUTCOMES = {"2": DELIVERED, "4": DEFERRED, "5": BOUNCED}


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One event for the first valid code in a reply position, else None; never raises."""
    if is_policy_helper(program):
        return None  # their verdict or configuration; the MTA logs the reply (policy_helpers.py)
    for found in _AFTER_REPLY.finditer(message):
        code = found.group("code")
        if is_valid_code(code) and _REPLY_POSITION.search(message, 0, found.start()) is not None:
            return [StatusEvent(MTA, _OUTCOMES[code[0]], code, found.group("reply"), None, timestamp, None)]
    for found in _IN_FIELD.finditer(message):
        code = found.group("code")
        if is_valid_code(code):
            return [StatusEvent(MTA, _OUTCOMES[code[0]], code, None, None, timestamp, None)]
    return None
