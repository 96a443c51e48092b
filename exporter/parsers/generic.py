"""Generic fallback message parser: a status code in a reply position, from any program.

Part of the parser stage. The syslog parser hands this module the candidate lines whose
program no other message parser claims (and lines with no recognisable envelope). It knows
nothing about the program, so it reads a code only where mail software puts one:
- right after a 3-digit reply: "550 5.1.1 ...", "451-4.7.1 ...";
- as the value of dsn=, stat= or status=: "dsn=5.1.1", "status=4.4.7".
A line gives at most one event, with mta "unknown" and the outcome from the code's class
(2 delivered, 4 deferred, 5 bounced). Version numbers, addresses and dates are not codes:
the code must be a valid RFC 3463 code standing alone in one of those positions.
"""

from __future__ import annotations

import re

from exporter.codes import is_valid_code
from exporter.events import BOUNCED, DELIVERED, DEFERRED, MessageResult, StatusEvent

MTA = "unknown"
PROGRAMS: tuple[str, ...] = ()
# Necessary for either position, and written so each alternative starts with fixed bytes
# (see exporter/parsers/prefilter.py): " 5." / "-5." before a code after a reply, "dsn=5." ...
PREFILTERS: tuple[bytes, ...] = (rb" [245]\.[0-9]", rb"-[245]\.[0-9]",
                                 rb"dsn=[245]\.", rb"stat=[245]\.", rb"status=[245]\.")

_CODE = r"[245]\.[0-9]{1,3}\.[0-9]{1,3}"
_AFTER_REPLY = re.compile(r"(?<![\w.\-])(?P<reply>[245][0-9]{2})[ -](?P<code>" + _CODE + r")(?![0-9]|\.[0-9])")
_IN_FIELD = re.compile(r"(?<![\w.\-])(?:dsn|stat|status)=(?P<code>" + _CODE + r")(?![0-9]|\.[0-9])")
_OUTCOMES = {"2": DELIVERED, "4": DEFERRED, "5": BOUNCED}


def parse_message(program: str, message: str, timestamp: float | None) -> MessageResult:
    """One event for the first valid code in a reply position, else None; never raises."""
    for found in _AFTER_REPLY.finditer(message):
        code = found.group("code")
        if is_valid_code(code):
            return [StatusEvent(MTA, _OUTCOMES[code[0]], code, found.group("reply"), None, timestamp, None)]
    for found in _IN_FIELD.finditer(message):
        code = found.group("code")
        if is_valid_code(code):
            return [StatusEvent(MTA, _OUTCOMES[code[0]], code, None, None, timestamp, None)]
    return None
