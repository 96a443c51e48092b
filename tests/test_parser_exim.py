"""Exim: the message parser (exim.py) and the mainlog/rejectlog parser (exim_files.py).

Fixture lines live in tests/testdata/parsers/exim/ (sources in the README there).
"""

from __future__ import annotations

import calendar
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from exporter.events import UNPARSED, StatusEvent
from exporter.parsers import exim
from exporter.parsers.exim_files import EximMainlogParser
from tests.helpers.exporter_process import run_exporter

DATA = Path(__file__).parent / "testdata" / "parsers" / "exim"


pytestmark = pytest.mark.usefixtures("utc_zone")


def _lines(name: str) -> list[bytes]:
    return (DATA / name).read_bytes().splitlines(keepends=True)


def _one(line: bytes) -> list[StatusEvent]:
    result = EximMainlogParser().parse(line)
    assert result.lines == 1
    return result.events


def _utc(text: str) -> float:
    return float(calendar.timegm(tuple(int(x) for x in text.replace("-", " ").replace(":", " ").split())
                                 + (0, 0, 0)))


def test_current_layout_bounce_reads_code_reply_and_host():
    (event,) = _one(_lines("shapes.log")[0])
    assert event == StatusEvent("exim", "bounced", "5.1.1", "550", "mx1.example.net",
                                _utc("2026-11-29 04:12:47"), "1tQxyA-000AbC-12")


def test_older_layout_takes_remote_from_host_part_of_error():
    (event,) = _one(_lines("shapes.log")[1])
    assert (event.outcome, event.code, event.reply, event.remote) == ("bounced", "5.7.1", "550", "mx.example.org")


def test_timezone_pid_fraction_long_id_and_multiline_reply():
    (event,) = _one(_lines("shapes.log")[2])
    assert event == StatusEvent("exim", "deferred", "4.2.2", "452", "gmail-smtp-in.l.google.com",
                                _utc("2026-11-29 03:14:00") + 0.123, "1tQxz0-00000001234-ABCD")


def test_deferrals_without_reply_and_expiry():
    lines = _lines("shapes.log")
    assert [(e.outcome, e.code, e.reply) for e in _one(lines[3])] == [("deferred", None, None)]
    assert _one(lines[4]) == []  # "retry time not reached": the queue run made no attempt
    assert [(e.outcome, e.code, e.reply) for e in _one(lines[5])] == [("expired", "4.4.7", None)]


def test_deliveries_read_the_confirmation_and_suppressed_is_not_counted():
    lines = _lines("shapes.log")
    assert [(e.outcome, e.code, e.reply, e.remote) for e in _one(lines[6])] == [
        ("delivered", "2.0.0", "250", "mx.example.com")]
    assert [(e.outcome, e.code) for e in _one(lines[8])] == [("delivered", "2.0.0")]  # ">>" cutthrough
    result = EximMainlogParser().parse(lines[9])  # "*>" suppressed by -N
    assert (result.matched, result.ignored, result.events) == (1 - 1, 1, [])


def test_vendor_code_and_lmtp_error():
    lines = _lines("shapes.log")
    assert [(e.code, e.reply, e.remote) for e in _one(lines[7])] == [
        ("5.7.606", "550", "contoso-example.mail.protection.outlook.com")]
    assert [(e.outcome, e.code, e.reply, e.remote) for e in _one(lines[15])] == [
        ("bounced", "5.2.2", "552", "127.0.0.1")]


def test_code_like_strings_elsewhere_are_not_codes():
    lines = _lines("shapes.log")
    assert EximMainlogParser().parse(lines[11]).events == []  # subject T="Re: 5.1.1 ..."
    (event,) = _one(lines[12])  # host smtp.5.1.1.example [10.5.1.1], id in the reply
    assert (event.code, event.reply, event.remote) == (None, "250", "smtp.5.1.1.example")
    assert EximMainlogParser().parse(lines[13]).events == []  # "exim 4.96 daemon started"


def test_rejections_at_reception():
    lines = _lines("shapes.log")
    assert [(e.outcome, e.code, e.reply, e.remote, e.queue_id) for e in _one(lines[10])] == [
        ("rejected", "5.7.1", "550", "mail.example.org", "1tQxz6-000AbC-22")]
    assert [(e.code, e.reply, e.remote) for e in _one(lines[16])] == [("4.7.1", "451", "203.0.113.66")]
    assert [(e.code, e.reply, e.remote) for e in _one(lines[18])] == [("5.7.1", "554", "relay.example")]


