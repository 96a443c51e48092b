"""Courier's message parser (exporter/parsers/courier.py).

Shapes and sources: tests/testdata/parsers/courier/README.md (Courier's libs/comctlfile.c);
the courieresmtpd lines marked "fail2ban" are real (public-corpus fail2ban/courier-smtp).
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import courier

ID = "id=00086D4C.4C4A1D4F.00003AFA,from=<a@example.org>,addr=<b@example.net>"


def parse(message: str, program: str = "courieresmtp"):
    return courier.parse_message(program, message, 2.0)


def test_status_records():
    qid = "00086D4C.4C4A1D4F.00003AFA"
    assert parse(ID + ",status: deferred") == [StatusEvent("courier", "deferred", None, None, None, 2.0, qid)]
    assert parse(ID + ",status: failure") == [StatusEvent("courier", "bounced", None, None, None, 2.0, qid)]
    assert parse(ID + ",size=1234,status: success") == [StatusEvent("courier", "delivered", None, None, None, 2.0, qid)]
    assert parse(ID + ",size=2013,success: delivered: mx.example.net [192.0.2.1]") == [
        StatusEvent("courier", "delivered", None, None, "mx.example.net", 2.0, qid)]
    assert parse(ID + ",status: exploded") is UNPARSED


def test_reply_lines_before_a_record_are_not_counted():
    assert parse(ID + ": 550 5.1.1 <b@example.net>: Recipient address rejected") is None


def test_fail2ban_refusals():
    assert parse("error,relay=::ffff:1.2.3.4,ident=tmf,from=<tmf@example.com>,to=<mailman-subscribe@example.com>: "
                 "550 User unknown.", "courieresmtpd") == [StatusEvent("courier", "rejected", None, "550", "1.2.3.4", 2.0)]
    assert parse('error,relay=::ffff:1.2.3.4,msg="535 Authentication failed.",cmd: YWRvYmVhZG9iZQ==',
                 "courieresmtpd") is None
    assert parse('error,relay=::ffff:192.0.2.3,port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN '
                 'PlcmSpIp@example.com', "courieresmtpd") is None
    assert parse('error,relay=::ffff:192.0.2.7,msg="550 5.7.1 Blocked",cmd: RCPT TO:<g@example.org>',
                 "courieresmtpd") == [StatusEvent("courier", "rejected", "5.7.1", "550", "192.0.2.7", 2.0)]


def test_code_like_strings_in_ids_are_not_read():
    assert parse("newmsg,id=00086D4C.4C4A1D4F.00003AFE: dns; client.example ([::ffff:192.0.2.7])", "courierd") is None
    assert parse("id=5.1.1,from=<a@example.org>,addr=<b@example.net>,status: failure")[0].code is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    result = courier.parse_message("courieresmtpd", text, None)
    assert result is None or result is UNPARSED or isinstance(result, list)
