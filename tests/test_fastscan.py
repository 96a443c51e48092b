"""The compiled scanner (exporter/_fastscan.c) decides every line as the Python path does.

The syslog parser's count() lets the scanner read the fast path's Postfix lines
in C and add their events up. These tests compare, chunk by chunk, its tally, line counts
and newest timestamp with what the Python path's events add up to: on every log the tests
hold, on the real public corpus, on the benchmark's generated log, and on generated lines
that probe each place where the scanner must hand a line back instead of guessing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.metrics import Metrics
from exporter.parsers import syslog
from exporter.parsers.base import count_events
from exporter.parsers.syslog import SyslogParser
from exporter.report import utc_hour
from tests.helpers.fields import choice, edited, fields
from tests.helpers.logs import line_chunks, log_files

ROOT = Path(__file__).resolve().parent.parent
NOW = 1764400000.0  # 2025-11-29: the year the test logs' RFC 3164 stamps fall in

SCANNER = SyslogParser(lambda: NOW).scanner   # a syslog parser's own compiled scanner, or None
needs_scanner = pytest.mark.skipif(SCANNER is None, reason="exporter._fastscan is not built")


def test_scanner_is_built_where_the_tests_run() -> None:
    """CI installs the package with its compiled module; a failed build must not pass unseen.
    (tests/test_fastscan_sanitizers.py runs this file against a sanitizer build it names in
    NDR_FASTSCAN_BUILD.)"""
    if os.environ.get("NDR_EXPORTER_PURE_PYTHON"):
        assert SCANNER is None
    else:
        assert SCANNER is not None, "exporter._fastscan did not build: is a C compiler installed?"
    if os.environ.get("NDR_FASTSCAN_BUILD"):
        from exporter import _fastscan  # type: ignore[attr-defined]

        assert _fastscan.__file__ == os.environ["NDR_FASTSCAN_BUILD"]


def expected(chunk: bytes) -> tuple[list, tuple[int, int, int, int], float | None]:
    """What the Python path's events add up to: (tally items in first-seen order, line counts, newest)."""
    result = SyslogParser(lambda: NOW).parse(chunk)
    tally = Counter(event[:5] for event in result.events)
    stamps = [e.timestamp for e in result.events if e.timestamp is not None]
    return list(tally.items()), (result.lines, result.matched, result.ignored, result.unparsed), \
        max(stamps, default=None)


def scanned(chunk: bytes) -> tuple[list, tuple[int, int, int, int], float | None]:
    result = SyslogParser(lambda: NOW).count(chunk)
    return [(fields, n) for fields, buckets in result.tally.items() for n in [buckets[None]]], \
        (result.lines, result.matched, result.ignored, result.unparsed), result.newest


def expected_hourly(chunk: bytes, now: float = NOW) -> tuple[list, tuple[int, int, int, int]]:
    """The Python path's events added up by label fields and UTC hour, as report groups them."""
    result = SyslogParser(lambda: now).parse(chunk)
    return by_hour(count_events(result.events, utc_hour).tally), \
        (result.lines, result.matched, result.ignored, result.unparsed)


def scanned_hourly(chunk: bytes, now: float = NOW) -> tuple[list, tuple[int, int, int, int]]:
    result = SyslogParser(lambda: now).count(chunk, utc_hour)
    return by_hour(result.tally), (result.lines, result.matched, result.ignored, result.unparsed)


def by_hour(tally: dict) -> list:
    """A tally as (fields and hour, count) pairs, in the tally's order."""
    return [((*fields, hour), n) for fields, hours in tally.items() for hour, n in hours.items()]


@needs_scanner
def test_every_test_log_and_the_public_corpus_give_the_same_counts() -> None:
    read_in_c = 0
    files = log_files()
    assert len(files) > 40
    for path in files:
        data = path.read_bytes()
        for chunk in [data, *line_chunks(data, 4096)]:
            assert scanned(chunk) == expected(chunk), f"{path} differs"
            assert scanned_hourly(chunk) == expected_hourly(chunk), f"{path} differs by hour"
        starts, keys, minutes, lines, matched, unparsed = SCANNER.scan(data)
        read_in_c += matched + unparsed
    assert read_in_c > 100  # the comparison covered lines the scanner read itself