def test_announced_reply_that_is_missing_is_unparsed():
    result = EximMainlogParser().parse(_lines("shapes.log")[17])
    assert (result.matched, result.ignored, result.unparsed) == (0, 0, 1)


def test_shapes_file_counts():
    result = EximMainlogParser().parse((DATA / "shapes.log").read_bytes())
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (19, 14, 4, 1)


def test_exim_testsuite_0536_codes_as_exim_logged_them():
    result = EximMainlogParser().parse((DATA / "exim-testsuite-0536.log").read_bytes())
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (41, 28, 13, 0)
    rows = [(e.outcome, e.code, e.reply) for e in result.events]
    # user4: "599 5.2.3", user5: "599 5.12.3" (valid), user9: "499 4.1234.343" (not a code)
    assert rows[3] == ("rejected", "5.2.3", "599")
    assert rows[4] == ("rejected", "5.12.3", "599")
    assert rows[8] == ("rejected", None, "499")
    # user30: "temporarily rejected RCPT <user30@test.ex>: No code" -> Exim sent its default 451
    assert rows[17] == ("rejected", None, "451")
    assert rows[0] == ("rejected", None, None)  # user1: permanent, no code logged
    assert rows.count(("bounced", "5.4.3", "590")) == 1
    assert sum(1 for row in rows if row[0] == "delivered") == 3


def test_exim_testsuite_0622_deliveries_and_deferrals():
    result = EximMainlogParser().parse((DATA / "exim-testsuite-0622.log").read_bytes())
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (70, 45, 25, 0)
    outcomes = [e.outcome for e in result.events]
    assert outcomes.count("delivered") == 24
    assert outcomes.count("deferred") == 7
    assert outcomes.count("rejected") == 14
    deferred = {(e.code, e.reply, e.remote) for e in result.events if e.outcome == "deferred"}
    assert deferred == {("4.5.3", "452", "127.0.0.1")}
    assert all(len(e.queue_id) == 23 for e in result.events if e.queue_id)


def test_fail2ban_samples_count_only_rejections():
    f2b = EximMainlogParser().parse((DATA / "fail2ban-exim.log").read_bytes())
    assert (f2b.lines, f2b.matched, f2b.ignored, f2b.unparsed) == (50, 5, 45, 0)
    assert {e.outcome for e in f2b.events} == {"rejected"}
    assert [e.remote for e in f2b.events] == [
        "202.132.70.178", "mx.tillions.com", "altmx.marsukov.com", "some.rev.dns.if.found", "m05.horp.tld"]
    spam = EximMainlogParser().parse((DATA / "fail2ban-exim-spam.log").read_bytes())
    assert (spam.lines, spam.matched, spam.ignored, spam.unparsed) == (8, 5, 3, 0)


def test_rejectlog_header_lines_are_not_counted():
    chunk = (
        b"2026-11-29 04:20:00 1tQxz6-000AbC-22 H=mail.example.org [198.51.100.9] F=<a@example.org> "
        b"rejected after DATA: 550 5.7.1 Message content rejected\n"
        b"Envelope-from: <a@example.org>\n"
        b"Envelope-to: <b@example.net>\n"
        b"P Received: from mail.example.org ([198.51.100.9]) by mx.example.net with esmtp id 1tQxz6-000AbC-22\n"
        b"  for b@example.net; Sun, 29 Nov 2026 04:20:00 +0000\n"
        b"  Subject: rejected RCPT 550 5.1.1\n"
    )
    result = EximMainlogParser().parse(chunk)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (6, 1, 5, 0)
    assert [(e.code, e.reply) for e in result.events] == [("5.7.1", "550")]


def test_bad_utf8_in_a_candidate_is_unparsed_and_elsewhere_ignored():
    chunk = (b"2026-11-29 04:12:47 1tQxyA-000AbC-12 ** b\xffb@example.net: Unrouteable address\n"
             b"2026-11-29 04:12:48 1tQxyA-000AbC-12 <= \xff@example.net\n")
    result = EximMainlogParser().parse(chunk)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (2, 0, 1, 1)


