"""exporter/parsers/postfix.py: exact events for each Postfix shape and each documented decision.

Message shapes follow the Postfix source (src/global/log_adhoc.c, src/smtpd/smtpd_check.c,
src/cleanup/cleanup_message.c, src/qmgr/qmgr_active.c, src/global/bounce.c); see
tests/testdata/parsers/postfix/README.md. The golden pairs there run the same parser through
the syslog envelope; these tests call parse_message directly and pin each decision.
"""

from __future__ import annotations

import pytest

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import postfix
from exporter.parsers.postfix import parse_message

T = 1795925567.0


def record(status: str, dsn: str, reason: str, relay: str = "mx.example.org[192.0.2.25]:25", extra: str = "") -> str:
    return (f"1A2B3C4D5E: to=<alice@example.org>, relay={relay}, {extra}delay=0.42, "
            f"delays=0.01/0.01/0.1/0.3, dsn={dsn}, status={status} ({reason})")


def event(outcome: str, code: str | None, reply: str | None, remote: str | None,
          queue_id: str | None = "1A2B3C4D5E") -> list[StatusEvent]:
    return [StatusEvent("postfix", outcome, code, reply, remote, T, queue_id)]


@pytest.mark.parametrize("status, outcome", [
    ("sent", "delivered"),
    ("deliverable", "verified"),
    ("undeliverable-but-not-cached", "verify_failed"),
    ("deferred", "deferred"),
    ("SOFTBOUNCE", "deferred"),
    ("bounced", "bounced"),
    ("undeliverable", "verify_failed"),
    ("expired", "expired"),
])
def test_status_word_to_outcome(status: str, outcome: str):
    line = record(status, "4.1.1", "host mx.example.org[192.0.2.25] said: 450 4.1.1 no (in reply to RCPT TO command)")
    assert parse_message("postfix/smtp", line, T) == event(outcome, "4.1.1", "450", "mx.example.org")


def test_code_comes_from_dsn_and_reply_from_said():
    line = record("bounced", "5.1.1", "host mx.example.com[198.51.100.7] said: 550 5.1.1 <a@example.com>: "
                  "Recipient address rejected (in reply to RCPT TO command)", relay="mx.example.com[198.51.100.7]:25")
    assert parse_message("postfix/smtp", line, T) == event("bounced", "5.1.1", "550", "mx.example.com")


def test_multiline_reply_with_dash():
    line = record("deferred", "4.2.2", "host mx.example.org[192.0.2.25] said: 452-4.2.2 over quota 452 4.2.2 see "
                  "(in reply to RCPT TO command)")
    assert parse_message("postfix/smtp", line, T) == event("deferred", "4.2.2", "452", "mx.example.org")


def test_reply_at_start_of_reason_and_refused_to_talk():
    sent = record("sent", "2.0.0", "250 2.0.0 Ok: queued as 4QvX1Y2Z3")
    assert parse_message("postfix/smtp", sent, T) == event("delivered", "2.0.0", "250", "mx.example.org")
    refused = record("deferred", "4.7.0", "host mx.example.org[192.0.2.25] refused to talk to me: 421 4.7.0 later")
    assert parse_message("postfix/smtp", refused, T) == event("deferred", "4.7.0", "421", "mx.example.org")


def test_no_reply_when_the_reason_has_none():
    line = record("deferred", "4.4.1", "connect to mx.example.net[203.0.113.9]:25: Connection refused", relay="none")
    assert parse_message("postfix/smtp", line, T) == event("deferred", "4.4.1", None, None)


@pytest.mark.parametrize("relay, remote", [
    ("mx.example.org[192.0.2.25]:25", "mx.example.org"),
    ("mx.example.com[2001:db8::25]:25", "mx.example.com"),
    ("unknown[192.0.2.99]:25", "192.0.2.99"),
    ("none", None),
    ("local", None),
    ("virtual", None),
    ("dovecot", None),
    ("mx1.example.net[private/dovecot-lmtp]", None),
])
def test_remote_is_relay_host_name(relay: str, remote: str | None):
    line = record("sent", "2.0.0", "delivered", relay=relay)
    assert parse_message("postfix/smtp", line, T) == event("delivered", "2.0.0", None, remote)


