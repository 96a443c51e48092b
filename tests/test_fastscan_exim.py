"""The compiled scanner's Exim grammar decides every mainlog line as exim_files.parse() does.

The "exim" parser's count() lets the compiled scanner (exporter/_fastscan.c, grammar "exim")
read the commonest status lines in C and add their events up by label fields and minute;
it hands every other line that may be a status line back to the Python reference by its
offset. These tests compare count() with what parse()'s events add up to (tally, the order
each key first appears, line counts, newest time, with and without report's hourly buckets):
on every log the tests hold, the public corpus, the benchmark's generated log, each odd value
of each field of every line shape read in C, every one-byte insertion, replacement and
deletion of those lines, hypothesis-built lines and arbitrary bytes; and 1 to 4 threads,
time zones across DST changes, the cardinality cap's order, `report --json` with and without
the scanner, and the real daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.metrics import Metrics
from exporter.parsers import exim, make_parser
from exporter.parsers.base import Counted, count_events, tally
from exporter.parsers.exim_files import EximMainlogParser
from exporter.report import utc_hour
from tests.helpers.exporter_process import sample, total
from tests.helpers.fields import choice, edited, fields
from tests.helpers.logs import line_chunks, log_files

ROOT = Path(__file__).resolve().parent.parent

SCANNER = EximMainlogParser().scanner   # an exim parser's own compiled scanner, or None
needs_scanner = pytest.mark.skipif(SCANNER is None, reason="exporter._fastscan is not built")


def test_the_exim_parser_has_its_scanner_where_the_tests_run() -> None:
    """CI builds the compiled module; the sanitizer run (tests/test_fastscan_sanitizers.py) names
    its own build in NDR_FASTSCAN_BUILD."""
    if os.environ.get("NDR_EXPORTER_PURE_PYTHON"):
        assert SCANNER is None
    else:
        assert SCANNER is not None, "exporter._fastscan did not build: is a C compiler installed?"
    if os.environ.get("NDR_FASTSCAN_BUILD"):
        from exporter import _fastscan  # type: ignore[attr-defined]

        assert _fastscan.__file__ == os.environ["NDR_FASTSCAN_BUILD"]


# Parsers keep no state that changes a result (only caches of converted stamps), so the
# line-by-line comparisons share one of each.
_COUNTING = EximMainlogParser()
_REFERENCE = EximMainlogParser()


def ordered(counted: Counted) -> tuple:
    """Everything count() hands over, with the tally's order (dict equality ignores it)."""
    return list(counted.tally.items()), counted.newest, counted.lines, counted.matched, counted.ignored, \
        counted.unparsed


def assert_same(chunk: bytes, fresh: bool = False, what: object = None) -> None:
    """count() equals tally(parse()), without buckets and by UTC hour."""
    counting, reference = (EximMainlogParser(), EximMainlogParser()) if fresh else (_COUNTING, _REFERENCE)
    for bucket in (None, utc_hour):
        got = ordered(counting.count(chunk, bucket))
        want = ordered(tally(reference.parse(chunk), bucket))
        assert got == want, (what if what is not None else chunk, bucket)


def read_in_c(chunk: bytes) -> int:
    """Lines the scanner decided itself as status lines (events and unparsed)."""
    _starts, _keys, _minutes, _lines, matched, unparsed = SCANNER.scan(chunk)
    return matched + unparsed


def generated_exim(tmp_path: Path, lines: int) -> tuple[bytes, int]:
    log = tmp_path / "exim.log"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "exim", str(lines), str(log)],
                         check=True, capture_output=True, text=True)
    return log.read_bytes(), int(run.stdout)


@needs_scanner
def test_every_test_log_and_the_public_corpus_give_the_same_counts() -> None:
    """Every file read as an Exim log (the other formats' files too: any bytes must agree),
    whole and in chunks of 4 KiB."""
    decided = 0
    files = log_files()
    assert len(files) > 40
    for path in files:
        data = path.read_bytes()
        for chunk in [data, *line_chunks(data, 4096)]:
            assert_same(chunk, fresh=True, what=path)
        decided += read_in_c(data)
    assert decided > 300   # the Exim logs' status lines were read in C, not only handed back


@needs_scanner
def test_the_benchmark_log_gives_the_same_counts(tmp_path: Path) -> None:
    data, events = generated_exim(tmp_path, 30000)
    for chunk in line_chunks(data, 1 << 20):
        assert_same(chunk, fresh=True)
    starts, _keys, _minutes, lines, matched, unparsed = SCANNER.scan(data)
    assert (lines, matched, unparsed, starts) == (30000, events, 0, [])   # every status line read in C


@needs_scanner
def test_threads_read_a_chunk_as_one_thread_does(tmp_path: Path) -> None:
    """A large chunk read in parts, a thread each: the same starts, keys (with each key's first
    line), minutes and counts as one thread."""
    from exporter import _fastscan  # type: ignore[attr-defined]

    data, _events = generated_exim(tmp_path, 20000)
    odd = (b"2025-11-28 00:00:00.123 1abcDE-000123-AB ** a@x R=r T=t: SMTP error from remote mail server after "
           b"RCPT TO:<a@x>: 550 5.1.1 No\n"
           b"2025-11-28 00:00:00 1abcDE-000123-AB ** a@x R=r T=t: SMTP error from remote mail server after "
           b"RCPT TO:<a@x>: Try later\n")
    data = odd + data + odd + b"2025-11-28 00:00:01 1abcDE-000123-AB => a@x H=mx [1.2.3.4] C=\"250 OK\""
    args = ([], [], {**exim.FLAG_OUTCOMES, "expired": "expired"}, "rejected", "exim")
    one = _fastscan.Scanner(*args, threads=1, grammar="exim").scan(data)
    for threads in (2, 3, 4):
        assert _fastscan.Scanner(*args, threads=threads, grammar="exim").scan(data) == one
        assert _fastscan.Scanner(*args, threads=threads, grammar="exim").scan(data, by_minute=True) == \
            _fastscan.Scanner(*args, threads=1, grammar="exim").scan(data, by_minute=True)
    starts, keys, _minutes, lines, matched, unparsed = one
    assert lines == 20005 and unparsed == 2 and len(starts) == 2
    assert sum(n for _first, _key, n in keys) == matched


