"""The syslog parser's fast paths give exactly what its general path gives.

exporter/parsers/fast_postfix.py reads Postfix delivery records in one match and
exporter/envelope.YearClock works out new seconds from their minute. Both are shortcuts
of a slower general path, so both are compared with it here: the same events (every
field, timestamps included) and the same line counts, chunk by chunk and line by line,
on the generated benchmark log, the real Postfix captures and the golden inputs, and on
delivery records and rejects built to sit on the edges of the fast pattern (tabs, carriage returns,
non-ASCII bytes, odd hosts and programs, addresses holding ">, ").
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter import envelope
from exporter.parsers import fast_postfix, syslog
from tests.helpers.parser_state import forget_parser_state
from exporter.parsers.base import ChunkResult

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOW = 1764331200.0  # 2025-11-28 12:00 UTC: the generated log's day
sys.path.insert(0, str(ROOT / "bench"))
import generate  # noqa: E402


def parse(chunk: bytes, fast: bool) -> ChunkResult:
    forget_parser_state()  # each path reads the same lines afresh (tests/helpers/parser_state.py)
    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(syslog, "_FAST_LINE", lambda chunk, pos: None)
        return syslog.SyslogParser(now=lambda: NOW).parse(chunk)


def assert_same(chunk: bytes) -> ChunkResult:
    fast = parse(chunk, True)
    slow = parse(chunk, False)
    assert fast == slow
    return fast


def lines_of(paths: list[Path]) -> list[bytes]:
    lines: list[bytes] = []
    for path in paths:
        lines.extend(line + b"\n" for line in path.read_bytes().splitlines())
    return lines


def test_generated_log_same_events_chunk_by_chunk() -> None:
    out = io.StringIO()
    expected = generate.postfix(out, 30000)
    data = out.getvalue().encode()
    total = 0
    for start in range(0, len(data), 1 << 20):
        end = data.rfind(b"\n", 0, start + (1 << 20)) + 1 if start + (1 << 20) < len(data) else len(data)
        total += len(assert_same(data[start:end]).events)
    assert total == expected


def test_real_and_golden_lines_same_one_by_one() -> None:
    paths = sorted((HERE / "testdata" / "real").glob("*.log"))
    paths += sorted((HERE / "testdata" / "parsers").glob("*/*.log"))
    lines = lines_of(paths)
    fast_hits = sum(1 for line in lines if fast_postfix.LINE.match(line.decode("latin-1")))
    assert fast_hits > 20, "the real Postfix capture should give the fast path work"
    for line in lines:
        assert_same(line)
    assert_same(b"".join(lines))


def test_last_line_without_newline() -> None:
    line = (b"Nov 28 00:00:01 mail01 postfix/smtp[4242]: 3F2A1B7C0D: to=<a@example.org>, "
            b"relay=mx.example.org[203.0.113.7]:25, delay=0.4, delays=0.01/0/0.2/0.19, dsn=5.1.1, "
            b"status=bounced (host mx.example.org[203.0.113.7] said: 550 5.1.1 no such user)")
    assert fast_postfix.LINE.match(line.decode("latin-1"))
    result = assert_same(line)
    assert [e.code for e in result.events] == ["5.1.1"]
    assert [e.reply for e in result.events] == ["550"]


# --- delivery records on the edges of the fast pattern --------------------------------------

ODD_TEXT = st.lists(st.sampled_from(
    list("aZ09 .-:<>[],()=/;@\\") + ["\t", "\r", "\x1c", "\x7f", "é", "\ufffd", ">, ", " said: ", "550 ", "5.1.1"]),
    max_size=8).map("".join)
def mostly(usual: list[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One of the usual values three times in four, else an odd one."""
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(usual), odd)


STAMPS = mostly(["Nov 28 00:00:01", "Nov  8 23:59:59", "Feb 29 01:02:03"],
                st.sampled_from(["Nov 08 10:10:60", "Nov 28 00:00:01.123", "Xyz 28 00:00:01", "Nov 28 0:00:01"]))
HOSTS = mostly(["mail01", "mx.example.org"], st.sampled_from(["mx:1", "::1", "<4.3>", "<auth.info>", "a[1]", "h:", ""]) | ODD_TEXT)
PROGRAMS = mostly(["postfix/smtp", "postfix-out/lmtp", "postfix/submission/smtpd"],
                  st.sampled_from(["postfix", "exim", "x/y"]) | ODD_TEXT)
