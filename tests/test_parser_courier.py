"""Courier's message parser (exporter/parsers/courier.py).

Shapes and sources: tests/testdata/parsers/courier/README.md (Courier's libs/comctlfile.c);
the courieresmtpd lines marked "fail2ban" are real (public-corpus fail2ban/courier-smtp).
"""

from __future__ import annotations

from pathlib import Path

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


def _report(name: str) -> dict:
    import json

    from tests.helpers.exporter_process import run_exporter

    log = Path(__file__).parent / "testdata" / "parsers" / "courier" / name
    result = run_exporter(["report", "--json", "--format", "syslog", str(log)], env={"TZ": "UTC"})
    assert (result.returncode, result.stderr) == (0, "")
    return json.loads(result.stdout)


def test_one_remote_delivery_written_on_two_lines_counts_once_through_the_real_process():
    """A real Courier log (forum post, 2010): a local delivery and one remote delivery whose
    ",success: delivered:" and ",status: success" lines are one attempt; the remote's "250 OK"
    on the line before is its reply."""
    data = _report("real-forum-2010.log")
    assert data["by_outcome"] == {"delivered": 2}
    assert data["lines"]["matched"] == 2


def test_reply_on_a_line_of_its_own_joins_the_record_through_the_real_process():
    data = _report("shapes.log")
    counted = sorted((c["code"], o, n) for c in data["codes"] for o, n in c["outcomes"].items())
    assert ("4.7.1", "deferred", 1) in counted and ("5.1.1", "bounced", 1) in counted
    assert not any(code == "none" and o in ("deferred", "bounced") for code, o, _ in counted)