@needs_scanner
def test_the_benchmark_log_gives_the_same_counts(tmp_path: Path) -> None:
    log = tmp_path / "postfix.log"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "postfix", "30000", str(log)],
                   check=True, capture_output=True)
    data = log.read_bytes()
    total = 0
    for chunk in line_chunks(data, 1 << 20):
        got = scanned(chunk)
        assert got == expected(chunk)
        assert scanned_hourly(chunk) == expected_hourly(chunk)
        total += got[1][1]
    _starts, _keys, _minutes, lines, matched, _unparsed = SCANNER.scan(data)
    assert lines == 30000
    assert matched > 8000 and total >= matched  # most status lines were read in C


@needs_scanner
def test_threads_read_a_chunk_as_one_thread_does(tmp_path: Path) -> None:
    """A large chunk is read in parts, a thread each: the same starts, keys (with the offset of
    each key's first line), minutes and counts as one thread reading it all."""
    from exporter import _fastscan  # type: ignore[attr-defined]

    log = tmp_path / "postfix.log"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "postfix", "20000", str(log)],
                   check=True, capture_output=True)
    # a few lines each part must hand back, and one without its final newline
    odd = (b"Nov 28 00:00:00 mail01 exim[77]: 1abcDE-000123-AB ** a@x R=r T=t: SMTP error: 550 5.1.1 No\n"
           b"Nov 28 00:00:00 mail01 postfix/smtp[1]: 1A: to=<a@x>, relay=none, delay=1, delays=1/2/3/4, "
           b"dsn=5.01.1, status=bounced (x)\n")
    data = odd + log.read_bytes() + odd + b"Nov 28 00:00:00 mail01 postfix/qmgr[1]: 1A: removed"
    modules = syslog.load_message_parsers()
    args = (syslog.candidate_patterns(modules), list(syslog.program_table(modules)), syslog.postfix.STATUS_OUTCOMES,
            "rejected", "postfix")
    one = _fastscan.Scanner(*args, threads=1).scan(data)
    for threads in (2, 3, 4):
        assert _fastscan.Scanner(*args, threads=threads).scan(data) == one
    starts, keys, _minutes, lines, matched, unparsed = one
    assert lines == 20005 and unparsed == 2 and len(starts) == 2
    assert sum(n for _first, _key, n in keys) == matched