PIDS = mostly(["1", "42"], st.sampled_from(["", "x", "1 "]))
QIDS = mostly(["3F2A1B7C0D", "4Tz9Lm2Q0Kz5a"], st.sampled_from(["NOQUEUE", "a-b", ""]))
ADDRESSES = mostly(["a@example.org", "x", ""], st.sampled_from(["a>, relay=b@c", "a>, orig_to=<b"]) | ODD_TEXT)
RELAYS = mostly(["mx.example.org[203.0.113.7]:25", "none", "local", "x[private/y]", "unknown[1.2.3.4]:25"], ODD_TEXT)
STATUS = mostly(["sent", "deferred", "bounced"], st.sampled_from(["expired", "SOFTBOUNCE", "deliverable", "odd", "sent-x"]))
DSN = mostly(["2.0.0", "4.4.1", "5.1.1", "5.7.606"], st.sampled_from(["9.9.9", "5.1", ""]) | ODD_TEXT)
REASONS = st.one_of(
    st.none(),
    st.sampled_from(["250 2.0.0 OK", "host mx[1.2.3.4] said: 550 5.1.1 no", "connect to x: refused",
                     "host x said: 999 y", "450-4.7.1 greylisted", "host a refused to talk to me: 554 go away",
                     "host b said: 451", "", "a) (b"]),
    ODD_TEXT,
)
ENDS = mostly([""], st.sampled_from(["\r", " ", ")", "\t"]))


@st.composite
def delivery_lines(draw: st.DrawFn) -> bytes:
    parts = [f"{draw(STAMPS)} {draw(HOSTS)} {draw(PROGRAMS)}[{draw(PIDS)}]: ",
             f"{draw(QIDS)}: to=<{draw(ADDRESSES)}>, "]
    if draw(st.booleans()):
        parts.append(f"orig_to=<{draw(ADDRESSES)}>, ")
    parts.append(f"relay={draw(RELAYS)}, ")
    if draw(st.booleans()):
        parts.append("conn_use=2, ")
    parts.append(f"delay={draw(mostly(['0.4', '1'], st.just('x')))}, delays=0.01/0/0.2/0.19, ")
    if draw(st.booleans()):
        parts.append(f"tls={draw(mostly(['TLSv1.3'], ODD_TEXT))}, ")
    parts.append(f"dsn={draw(DSN)}, status={draw(STATUS)}")
    reason = draw(REASONS)
    if reason is not None:
        parts.append(f" ({reason})")
    parts.append(draw(ENDS))
    return "".join(parts).encode("utf-8") + b"\n"


CLIENTS = mostly(["unknown[198.51.100.9]", "mail.example.com[198.51.100.9]", "[198.51.100.9]:4321"],
                 st.sampled_from(["unknown[]", "x", "a:b[1]"]) | ODD_TEXT)
REJECT_TEXTS = mostly(
    ["554 5.7.1 <b@example.org>: Relay access denied; from=<a@x> to=<b@example.org> proto=ESMTP helo=<h>",
     "450 4.7.1 Client host rejected: cannot find your hostname", "550-5.7.26 unauthenticated",
     "5.7.1 milter says no", "too many connections", "421 busy"],
    st.sampled_from(["999 9.9.9 x", "550 5.1 x", "554 5.7.1 status=sent", "", "550 5.7.1000 x"]) | ODD_TEXT)


@st.composite
def reject_lines(draw: st.DrawFn) -> bytes:
    qid = draw(mostly(["NOQUEUE", "3F2A1B7C0D"], st.sampled_from(["", "a-b"])))
    action = draw(mostly(["reject", "milter-reject"], st.sampled_from(["reject_warning", "hold"])))
    stage = draw(mostly(["RCPT", "CONNECT", "END-OF-MESSAGE"], st.sampled_from(["rcpt", "", "R1"])))
    line = (f"{draw(STAMPS)} {draw(HOSTS)} {draw(PROGRAMS)}[{draw(PIDS)}]: "
            f"{qid}: {action}: {stage} from {draw(CLIENTS)}: {draw(REJECT_TEXTS)}{draw(ENDS)}")
    return line.encode("utf-8") + b"\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(delivery_lines() | reject_lines(), min_size=1, max_size=4))
def test_edge_records_same(lines: list[bytes]) -> None:
    assert_same(b"".join(lines))
    for line in lines:
        assert_same(line)


# --- RFC 3164 seconds from their minute -----------------------------------------------------

@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_seconds_from_minute_same_as_full_conversion(zone: str) -> None:
    old = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        for now in (time.mktime((2026, 3, 29, 12, 0, 0, 0, 0, -1)), time.mktime((2026, 1, 1, 0, 30, 0, 0, 0, -1)),
                    time.mktime((2026, 11, 1, 1, 30, 0, 0, 0, -1)), time.mktime((2026, 4, 5, 1, 30, 0, 0, 0, -1))):
            days = [(3, 29), (3, 8), (10, 25), (11, 1), (4, 5), (10, 4), (12, 31), (1, 1), (1, 3), (2, 29)]
            edge = time.localtime(now + 2 * 86400)  # where the two days' slack ends: the year changes mid-minute
            days.append((edge.tm_mon, edge.tm_mday))
            for month, day in days:
                for hour in (0, 1, 2, 3, edge.tm_hour):
                    for minute in (0, 1, 30, 59, edge.tm_min):
                        for second in (0, 1, 29, 30, 59, 60):
                            text = f"{months[month - 1]} {day:2d} {hour:02d}:{minute:02d}:{second:02d}"
                            clock = envelope.YearClock(now)
                            clock.stamp(text[:-2] + "17")   # the minute is worked out first
                            assert clock.stamp(text) == envelope.YearClock(now)._convert(text), (zone, now, text)
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
