"""OpenSMTPD's message parser (exporter/parsers/opensmtpd.py).

Shapes and sources: tests/testdata/parsers/opensmtpd/README.md (OpenSMTPD's mta.c/mda.c
format strings, lines published by its author and in public how-tos).
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import opensmtpd


def parse(message: str):
    return opensmtpd.parse_message("smtpd", message, 9.0)


def test_mta_delivery_result_and_stat():
    message = ('5df87c9ffd0e785d mta delivery evpid=f6e94209918f7e7b from=<a@example.org> to=<c@gmail.com> '
               'rcpt=<-> source="192.0.2.5" relay="173.194.76.27 (ws-in-f27.1e100.net)" delay=2s result="Ok" '
               'stat="250 2.0.0 OK  1562385708 z11si6726563wmb.62 - gsmtp"')
    assert parse(message) == [StatusEvent("opensmtpd", "delivered", "2.0.0", "250", "ws-in-f27.1e100.net", 9.0,
                                          "f6e94209918f7e7b")]
    tempfail = message.replace('result="Ok" stat="250 2.0.0 OK', 'result="TempFail" stat="421 4.7.28 Unusual')
    assert parse(tempfail)[0][1:4] == ("deferred", "4.7.28", "421")
    permfail = message.replace('result="Ok" stat="250 2.0.0 OK', 'result="PermFail" stat="550 5.7.26 Unauthenticated')
    assert parse(permfail)[0][1:4] == ("bounced", "5.7.26", "550")


def test_mda_delivery_and_relay_without_name():
    assert parse("5df87c9250bba470 mda delivery evpid=c405e39ad6bbc64f from=<a@example.org> to=<a@example.org> "
                 "rcpt=<a@example.org> user=a delay=0s result=Ok stat=Delivered") == [
        StatusEvent("opensmtpd", "delivered", None, None, None, 9.0, "c405e39ad6bbc64f")]
    assert parse('0123456789abcdef mta delivery evpid=0123456789abcdef from=<a@example.org> to=<d@example.net> '
                 'rcpt=<-> source="-" relay="192.0.2.1" delay=1s result="TempFail" stat="Connection refused"') == [
        StatusEvent("opensmtpd", "deferred", None, None, "192.0.2.1", 9.0, "0123456789abcdef")]


def test_failed_commands():
    assert parse('bf23567dd3150185 smtp failed-command command="RCPT TO:<root@example.org> " '
                 'result="550 Invalid recipient: <root@example.org>"') == [
        StatusEvent("opensmtpd", "rejected", None, "550", None, 9.0)]
    assert parse('b4a942c181a10c63 smtp failed-command command="DATA" result="451 4.7.1 Try again later"')[0][2:4] == (
        "4.7.1", "451")
    assert parse('c1a89cb774083905 smtp failed-command command="AUTH LOGIN" '
                 'result="503 5.5.1 Invalid command: Command not supported"') is None
    assert parse('c1a89cb8c5b84cbf smtp bad-input result="500 5.5.1 Invalid command: Pipelining not supported"') is None


def test_older_layout():
    assert parse("relay: TempFail for 4f1ca07a39a6e3cb: session=4f1ca07a2d8c6e6b, from=<a@example.org>, "
                 "to=<c@example.net>, rcpt=<->, source=192.0.2.5, relay=mx.example.net [192.0.2.1], delay=1s, "
                 "stat=421 4.7.0 Try again later") == [
        StatusEvent("opensmtpd", "deferred", "4.7.0", "421", "mx.example.net", 9.0, "4f1ca07a39a6e3cb")]
    assert parse('smtp-in: Failed command on session 25a5d6ae3fd45a9f: "RCPT TO:<x@example.org>" => '
                 '550 5.7.1 Delivery not authorized') == [StatusEvent("opensmtpd", "rejected", "5.7.1", "550", None, 9.0)]
    assert parse("delivery: Ok for 5d6a8c5c6b1c3e3f: from=<a@example.org>, to=<b@example.org>") is UNPARSED


def test_code_like_strings_in_ids_and_addresses_are_not_read():
    assert parse("5df87c903d709659 smtp envelope evpid=c405e39ad6bbc64f from=<a@example.org> "
                 "to=<5.1.1@example.org>") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    result = opensmtpd.parse_message("smtpd", text, None)
    assert result is None or result is UNPARSED or isinstance(result, list)


def test_real_opensmtpd_6_8_syslog_output():
    import time
    from pathlib import Path
    from exporter.parsers.syslog import SyslogParser
    data = (Path(__file__).parent / "testdata" / "parsers" / "opensmtpd" / "real-opensmtpd-6.8.log").read_bytes()
    result = SyslogParser(now=lambda: time.time()).parse(data)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (34, 10, 24, 0)
    assert sorted((e.outcome, e.code or "-", e.reply or "-") for e in result.events) == sorted([
        ("rejected", "-", "550")] * 4 + [
        ("bounced", "-", "-"), ("bounced", "5.7.606", "550"), ("bounced", "5.1.1", "550"),
        ("bounced", "5.7.1", "554"), ("deferred", "4.7.1", "451"), ("delivered", "2.0.0", "250")])
