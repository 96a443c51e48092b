"""Dovecot's message parser (exporter/parsers/dovecot.py).

Shapes and sources: tests/testdata/parsers/dovecot/README.md; the login and authentication
lines are real (public-corpus fail2ban/dovecot) and must give nothing.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import dovecot


def parse(message: str):
    return dovecot.parse_message("dovecot", message, 4.0)


def test_stored_and_rejected():
    delivered = [StatusEvent("dovecot", "delivered", None, None, None, 4.0)]
    assert parse("lmtp(bob@example.org)<4711><AbCdEfGh>: msgid=<x1@example.net>: saved mail to INBOX") == delivered
    assert parse("lda(bob@example.org): Info: msgid=<x2@example.net>: saved mail to INBOX") == delivered
    assert parse("lmtp(bob@example.org)<4711><AbCd>: sieve: msgid=<x3@example.net>: stored mail into mailbox 'Junk'") == delivered
    assert parse("lmtp(bob@example.org)<4711><AbCd>: msgid=<x4@example.net>: rejected: Quota exceeded "
                 "(mailbox for user is full)") == [StatusEvent("dovecot", "rejected", None, None, None, 4.0)]


def test_error_with_reply_and_save_failed():
    assert parse("lmtp(4711): Error: lmtp-server: conn 192.0.2.1:4711 [1]: rcpt bob@example.org: "
                 "552 5.2.2 <bob@example.org> Mailbox is full") == [
        StatusEvent("dovecot", "rejected", "5.2.2", "552", None, 4.0)]
    assert parse("lmtp(bob@example.org)<4711><AbCd>: msgid=<x4@example.net>: save failed to INBOX: Quota exceeded") is None
    assert parse("lmtp(bob@example.org)<4711><AbCd>: Error: msgid=<x4@example.net>: save failed to INBOX: "
                 "Quota exceeded (mailbox for user is full)") is None


def test_logins_and_auth_from_fail2ban_give_nothing():
    for message in (
        "pop3-login: Aborted login (auth failed, 1 attempts in 17 secs): user=<test>, method=PLAIN, "
        "rip=192.51.100.13, lip=203.0.113.17, session=<YADINsQCDs5BH8Pg>",
        "auth-worker(3270): conn unix:auth-worker (pid=27359,uid=97): auth-worker<128>: pam(webapps,192.0.2.7): "
        "pam_authenticate() failed: Authentication failure (Password mismatch?)",
        "imap-login: Disconnected (no auth attempts): rip=180.189.168.166, lip=113.212.99.194, TLS handshaking: Disconnected",
    ):
        assert parse(message) is None


def test_msgid_with_code_like_text_is_not_a_code():
    assert parse("lmtp(bob@example.org)<4711><AbCd>: msgid=<5.1.1@example.net>: saved mail to INBOX")[0].code is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    result = dovecot.parse_message("dovecot", text, None)
    assert result is None or result is UNPARSED or isinstance(result, list)


def test_agent_as_program_name():
    # Dovecot's own log file and Dovecot 1.x name the agent as the program; the deliver(...)
    # line is the one quoted in a public Postfix log analyser's test data (see README there).
    assert dovecot.parse_message("lmtp", "Info: msgid=<x@example.net>: saved mail to INBOX", 4.0) == [
        StatusEvent("dovecot", "delivered", None, None, None, 4.0)]
    assert dovecot.parse_message("deliver(macaco@monos.org)", "msgid=<319615.810035856-sendEmail@huginn>: "
                                 "rejected: Quota exceeded (mailbox for user is full)", 4.0) == [
        StatusEvent("dovecot", "rejected", None, None, None, 4.0)]
    assert dovecot.parse_message("lmtp", "Info: Connect from local", 4.0) is None


def test_real_dovecot_2_3_19_lda_syslog_output():
    import time
    from pathlib import Path
    from exporter.parsers.syslog import SyslogParser
    data = (Path(__file__).parent / "testdata" / "parsers" / "dovecot" / "real-dovecot-2.3.19-lda.log").read_bytes()
    result = SyslogParser(now=lambda: time.time()).parse(data)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (21, 3, 18, 0)
    assert [e.outcome for e in result.events] == ["delivered", "delivered", "rejected"]


def test_dovecot_2_2_session_id_before_msgid_through_the_real_process():
    """Dovecot 2.2 writes the LMTP session id between "lmtp(pid, user):" and "msgid=":
    those deliveries count (a real 2.2 line from a public guide, and the pid form)."""
    import json
    from pathlib import Path

    from tests.helpers.exporter_process import run_exporter

    log = Path(__file__).parent / "testdata" / "parsers" / "dovecot" / "session-ids.log"
    result = run_exporter(["report", "--json", "--format", "syslog", str(log)], env={"TZ": "UTC"})
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert data["by_outcome"] == {"delivered": 4, "rejected": 1}
    assert [c["code"] for c in data["codes"]] == ["none", "none"]