def test_the_exim_grammar_needs_every_flag_s_outcome() -> None:
    if SCANNER is None:
        pytest.skip("exporter._fastscan is not built")
    from exporter import _fastscan  # type: ignore[attr-defined]

    with pytest.raises(ValueError, match="status_outcomes has no expired"):
        _fastscan.Scanner([], [], dict(exim.FLAG_OUTCOMES), "rejected", "exim", grammar="exim")
    with pytest.raises(ValueError, match="grammar mbox: not syslog or exim"):
        _fastscan.Scanner([], [], {}, "rejected", "exim", grammar="mbox")


@needs_scanner
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                                  "Asia/Kathmandu"])
def test_hours_are_the_events_hours_in_every_zone(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """report's hourly tally: minutes read in C get the UTC hour their seconds have, in local
    time across DST changes (Lord Howe's is half an hour) and with Exim's own zone; a date
    that does not exist counts with no time."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        lines = []
        for date in ("2026-03-29", "2026-03-08", "2026-10-25", "2026-11-01", "2026-04-05", "2026-10-04",
                     "2025-12-31", "2026-01-01", "2024-02-29", "2026-02-30", "2026-13-01", "0000-01-01"):
            for hour in ("00", "01", "02", "03", "23", "24"):
                for minute in ("00", "29", "30", "59"):
                    for second in ("00", "59"):
                        for offset in ("", " +0100", " -0930", " +0545"):
                            lines.append(f"{date} {hour}:{minute}:{second}{offset} 1abcDE-000123-AB => a@x "
                                         f"R=r T=t H=mx.example.net [192.0.2.1] C=\"250 2.0.0 OK\"")
        data = ("\n".join(lines) + "\n").encode()
        for chunk in [data, *line_chunks(data, 2048)]:
            assert_same(chunk, fresh=True, what=zone)
        assert read_in_c(data) == len(lines)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_report_gives_the_same_summary_with_and_without_the_scanner(tmp_path: Path) -> None:
    """The real `ndr-exporter report --json` on the benchmark's Exim log with odd lines added,
    with the compiled scanner and with NDR_EXPORTER_PURE_PYTHON=1: byte for byte the same."""
    data, events = generated_exim(tmp_path, 20000)
    log = tmp_path / "mainlog"
    log.write_bytes(data + ("\n".join(EDGE_LINES) + "\n").encode("utf-8", "surrogateescape"))
    outputs = []
    for pure in ("", "1"):
        run = subprocess.run([sys.executable, "-m", "exporter.cli", "report", "--json", "--format", "exim", str(log)],
                             cwd=ROOT, env={**os.environ, "NDR_EXPORTER_PURE_PYTHON": pure, "TZ": "Europe/Berlin"},
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    summary = json.loads(outputs[0])
    assert summary["events"] > events > 5000


# --- generated lines around every place the scanner decides --------------------------------
# Each line shape is built from fields with well-formed values (read in C) and odd ones (the
# line is handed back, or read in C to the same event), then changed a byte at a time.


STAMP = choice(["2025-11-28 00:00:01", "2025-11-28 23:59:59", "2026-03-29 02:30:00", "2025-12-31 23:59:58 +0100",
                "2025-11-28 00:00:01 -0500"],
               ["2025-11-28 00:00:60", "2025-11-28 00:60:00", "2025-02-30 10:00:00", "2025-13-01 10:00:00",
                "2025-11-28 24:00:00", "2025-11-28 00:00:01.123", "2025-11-28 00:00:01.12", "2025-11-28 00:00:01.1234567",
                "2025-11-28 00:00:01 +01000", "2025-11-28 0:00:01", "0000-01-01 00:00:00", "2025-11-28T00:00:01",
                "2025-11-28 00:00:01 +0100 +0200", "2025-11-28 00:00:01 0100", "Nov 28 00:00:01 mail exim[1]:"])
PID = choice(["", " [1234]"], [" []", " [12a]", "[12]", " [12]  ", " [12]x"])
MESSAGE_ID = choice(["1abcDE-000123-AB", "1abcDE-00000001234-ABCD"],
                    ["1abcDE-000123-A", "1abcDE_000123-AB", "", "1abcDE-0000000123-ABC", "1abcDE-000123-ABC",
                     "1abcDE-00000001234-ABC", "1ab\xe9DE-000123-AB"])
ADDRESS = choice(["user@example.net", "user@example.net <alias@example.org>"],
                 ["", "a H=evil.example [1.2.3.4] b", 'x C="550 5.1.1 z"', "a: 550 5.1.1 b", "\xe9@example.org",
                  "a\tb@example.net", "a rejected RCPT b", "a => b", "a SMTP error from remote mail server after x: 550 y"])
DELIVERED_FLAG = choice(["=>", "->", ">>"], ["*>", "=", "<=", "=>>", "= >"])
HOST = choice(["H=mx.example.net [192.0.2.1]", "H=[192.0.2.1]", "H=mx.example.net (helo.example) [2001:db8::1]",
               "H=mx.example.net [192.0.2.1]:25"],
              ["H=mx.example.net", "H=(helo) [192.0.2.1]", "H=mx [bad ip]", "H=a(b) [1.2.3.4]", "H=mx  [1.2.3.4]",
               "xH=mx [1.2.3.4]", "H=mx (unclosed [1.2.3.4]", "H=mx [1.2.3.4", "H=mx []", "", "H=mx (a) (b) [1.2.3.4]",
               "H=m]x [1.2.3.4]", "H=mx [1.2.3.4] H=other [5.6.7.8]", "h=mx [1.2.3.4]"])
CONFIRM = choice(['C="250 2.0.0 OK id=1abcDE-000123-AB"', 'C="250 OK"', 'C="250-2.0.0 multi"', ""],
                 ['C="250"', 'C="2500 x"', 'C="250 2.00.0 x"', 'C="150 x"', 'C="250 #2.0.0 x"', "C=250",
                  'C="250 2.0.0.1 x"', 'C="250 5.1.1x"', 'C="250  2.0.0 two spaces"', 'C="250 2.0.01"', 'C=""',
                  'C="250 2.0.0', 'C="250 2.1234.0 x"', 'C="250 2.0.1234 x"', 'C="250 2.0.0.x"', 'C="250 2.0.0@x"',
                  'C="250\\n2.0.0"', 'C="250-"'])
FAILED_FLAG = choice(["**", "=="], ["* *", "===", "*="])
DEFER = choice(["", " defer (-44)"], [" defer (-44): x", ' defer "(-44)'])
ERROR = choice(["SMTP error from remote mail server after RCPT TO:<user@example.net>: 550 5.1.1 No such user",
                "SMTP error from remote mail server after end of data: 451 4.7.1 Try later",
                "SMTP error from remote server after pipelined RCPT TO:<a@b>: 452 4.2.2 Mailbox full",
                "LMTP error after MAIL FROM:<a@b> SIZE=1234: 552 5.3.4 too big",
                "SMTP error from remote mail server after RCPT TO:<a@b>: host mx.example.net [192.0.2.1]: 550 5.7.1 no",
                "retry timeout exceeded", "Unrouteable address", "retry time not reached for any host",
                "all hosts have been failing for a long time (and retry time not reached): 4.4.7 gave up",
                "retry time not reached for any host after a long failure", "550 5.1.1 no mailbox",
                "5.2.2 mailbox full", "host mx.example.net [192.0.2.1]: Connection refused"],
               ["SMTP error from remote mail server after RCPT TO:<a@b>: Try later",
                "SMTP error from remote mail server after RCPT TO:<a@b> x: 550 5.1.1 x",
                "SMTP error from remote mail server after initial connection:550",
                "SMTP error from remote mail server after RCPT TO:<a: 550 x", "LMTP error after DATA:<x>: 550 x",
                "SMTP error from remote mail server after MAIL FROM:<a@b>: host mx [1.2.3.4] 550 x",
                "SMTP error from remote mail server after MAIL FROM:<a@b>", "#5.1.1 x", "5.1.1: x", "5.1.1\\n x",
                'quoted "a: b" text: 550 5.1.1 x', 'unclosed "quote: 550 x', "retry timeout exceeded 550 5.0.0",
                "SMTP error from remote mail server after RCPT TO:<a@b>: host mx [1.2.3.4]: 550 5.1.1 x LMTP error "
                "after x: 450 y", "SMTP error from remote mail server after x: 550 y SMTP error from remote server "
                "after z: 450 w", "SMTP error from remote mail srvr after x: 550 y LMTP error after z: 451 w",
                "SMTP error from remote mail server after RCPT TO:<a@b>: host mx [1.2.3.4]: host y [5.6.7.8]: 550 x",
                "SMTP error from remote mail server after RCPT TO:<a@b>: host [1.2.3.4]: 550 x",
                "SMTP error from remote mail server after RCPT TO:<a@b>: 550 5.1.1",
                "SMTP error from remote mail server after pipelined MAIL FROM:<a@b> x:y: 550 z",
                "SMTP error from remote mail mail server after x: 550 y", "SMTP error from remote mail server after : 550 y",
                "xSMTP error from remote mail server after x: 550 y"])
ID_PART = choice(["", "1abcDE-000123-AB "], ["1abcDE-000123-AB <= a@x ", "1abcDE-000123-AB  ", "1abcDE-000123-AB* "])
CLIENT = choice(["H=client.example.org [198.51.100.7]", "H=(helo.example) [198.51.100.7]", "H=[198.51.100.7]"],
                ["H=client", "", "H=client.example.org [198.51.100.7]:25"])
SENDER = choice(["F=<a@example.org> ", ""], ["F=<a rejected RCPT <b>: 550 x> ", 'F=<"a: b"@x> '])
TEMPORARY = choice(["", "temporarily "], ["Temporarily ", "xtemporarily ", "temporarily  "])
STAGE = choice(["RCPT <b@example.net>", "MAIL", "after DATA", "EHLO or HELO", "EHLO", 'connection in "connect" ACL',
                "by local_scan()", "MAIL FROM:<a@x> H=(helo) [203.0.113.9]"],
               ["RCPTX", "MAILAUTH", "DATA", "STARTTLS", "rcpt", "RCPT <b@x: y", "", "EHLO or HELOx", "by local_scan",
                "RCPT <b@x", "AUTH:", "VRFY"])
REST = choice([": 550 5.7.1 relay not permitted", ": 451 4.7.1 greylisted", ": 5.7.1 blocked", ": blocked",
               ": 550-5.7.1 multi\\nline", ""],
              [": 550 5.7", ":550 5.7.1 x", ": 550", ": 4.7.1: x", " 550 5.7.1 no colon",
               ": H=evil [1.2.3.4]: 550 5.7.1 x", ": 4.7.1\\nx", ": #4.7.1 x", ": 4.7.1x", ": 250 2.0.0 ok",
               ": 699 x", ": 5.7.1.1 x"])


def delivered_line(stamp, pid, message_id, flag, address, host, confirm) -> str:
    return (f"{stamp}{pid} {message_id} {flag} {address} R=dnslookup T=remote_smtp {host} "
            f"X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes {confirm}")


def failed_line(stamp, pid, message_id, flag, address, defer, host, error) -> str:
    return f"{stamp}{pid} {message_id} {flag} {address} R=dnslookup T=remote_smtp{defer} {host}: {error}"


def rejected_line(stamp, pid, id_part, client, sender, temporary, stage, rest) -> str:
    return f"{stamp}{pid} {id_part}{client} {sender}{temporary}rejected {stage}{rest}"


DELIVERED_SPECS = (STAMP, PID, MESSAGE_ID, DELIVERED_FLAG, ADDRESS, HOST, CONFIRM)
FAILED_SPECS = (STAMP, PID, MESSAGE_ID, FAILED_FLAG, ADDRESS, DEFER, HOST, ERROR)
REJECTED_SPECS = (STAMP, PID, ID_PART, CLIENT, SENDER, TEMPORARY, STAGE, REST)

# Lines of other kinds, and status lines the scanner must hand back or read to the same end.
EDGE_LINES = [
    "2025-11-28 00:00:01 1abcDE-000123-AB <= a@example.org H=relay.example.org [203.0.113.25] P=esmtps S=1234",
    "2025-11-28 00:00:01 1abcDE-000123-AB Completed",
    "2025-11-28 00:00:01 1abcDE-000123-AB *> a@x R=r T=t H=mx [1.2.3.4] C=\"250 OK\"",
    "2025-11-28 00:00:01 SMTP connection from relay.example.org [203.0.113.25]:1234 (TCP/IP connection count = 1)",
    "2025-11-28 00:00:01 H=client [1.2.3.4] F=<a@x> rejected RCPT <b@y>: 550 5.7.1 denied",
    "2025-11-28 00:00:01 H=client [1.2.3.4] F=<a@x> rejected RCPT <b@y>: 550 5.7.1 denied\r",
    "2025-11-28 00:00:01 H=client [1.2.3.4] F=<a@x> rejected RCPT <b@y>: 550 5.7.1 d\xe9nied",
    "2025-11-28 00:00:01 H=client [1.2.3.4] F=<a@x> rejected RCPT <b@y>: 550 5.7.1 \udcff bad byte",
    "2025-11-28 00:00:01 1abcDE-000123-AB == a@x R=r T=t defer (-53): retry time not reached for any host",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x: retry timeout exceeded",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r T=t: SMTP error from remote mail server after RCPT TO:<a@x>: x",
    "2025-11-28 00:00:01 rejected RCPT <b@y>: 550 5.7.1 at the start",
    "2025-11-28 00:00:01 rejected",
    "2025-11-28 00:00:01 rejected ",
    "2025-11-28 00:00:01 x rejected EHLO",
    "2025-11-28 00:00:01 x rejected EHLO:",
    "2025-11-28 00:00:01 temporarily rejected RCPT <b@y>",
    "2025-11-28 00:00:01 1abcDE-000123-AB temporarily rejected RCPT <b@y>",
    "2025-11-28 00:00:01 1abcDE-000123-AB  rejected RCPT <b@y>: 550 x",
    "2025-11-28 00:00:01 +0100 [12] rejected RCPT <b@y>: 550 5.7.1 zone and pid",
    "2025-11-28 00:00:01 [12] 1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01 +0100 1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01 +0100x 1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01 [12]x 1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01 +0100 [12]x rejected RCPT <b@y>: 550 5.7.1 x",
    "2025-11-28 00:00:01.123 +0100 [12] 1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01.123 1abcDE-000123-AB ** a@x R=r T=t H=mx [1.2.3.4]: SMTP error from remote mail server "
    "after RCPT TO:<a@x>: 550 5.1.1 x",
    "2025-11-28 00:00:01  1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01 xrejected RCPT <b@y>: 550 5.7.1 no space before",
    "2025-11-28 00:00:01 a rejected x rejected RCPT <b@y>: 550 5.7.1 the second",
    "2025-11-28 00:00:01 a rejected RCPTx rejected MAIL: 550 5.7.1 the second",
    "2025-11-28 00:00:01 H=a [1.2.3.4] temporarily rejected RCPT <b@y>: greylisted",
    "2025-11-28 00:00:01 H=a [1.2.3.4] xtemporarily rejected RCPT <b@y>: 4.7.1 greylisted",
    "2025-11-28 00:00:01 1abcDE-000123-AB temporarily rejected RCPT <b@y>: greylisted",
    "2025-11-28 00:00:01 1abcDE-000123-ABtemporarily rejected RCPT <b@y>: greylisted",
    "2025-11-28 00:00:01 1abcDE-000123-AB => a@x H=mx [1.2.3.4] C=\"250 2.0.0 OK\" C=\"550 5.0.0 second\"",
    "2025-11-28 00:00:01 1abcDE-000123-AB => C=\"250 2.0.0 flag then confirm\"",
    "2025-11-28 00:00:01 1abcDE-000123-AB => a@x C=\"250 2.0.0 OK\" H=after [1.2.3.4]",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x H=mx [1.2.3.4]: SMTP error from remote mail server after RCPT "
    "TO:<a@x>: 550 5.1.1 x: retry timeout exceeded",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** retry timeout exceeded@x: 5.1.1 x",
    "2025-11-28 00:00:01 1abcDE-000123-AB == a@x: retry time not reachedx",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x <b@y>: 550 5.1.1 x",
    "2025-11-28 00:00:01 1abcDE-000123-AB **  a@x: 550 5.1.1 two spaces",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r:",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r: ",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r:x: 550 5.1.1 colon without space",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** H=mx [1.2.3.4]: host H=x [5.6.7.8]: 550 x",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r T=t H=mx [1.2.3.4]: LMTP error after RCPT TO:<a@x>: 550 5.1.1",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x LMTP error after end: 550 5.1.1 and SMTP error from remote server "
    "after x: 450 4.0.0",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x R=r T=t H=mx [1.2.3.4]: SMTP error from remote mail server after "
    "RCPT TO:<a@x>: 550 5.1.1 x\\n550 5.1.1 second line",
    "2025-11-28 00:00:01 1abcDE-000123-AB ** a@x (generated from b@y) R=r T=t: 550 5.1.1 x",
    "2025-11-28 00:00:01 2025-11-28 00:00:01 1abcDE-000123-AB => a@x C=\"250 OK\"",
    "2025-11-28 00:00:01 1abcDE-000123-AB => a@x" + " H=mx [1.2.3.4]" * 40 + " C=\"250 2.0.0 long\"",
    "1abcDE-000123-AB => a@x no date",
    " 2025-11-28 00:00:01 1abcDE-000123-AB => a@x leading space",
    "Envelope-to: <b@y>",
    "  X-Header: rejected RCPT in a rejectlog header line: 550 5.7.1 x",
    "",
    "#",
]


def one_odd_field(build, *specs: tuple[list, list]) -> list[str]:
    """Every odd value of every field, each in a line whose other fields are well-formed; and
    every well-formed value too."""
    lines = []
    for at, (good, odd) in enumerate(specs):
        for value in good + odd:
            values = [g[0] for g, _o in specs]
            values[at] = value
            lines.append(build(*values))
    return lines


BASES = [
    delivered_line("2025-11-28 00:00:01", "", "1abcDE-000123-AB", "=>", "user@example.net <a@example.org>",
                   "H=mx.example.net (helo) [192.0.2.1]", 'C="250 2.0.0 OK id=1abcDE-000123-AB"'),
    failed_line("2025-11-28 00:00:01 +0100", " [12]", "1abcDE-00000001234-ABCD", "**", "user@example.net", "",
                "H=mx.example.net [192.0.2.1]",
                "SMTP error from remote mail server after RCPT TO:<user@example.net>: host mx [192.0.2.1]: 550 5.1.1 No"),
    failed_line("2025-11-28 00:00:01", "", "1abcDE-000123-AB", "==", "user@example.net", " defer (-44)",
                "H=mx.example.net [192.0.2.1]", "SMTP error from remote mail server after end of data: 451-4.7.1 later"),
    failed_line("2025-11-28 00:00:01", "", "1abcDE-000123-AB", "**", "user@example.net", "", "H=[192.0.2.1]",
                "retry timeout exceeded"),
    failed_line("2025-11-28 00:00:01", "", "1abcDE-000123-AB", "==", "u@x", "", 'H=mx [1.2.3.4] X="a: b"',
                "5.2.2 mailbox full"),
    rejected_line("2025-11-28 00:00:01", "", "", "H=client.example.org [198.51.100.7]", "F=<a@example.org> ", "",
                  "RCPT <b@example.net>", ": 550 5.7.1 relay not permitted"),
    rejected_line("2025-11-28 00:00:01", " [99]", "1abcDE-000123-AB ", "H=(helo) [198.51.100.7]", "", "temporarily ",
                  "after DATA", ": 4.7.1 greylisted"),
]
EDIT_BYTES = " ,:;<>[]()=/.-_\"#*+\t\r\x7f\xe905aZs\\"


def edits_of(line: str) -> list[str]:
    """Every insertion, replacement and deletion of one byte."""
    out = []
    for at in range(len(line) + 1):
        for char in EDIT_BYTES:
            out.append(line[:at] + char + line[at:])
            out.append(line[:at] + char + line[at + 1:])
        out.append(line[:at] + line[at + 1:])
    return out


def test_the_generated_lines_reach_the_scanner() -> None:
    """The well-formed lines of every shape are read in C (else the comparisons below would
    only try the hand-back), to the events the reference gives."""
    if SCANNER is None:
        pytest.skip("exporter._fastscan is not built")
    chunk = ("\n".join(BASES) + "\n").encode()
    starts, keys, _minutes, lines, matched, unparsed = SCANNER.scan(chunk)
    assert (starts, lines, matched, unparsed) == ([], 7, 7, 0)
    assert [key for _first, key, _n in keys] == [
        ("exim", "delivered", "2.0.0", "250", "mx.example.net"),
        ("exim", "bounced", "5.1.1", "550", "mx.example.net"),
        ("exim", "deferred", "4.7.1", "451", "mx.example.net"),
        ("exim", "expired", "4.4.7", None, "192.0.2.1"),
        ("exim", "deferred", "5.2.2", None, "mx"),
        ("exim", "rejected", "5.7.1", "550", "client.example.org"),
        ("exim", "rejected", "4.7.1", "451", "198.51.100.7"),
    ]
    assert_same(chunk)


@needs_scanner
def test_each_odd_field_and_the_edge_lines_give_the_same_result() -> None:
    lines = (one_odd_field(delivered_line, *DELIVERED_SPECS) + one_odd_field(failed_line, *FAILED_SPECS)
             + one_odd_field(rejected_line, *REJECTED_SPECS) + EDGE_LINES)
    decided = 0
    for line in lines:
        chunk = (line + "\n").encode("utf-8", "surrogateescape")
        assert_same(chunk, what=line)
        decided += read_in_c(chunk)
    assert decided > len(lines) // 2


@needs_scanner
@pytest.mark.parametrize("base", range(len(BASES)))
def test_each_one_byte_edit_gives_the_same_result(base: int) -> None:
    """Every insertion, replacement and deletion of one byte in each line shape read in C."""
    decided = 0
    lines = edits_of(BASES[base])
    for line in lines:
        chunk = (line + "\n").encode("utf-8", "surrogateescape")
        assert_same(chunk, what=line)
        decided += read_in_c(chunk)
    assert decided > len(lines) // 2


EDIT = st.tuples(st.floats(min_value=0, max_value=1), st.sampled_from(["insert", "replace", "delete"]),
                 st.sampled_from(list(EDIT_BYTES)))


SHAPES = st.one_of(fields(*DELIVERED_SPECS).map(lambda v: delivered_line(*v)),
                   fields(*FAILED_SPECS).map(lambda v: failed_line(*v)),
                   fields(*REJECTED_SPECS).map(lambda v: rejected_line(*v)))
LINES = st.one_of(SHAPES, st.sampled_from(EDGE_LINES), st.builds(edited, SHAPES, st.lists(EDIT, min_size=1, max_size=3)))


@needs_scanner
@settings(max_examples=400, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=30), st.booleans())
def test_generated_lines_give_the_same_counts(lines: list[str], trailing_newline: bool) -> None:
    chunk = "\n".join(lines).encode("utf-8", "surrogateescape")
    if trailing_newline:
        chunk += b"\n"
    assert_same(chunk, fresh=True)


PREFIX_BYTES = st.sampled_from([b"2025-11-28 00:00:01 ", b"2025-11-28 00:00:01 1abcDE-000123-AB => ",
                                b"2025-11-28 00:00:01 +0100 [12] 1abcDE-000123-AB ** ", b"2025-11-28 00:00:01 H=a [1.2.3.4] ",
                                b"2025-11-28 00:00:01.5 ", b""])
TAIL_BYTES = st.sampled_from([b"", b" rejected RCPT <a>: 550 5.7.1 x", b" C=\"250 2.0.0 x\"",
                              b": SMTP error from remote mail server after RCPT TO:<a>: 550 5.1.1 x"])


@needs_scanner
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(PREFIX_BYTES, st.binary(max_size=200), TAIL_BYTES), min_size=1, max_size=12))
def test_arbitrary_bytes_give_the_same_counts(pieces: list[tuple[bytes, bytes, bytes]]) -> None:
    """Any bytes at all (NUL, lone carriage returns, invalid UTF-8, no final newline) between
    a date and a status line's parts: the scanner neither fails nor differs from Python."""
    chunk = b"\n".join(prefix + body + tail for prefix, body, tail in pieces)
    assert_same(chunk, fresh=True)


@needs_scanner
@settings(max_examples=200, deadline=None)
@given(st.lists(SHAPES, min_size=1, max_size=20), st.integers(min_value=1, max_value=3))
def test_the_cardinality_cap_admits_codes_in_the_same_order(lines: list[str], cap: int) -> None:
    chunk = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    one = Metrics(code_cap=cap)
    result = EximMainlogParser().parse(chunk)
    for event in result.events:
        one.add("mail", count_events([event]))
    one.add_lines("mail", result.matched, result.ignored, result.unparsed)
    many = Metrics(code_cap=cap)
    many.add("mail", EximMainlogParser().count(chunk))
    assert many.state() == one.state()


def test_pure_python_switch_turns_the_exim_scanner_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """NDR_EXPORTER_PURE_PYTHON=1 is read when a parser is made; each parser has its own scanner."""
    monkeypatch.setenv("NDR_EXPORTER_PURE_PYTHON", "1")
    assert make_parser("exim").scanner is None   # type: ignore[attr-defined]
    monkeypatch.delenv("NDR_EXPORTER_PURE_PYTHON")
    one, two = make_parser("exim"), make_parser("exim")
    if SCANNER is not None:
        assert one.scanner is not None and one.scanner is not two.scanner   # type: ignore[attr-defined]


# --- the daemon ----------------------------------------------------------------------------

def test_the_daemon_counts_every_flag_of_one_outcome(tmp_path: Path, exporter_factory) -> None:
    """=>, -> and >> lines with the same fields are one series, counted once each: the scanner
    keys them by outcome, not by flag (before, keys of one outcome overwrote each other)."""
    log = tmp_path / "mainlog"
    delivered = "R=r T=t H=mx.example.net [192.0.2.1] C=\"250 2.0.0 OK\""
    log.write_text(f"2025-11-28 00:00:01 1abcDE-000123-AB => a@x {delivered}\n"
                   f"2025-11-28 00:00:01 1abcDE-000123-AB -> b@x {delivered}\n"
                   f"2025-11-28 00:00:02 1abcDE-000124-AB >> c@x {delivered}\n"
                   f"2025-11-28 00:00:03 1abcDE-000125-AB => d@x {delivered}\n"
                   "2025-11-28 00:00:03 1abcDE-000125-AB Completed\n")
    exp = exporter_factory(["--source.path", str(log), "--source.format", "exim", "--start-at", "beginning"])
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total") == 5)
    assert total(samples, "ndr_status_codes_total") == 4
    assert total(samples, "ndr_status_codes_total", mta="exim", outcome="delivered", code="2.0.0") == 4
    assert sample(samples, "ndr_exporter_lines_total", source="mainlog", result="matched") == 4


def test_the_daemon_counts_postfix_words_of_one_outcome(tmp_path: Path, exporter_factory) -> None:
    """Postfix's status=deferred and status=SOFTBOUNCE (and undeliverable and
    undeliverable-but-not-cached) are one outcome: three such lines read in C count three
    (before, the scanner's keys per word made the daemon count one)."""
    log = tmp_path / "mail.log"
    record = ("Nov 28 00:00:01 mail01 postfix/smtp[1]: 3F2A: to=<a@x>, relay=mx.example.net[192.0.2.1]:25, "
              "delay=1, delays=1/2/3/4, dsn=4.4.1, status={} (connect timed out)\n")
    probe = ("Nov 28 00:00:01 mail01 postfix/smtp[1]: 3F2B: to=<a@x>, relay=mx.example.net[192.0.2.1]:25, "
             "delay=1, delays=1/2/3/4, dsn=5.1.1, status={} (unknown user)\n")
    log.write_text(record.format("deferred") + record.format("SOFTBOUNCE") + record.format("deferred")
                   + probe.format("undeliverable") + probe.format("undeliverable-but-not-cached"))
    exp = exporter_factory(["--source.path", str(log), "--source.format", "syslog", "--start-at", "beginning"])
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total") == 5)
    assert total(samples, "ndr_status_codes_total", mta="postfix", outcome="deferred", code="4.4.1") == 3
    assert total(samples, "ndr_status_codes_total", mta="postfix", outcome="verify_failed", code="5.1.1") == 2


# --- Exim through syslog ----------------------------------------------------------------------
# The syslog parser's scanner reads Exim's delivery lines (=> -> >> ** ==) in a plain RFC 3164
# line as exim.parse_message would; every other Exim line goes to Python. exim.py remembers the
# last rejection (syslog_duplication writes each twice), and a delivery between two equal
# rejections makes the second count: so the scanner tells the parser where it read Exim lines
# (forgets), and the memory is dropped there. Parsers are compared over a stream of chunks,
# since that memory lasts from one chunk to the next.

from exporter.parsers import syslog  # noqa: E402
from exporter.parsers.syslog import SyslogParser  # noqa: E402

NOW = 1764400000.0   # 2025-11-28: the year of the RFC 3164 stamps below
ENVELOPE = "Nov 28 00:00:01 mail01 exim[1234]: "


def syslog_line(body: str, envelope: str = ENVELOPE) -> str:
    return envelope + body


def assert_same_stream(chunks: list[bytes], what: object = None) -> int:
    """A stream of chunks through one counting and one reference syslog parser: the same counts
    chunk after chunk. Returns the lines the scanner read itself."""
    counting, reference = SyslogParser(lambda: NOW), SyslogParser(lambda: NOW)
    decided = 0
    for chunk in chunks:
        got = ordered(counting.count(chunk))
        want = ordered(tally(reference.parse(chunk)))
        assert got == want, (what if what is not None else chunk)
        if counting.scanner is not None:
            decided += sum(counting.scanner.scan(chunk)[4:6])
    return decided


# One counting and one reference syslog parser per bucket, shared by the line-by-line tests:
# both see the same lines in the same order, so exim.py's memory is the same in each.
_SYSLOG_PAIRS = {None: (SyslogParser(lambda: NOW), SyslogParser(lambda: NOW)),
                 utc_hour: (SyslogParser(lambda: NOW), SyslogParser(lambda: NOW))}
_SYSLOG_SCANNER = _SYSLOG_PAIRS[None][0].scanner


def assert_same_syslog(chunk: bytes, what: object = None) -> None:
    """One chunk through the shared syslog parsers, without buckets and by UTC hour."""
    for bucket, (counting, reference) in _SYSLOG_PAIRS.items():
        got = ordered(counting.count(chunk, bucket))
        want = ordered(tally(reference.parse(chunk), bucket))
        assert got == want, (what if what is not None else chunk, bucket)


SYSLOG_DELIVERY = delivered_line("2025-11-28 00:00:01", "", "1abcDE-000123-AB", "=>", "user@example.net",
                                 "H=mx.example.net [192.0.2.1]", 'C="250 2.0.0 OK"')[20:]
SYSLOG_FAILURE = failed_line("2025-11-28 00:00:01", "", "1abcDE-000123-AB", "**", "user@example.net", "",
                             "H=mx.example.net [192.0.2.1]", "SMTP error from remote mail server after RCPT "
                             "TO:<user@example.net>: 550 5.1.1 No")[20:]
SYSLOG_REJECT = rejected_line("2025-11-28 00:00:01", "", "", "H=client.example.org [198.51.100.7]",
                              "F=<a@example.org> ", "", "RCPT <b@example.net>", ": 550 5.7.1 relay not permitted")[20:]


def test_exim_delivery_lines_through_syslog_are_read_in_c() -> None:
    if SCANNER is None:
        pytest.skip("exporter._fastscan is not built")
    chunk = ("\n".join(syslog_line(body) for body in (SYSLOG_DELIVERY, SYSLOG_FAILURE, SYSLOG_REJECT)) + "\n").encode()
    starts, keys, _minutes, lines, matched, unparsed, forgets = SyslogParser(lambda: NOW).scanner.scan(
        chunk, forgets=True)
    assert (lines, matched, unparsed) == (3, 2, 0)
    assert starts == [chunk.index(b"\n", chunk.index(b"\n") + 1) + 1]   # the rejection: Python's
    assert forgets == [chunk.index(b"\n") + 1]   # the failure read in C, before the rejection
    assert [key for _first, key, _n in keys] == [("exim", "delivered", "2.0.0", "250", "mx.example.net"),
                                                 ("exim", "bounced", "5.1.1", "550", "mx.example.net")]


def test_a_delivery_read_in_c_between_two_equal_rejections_makes_the_second_count() -> None:
    """Reject, delivery, the same reject in the same second: not a syslog_duplication copy,
    so two rejections; reject, reject: one (the copy). Also when the chunk ends between them."""
    reject, delivery = syslog_line(SYSLOG_REJECT), syslog_line(SYSLOG_DELIVERY)
    for lines, rejected in (([reject, delivery, reject], 2), ([reject, reject], 1), ([reject, reject, delivery], 1),
                            ([reject, delivery, delivery, reject, reject], 2)):
        data = ("\n".join(lines) + "\n").encode()
        got = SyslogParser(lambda: NOW).count(data)
        assert sum(n[None] for fields, n in got.tally.items() if fields.outcome == "rejected") == rejected, lines
        assert_same_stream([data], lines)
        assert_same_stream(data.splitlines(keepends=True), lines)   # a line a chunk: the memory crosses chunks
        counting = SyslogParser(lambda: NOW)
        assert sum(n[None] for chunk in data.splitlines(keepends=True)
                   for fields, n in counting.count(chunk).tally.items() if fields.outcome == "rejected") == rejected


def test_threads_give_the_same_forgets() -> None:
    if SCANNER is None:
        pytest.skip("exporter._fastscan is not built")
    from exporter import _fastscan  # type: ignore[attr-defined]

    parser = SyslogParser(lambda: NOW)
    lines = [syslog_line(body) for body in (SYSLOG_DELIVERY, SYSLOG_REJECT, SYSLOG_FAILURE, SYSLOG_REJECT,
                                            SYSLOG_REJECT)] * 3000
    data = ("\n".join(lines) + "\n").encode()
    args = (syslog.candidate_patterns(syslog.load_message_parsers()), list(parser._programs),
            syslog.postfix.STATUS_OUTCOMES, "rejected", "postfix")
    kwargs = dict(exim_programs=["exim", "exim4"], exim_outcomes=syslog.exim_outcomes(), exim_mta="exim")
    one = _fastscan.Scanner(*args, threads=1, **kwargs).scan(data, forgets=True)
    for threads in (2, 3, 4):
        assert _fastscan.Scanner(*args, threads=threads, **kwargs).scan(data, forgets=True) == one
    assert len(one[6]) == 2 * 3000 and one[4] == 2 * 3000
    assert_same_stream(line_chunks(data, 1 << 16))


@needs_scanner
@pytest.mark.parametrize("base", [SYSLOG_DELIVERY, SYSLOG_FAILURE])
def test_each_one_byte_edit_of_an_exim_syslog_line_gives_the_same_result(base: str) -> None:
    decided = 0
    lines = edits_of(syslog_line(base))
    for line in lines:
        chunk = (line + "\n").encode("utf-8", "surrogateescape")
        assert_same_syslog(chunk, line)
        decided += _SYSLOG_SCANNER.scan(chunk)[4]
    assert decided > len(lines) // 3


@needs_scanner
def test_each_odd_field_of_exim_lines_through_syslog_gives_the_same_result() -> None:
    bodies = []
    for build, specs in ((delivered_line, DELIVERED_SPECS), (failed_line, FAILED_SPECS),
                         (rejected_line, REJECTED_SPECS)):
        for line in one_odd_field(build, *specs):
            bodies.append(line.split(" ", 2)[2] if line[:4].isdigit() else line)
    bodies += [" [12] " + SYSLOG_DELIVERY, "[1\\2] " + SYSLOG_REJECT, "[2\\2] " + SYSLOG_REJECT,
               "2025-11-28 00:00:01 " + SYSLOG_DELIVERY, "2025-11-28 00:00:01 [12] " + SYSLOG_FAILURE,
               "1234-" + SYSLOG_DELIVERY, "[12] " + SYSLOG_DELIVERY]
    envelopes = [ENVELOPE, "Nov  8 00:00:01 mail01 exim4[1]: ", "Nov 28 00:00:01 mail01 exim: ",
                 "Nov 28 00:00:01 mail01 eximx[1]: ", "Nov 28 00:00:01 exim[1]: ", "Nov 28 00:00:01 mail01 exim[1]:"]
    decided = 0
    for envelope in envelopes:
        for body in bodies:
            chunk = (envelope + body + "\n").encode("utf-8", "surrogateescape")
            assert_same_syslog(chunk, envelope + body)
            decided += _SYSLOG_SCANNER.scan(chunk)[4]
    assert decided > len(bodies) // 2


EXIM_SYSLOG_LINES = st.one_of(
    st.sampled_from([syslog_line(SYSLOG_REJECT), syslog_line(SYSLOG_REJECT), syslog_line("[1\\2] " + SYSLOG_REJECT),
                     syslog_line(SYSLOG_REJECT.replace("b@example", "c@example")),
                     syslog_line(SYSLOG_DELIVERY), syslog_line(SYSLOG_FAILURE),
                     syslog_line("1abcDE-000123-AB == a@x R=r T=t defer (-53): retry time not reached"),
                     syslog_line("1abcDE-000123-AB <= a@x H=relay [1.2.3.4] P=esmtp S=12"),
                     syslog_line(SYSLOG_DELIVERY.replace("=>", "=> \u00e9")),
                     "Nov 28 00:00:02 mail01 exim[1234]: " + SYSLOG_REJECT,
                     "Nov 28 00:00:01 mail01 postfix/smtp[1]: 3F2A: to=<a@x>, relay=mx[1.2.3.4]:25, delay=1, "
                     "delays=1/2/3/4, dsn=2.0.0, status=sent (250 ok)"]),
    SHAPES.map(lambda line: syslog_line(line.split(" ", 2)[2])),
)


@needs_scanner
@settings(max_examples=300, deadline=None)
@given(st.lists(EXIM_SYSLOG_LINES, min_size=1, max_size=30), st.lists(st.integers(min_value=0, max_value=30), max_size=4))
def test_streams_of_exim_syslog_lines_give_the_same_counts(lines: list[str], cuts: list[int]) -> None:
    """Rejections, their copies and other Exim lines, with deliveries read in C between them,
    cut into chunks anywhere: chunk after chunk, the same counts."""
    chunks, last = [], 0
    for cut in sorted(set(min(cut, len(lines)) for cut in cuts)) + [len(lines)]:
        if cut > last:
            chunks.append(("\n".join(lines[last:cut]) + "\n").encode("utf-8", "surrogateescape"))
            last = cut
    assert_same_stream(chunks)