def test_syslog_message_with_and_without_exim_date():
    journald = "2021-07-17 23:20:49 1tQxyA-000AbC-12 ** bob@example.net R=dnslookup T=remote_smtp: 550 5.1.1 gone"
    assert [(e.outcome, e.code, e.timestamp) for e in exim.parse_message("exim", journald, 5.0)] == [
        ("bounced", "5.1.1", 5.0)]
    bare = "[4711] H=(x) [192.0.2.8] F=<a@b.example> rejected RCPT <c@d.example>: 550 5.7.1 no relay"
    assert [(e.outcome, e.code, e.remote) for e in exim.parse_message("exim4", bare, None)] == [
        ("rejected", "5.7.1", "192.0.2.8")]
    assert exim.parse_message("exim", "1tQxyA-000AbC-12 Completed", None) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parse_message_never_raises(text):
    result = exim.parse_message("exim", text, None)
    assert result is None or result is UNPARSED or isinstance(result, list)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    b"2026-11-29 04:12:47 ", b"1tQxyA-000AbC-12 ", b"** ", b"== ", b"=> ", b"rejected ", b"RCPT <",
    b"H=", b"[192.0.2.1]", b": ", b"SMTP error from remote mail server after ", b"550 ", b"5.1.1 ",
    b'C="', b"\n", b"\xff", b"x", b" ",
]), max_size=40))
def test_mainlog_parse_never_raises_and_counts_add_up(parts):
    chunk = b"".join(parts)
    result = EximMainlogParser().parse(chunk)
    assert result.matched + result.ignored + result.unparsed == result.lines
    assert result.matched <= len(result.events) or result.matched == 0


def test_impossible_dates_count_the_event_without_a_time():
    chunk = (b"0000-01-01 00:00:00 +0000 1tQxyA-000AbC-12 ** b@example.net: Unrouteable address\n"
             b"2026-13-01 00:00:00 1tQxyA-000AbC-12 ** b@example.net: Unrouteable address\n")
    result = EximMainlogParser().parse(chunk)
    assert (result.matched, result.unparsed) == (2, 0)
    assert [e.timestamp for e in result.events] == [None, None]


def test_real_exim_4_96_mainlog():
    result = EximMainlogParser().parse((DATA / "real-exim-4.96-mainlog.log").read_bytes())
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (93, 32, 61, 0)
    counts: dict[tuple, int] = {}
    for event in result.events:
        key = (event.outcome, event.code, event.reply)
        counts[key] = counts.get(key, 0) + 1
    assert counts == {
        ("rejected", "5.7.1", "550"): 2, ("rejected", None, None): 1, ("rejected", "4.7.1", "451"): 1,
        ("rejected", None, "451"): 1,
        ("deferred", None, "450"): 2, ("deferred", "4.4.2", "421"): 2, ("deferred", "4.2.2", "452"): 2,
        ("deferred", "4.7.1", "451"): 2,
        ("bounced", "5.7.606", "550"): 1, ("bounced", "5.7.1", "554"): 1, ("bounced", "5.1.1", "550"): 2,
        ("delivered", "2.0.0", "250"): 3, ("delivered", None, None): 8,  # bounces to :blackhole:
        ("expired", "4.4.7", None): 4,
    }
    assert {e.remote for e in result.events if e.outcome != "delivered" or e.code} == {"127.0.0.1", None}


def test_real_exim_4_96_rejectlog_counts_each_reject_once():
    result = EximMainlogParser().parse((DATA / "real-exim-4.96-rejectlog.log").read_bytes())
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (15, 5, 10, 0)
    assert [(e.code, e.reply) for e in result.events] == [
        ("5.7.1", "550"), (None, None), ("4.7.1", "451"), (None, "451"), ("5.7.1", "550")]


def test_split_syslog_messages_read_only_the_first_part():
    # Real lines of tests/testdata/parsers/exim-syslog/real-exim-4.96-syslog.log (messages only).
    first = ("[1\\11] 2026-11-29 06:06:29 1xXY3R-0004Ta-2x H=(client.b.test) [127.0.0.1] "
             "F=<someone@example.org> rejected after DATA: 550 5.7.1 Message content rejected")
    assert [(e.outcome, e.code, e.reply, e.queue_id) for e in exim.parse_message("exim", first, 1.0)] == [
        ("rejected", "5.7.1", "550", "1xXY3R-0004Ta-2x")]
    assert exim.parse_message("exim", "[2\\11] Envelope-from: <someone@example.org>", 1.0) is None
    # A header line of a later part may hold anything, even what looks like a rejection.
    assert exim.parse_message("exim", "[11/11]   Subject: rejected RCPT <x>: 550 5.1.1 no", 1.0) is None


