"""Enhanced status codes as text (RFC 3463): validation, and extraction from reply text.

Place in the pipeline: the parsers call find_code on the reply text of a status line
(or is_valid_code on a field that should hold a code); the classifier only ever sees
codes that passed is_valid_code.

A code is class.subject.detail: class 2, 4 or 5; subject and detail 1-3 digits with no
leading zero ("0" itself is fine). So 5.01.1, 4.1234.1, 1.2.3, 9.9.9, 5.7 and 05.1.1
are not codes.

In running text a code must stand on its own. Mail servers write it as "550 5.1.1 ...",
"550-5.7.26 ..." (continuation line), "(#5.1.1)" (qmail), "2.1.5Recipient OK" (Exchange,
no space), "dsn=5.1.1" (Postfix). The same digits also appear inside IP addresses
(10.5.1.1, 5.1.1.4), versions (v5.1.1, 3.7.11, postfix-3.5.1), dates and message-ids
(<expired-4.7.0@host>, 20240101.5.1.1@x); none of those is a code.
"""

from __future__ import annotations

import re

# class 2/4/5; subject and detail 1-3 digits without leading zeros.
CODE_PATTERN = r"[245]\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})"
_VALID = re.compile(CODE_PATTERN + r"\Z")

# Before the code: either the "-" of a multi-line reply right after a 3-digit reply code
# ("550-5.7.26") that is not glued to a word, or a character that cannot continue a
# number, version or word: not a letter or digit, ".", "-", "/" or "@". An underscore is
# a separator here: qmail writes spaces as "_" ("Remote_host_said:_550_5.1.1_User_unknown").
# After the code: no further digit, no ".digit" (IP address, 4-part version) and no "@"
# (message-id or address). A range such as Microsoft's "5.7.606-649" gives its first code.
# The lookbehinds sit after the class digit (and so include it) because a pattern that
# starts with a plain character set lets the regex engine skip ahead to the candidates,
# which makes a search over a whole log line about four times faster.
_IN_TEXT = re.compile(
    r"([245]"
    r"(?:(?<=[245][0-9][0-9]-[245])(?<![^\W_][245][0-9][0-9]-[245])"
    r"|(?<![^\W_][245])(?<![.\-/@][245]))"
    r"\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2}))"
    r"(?![0-9@]|\.[0-9])"
)


def is_valid_code(text: str) -> bool:
    """True when text is exactly one enhanced status code, e.g. "5.7.606"."""
    return _VALID.match(text) is not None


def find_code(text: str) -> str | None:
    """The first enhanced status code standing in reply text, or None.

    "550 5.1.1 <x>: ...", "550-5.7.26 ...", "(#5.1.1)", "2.1.5Recipient OK" give a code;
    "10.5.1.1", "v5.1.1", "3.7.11", "<expired-4.7.0@host>" do not.
    """
    match = _IN_TEXT.search(text)
    return match.group(1) if match else None
