"""Property: for every format, a code-looking string in a free-text position is never counted.

Each template below is one status line (or a line that is no status line) of one format, with
the real code it carries and slots in free-text positions: a subject, a message-id, an
address, a host name, quoted configuration. Hypothesis fills the slots with code-like text
("5.7.123", "550 5.7.123", "dsn=5.7.123", "said: 550 5.7.123", ...) and the line must still give
exactly the events it gives with harmless text there: the injected code never appears
(issue 13, item 7). {W} is a slot without spaces (an address, a host label, a message-id),
{S} one that may hold spaces (a subject, a quoted reply in configuration).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.parsers import make_parser
from exporter.parsers.syslog import SyslogParser

NOW = 1795953600.0  # 2026-11-29T12:00:00Z, the golden clock

# (name, format, template, the codes the line gives with harmless text in its slots)
TEMPLATES: list[tuple[str, str, str, list[str | None]]] = [
    ("postfix delivery: address and host name", "syslog",
     "Nov 29 04:12:47 mx1 postfix/smtp[2116]: 3F2A11C0D: to=<{W}@example.net>, relay={W}.example.net[192.0.2.1]:25, "
     "delay=0.4, delays=0.1/0/0.2/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4F2A)", ["2.0.0"]),
    ("postfix cleanup: subject in a header warning", "syslog",
     "Nov 29 04:12:47 mx1 postfix/cleanup[2117]: 3F2A11C0D: warning: header Subject: {S} from client.example[192.0.2.7]; "
     "from=<a@example.org> to=<b@example.net> proto=ESMTP helo=<client.example>", []),
    ("postfix cleanup: message-id", "syslog",
     "Nov 29 04:12:47 mx1 postfix/cleanup[2117]: 3F2A11C0D: message-id=<{W}@example.org>", []),
    ("postfix reject: helo and sender address", "syslog",
     "Nov 29 04:12:47 mx1 postfix/smtpd[2118]: NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <b@example.net>: "
     "Relay access denied; from=<{W}@example.org> to=<b@example.net> proto=ESMTP helo=<{W}>", ["5.7.1"]),
    ("exim mainlog: subject and host name", "exim",
     '2026-11-29 04:12:47 1abcDE-000123-AB => b@example.net R=dnslookup T=remote_smtp H={W}.example.net [192.0.2.1] '
     'C="250 2.0.0 Ok: queued as 4F2A" T="{S}"', ["2.0.0"]),
    ("exim mainlog: arrival with a subject", "exim",
     '2026-11-29 04:12:47 1abcDE-000123-AB <= a@example.org H=client.example [192.0.2.7] P=esmtp S=1234 '
     'id={W}@example.org T="{S}"', []),
    ("exim via syslog: rejection naming the helo", "syslog",
     "Nov 29 04:12:47 mx1 exim[2119]: H=({W}) [192.0.2.7] F=<{W}@example.org> rejected RCPT <b@example.net>: "
     "relay not permitted", [None]),
    ("sendmail: msgid and relay host", "syslog",
     "Nov 29 04:12:47 mx1 sendmail[2120]: 6AT63sKl015160: to=<b@example.net>, delay=00:00:01, xdelay=00:00:01, "
     "mailer=esmtp, pri=120054, relay={W}.example.net. [192.0.2.1], dsn=2.0.0, stat=Sent (<{W}@example.org> Mail accepted)",
     ["2.0.0"]),
    ("dovecot: message-id", "syslog",
     "Nov 29 04:12:47 mx1 dovecot: lmtp(bob@example.org)<4711><AbCdEf>: msgid=<{W}@example.net>: saved mail to INBOX",
     [None]),
    ("courier: addresses", "syslog",
     "Nov 29 04:12:47 mx1 courieresmtp: id=00086D4C.4C4A1D4F.00003AFA,from=<{W}@example.org>,addr=<b@example.net>,"
     "size=2013,success: delivered: {W}.example.net [192.0.2.1]", [None]),
    ("opensmtpd: address in the command", "syslog",
     'Nov 29 04:12:47 mx1 smtpd[2121]: 2bab89c0769e3887 smtp failed-command command="rcpt TO:<{W}@example.net>" '
     'result="550 Invalid recipient: <{W}@example.net>"', [None]),
    ("generic: quoted configuration of a program nobody claims", "syslog",
     "Nov 29 04:12:47 mx1 spf-check[2122]: Action: prepend: Text: Received-SPF: Pass  Reject action: {S}", []),
    ("generic: subject of a program nobody claims", "syslog",
     "Nov 29 04:12:47 mx1 mailer[2123]: queued message 17, Subject: {S}", []),
    ("policy helper: its verdict", "syslog",
     "Nov 29 04:12:47 mx1 policyd-spf[2124]: {S}", []),
    ("exchange tracking: subject and message-id", "exchange_tracking",
     "2024-03-11T08:20:05.660Z,10.20.1.15,EX01,,EX01,,,ROUTING,FAIL,46171603615811,<{W}@EX01.contoso.example>,"
     "0d2a9b9e,nobody@contoso.example,550 5.1.1 RESOLVER.ADR.RecipNotFound; not found,3321,1,,,\"{S}\","
     "ann.lee@contoso.example,ann.lee@contoso.example,,Originating,,,,,Email,,15.02.1258.012", ["5.1.1"]),
    ("exchange message trace: subject (summary layout)", "exchange_trace",
     '"PSComputerName","RunspaceId","PSShowComputerName","Organization","MessageId","Received","SenderAddress",'
     '"RecipientAddress","Subject","Status","ToIP","FromIP","Size","MessageTraceId","StartDate","EndDate","Index"\n'
     '"o","r","False","c","<{W}@example.org>","3/11/2024 8:14:22 AM","a@example.org","b@example.net","{S}","Delivered",'
     '"","198.51.100.23","1","6b1c","3/10/2024 12:00:00 AM","3/12/2024 12:00:00 AM","0"', [None]),
]

_CODE = st.builds(lambda c, s, d: f"{c}.{s}.{d}", st.sampled_from("245"), st.integers(0, 999), st.integers(0, 999))
_NO_SPACE = st.one_of(_CODE, _CODE.map(lambda code: f"x{code}"), _CODE.map(lambda code: code.replace(".", "-")))
_SPACED = st.one_of(
    _CODE.map(lambda code: f"550 {code} {code}"),
    _CODE.map(lambda code: f"re: 550 {code} mailbox unavailable"),
    _CODE.map(lambda code: f"dsn {code} status {code}"),
    _CODE.map(lambda code: f"{code} Message rejected"),
)


def _events(fmt: str, text: str) -> list[tuple[str | None, str]]:
    parser = SyslogParser(now=lambda: NOW) if fmt == "syslog" else make_parser(fmt)
    result = parser.parse(text.encode() + b"\n")
    assert result.unparsed == 0, text
    return [(e.code, e.outcome) for e in result.events]


@pytest.mark.parametrize("name, fmt, template, codes", TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_harmless_text_gives_the_lines_own_codes(name, fmt, template, codes):
    text = template.replace("{W}", "bob").replace("{S}", "lunch on friday")
    assert [code for code, _ in _events(fmt, text)] == codes


@pytest.mark.parametrize("name, fmt, template, codes", TEMPLATES, ids=[t[0] for t in TEMPLATES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word=_NO_SPACE, spaced=_SPACED)
def test_a_code_in_free_text_is_never_counted(name, fmt, template, codes, word, spaced):
    harmless = _events(fmt, template.replace("{W}", "bob").replace("{S}", "lunch on friday"))
    injected = _events(fmt, template.replace("{W}", word).replace("{S}", spaced))
    assert injected == harmless
