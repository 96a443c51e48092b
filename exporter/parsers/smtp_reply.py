"""Reading an SMTP reply at a known position: "550 5.1.1 <x>: ..." -> ("550", "5.1.1").

Part of the parser stage, shared by the per-program message parsers (exim, sendmail,
qmail, opensmtpd, dovecot, courier). Each of those finds where its format puts the
server's reply, then asks this module to read the 3-digit reply code and the enhanced
status code right behind it. Nothing here searches running text: a code-like string in
a message id, host name, address or version number is never at the position asked for.
"""

from __future__ import annotations

import re

from exporter.codes import is_valid_code

# A 3-digit reply (first digit 2, 4 or 5), a space, dash or end after it, then optionally
# an enhanced code ("5.1.1", qmail's "#5.1.1") that ends at a word boundary.
_REPLY = re.compile(
    r"([245][0-9][0-9])(?:[ \-]|\Z)[ ]*(?:#?([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9]|\.[0-9]))?"
)
# An enhanced code standing alone, e.g. qmail's "(#5.1.1)" or sendmail's "dsn=5.1.1".
_CODE = re.compile(r"#?([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9]|\.[0-9])")


def reply_at(text: str, pos: int = 0) -> tuple[str | None, str | None]:
    """The reply and enhanced code starting exactly at text[pos], each None when absent.

    "550 5.1.1 <x>: no" -> ("550", "5.1.1"); "550-5.7.26 ..." -> ("550", "5.7.26");
    "451 Try later" -> ("451", None); "Unrouteable address" -> (None, None);
    "550 5.01.1 x" -> ("550", None) (leading zeros are not a valid code).
    """
    match = _REPLY.match(text, pos)
    if match is None:
        return None, None
    code = match.group(2)
    if code is not None and not is_valid_code(code):
        code = None
    return match.group(1), code


def code_at(text: str, pos: int = 0) -> str | None:
    """The enhanced code starting exactly at text[pos] (a leading "#" allowed), or None."""
    match = _CODE.match(text, pos)
    if match is None:
        return None
    code = match.group(1)
    return code if is_valid_code(code) else None
