"""The syslog parser's fast path: a Postfix delivery record or reject in a plain syslog line, in one match.

Part of the parser stage. Most status lines of a Postfix server's log look like these:

    Nov 28 00:00:01 mail01 postfix/smtp[4242]: 3F2A1B7C0D: to=<a@example.org>,
        relay=mx.example.org[203.0.113.7]:25, delay=0.4, delays=0.01/0/0.2/0.19,
        dsn=2.0.0, status=sent (250 2.0.0 OK)        (one line in the log)
    Nov 28 00:00:02 mail01 postfix/smtpd[4243]: NOQUEUE: reject: RCPT from
        unknown[198.51.100.9]: 554 5.7.1 <b@example.org>: Relay access denied; ...

The general path decodes such a line, splits off its envelope (exporter/envelope.py), looks
its program up and runs the Postfix parser's patterns on the message (exporter/parsers/
postfix.py): a dozen Python steps per line. LINE reads the same fields from the chunk in
one match; postfix.delivery() then makes the event from them, as it does on the general
path (postfix.reject() for a reject). The syslog parser decodes the chunk once as Latin-1 for it (one character per byte,
so offsets stay those of the bytes, at memory speed); LINE admits printable ASCII only, and
there Latin-1 and UTF-8 give the same text.

The events are the same, because LINE is the general path's two patterns one after the
other (envelope._RFC3164, then postfix._DELIVERY), narrowed so that it matches only lines
both of them match, and captures the same text there:
  - every character class admits printable ASCII only (" " to "~"). A line with a tab, a
    carriage return, another control byte or a non-ASCII byte does not match and takes
    the general path. On printable ASCII, "\\S" and "." of the general path's str patterns
    are exactly "[!-~]" and "[ -~]" here, and "[^\\s...]" the same set without the space.
  - the envelope is one shape that can be split only one way: a month name, day and time
    with no fraction, no BSD priority tag, a host name with no ":", "<", "[" or "]", and a
    program name holding a "/" (Postfix's, see postfix.claims()) with its [pid]. The
    general path's envelope pattern splits such a line at the same places, so the message
    LINE goes on with is the message postfix._DELIVERY sees.
  - the record's own part is postfix._DELIVERY as it is, or postfix._REJECT on a message
    without "status=" (postfix.parse_message() sends a message with "status=" to the
    delivery patterns first), ending at the end of the line.
The caller checks that no other message parser claims the program by its exact name.
tests/test_fast_path.py compares both paths line by line on generated and real logs.
"""

from __future__ import annotations

import re

_PRINTABLE = r"[ -~]"                 # "." on one printable line
_NOT_SPACE = r"[!-~]"                 # "\S"
_NAME = r"[!-9;-Z\\^-~]"              # "[^\s\[\]:]": not a space, "[", "]" or ":"
_HOST = r"[!-9;=-Z\\^-~]"             # the same without "<" (which could start a priority tag)
_NOT_COMMA = r"[!-+\--~]"             # "[^,\s]"

LINE = re.compile(
    # envelope: "Nov 28 00:00:01 mail01 postfix/smtp[4242]: "
    r"(?P<stamp>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}[0-9]{1,2}"
    r" [0-9]{2}:[0-9]{2}:[0-9]{2}) " + _HOST + r"+ "
    r"(?P<prog>" + _NAME + r"*/" + _NAME + r"*)\[[0-9]+\]: "
    # the delivery record, as postfix._DELIVERY
    r"(?:(?P<qid>[0-9A-Za-z]+): to=<" + _PRINTABLE + r"*?>, (?:orig_to=<" + _PRINTABLE + r"*?>, )?"
    r"relay=(?P<relay>" + _NOT_SPACE + r"*?), (?:conn_use=[0-9]+, )?"
    r"delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, (?:tls=" + _NOT_SPACE + r"*?, )?"
    r"dsn=(?P<dsn>" + _NOT_COMMA + r"*), status=(?P<status>[A-Za-z-]+)"
    r"(?: \((?P<reason>" + _PRINTABLE + r"*)\))?"
    # or a reject, as postfix._REJECT, when the message holds no "status="
    r"|(?!" + _PRINTABLE + r"*status=)"
    r"(?P<reject_qid>NOQUEUE|[0-9A-Za-z]+): (?:reject|milter-reject): "
    r"[A-Z][A-Z-]* from (?P<client>" + _NOT_SPACE + r"+?): (?P<text>" + _PRINTABLE + r"*))"
    r"(?=\n|\Z)",
    re.ASCII,
)
# LINE's groups, in order: stamp, prog; for a delivery record qid, relay, dsn, status and
# reason (None when absent); for a reject reject_qid, client and text. The other record's
# groups are None.