def test_optional_fields_orig_to_conn_use_tls():
    line = ("2B3C4D5E6F: to=<bob@example.org>, orig_to=<info@example.org>, relay=mx.example.org[192.0.2.25]:25, "
            "conn_use=3, delay=0.5, delays=0.01/0/0.2/0.29, tls=verify/(requiretls), dsn=2.0.0, "
            "status=sent (250 2.0.0 Ok)")
    assert parse_message("postfix-out/smtp", line, T) == event("delivered", "2.0.0", "250", "mx.example.org", "2B3C4D5E6F")


def test_qmgr_expired_and_force_expired_count_as_4_4_7():
    for word in ("expired", "force-expired"):
        line = f"2D3E4F5A6B: from=<newsletter@example.net>, status={word}, returned to sender"
        assert parse_message("postfix/qmgr", line, T) == event("expired", "4.4.7", None, None, "2D3E4F5A6B")


def test_codes_are_never_taken_from_addresses_or_message_ids():
    line = ("6B7C8D9E0F: to=<user.5.1.1@example.com>, relay=mx.example.com[198.51.100.7]:25, delay=0.3, "
            "delays=0.1/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 550 5.1.1)")
    assert parse_message("postfix/smtp", line, T) == event("delivered", "2.0.0", "250", "mx.example.com", "6B7C8D9E0F")
    assert parse_message("postfix/cleanup", "9E0F1A2B3C: message-id=<5.1.1.2026@example.org>", T) is None


def test_lines_that_are_not_counted():
    assert parse_message("postfix/smtp", "7C8D9E0F1A: host mx.example.com[198.51.100.7] said: 451 4.3.0 "
                         "Temporary server error (in reply to MAIL FROM command)", T) is None
    assert parse_message("postfix/qmgr", "8D9E0F1A2B: status=deferred (bounce failed)", T) is None
    assert parse_message("postfix/qmgr", "8D9E0F1A2B: removed", T) is None
    assert parse_message("postfix/smtpd", "connect from unknown[203.0.113.50]", T) is None


# --- rejects -------------------------------------------------------------------------------

def test_noqueue_reject():
    line = ("NOQUEUE: reject: RCPT from unknown[203.0.113.50]: 554 5.7.1 <victim@example.net>: Relay access denied; "
            "from=<spam@example.test> to=<victim@example.net> proto=ESMTP helo=<spammer.example.test>")
    assert parse_message("postfix/smtpd", line, T) == event("rejected", "5.7.1", "554", "203.0.113.50", None)


def test_queued_reject_names_the_client():
    line = ("1B2C3D4E5F: reject: RCPT from mail.example.org[192.0.2.30]: 550 5.1.1 <nosuch@example.net>: Recipient "
            "address rejected; from=<alice@example.org> to=<nosuch@example.net> proto=ESMTP helo=<mail.example.org>")
    assert parse_message("postfix/submission/smtpd", line, T) == event("rejected", "5.1.1", "550", "mail.example.org",
                                                                      "1B2C3D4E5F")


def test_postscreen_reject_and_too_many_connections():
    line = ("NOQUEUE: reject: RCPT from [203.0.113.51]:40112: 550 5.7.1 Service unavailable; client [203.0.113.51] "
            "blocked using zen.example.org; from=<spam@example.test>, to=<victim@example.net>, proto=ESMTP, helo=<x>")
    assert parse_message("postfix/postscreen", line, T) == event("rejected", "5.7.1", "550", "203.0.113.51", None)
    busy = "NOQUEUE: reject: CONNECT from [203.0.113.52]:40113: too many connections"
    assert parse_message("postfix/postscreen", busy, T) == event("rejected", None, None, "203.0.113.52", None)


@pytest.mark.parametrize("text, code, reply", [
    ("4.7.1 Try again later", "4.7.1", None),
    ("550 5.7.1 Command rejected", "5.7.1", "550"),
    ("Message rejected by local policy", None, None),
])
def test_milter_reject(text: str, code: str | None, reply: str | None):
    line = (f"2C3D4E5F6A: milter-reject: END-OF-MESSAGE from mail.example.org[192.0.2.30]: {text}; "
            "from=<alice@example.org> to=<bob@example.net> proto=ESMTP helo=<mail.example.org>")
    assert parse_message("postfix/cleanup", line, T) == event("rejected", code, reply, "mail.example.org", "2C3D4E5F6A")


