"""IIS SMTP W3C log parser: exact events, chunking, header changes, bad input.

Line shapes as in tests/testdata/parsers/iis_smtp/README.md (the golden pair there is run
by tests/test_golden.py).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from exporter.events import BOUNCED, DEFERRED, DELIVERED, REJECTED, StatusEvent
from exporter.parsers.iis_smtp import FIELDS, IisSmtpParser

LOG = Path(__file__).resolve().parent / "testdata" / "parsers" / "iis_smtp" / "smtpsvc1.log"
HEADER = ("#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
          "#Date: 2024-03-11 08:00:03\r\n#Fields: " + " ".join(FIELDS) + "\r\n").encode()


def outbound(kind: str, method: str, query: str, remote: str = "52.101.8.40") -> bytes:
    return (f"2024-03-11 08:36:10 {remote} OutboundConnection{kind} SMTPSVC1 WEB01 - 25 {method} - "
            f"{query} 0 0 {len(query)} 0 312 SMTP - - - -\r\n").encode()


def inbound(method: str, query: str, status: int, client: str = "10.20.1.77") -> bytes:
    return (f"2024-03-11 08:40:00 {client} app01.contoso.example SMTPSVC1 WEB01 10.20.1.40 0 "
            f"{method} - {query} {status} 0 80 40 0 SMTP - - - -\r\n").encode()


def test_outbound_replies_are_paired_with_rcpt_and_data():
    chunk = HEADER + b"".join([
        outbound("Response", "-", "220+mx.tenant.example+ESMTP"),
        outbound("Command", "EHLO", "WEB01.contoso.example"),
        outbound("Response", "-", "250-mx.tenant.example+Hello+[203.0.113.9]"),
        outbound("Command", "MAIL", "FROM:<alerts@contoso.example>+SIZE=2410"),
        outbound("Response", "-", "250+2.1.0+Sender+OK"),
        outbound("Command", "RCPT", "TO:<kim@tenant.example>"),
        outbound("Response", "-", "250+2.1.5+Recipient+OK"),
        outbound("Command", "RCPT", "TO:<lee@tenant.example>"),
        outbound("Response", "-", "550+5.4.1+Recipient+address+rejected:+Access+denied."),
        outbound("Command", "RCPT", "TO:<max@tenant.example>"),
        outbound("Response", "-", "250+2.1.5+Recipient+OK"),
        outbound("Command", "DATA", "-"),
        outbound("Response", "-", "354+Start+mail+input"),
        outbound("Response", "-", "250+2.6.0+<id@WEB01>+Queued+mail+for+delivery"),
    ])
    result = IisSmtpParser().parse(chunk)
    stamp = 1710146170.0
    assert result.events == [
        StatusEvent("iis", BOUNCED, "5.4.1", "550", "52.101.8.40", stamp),
        StatusEvent("iis", DELIVERED, "2.6.0", "250", "52.101.8.40", stamp),
        StatusEvent("iis", DELIVERED, "2.6.0", "250", "52.101.8.40", stamp),
    ]
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (18, 2, 16, 0)


def test_inbound_refusals_are_rejected_with_the_status_as_reply():
    chunk = b"".join([
        inbound("EHLO", "+app01.contoso.example", 250),
        inbound("MAIL", "+FROM:<alerts@contoso.example>", 250),
        inbound("RCPT", "+TO:<someone@elsewhere.example>", 550),
        inbound("RCPT", "+TO:<busy@contoso.example>", 452),
        inbound("RCPT", "+TO:<ok@contoso.example>", 250),
        inbound("DATA", "+<20240311084000.1A2B@app01.contoso.example>", 250),
        inbound("QUIT", "-", 240),
    ])
    result = IisSmtpParser().parse(chunk)
    assert [(e.outcome, e.code, e.reply, e.remote) for e in result.events] == [
        (REJECTED, None, "550", "10.20.1.77"),
        (REJECTED, None, "452", "10.20.1.77"),
    ]
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (7, 2, 5, 0)


def test_a_shorter_field_list_mid_file_is_followed():
    chunk = (HEADER + inbound("RCPT", "+TO:<a@contoso.example>", 550)
             + b"#Fields: time c-ip cs-method sc-status\r\n"
             + b"00:05:00 203.0.113.200 RCPT 550\r\n"
             + b"00:05:01 203.0.113.200 OutboundConnectionCommand RCPT\r\n")
    result = IisSmtpParser().parse(chunk)
    assert [(e.reply, e.remote, e.timestamp) for e in result.events] == [
        ("550", "10.20.1.77", 1710146400.0),
        ("550", "203.0.113.200", None),   # no date column: no timestamp
    ]
    # The last line holds no SMTP verb in the cs-method column: ignored.
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (8, 2, 6, 0)


def test_fixture_file_exact_counts_and_chunking():
    data = LOG.read_bytes()
    whole = IisSmtpParser().parse(data)
    assert [(e.outcome, e.code, e.reply) for e in whole.events] == [
        (BOUNCED, "5.1.1", "550"), (DELIVERED, "2.0.0", "250"), (DEFERRED, "4.7.0", "421"),
        (DEFERRED, "4.7.500", "451"), (REJECTED, None, "550"), (REJECTED, None, "550"),
        (REJECTED, None, "421"),
    ]
    assert (whole.lines, whole.matched, whole.ignored, whole.unparsed) == (43, 7, 34, 2)
    lines = data.splitlines(keepends=True)
    for step in (1, 4):
        parser = IisSmtpParser()
        events = []
        for start in range(0, len(lines), step):
            events.extend(parser.parse(b"".join(lines[start:start + step])).events)
        assert events == whole.events


_PIECES = st.sampled_from([
    HEADER, outbound("Command", "RCPT", "TO:<a@b>"), outbound("Response", "-", "550+5.1.1+x"),
    inbound("RCPT", "+TO:<a@b>", 550), b"#Fields: date time\n", b"#Fields:\n", b" RCPT ", b" DATA",
    b"OutboundConnectionResponse", b"+", b"-", b"\r\n", b"\n", b"\r", b"\xff", b"\x00", b" ",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=25))
def test_arbitrary_bytes_never_raise(pieces: list[bytes]):
    result = IisSmtpParser().parse(b"".join(pieces))
    assert result.lines == result.matched + result.ignored + result.unparsed
    assert min(result.matched, result.ignored, result.unparsed) >= 0
