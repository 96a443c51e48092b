"""Enhanced status codes as text (RFC 3463): validation and extraction from reply text.

Used by the parsers (to pull the code out of the positions each format defines) and by
the classifier. PLACEHOLDER: the knowledge-base issue hardens the extraction rules; the
function signatures are the contract.
"""

from __future__ import annotations

import re

# class 2/4/5; subject and detail 1-3 digits without leading zeros.
_CODE = r"[245]\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})"
_VALID = re.compile(_CODE + r"\Z")
# In running text: not preceded by a word character, dot, dash or slash (IP addresses,
# versions such as v5.1.1, dates), not followed by another ".digit" or a digit.
_IN_TEXT = re.compile(r"(?<![\w.\-/])(" + _CODE + r")(?![0-9]|\.[0-9])")


def is_valid_code(text: str) -> bool:
    """True when text is exactly one enhanced status code, e.g. "5.7.606"."""
    return _VALID.match(text) is not None


def find_code(text: str) -> str | None:
    """The first enhanced status code standing in reply text, or None.

    "550 5.1.1 <x>: ...", "550-5.7.26 ...", "(#5.1.1)", "2.1.5Recipient OK" give a code;
    "10.5.1.1", "v5.1.1", "3.7.11" do not.
    """
    match = _IN_TEXT.search(text)
    return match.group(1) if match else None
