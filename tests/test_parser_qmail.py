"""qmail's message parser (exporter/parsers/qmail.py).

Shapes from qmail 1.03's qmail-send.c / qmail-remote.c / qmail-local.c and ucspi-tcp's
rblsmtpd.c (see tests/testdata/parsers/qmail/README.md); the rblsmtpd and qmail-smtpd lines
marked "fail2ban" are real (public-corpus fail2ban/qmail).
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import qmail


def parse(message: str, program: str = "qmail"):
    return qmail.parse_message(program, message, 3.0)


def test_remote_reply_with_underscores():
    assert parse("1764389569.123456 delivery 5: failure: 192.0.2.1_does_not_like_recipient./Remote_host_said:"
                 "_550_5.1.1_<bob@example.net>..._No_such_user/Giving_up_on_192.0.2.1./") == [
        StatusEvent("qmail", "bounced", "5.1.1", "550", "192.0.2.1", 3.0)]
    assert parse("delivery 4: deferral: Connected_to_192.0.2.1_but_sender_was_rejected./Remote_host_said:"
                 "_451_4.7.1_Try_later/") == [StatusEvent("qmail", "deferred", "4.7.1", "451", "192.0.2.1", 3.0)]


def test_qmail_own_code_and_local_success():
    assert parse("delivery 6: failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/") == [
        StatusEvent("qmail", "bounced", "5.1.1", None, None, 3.0)]
    assert parse("delivery 7: success: did_0+0+1/") == [StatusEvent("qmail", "delivered", None, None, None, 3.0)]


def test_multilog_label_and_expiry():
    events = parse("@400000006929b7a01d2c3f00 delivery 9: failure: I'm_not_going_to_try_again;"
                   "_this_message_has_been_in_the_queue_too_long./")
    assert [(e.outcome, e.code) for e in events] == [("expired", "4.4.7")]


def test_code_like_text_elsewhere_is_not_read():
    assert parse("starting delivery 10: msg 123456 to remote bob@5.1.1.example") is None
    events = parse("delivery 11: success: 10.5.1.1_accepted_message./Remote_host_said:_250_ok_5.1.1_queued/")
    assert [(e.code, e.reply, e.remote) for e in events] == [(None, "250", "10.5.1.1")]


def test_fail2ban_rblsmtpd_and_smtpd():
    assert parse("1157520813.485077 rblsmtpd: 198.51.100.77 pid 19597 sbl-xbl.spamhaus.org: 451 "
                 "http://www.spamhaus.org/query/bl?ip=198.51.100.77") == [
        StatusEvent("qmail", "rejected", None, "451", "198.51.100.77", 3.0)]
    assert parse("1157519909.633171 qmail-smtpd: 421 badiprbl: ip 198.51.100.54 rbl: example.com") == [
        StatusEvent("qmail", "rejected", None, "421", None, 3.0)]
    assert parse("relays.ordb.org blocked 193.111.120.47 ordb-test.null.dk -", "rblsmtpd") == [
        StatusEvent("qmail", "rejected", None, None, "193.111.120.47", 3.0)]
    assert parse("status: local 0/10 remote 1/20") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(qmail.PROGRAMS))
def test_never_raises(text, program):
    result = qmail.parse_message(program, text, None)
    assert result is None or result is UNPARSED or isinstance(result, list)
