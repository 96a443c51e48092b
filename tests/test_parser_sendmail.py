"""sendmail's message parser (exporter/parsers/sendmail.py).

Messages below follow the shapes in tests/testdata/parsers/sendmail/README.md (sendmail's
deliver.c / srvrsmtp.c / milter.c format strings); the fail2ban lines are real (see
/work/shared/eval/public-corpus/SOURCES.md).
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import sendmail

ATTEMPT = ("4ATBCl1x012345: to=<bob@example.net>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, "
           "pri=120, relay=mx.example.net. [192.0.2.1], ")


def parse(message: str):
    return sendmail.parse_message("sm-mta", message, 7.0)


def test_quoted_reply_code_wins_over_coarse_dsn():
    assert parse(ATTEMPT + "dsn=4.0.0, stat=Deferred: 421 4.7.0 Try again later") == [
        StatusEvent("sendmail", "deferred", "4.7.0", "421", "mx.example.net", 7.0, "4ATBCl1x012345")]


def test_dsn_is_the_code_when_stat_quotes_no_reply():
    assert parse(ATTEMPT + "dsn=5.1.1, stat=User unknown") == [
        StatusEvent("sendmail", "bounced", "5.1.1", None, "mx.example.net", 7.0, "4ATBCl1x012345")]
    assert parse(ATTEMPT + "dsn=4.0.0, stat=Deferred: Connection refused by mx.example.net.")[0][1:4] == (
        "deferred", "4.0.0", None)


def test_one_event_per_recipient_of_the_attempt():
    message = ATTEMPT.replace("to=<bob@example.net>", "to=<a@example.net>,<b@example.net>,<c@example.net>")
    events = parse(message + "dsn=2.0.0, stat=Sent (Ok: queued as 4F2A)")
    assert [(e.outcome, e.code) for e in events] == [("delivered", "2.0.0")] * 3


def test_queued_and_notes_are_not_status():
    assert parse("4ATBCl1x012347: to=<d@example.net>, delay=00:00:00, mailer=esmtp, pri=30, stat=queued") is None
    assert parse("4ATBCl1x012353: <i@example.org>... User unknown") is None
    assert parse("4ATBCl1x012354: 4ATBCl1y012355: DSN: User unknown") is None
    assert parse("4ATBCl1x012357: from=<k@example.org>, size=1, class=0, nrcpts=1, "
                 "msgid=<5.1.1@example.org>, proto=ESMTP, daemon=MTA, relay=c.example [198.51.100.7]") is None


def test_expiry_notices_from_a_real_sendmail_8_17():
    for note in ("DSN", "postmaster notify", "return to sender"):
        assert parse(f"6AT63sD0015163: 6AT64xI0015232: {note}: Cannot send message for 1 minute") == [
            StatusEvent("sendmail", "expired", "4.4.7", None, None, 7.0, "6AT63sD0015163")]
    assert parse("6AT63sKl015160: 6AT63sKk015162: DSN: User unknown") is None  # the bounce itself is the to= line


def test_invalid_dsn_is_unparsed():
    assert parse(ATTEMPT + "dsn=5.01.1, stat=User unknown") is UNPARSED


def test_reply_field_of_sendmail_8_17_wins():
    # Real lines (tests/testdata/parsers/sendmail/real-sendmail-8.17.log): stat= is sendmail's
    # own wording, reply= what the remote said.
    (event,) = parse("6AT63sKl015160: to=<r550-5.7.606@[127.0.0.2]>, delay=00:00:00, xdelay=00:00:00, "
                     "mailer=esmtp, pri=120054, relay=[127.0.0.2] [127.0.0.2], dsn=5.7.606, reply=550 5.7.606 "
                     "Access denied, banned sending IP, stat=User unknown")
    assert event == StatusEvent("sendmail", "bounced", "5.7.606", "550", "127.0.0.2", 7.0, "6AT63sKl015160")
    (event,) = parse("6AT63sD0015163: to=<r421-4.4.2@[127.0.0.2]>, delay=00:00:00, xdelay=00:00:00, "
                     "mailer=esmtp, pri=30049, relay=[127.0.0.2] [127.0.0.2], dsn=4.4.2, reply=421 4.4.2 Service "
                     "shutting down, closing connection, stat=Deferred: Connection reset by [127.0.0.2]")
    assert (event.outcome, event.code, event.reply) == ("deferred", "4.4.2", "421")
    coarse = parse(ATTEMPT + "dsn=4.0.0, reply=421 4.7.0 Try again later, stat=Deferred: Connection reset")
    assert (coarse[0].code, coarse[0].reply) == ("4.7.0", "421")


def test_real_sendmail_8_17_syslog_output():
    import time
    from pathlib import Path
    from exporter.parsers.syslog import SyslogParser
    data = (Path(__file__).parent / "testdata" / "parsers" / "sendmail" / "real-sendmail-8.17.log").read_bytes()
    result = SyslogParser(now=lambda: time.time()).parse(data)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (26, 12, 14, 0)
    assert sorted((e.outcome, e.code, e.reply or "-") for e in result.events) == sorted([
        ("rejected", "5.7.1", "550"), ("rejected", "4.7.1", "451"),
        ("bounced", "5.7.606", "550"), ("bounced", "5.1.1", "550"),
        ("deferred", "4.7.1", "451"), ("deferred", "4.7.1", "451"), ("deferred", "4.4.2", "421"),
        ("deferred", "4.4.2", "421"), ("delivered", "2.0.0", "-")] + [("expired", "4.4.7", "-")] * 3)


def test_old_sendmail_without_dsn_goes_by_stat():
    assert parse(ATTEMPT + "stat=Sent")[0][1:3] == ("delivered", None)
    assert parse(ATTEMPT + "stat=Deferred: Connection timed out")[0][1] == "deferred"
    assert parse(ATTEMPT + "stat=Service unavailable")[0][1] == "bounced"


def test_rejects_real_fail2ban_lines():
    forged = ("s1NLaDQT022248: ruleset=check_rcpt, arg1=<dautareuk2@hotmail.it>, relay=int0.client.access."
              "azadnet.net [80.253.155.119] (may be forged), reject=550 5.7.1 <dautareuk2@hotmail.it>... "
              "Relaying denied. IP name possibly forged [80.253.155.119]")
    assert parse(forged) == [StatusEvent("sendmail", "rejected", "5.7.1", "550", "80.253.155.119", 7.0,
                                         "s1NLaDQT022248")]
    relay = ("ruleset=check_relay, arg1=leased-line-54-82.telecom.by, arg2=217.21.54.82, relay=leased-line-"
             "54-82.telecom.by [217.21.54.82], reject=421 4.3.2 Connection rate limit exceeded.")
    assert parse(relay) == [StatusEvent("sendmail", "rejected", "4.3.2", "421", "leased-line-54-82.telecom.by",
                                        7.0, None)]


def test_ipv6_relay_and_vendor_code():
    message = ATTEMPT.replace("mx.example.net. [192.0.2.1]", "gmail-smtp-in.l.google.com. [IPv6:2a00:1450:4013:c00::1a]")
    (event,) = parse(message + "dsn=4.0.0, stat=Deferred: 421-4.7.28 Unusual rate of unsolicited mail")
    assert (event.code, event.reply, event.remote) == ("4.7.28", "421", "gmail-smtp-in.l.google.com")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    result = sendmail.parse_message("sendmail", text, None)
    assert result is None or result is UNPARSED or isinstance(result, list)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["4ATBCl1x012345: ", "to=", "<a@b>", ", ", "dsn=", "5.1.1", "4.0.0", "stat=",
                                 "Deferred: ", "Sent (", "421 ", "reject=", "relay=", "[", "]", "x", " "]),
                max_size=30))
def test_never_raises_on_near_shapes(parts):
    result = sendmail.parse_message("sm-mta", "".join(parts), None)
    assert result is None or result is UNPARSED or isinstance(result, list)