def test_cleanup_header_reject_code_only_from_the_reason():
    line = ("7B8C9D0E1F: reject: header Subject: Re: 550 5.1.1 delivery failed from mail.example.org[192.0.2.30]; "
            "from=<alice@example.org> to=<bob@example.net> proto=ESMTP helo=<mail.example.org>: Message content rejected")
    assert parse_message("postfix/cleanup", line, T) == event("rejected", None, None, None, "7B8C9D0E1F")
    coded = line.replace(": Message content rejected", ": 5.7.1 Spam subject rejected")
    assert parse_message("postfix/cleanup", coded, T) == event("rejected", "5.7.1", None, None, "7B8C9D0E1F")


def test_reject_warning_hold_discard_are_not_rejects():
    for action in ("reject_warning", "hold", "discard"):
        line = (f"NOQUEUE: {action}: RCPT from unknown[203.0.113.54]: 450 4.7.1 Client host rejected; "
                "from=<x@example.test> to=<bob@example.net> proto=ESMTP helo=<x>")
        assert parse_message("postfix/smtpd", line, T) is None


# --- malformed: never an event, never an exception ------------------------------------------

@pytest.mark.parametrize("line", [
    record("sent", "1.2.3", "250 2.0.0 Ok"),
    record("bounced", "5.01.1", "550 5.1.1 no"),
    record("sent", "", "250 Ok"),
    record("frobbed", "2.0.0", "what"),
    "3C3C3C3C3C: to=<a@example.org>, relay=mx.example.org[192.0.2.25]:25, delay=0.1, delays=0/0/0.05/0.05, dsn=5.1.1, status=bou",
    "4D4D4D4D4D: to=<a@example.org>, relay=mx.example.org[192.0.2.25]:25, dsn=5.1.1, status=bounced (no delay fields)",
    "123456789AB: user@example.com, relay=example.com[123.45.67.89]:25, delay=2, delays=2/2/2/2, dsn=1.2.3, status=deferred (x)",
    "NOQUEUE: reject: RCPT from unknown[203.0.113.60]: 123 1.2.3 <a@example.org>: Reasons; from=<x> to=<a> proto=ESMTP helo=<x>",
    "NOQUEUE: reject: Unsupported",
    "NOQUEUE: reject: RCPT from unknown[203.0.113.61]: 550 5.1.1000 <a>: detail too long; from=<x> to=<a> proto=ESMTP helo=<x>",
    "6F6F6F6F6F: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 6.7.1 not a class; from=<a> to=<b> proto=ESMTP helo=<l>",
])
def test_malformed_status_lines_are_unparsed(line: str):
    assert parse_message("postfix/smtp", line, T) is UNPARSED


def test_contract_constants():
    assert postfix.MTA == "postfix"
    assert postfix.PROGRAMS == ("postfix",)
    assert postfix.claims("postfix/smtp") and postfix.claims("postfix-out/smtp") and postfix.claims("postfix")
    assert not postfix.claims("exim4") and not postfix.claims("smtpd")


def test_probes_and_lines_as_users_see_them_through_the_real_process():
    """`report` on as-users-see-them.log: probes counted as verified / verify_failed, the
    collectors' suffixes, quotes and bare addresses read, nothing unparsed (issue 13)."""
    import json
    from pathlib import Path

    from tests.helpers.exporter_process import run_exporter

    log = Path(__file__).parent / "testdata" / "parsers" / "postfix" / "as-users-see-them.log"
    result = run_exporter(["report", "--json", "--format", "syslog", str(log)], env={"TZ": "UTC"})
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert data["by_outcome"] == {"verified": 2, "verify_failed": 3, "delivered": 6, "deferred": 1, "bounced": 2}
    assert data["lines"]["unparsed"] == 0
    codes = sorted((c["code"], o, n) for c in data["codes"] for o, n in c["outcomes"].items())
    assert ("5.7.1", "bounced", 1) in codes and not any(code == "5.7.1" and o == "delivered" for code, o, _ in codes)