@needs_scanner
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                                  "Asia/Kathmandu"])
def test_hours_are_the_events_hours_in_every_zone(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """report's hourly tally: minutes read in C get the UTC hour their seconds have, across DST
    changes (Lord Howe's is half an hour), half- and quarter-hour offsets, the year's end and
    the two days' slack; a minute whose seconds do not share one hour goes the Python way."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        for now in (time.mktime((2026, 3, 29, 12, 0, 0, 0, 0, -1)), time.mktime((2026, 1, 1, 0, 30, 0, 0, 0, -1)),
                    time.mktime((2026, 4, 5, 1, 30, 0, 0, 0, -1))):
            edge = time.localtime(now + 2 * 86400)   # where the two days' slack ends
            lines = []
            for month, day in [(3, 29), (3, 8), (10, 25), (11, 1), (4, 5), (10, 4), (12, 31), (1, 1), (2, 29),
                               (2, 30), (edge.tm_mon, edge.tm_mday)]:
                for hour in (0, 1, 2, 3, edge.tm_hour):
                    for minute in (0, 29, 30, 59, edge.tm_min):
                        for second in (0, 59, 60) if (month, day) == (12, 31) else (0, 59):
                            stamp = f"{months[month - 1]} {day:2d} {hour:02d}:{minute:02d}:{second:02d}"
                            lines.append(f"{stamp} mail01 postfix/smtp[1]: 1A: to=<a@x>, relay=mx[1.2.3.4]:25, "
                                         f"delay=1, delays=1/1/1/1, dsn=2.0.0, status=sent (250 ok)")
            data = ("\n".join(lines) + "\n").encode()
            for chunk in [data, *line_chunks(data, 2048)]:
                assert scanned_hourly(chunk, now) == expected_hourly(chunk, now), (zone, now)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_report_gives_the_same_summary_with_and_without_the_scanner(tmp_path: Path) -> None:
    """The real `ndr-exporter report --json` on the benchmark log, with the compiled scanner and
    with NDR_EXPORTER_PURE_PYTHON=1: the same summary, byte for byte."""
    log = tmp_path / "postfix.log"
    generated = subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "postfix", "20000", str(log)],
                               check=True, capture_output=True, text=True)
    outputs = []
    for pure in ("", "1"):
        run = subprocess.run([sys.executable, "-m", "exporter.cli", "report", "--json", str(log)], cwd=ROOT,
                             env={**os.environ, "NDR_EXPORTER_PURE_PYTHON": pure, "TZ": "Europe/Berlin"},
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    summary = json.loads(outputs[0])
    assert summary["events"] == int(generated.stdout) > 5000
    assert sum(sum(hour[o] for o in ("delivered", "deferred", "bounced", "expired", "rejected"))
               for hour in summary["by_hour"]) == summary["events"] - summary["events_without_time"]


# --- generated lines around every place the scanner hands a line back ---------------------
# Lines are built from fields that each have well-formed values (the scanner reads the line
# itself) and odd ones (it must hand the line back, or read it to the same event), and then
# some are changed a byte at a time, so that near misses of every literal are tried too.


STAMP = choice(["Nov 28 00:00:01", "Nov  8 23:59:59", "Nov 08 12:00:00", "Dec 31 23:59:58", "Jan  1 00:00:00"],
               ["Feb 29 10:00:00", "Feb 30 10:00:00", "Nov 28 00:00:60", "Nov 28 00:00:99", "Mar 31 01:30:00",
                "Nov 28 0:00:01", "Noo 28 00:00:01", "Nov 128 00:00:01", "Nov   8 00:00:01", "Nov 28 00:00:01.5"])
HOST = choice(["mail01", "mx.example.org"], ["host:1", "<13>mail", "a[b]", "", "<mail.info> mail01", "ma<il"])
PROGRAM = choice(["postfix/smtp", "postfix-out/smtp", "postfix/submission/smtpd", "postfix/lmtp"],
                 ["postfix", "smtp", "exim", "a/b/c", "post fix/smtp", "postfix/smtp:x"])
PID = choice(["[4242]", "[1]"], ["[]", "", "[12a]"])
QID = choice(["3F2A1B7C0D", "4bKq3x1Zz9"], ["NOQUEUE", "", "3F2A-1B"])
ADDRESS = choice(["a@example.org", "", "user+tag@example.net"],
                 ["x>, relay=evil[1.2.3.4]:25, y", "a b@c", "<nested>", "\xe9@example.org", "a>,b"])
ORIG = choice([None, "b@example.org"], ADDRESS[1])
RELAY = choice(["mx.example.org[203.0.113.7]:25", "none", "local", "unknown[198.51.100.9]:25",
                "gmail-smtp-in.l.google.com[142.250.1.26]:25", "mail.example.com[private/dovecot-lmtp]"],
               ["unknown[]:25", "[203.0.113.7]:25", "a,b[1.2.3.4]", "x y[1.2.3.4]", "", "mx[1.2.3.4]/x"])
MIDDLE = choice(["", "conn_use=2, "], ["conn_use=, ", "conn_use=x, "])
DELAYS = choice(["delay=0.4, delays=0.01/0/0.2/0.19, ", "delay=12, delays=1/2/3/4, "],
                ["delay=, delays=1/2/3/4, ", "delay=1, delays=1/2/3, ", "delay=1,delays=1/2/3/4, "])
TLS = choice(["", "tls=TLSv1.3, "], ["tls=a b, ", "tls=, "])
DSN = choice(["2.0.0", "5.1.1", "4.4.1", "5.7.606", "4.7.28"], ["5.01.1", "9.9.9", "5.1", "", "4.7.1000", "2.0.0x"])
WORD = choice(["sent", "deferred", "bounced", "expired"],
              ["deliverable", "undeliverable", "SOFTBOUNCE", "queued", "sent-", "Sent"])
REASON = choice([None, "250 2.0.0 OK", "host mx[1.2.3.4] said: 550 5.1.1 unknown (in reply to RCPT TO command)",
                 "connect to mx[1.2.3.4]:25: Connection timed out", "x said: 451-4.7.1 later"],
                ["250-2.0.0 OK", "host mx said: 150 odd", "host mx said: 550", "host mx said: 5500 x",
                 "host mx refused to talk to me: 554 5.7.1 go away", "said: 550 no leading space",
                 "550 5.1.1 direct", "199 low", "", "(nested)", "host a said: 250 ok) tail", "tab\there",
                 "a said: 999 x said: 550 y", "a refused to talk to me: 421 b said: 550 c"])
ACTION = choice(["reject", "milter-reject"], ["reject_warning", "Reject"])
STAGE = choice(["RCPT", "END-OF-MESSAGE", "CONNECT"], ["rcpt", "DATA-", "-DATA"])
CLIENT = choice(["unknown[198.51.100.9]", "mail.example.net[203.0.113.5]", "[203.0.113.5]:25"],
                ["", "a", ":", "x y[1.2.3.4]", "unknown[]", "name[1.2.3.4", "a:b[1.2.3.4]"])
TEXT = choice(["554 5.7.1 <b@example.org>: Relay access denied; from=<a@x> to=<b@y> proto=ESMTP helo=<h>",
               "450 4.1.8 <a@x>: Sender address rejected", "550-5.7.1 multi", "5.7.1 milter only",
               "Blocked by milter"],
              ["550 5.7.1.2 too many parts", "550 5.7", "5500 x", "550", "550.5 x", "6.7.1 not a class",
               "421 4.7.0 busy; status=sent here", "550 5.01.1 bad code", "250 2.0.0 ok", "999 x", "", "5.1.1."])


def delivery_line(stamp, host, prog, pid, qid, to, orig, relay, middle, delays, tls, dsn, word, reason) -> str:
    line = f"{stamp} {host} {prog}{pid}: {qid}: to=<{to}>, "
    if orig is not None:
        line += f"orig_to=<{orig}>, "
    line += f"relay={relay}, {middle}{delays}{tls}dsn={dsn}, status={word}"
    if reason is not None:
        line += f" ({reason})"
    return line


def reject_line(stamp, host, prog, pid, qid, action, stage, client, text) -> str:
    return f"{stamp} {host} {prog}{pid}: {qid}: {action}: {stage} from {client}: {text}"


DELIVERY = fields(STAMP, HOST, PROGRAM, PID, QID, ADDRESS, ORIG, RELAY, MIDDLE, DELAYS, TLS, DSN, WORD,
                  REASON).map(lambda values: delivery_line(*values))
REJECT = fields(STAMP, HOST, PROGRAM, PID, QID, ACTION, STAGE, CLIENT, TEXT).map(lambda values: reject_line(*values))
OTHER = st.sampled_from([
    "Nov 28 00:00:00 mail01 postfix/qmgr[59544]: D0E873A000: removed",
    "Nov 28 00:00:00 mail01 postfix/cleanup[34181]: 7E70CAD194: message-id=<1764288000.7E70CAD194.5.1.1@example.org>",
    "Nov 28 00:00:00 mail01 postfix/qmgr[1]: 9002D3167D: from=<a@x>, status=expired, returned to sender",
    "Nov 28 00:00:00 mail01 postfix/smtp[1]: 9002D3167D: host mx[1.2.3.4] said: 550 5.1.1 x (in reply to RCPT TO)",
    "2025-11-28T00:00:01Z stdout P Nov 28 00:00:01 mail01 postfix/smtp[1]: A: to=<a@x>, relay=none, delay=1, ",
    "2025-11-28T00:00:01Z stdout F delays=1/2/3/4, dsn=5.4.4, status=bounced (Host not found)",
    "2025-11-28T00:00:02.5Z stderr F plain text 550 5.7.1 rejected",
    "Nov 28 00:00:02 mail01 exim[77]: 1abcDE-000123-AB ** a@x R=dnslookup T=remote_smtp: SMTP error: 550 5.1.1 No",
    "Nov 28 00:00:02 mail01 sendmail[9]: x1: to=<a@x>, delay=00:00:01, mailer=esmtp, stat=Sent (ok 2.0.0)",
    "Nov 28 00:00:03 mail01 dovecot: lmtp(a@x): Error: msgid=<m>: rejected: Quota exceeded 5.2.2",
    '{"MESSAGE":[65,66],"SYSLOG_IDENTIFIER":"postfix/smtp"}',
    "", "#comment", "\x00\x01binary",
])
# One change to a line: at a share of its length, insert, replace or delete, with a byte
# chosen among those the scanner's grammar turns on.
EDIT = st.tuples(st.floats(min_value=0, max_value=1), st.sampled_from(["insert", "replace", "delete"]),
                 st.sampled_from(list(" ,:;<>[]()=/.-_\t\r\x00\x7f\xe9") + ["5", "a", "Z", "s", "\\"]))


LINES = st.one_of(DELIVERY, REJECT, OTHER,
                  st.builds(edited, st.one_of(DELIVERY, REJECT), st.lists(EDIT, min_size=1, max_size=2)))


def test_the_generated_lines_reach_the_scanner() -> None:
    """The generator's well-formed lines are ones the scanner reads itself (else the
    comparisons below would only try the hand-back)."""
    line = delivery_line("Nov 28 00:00:01", "mail01", "postfix/smtp", "[1]", "3F2A", "a@x", None,
                         "mx[1.2.3.4]:25", "", "delay=1, delays=1/2/3/4, ", "", "5.1.1", "bounced",
                         "host mx said: 550 5.1.1 unknown")
    reject = reject_line("Nov 28 00:00:01", "mail01", "postfix/smtpd", "[1]", "NOQUEUE", "reject", "RCPT",
                         "unknown[198.51.100.9]", "554 5.7.1 <b@x>: Relay access denied")
    if SCANNER is None:
        pytest.skip("exporter._fastscan is not built")
    starts, keys, _minutes, lines, matched, unparsed = SCANNER.scan(f"{line}\n{reject}\n".encode())
    assert (starts, lines, matched, unparsed) == ([], 2, 2, 0)
    assert [key for _first, key, _n in keys] == [("postfix", "bounced", "5.1.1", "550", "mx"),
                                                 ("postfix", "rejected", "5.7.1", "554", "198.51.100.9")]


def one_odd_field(build, *specs: tuple[list, list]) -> list[str]:
    """Every odd value of every field, each in a line whose other fields are well-formed."""
    lines = []
    for at, (_good, odd) in enumerate(specs):
        for value in odd:
            values = [good[0] if good[0] is not None or len(good) == 1 else good[1] for good, _odd in specs]
            values[at] = value
            lines.append(build(*values))
    return lines


DELIVERY_SPECS = (STAMP, HOST, PROGRAM, PID, QID, ADDRESS, ORIG, RELAY, MIDDLE, DELAYS, TLS, DSN, WORD, REASON)
REJECT_SPECS = (STAMP, HOST, PROGRAM, PID, QID, ACTION, STAGE, CLIENT, TEXT)
EDIT_BYTES = " ,:;<>[]()=/.-_\t\r\x7f\xe95aZs\\"


@needs_scanner
def test_each_odd_field_and_each_one_byte_edit_gives_the_same_result() -> None:
    """Line by line: every odd value of each field alone, and every insertion, replacement and
    deletion of one byte in a delivery record and a reject."""
    lines = one_odd_field(delivery_line, *DELIVERY_SPECS) + one_odd_field(reject_line, *REJECT_SPECS)
    for base in (delivery_line("Nov 28 00:00:01", "mail01", "postfix/smtp", "[1]", "3F2A", "a@x", "b@y",
                               "unknown[1.2.3.4]:25", "conn_use=2, ", "delay=1, delays=1/2/3/4, ", "tls=T, ",
                               "5.1.1", "bounced", "host mx said: 550 5.1.1 unknown"),
                 reject_line("Nov 28 00:00:01", "mail01", "postfix/smtpd", "[1]", "NOQUEUE", "reject", "RCPT",
                             "unknown[198.51.100.9]", "554 5.7.1 <b@x>: Relay access denied")):
        for at in range(len(base) + 1):
            for char in EDIT_BYTES:
                lines.append(base[:at] + char + base[at:])
                lines.append(base[:at] + char + base[at + 1:])
            lines.append(base[:at] + base[at + 1:])
    read_in_c = 0
    for line in lines:
        chunk = (line + "\n").encode()
        assert scanned(chunk) == expected(chunk), line
        read_in_c += SCANNER.scan(chunk)[4]
    assert read_in_c > len(lines) // 4


@needs_scanner
@settings(max_examples=400, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=30), st.booleans())
def test_generated_lines_give_the_same_counts(lines: list[str], trailing_newline: bool) -> None:
    chunk = "\n".join(lines).encode("utf-8", "surrogateescape")
    if trailing_newline:
        chunk += b"\n"
    assert scanned(chunk) == expected(chunk)


ENVELOPE_BYTES = st.sampled_from([b"Nov 28 00:00:01 mail01 postfix/smtp[1]: ", b"Nov  8 00:00:01 h postfix/smtpd[2]: ",
                                   b"2025-11-28T00:00:01Z stdout P ", b""])


@needs_scanner
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ENVELOPE_BYTES, st.binary(max_size=300)), min_size=1, max_size=12))
def test_arbitrary_bytes_give_the_same_counts(pieces: list[tuple[bytes, bytes]]) -> None:
    """Any bytes at all (NUL, lone carriage returns, invalid UTF-8, no final newline) after an
    envelope or none: the scanner neither fails nor differs from the Python path."""
    chunk = b"\n".join(envelope + body for envelope, body in pieces)
    assert scanned(chunk) == expected(chunk)
    assert scanned_hourly(chunk) == expected_hourly(chunk)


@needs_scanner
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(DELIVERY, REJECT), min_size=1, max_size=20), st.integers(min_value=1, max_value=3))
def test_the_cardinality_cap_admits_codes_in_the_same_order(lines: list[str], cap: int) -> None:
    chunk = ("\n".join(lines) + "\n").encode()
    one = Metrics(code_cap=cap)
    result = SyslogParser(lambda: NOW).parse(chunk)
    for event in result.events:
        one.add("mail", count_events([event]))
    one.add_lines("mail", result.matched, result.ignored, result.unparsed)
    many = Metrics(code_cap=cap)
    many.add("mail", SyslogParser(lambda: NOW).count(chunk))
    assert many.state() == one.state()


@needs_scanner
def test_a_cri_record_after_lines_read_in_c_is_read_line_by_line() -> None:
    """A CRI partial line makes every later line a possible continuation: the parser then reads
    the whole chunk the Python way rather than count a line twice."""
    chunk = (b"Nov 28 00:00:00 mail01 postfix/smtp[1]: 1A: to=<a@x>, relay=mx[1.2.3.4]:25, delay=1, "
             b"delays=1/1/1/1, dsn=2.0.0, status=sent (250 ok)\n"
             b"2025-11-28T00:00:01Z stdout P Nov 28 00:00:01 mail01 postfix/smtp[2]: 2B: to=<b@x>, relay=none, \n"
             b"Nov 28 00:00:01 mail01 postfix/smtp[3]: 3C: to=<c@x>, relay=mx[1.2.3.4]:25, delay=1, "
             b"delays=1/1/1/1, dsn=4.4.1, status=deferred (connect timed out)\n"
             b"2025-11-28T00:00:01Z stdout F delay=1, delays=1/2/3/4, dsn=5.4.4, status=bounced (Host not found)\n")
    tally, counts, _newest = scanned(chunk)
    assert counts == (4, 3, 1, 0)
    assert tally == [(("postfix", "delivered", "2.0.0", "250", "mx"), 1),
                     (("postfix", "deferred", "4.4.1", None, "mx"), 1),
                     (("postfix", "bounced", "5.4.4", None, None), 1)]
    assert scanned(chunk) == expected(chunk)


@needs_scanner
def test_patterns_outside_the_scanner_syntax_are_refused() -> None:
    from exporter import _fastscan  # type: ignore[attr-defined]

    for pattern, why in ((rb"a(?:b|c)d", "only bytes"), (rb"ab*c", "only bytes"), (rb"ab", "shorter than three"),
                         (rb"a[^b]c", "negated class"), (rb"a\sb", "unsupported escape"), (b"a[\n]b", "newline")):
        with pytest.raises(ValueError, match=why):
            _fastscan.Scanner([pattern], [], {}, "rejected", "postfix")


def test_pure_python_switch_turns_the_scanner_off() -> None:
    """NDR_EXPORTER_PURE_PYTHON=1 is the operator's way back to the Python path."""
    out = subprocess.run([sys.executable, "-c", "from exporter.parsers import make_parser; print(make_parser('syslog').scanner)"],
                         env={**os.environ, "NDR_EXPORTER_PURE_PYTHON": "1"}, capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "None"


def test_the_scanner_is_built_by_make_parser_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parser state is made by make_parser: the switch is read then (not when syslog.py was
    imported), and each parser has a scanner of its own, so one parser's first large chunk
    does not tune another's."""
    from exporter.parsers import make_parser

    monkeypatch.setenv("NDR_EXPORTER_PURE_PYTHON", "1")
    assert make_parser("syslog").scanner is None   # type: ignore[attr-defined]
    monkeypatch.delenv("NDR_EXPORTER_PURE_PYTHON")
    one, two = make_parser("syslog"), make_parser("syslog")
    if SCANNER is not None:
        assert one.scanner is not None and one.scanner is not two.scanner   # type: ignore[attr-defined]