def test_host_named_after_the_word_rejected():
    # Real line 25 of real-e2e-exim-4.96-mainlog.log (Exim 4.96, SIZE over message_size_limit).
    line = _lines("real-e2e-exim-4.96-mainlog.log")[24]
    assert b"rejected MAIL FROM:" in line
    assert [(e.outcome, e.code, e.reply, e.remote) for e in _one(line)] == [("rejected", None, None, "127.0.0.1")]


# --- issue 13: codes Exim logs without a 3-digit reply; syslog_duplication -----------------------

ACL_ROUTER = "real-e2e-exim-4.96-acl-router-codes.log"


def _line_with(name: str, mark: str) -> bytes:
    found = [line for line in _lines(name) if mark.encode() in line]
    assert len(found) >= 1, mark
    return found[0]


@pytest.mark.parametrize("mark, outcome, code, reply", [
    ("rejected RCPT <policy@mx.e2e.test>: 5.7.1 relay", "rejected", "5.7.1", None),
    ("rejected RCPT <banned@mx.e2e.test>: 5.7.606 ", "rejected", "5.7.606", None),
    ("temporarily rejected RCPT <greylist@mx.e2e.test>: 4.2.0 ", "rejected", "4.2.0", "451"),
    ("** moved@mx.e2e.test R=moved_alias: 5.1.6 ", "bounced", "5.1.6", None),
    ("== busy@mx.e2e.test R=busy_defer defer (-1): 4.3.0 ", "deferred", "4.3.0", None),
])
def test_enhanced_code_at_the_start_of_the_logged_message(mark, outcome, code, reply):
    """Real Exim 4.96: an ACL message, a :fail: alias and a :defer: router text that start with
    an enhanced code are logged without Exim's 3-digit reply; the code is the event's code."""
    assert [(e.outcome, e.code, e.reply) for e in _one(_line_with(ACL_ROUTER, mark))] == [(outcome, code, reply)]


@pytest.mark.parametrize("text", [
    "H=[192.0.2.1] F=<a@b.example> rejected RCPT <c@d.example>: 5.7.1.2 not a code",
    "H=[192.0.2.1] F=<a@b.example> rejected RCPT <c@d.example>: 5.7.1: not alone",
    "H=[192.0.2.1] F=<a@b.example> rejected RCPT <c@d.example>: #5.7.1 qmail-style is not Exim's",
    "H=[192.0.2.1] F=<a@b.example> rejected RCPT <c@d.example>: relay 5.7.1 later in the text",
    "1abcDE-000123-AB ** x@d.example R=r: see 5.1.6 later",
])
def test_a_code_not_standing_first_in_the_message_is_not_read(text):
    assert [e.code for e in exim.parse_body(text, 0, None)] == [None]


def test_syslog_duplication_counts_each_reject_once_through_the_real_process():
    """Exim's default syslog_duplication sends each rejection twice in a row (main log, reject
    log); `report` on such a file counts each of the five rejections once."""
    log = Path(__file__).parent / "testdata" / "parsers" / "exim-syslog" / "real-exim-4.96-syslog-duplication.log"
    result = run_exporter(["report", "--json", "--format", "syslog", str(log)], env={"TZ": "UTC"})
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    rejected = sorted((c["code"], c["outcomes"]["rejected"]) for c in data["codes"] if "rejected" in c["outcomes"])
    assert rejected == [("4.7.1", 1), ("5.7.1", 2), ("none", 1), ("none", 1)]
    assert data["by_outcome"]["rejected"] == 5


def test_a_client_that_repeats_a_rejected_rcpt_within_a_second_counts_each_time():
    """Pairs A A' A A' (each rejection and its reject-log copy): two rejections, not one."""
    line = "H=[192.0.2.1] F=<a@b.example> rejected RCPT <c@d.example>: 550 5.7.1 no"
    parse = exim.make_parse_message()   # one stream's parser, with its memory of the last rejection
    results = [parse("exim", line, 1.0) for _ in range(4)]
    assert [bool(r) for r in results] == [True, False, True, False]
    assert parse("exim", line, 2.0)  # a new second: a new rejection
    assert [bool(exim.parse_message("exim", line, 1.0)) for _ in range(2)] == [True, True]  # read on their own
