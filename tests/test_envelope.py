"""exporter/parsers/envelope.py: each envelope gives the exact (timestamp, program, message).

Lines follow the documented shapes named in tests/testdata/parsers/syslog/README.md; the
journald and maillog_file lines are real output (journalctl, Postfix 3.7 postlog) read from
that directory.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from exporter.parsers import envelope
from exporter.parsers.envelope import Envelope, YearClock

SYSLOG_DIR = Path(__file__).resolve().parent / "testdata" / "parsers" / "syslog"
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc).timestamp()
MSG = "3F2A11C0D: to=<alice@example.org>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (x)"


def utc(*fields: int) -> float:
    return datetime(*fields, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


@pytest.fixture(autouse=True)
def zone():
    """Run in UTC unless a test sets another zone with set_zone()."""
    saved = os.environ.get("TZ")
    set_zone("UTC")
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def set_zone(name: str) -> None:
    os.environ["TZ"] = name
    time.tzset()


def split(line: str, now: float = NOW) -> Envelope | None:
    return envelope.split(line, YearClock(now))


# --- RFC 3164 ------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    f"<22>Nov 29 04:12:47 mx1 postfix/smtp[4242]: {MSG}",
    f"Nov 29 04:12:47 mx1 postfix/smtp[4242]: {MSG}",
    f"Nov 29 04:12:47 postfix/smtp[4242]: {MSG}",
    f"Nov 29 04:12:47 <mail.info> mx1 postfix/smtp[4242]: {MSG}",
    f"Nov 29 04:12:47 <2.6> mx1 postfix/smtp[4242]: {MSG}",
    f"Nov 29 04:12:47 mx1 postfix/smtp: {MSG}",
])
def test_rfc3164_forms(line: str):
    assert split(line) == Envelope(utc(2026, 11, 29, 4, 12, 47), "postfix/smtp", MSG)


@pytest.mark.parametrize("stamp", ["Nov  9 04:12:47", "Nov 09 04:12:47"])
def test_rfc3164_day_padded_with_space_or_zero(stamp: str):
    assert split(f"{stamp} mx1 postfix/qmgr[1]: {MSG}") == Envelope(utc(2026, 11, 9, 4, 12, 47), "postfix/qmgr", MSG)


def test_rfc3164_fractional_seconds_are_dropped():
    assert split("Nov 29 04:12:51.250 mx1 sm-mta[1]: text").timestamp == utc(2026, 11, 29, 4, 12, 51)


def test_rfc3164_is_local_time():
    set_zone("Europe/Berlin")
    assert split("Nov 29 04:12:47 mx1 exim[1]: text").timestamp == utc(2026, 11, 29, 3, 12, 47)
    assert split("Jul  1 04:12:47 mx1 exim[1]: text").timestamp == utc(2026, 7, 1, 2, 12, 47)


def test_year_december_line_read_in_january_is_last_year():
    january = utc(2027, 1, 2, 8, 0, 0)
    assert split("Dec 31 23:00:00 mx1 exim[1]: text", january).timestamp == utc(2026, 12, 31, 23, 0, 0)
    assert split("Jan  2 07:59:00 mx1 exim[1]: text", january).timestamp == utc(2027, 1, 2, 7, 59, 0)


def test_year_allows_two_days_of_clock_skew():
    assert split("Dec  1 11:00:00 mx1 exim[1]: text").timestamp == utc(2026, 12, 1, 11, 0, 0)
    assert split("Dec  2 00:00:00 mx1 exim[1]: text").timestamp == utc(2025, 12, 2, 0, 0, 0)


def test_year_of_feb_29_is_a_leap_year():
    assert split("Feb 29 10:00:00 mx1 exim[1]: text").timestamp == utc(2024, 2, 29, 10, 0, 0)


@pytest.mark.parametrize("line", [
    "Jan: 1 00:00:00 hostname postfix/postscreen[12345]: foo",
    "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo",
    "Jan 1 00:00:00 hostname postfix/postscreen[12345",
    "Jan 1 00:00:00 hostname postfix/postscreen",
    "Foo 1 00:00:00 hostname x: y",
    "Jan 1 00:00:00",
    "Jan",
    "",
    "# failJSON: { \"match\": true }",
    "  Nov 29 04:12:47 mx1 postfix/smtp[1]: indented",
])
def test_lines_without_an_envelope(line: str):
    # The malformed lines are postfix_exporter's testdata/mail.log "Unsupported or malformed" block.
    assert split(line) is None


def test_impossible_date_gives_no_timestamp_but_keeps_program():
    assert split("Feb 30 10:00:00 mx1 exim[1]: text") == Envelope(None, "exim", "text")
    assert split("Nov 29 25:00:00 mx1 exim[1]: text") == Envelope(None, "exim", "text")


# --- RFC 5424 ------------------------------------------------------------------------------

def test_rfc5424_with_nil_structured_data():
    line = f"<22>1 2026-11-29T04:12:47.123456+01:00 mx1.example.net postfix/smtp 4242 - - {MSG}"
    assert split(line) == Envelope(utc(2026, 11, 29, 3, 12, 47) + 0.123456, "postfix/smtp", MSG)


def test_rfc5424_structured_data_with_escapes_and_bom():
    line = ('<22>1 2026-11-29T04:12:49.5Z mx1 postfix/smtpd 5150 - [meta sequenceId="18" '
            'note="a \\"quoted\\] value"][origin ip="192.0.2.1"] \ufeffNOQUEUE: reject: x')
    assert split(line) == Envelope(utc(2026, 11, 29, 4, 12, 49) + 0.5, "postfix/smtpd", "NOQUEUE: reject: x")


def test_rfc5424_nil_timestamp_and_app():
    assert split("<22>1 - - postfix/smtp - - - text") == Envelope(None, "postfix/smtp", "text")
    assert split("<22>1 2026-11-29T04:12:50Z mx1 - - - - text") == Envelope(utc(2026, 11, 29, 4, 12, 50), None, "text")


def test_rfc5424_example_from_the_rfc():
    line = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
            '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event')
    assert split(line) == Envelope(utc(2003, 10, 11, 22, 14, 15) + 0.003, "evntslog", "An application event")


def test_rfc5424_unterminated_structured_data_is_no_envelope():
    assert split("<22>1 2026-11-29T04:12:51Z mx1 app 1 - [unterminated sd text") is None


# --- RFC 3339 (rsyslog high precision) -----------------------------------------------------

@pytest.mark.parametrize("line, stamp, program", [
    (f"2026-11-29T04:12:47.123456+01:00 mx1 postfix/smtp[4242]: {MSG}", utc(2026, 11, 29, 3, 12, 47) + 0.123456, "postfix/smtp"),
    (f"2026-11-29T04:12:48.000001-05:00 mx1 postfix/lmtp[1]: {MSG}", utc(2026, 11, 29, 9, 12, 48) + 0.000001, "postfix/lmtp"),
    (f"2026-11-29T04:12:49Z mx1 postfix/local[1]: {MSG}", utc(2026, 11, 29, 4, 12, 49), "postfix/local"),
    (f"2026-11-29T04:12:50.5+00:00 postfix/virtual[1]: {MSG}", utc(2026, 11, 29, 4, 12, 50) + 0.5, "postfix/virtual"),
])
def test_rfc3339(line: str, stamp: float, program: str):
    found = split(line)
    assert found is not None
    assert found.timestamp == pytest.approx(stamp, abs=1e-6)
    assert (found.program, found.message) == (program, MSG)


# --- Postfix maillog_file (real output) ----------------------------------------------------

def test_maillog_file_real_postlog_output():
    lines = (SYSLOG_DIR / "maillog_file.log").read_text().splitlines()
    first = split(lines[0])
    assert first.timestamp == utc(2026, 11, 2, 4, 12, 47)
    assert first.program == "postfix/smtp"
    assert first.message.startswith("3F2A11C0D: to=<alice@example.org>, relay=mx.example.org[192.0.2.25]:25,")
    assert split(lines[2]).program == "postfix-out/smtp"
    assert split(lines[3]).timestamp == utc(2025, 12, 31, 18, 0, 0)
    assert split(lines[5]) == Envelope(utc(2026, 11, 29, 6, 0, 0), "postfix/smtpd",
                                       "warning: hostname nosuch.example.test does not resolve to address 198.51.100.99")


# --- journald JSON (real journalctl -o json output) ----------------------------------------

def test_journald_real_output():
    lines = (SYSLOG_DIR / "journald.log").read_text().splitlines()
    first = split(lines[0])
    assert first.timestamp == 1795900367.123456
    assert first.program == "postfix/smtp"
    assert first.message.endswith("status=sent (250 2.0.0 Ok: queued as 9B8C7D6E5F)")
    # MESSAGE as a byte array (not UTF-8): decoded with replacement characters.
    third = split(lines[2])
    assert third.program == "postfix/smtp"
    assert "said: 452 4.2.2 Mailbox full \u2014 \ufffd\ufffd (in reply to RCPT TO command)" in third.message
    assert split(lines[3]) == Envelope(1795900370.0, "sshd", "Accepted publickey for admin from 192.0.2.50 port 50022 ssh2")


def test_journald_without_identifier_uses_comm_and_odd_values_are_no_envelope():
    assert split('{"MESSAGE":"x","_COMM":"master","__REALTIME_TIMESTAMP":"1"}') == Envelope(1e-6, "master", "x")
    assert split('{"MESSAGE":null,"SYSLOG_IDENTIFIER":"a"}') is None
    assert split('{"MESSAGE":[300,1],"SYSLOG_IDENTIFIER":"a"}') is None
    assert split('{"MESSAGE":"x","SYSLOG_IDENTIFIER":"a","__REALTIME_TIMESTAMP":"soon"}') == Envelope(None, "a", "x")
    assert split("[1, 2]") is None
    assert split('{"neither": 1}') is None
    assert split('{"MESSAGE":"x", broken') is None


# --- Docker json-file and Kubernetes CRI ---------------------------------------------------

def test_docker_with_inner_syslog_line_uses_docker_time():
    line = ('{"log":"Nov 29 04:12:47 mx1 postfix/smtp[4242]: ' + MSG + '\\n","stream":"stdout",'
            '"time":"2026-11-29T04:12:47.123456789Z"}')
    assert split(line) == Envelope(utc(2026, 11, 29, 4, 12, 47) + 0.123456, "postfix/smtp", MSG)


def test_docker_bare_output_has_no_program():
    line = '{"log":"send failed: 451 4.3.0 later\\r\\n","stream":"stderr","time":"2026-11-29T04:12:49Z"}'
    assert split(line) == Envelope(utc(2026, 11, 29, 4, 12, 49), None, "send failed: 451 4.3.0 later")


def test_cri_full_and_partial():
    full = f"2026-11-29T04:12:47.1Z stdout F Nov 29 04:12:47 mx1 postfix/smtp[1]: {MSG}"
    assert split(full) == Envelope(utc(2026, 11, 29, 4, 12, 47) + 0.1, "postfix/smtp", MSG)
    partial = "2026-11-29T04:12:48Z stderr P first half "
    assert split(partial) == Envelope(utc(2026, 11, 29, 4, 12, 48), None, "first half ", True)
    assert envelope.split_cri(partial) == (utc(2026, 11, 29, 4, 12, 48), "stderr", True, "first half ")
    assert envelope.split_cri(f"2026-11-29T04:12:47Z mx1 postfix/smtp[1]: {MSG}") is None


# --- TAI64N (daemontools multilog) ---------------------------------------------------------

def test_tai64n():
    assert split("@400000006b0ba649075bca00 smtp-relay: 550 5.1.1 no") == Envelope(
        utc(2026, 11, 29, 4, 12, 47) + 0.123456, None, "smtp-relay: 550 5.1.1 no")
    assert split("@4000zzzz6b0ba64a00000000 x") is None
    assert split("@40000000 short") is None


# --- never raises (the syslog parser would count a raise as unparsed and hide the bug) -------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PREFIXES = ["", "<22>", "<22>1 ", "Nov 29 04:12:47 ", "Nov  9 04:12:47 mx1 ", "2026-11-29T04:12:47Z ",
            "2026-11-29T04:12:47.1Z stdout P ", "2026-11-29T04:12:47.1Z stderr F ", '{"MESSAGE":', '{"log":"',
            "@400000006b0ba649075bca00 ", "<22>1 2026-11-29T04:12:47Z h a 1 - ["]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PREFIXES), st.text(max_size=120))
def test_split_never_raises(prefix: str, rest: str):
    found = split(prefix + rest)
    assert found is None or isinstance(found.message, str)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["", "1A2B: to=<a@b>, relay=", "NOQUEUE: reject: RCPT from x[1.2.3.4]: ",
                        "Q: from=<a>, status=", "Q: reject: header S: x from y; from=<a> to=<b>: "]),
       st.text(max_size=120))
def test_message_parsers_never_raise(prefix: str, rest: str):
    from exporter.parsers import generic, postfix
    for parse in (postfix.parse_message, generic.parse_message):
        parse("postfix/smtp", prefix + rest, None)
