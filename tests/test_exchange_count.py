"""The exchange_tracking parser's fast count() decides every line as its parse() does.

count() reads a chunk at the byte level and takes each line's labels from a cache keyed by its
raw fields (exporter/parsers/exchange_tracking.py, "the fast count"); parse() is the reference.
These tests compare, chunk after chunk with one parser each, the tally (label fields and time
buckets, in the order each first appears), the line counts and the newest time: on every log the
tests hold and the public corpus, on the benchmark's generated log, on each row shape with every
one-byte insertion, replacement and deletion, on hypothesis-built rows, on quoted fields holding
commas, quotes and CRs, and across `#Fields:` lines that change the layout mid-file; and the real
`ndr-exporter report --json` with and without the fast count (NDR_EXPORTER_PURE_PYTHON=1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.parsers.base import Counted, tally
from exporter.parsers.exchange_tracking import FIELDS_2010, FIELDS_2013, ExchangeTrackingParser
from exporter.report import utc_hour
from tests.helpers.exporter_process import ExporterProcess, total
from tests.helpers.logs import line_chunks, log_files

ROOT = Path(__file__).resolve().parent.parent
HEADER_2013 = ("#Fields: " + ",".join(FIELDS_2013) + "\r\n").encode()
HEADER_2010 = ("#Fields: " + ",".join(FIELDS_2010) + "\r\n").encode()


class Counting(ExchangeTrackingParser):
    """The real parser, counting the lines its fast count hands to the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.handed_back = 0

    def _read_line(self, line: str, clean: bool):  # type: ignore[no-untyped-def]
        self.handed_back += 1
        return super()._read_line(line, clean)


def shown(counted: Counted) -> tuple:
    """Everything count() answers, with the tally's order (and each bucket's) made visible."""
    return ([(fields, list(buckets.items())) for fields, buckets in counted.tally.items()],
            counted.newest, counted.lines, counted.matched, counted.ignored, counted.unparsed)


def compare(chunks: list[bytes]) -> int:
    """Both paths over the chunks in order (a parser each, so `#Fields:` lines carry over), with
    no bucket and with report's hours; returns how many lines the fast count read itself."""
    read_fast = 0
    for bucket in (None, utc_hour):
        reference, fast = ExchangeTrackingParser(), Counting()
        fast_lines = 0
        for chunk in chunks:
            before = fast.handed_back
            got = fast.count(chunk, bucket)
            assert shown(got) == shown(tally(reference.parse(chunk), bucket)), (bucket, chunk[:300])
            if b"#Fields:" not in chunk:
                fast_lines += got.matched - (fast.handed_back - before)
        read_fast = fast_lines
    return read_fast


def test_every_test_log_and_the_public_corpus_give_the_same_counts() -> None:
    """Every file, read as a tracking log: whole, in 4 KiB chunks, and a line a chunk."""
    files = log_files()
    assert len(files) > 40
    read_fast = 0
    for path in files:
        data = path.read_bytes()
        for chunks in ([data], line_chunks(data, 4096), data.splitlines(keepends=True)):
            read_fast += compare(chunks)
    assert read_fast > 10   # the tracking fixtures' status lines went the fast way


def bench_log(tmp_path: Path, lines: int) -> tuple[Path, int]:
    log = tmp_path / "exchange.log"
    generated = subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "exchange", str(lines), str(log)],
                               check=True, capture_output=True, text=True)
    return log, int(generated.stdout)


def test_the_benchmark_log_gives_the_same_counts(tmp_path: Path) -> None:
    log, events = bench_log(tmp_path, 30000)
    data = log.read_bytes()
    header = data.index(b"#Fields:")
    header = data.index(b"\n", header) + 1
    for size in (1 << 20, 5000):
        # every status line read the fast way (the header's chunk goes to the reference)
        assert compare([data[:header], *line_chunks(data[header:], size)]) == events > 8000
    compare(line_chunks(data, 1 << 20))


def test_report_gives_the_same_summary_with_and_without_the_fast_count(tmp_path: Path) -> None:
    """The real `ndr-exporter report --json`, fast count and NDR_EXPORTER_PURE_PYTHON=1: byte equal."""
    log, events = bench_log(tmp_path, 20000)
    fixtures = sorted((ROOT / "tests" / "testdata" / "parsers" / "exchange_tracking").glob("*.log"))
    for files, want in (([log], events), (fixtures, None)):
        outputs = []
        for pure in ("", "1"):
            run = subprocess.run([sys.executable, "-m", "exporter.cli", "report", "--json", "--format",
                                  "exchange_tracking", *map(str, files)], cwd=ROOT,
                                 env={**os.environ, "NDR_EXPORTER_PURE_PYTHON": pure},
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            outputs.append(run.stdout)
        assert outputs[0] == outputs[1]
        summary = json.loads(outputs[0])
        assert summary["events"] == (want if want is not None else summary["events"]) > 0


def test_the_daemon_counts_the_same_with_and_without_the_fast_count(tmp_path: Path) -> None:
    """The real daemon following a tracking log (the fixtures, with their quoted fields and
    `#Fields:` changes, then the benchmark's rows, newer, in the last fixture's layout): the same
    status series, line counts and newest time from the fast count and with
    NDR_EXPORTER_PURE_PYTHON=1."""
    generated, events = bench_log(tmp_path, 3000)
    rows = generated.read_bytes()
    rows = rows[rows.index(b"\n", rows.index(b"#Fields:")) + 1:]
    fixtures = sorted((ROOT / "tests" / "testdata" / "parsers" / "exchange_tracking").glob("*.log"))
    assert fixtures[-1].name == "multi-recipient-2013.log"   # the layout the generated rows have
    log = tmp_path / "MSGTRK2025112800-1.LOG"
    log.write_bytes(b"".join(fixture.read_bytes() for fixture in fixtures) + rows)
    lines = log.read_bytes().count(b"\n")
    wanted = ("ndr_status_codes_total", "ndr_exporter_lines_total", "ndr_exporter_last_event_timestamp_seconds")
    seen = []
    for pure in ("", "1"):
        args = ["--source.path", str(log), "--source.format", "exchange_tracking", "--start-at", "beginning"]
        with ExporterProcess(args, env={"NDR_EXPORTER_PURE_PYTHON": pure}) as exporter:
            samples = exporter.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total") == lines, timeout=60)
        seen.append({key: value for key, value in samples.items() if key[0] in wanted})
    assert seen[0] == seen[1]
    assert {key[0] for key in seen[0]} == set(wanted)
    assert total(seen[0], "ndr_status_codes_total") > events > 800


def test_pure_python_switch_turns_the_fast_count_off(monkeypatch: pytest.MonkeyPatch) -> None:
    row = ROWS_2013[0] + b"\r\n"
    assert Counting().count(row).matched == 1
    parser = Counting()
    parser.count(row)
    assert parser.handed_back == 0
    monkeypatch.setenv("NDR_EXPORTER_PURE_PYTHON", "1")
    parser = Counting()
    parser.count(row)
    assert parser.handed_back == 1


# --- row shapes, a byte at a time ---------------------------------------------------------

def row(*, event: str = "SENDEXTERNAL", status: str = '"250 2.0.0 OK"', source: str = "SMTP",
        recipients: str = "user1@example.org", stamp: str = "2025-11-28T10:15:02.193Z",
        host: str = "mx1.partner.example", ip: str = "203.0.113.41", subject: str = '"Invoice 5.1.1, reminder"',
        context: str = "08DA1234ABCD;250 2.0.0 OK") -> bytes:
    """A row of the Exchange 2013 layout with these fields (given as written, quotes and all)."""
    return (f"{stamp},10.0.0.1,relay.example.org,{ip},{host},{context},EX01\\Default EX01,{source},{event},"
            f"4617160,<4617160.5.4.8@ex01.example>,a1b2c3d4-0000-4000-8000-000004617160,{recipients},{status},"
            f"5521,1,,,{subject},news@example.org,news@example.org,,Originating,,,,,Email,a1b2c3d4-4617160,"
            f"15.02.1118.007").encode()


ROWS_2013 = [
    row(),
    row(event="DEFER", status='"451 4.4.0 Remote server deferred the message"'),
    row(event="FAIL", status="550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", source="ROUTING", host="EX01"),
    row(event="FAIL", status="550 4.4.7 QUEUE.Expired;message expired", recipients="a@x.example"),
    row(event="DELIVER", source="STOREDRIVER", recipients="ann@contoso.example;raj@contoso.example",
        status="250 2.1.5 Recipient OK;250 2.1.5 Recipient OK"),
    row(event="DEFER", recipients="a@x.example;b@y.example; ;c@z.example",
        status="[{LRT=};{LED=451 4.4.397 Error;bad};{FQDN=mx.x.example};{IP=203.0.113.9}];"
               "[{LRT=};{LED=421 4.4.2 timeout}];451 4.7.0 later"),
    row(event="SEND", host="EX02.contoso.example"),
    row(event="RECEIVE", status="", subject='"Re: build,FAIL,retry"'),
    row(event="SENDEXTERNAL", status="2.1.5Recipient OK", host="", ip="198.51.100.7"),
    row(stamp="2024-02-29T23:59:59.999Z", event="FAIL", status='"554 5.7.606 Access denied, banned sending IP"'),
]
ROW_2010 = (b"2011-05-02T18:22:09.123Z,10.0.0.5,EX10,203.0.113.8,mx.partner.example,08CDD6;250 2.0.0 OK,"
            b"Internet,SMTP,SEND,1234,<m@ex10.example>,bob@partner.example,250 2.0.0 OK,3321,1,,,hello,"
            b"a@contoso.example,a@contoso.example,,Originating,,,,")
EDIT_BYTES = [b'"', b",", b";", b"\r", b" ", b"5", b".", b"Z", b"\xff", b"\xc3\xa9", b"\x00"]


def edits(line: bytes) -> list[bytes]:
    """Every one-byte deletion, and every insertion and replacement of a byte from EDIT_BYTES."""
    out = []
    for at in range(len(line) + 1):
        out.append(line[:at] + line[at + 1:])
        for byte in EDIT_BYTES:
            out.append(line[:at] + byte + line[at:])
            out.append(line[:at] + byte + line[at + 1:])
    return out


@pytest.mark.parametrize("shape", range(len(ROWS_2013) + 1))
def test_each_row_shape_with_each_one_byte_edit_gives_the_same_result(shape: int) -> None:
    header, line = (HEADER_2013, ROWS_2013[shape]) if shape < len(ROWS_2013) else (HEADER_2010, ROW_2010)
    variants = edits(line)
    reference, fast = ExchangeTrackingParser(), Counting()
    reference.parse(header)
    fast.count(header)
    for variant in variants:
        chunk = variant + b"\r\n"
        result = reference.parse(chunk)
        for bucket in (None, utc_hour):
            assert shown(fast.count(chunk, bucket)) == shown(tally(result, bucket)), variant
    assert fast.handed_back < len(variants)   # most of the 2 x variants went the fast way
    # the UTF-8 variants as one chunk: a cache shared by every line, the first-seen order kept
    chunk = b"\r\n".join(v for v in variants if b"\xff" not in v) + b"\r\n"
    for bucket in (None, utc_hour):
        assert shown(fast.count(chunk, bucket)) == shown(tally(reference.parse(chunk), bucket))


def test_quoted_fields_with_commas_quotes_and_crs() -> None:
    rows = [
        row(status='"550 5.1.1 no, such user"'),
        row(status='"550 5.1.1 a ""quoted"" user"'),
        row(status='"550 5.1.1 a\rb"', event="FAIL"),
        row(host='"mx1,partner.example"'),
        row(host='"mx1.partner.example"'),
        row(source='"SMTP"', host='""'),
        row(event='"FAIL"', status='"550 5.1.1 x"'),
        row(recipients='"a@x.example;b@y.example"', status='"550 5.1.1 x;550 5.1.2 y"', event="FAIL"),
        row(context='"08DA;250 2.0.0 OK, queued"'),
        row(context='"08DA"x'),
        row(context='a"b'),
        row(stamp='"2025-11-28T10:15:02.193Z"'),
        row(subject='"a\rb"'),
        row(subject='"a ""b"", c'),
        row(subject='"open'),
        row(status='"550 5.1.1 x"y', event="FAIL"),
        row(status='"550 5.1.1 x",', event="FAIL"),
        row(recipients="a@x.example\r"),
        row(event="FAIL\r"),
        row() + b"\r\r",
        row(event="FAIL", status="550 5.1.1 x" + "y" * 140_000),
        b'a,"b,FAIL,"c',
        b",FAIL,",
        b"2025-11-28T10:15:02.193Z,,,,,,,,FAIL,,,,,550 5.1.1 x",
        b"2025-11-28T10:15:02.193Z,,,,,,,,FAIL,,,,,",
        b"2025-11-28T10:15:02.193Z,,,,,,,,FAIL,,,,",
        b'2025-11-28T10:15:02.193Z,,,,,,,,FAIL,,,,"a,b"',
        b'2025-11-28T10:15:02.193Z,,,,,,,,FAIL,,,,"",',
    ]
    data = b"".join(r + b"\r\n" for r in rows)
    compare([data])
    compare(data.splitlines(keepends=True))
    compare([HEADER_2013 + data])


def test_times_in_every_shape_give_the_same_times() -> None:
    stamps = ["2025-11-28T10:15:02.193Z", "2025-11-28T10:15:59.999Z", "2025-11-28T10:15:60.000Z",
              "2025-11-28T24:00:00.000Z", "2025-11-28T23:60:00.000Z", "2025-02-29T10:15:02.193Z",
              "2024-02-29T10:15:02.193Z", "2025-13-28T10:15:02.193Z", "2025-11-28 10:15:02.193Z",
              "2025-11-28T10:15:02.193+01:00", "2025-11-28T10:15:02.1930000Z", "2025-11-28T10:15:02Z",
              "2025-11-28T10:15:02.19Z", " 2025-11-28T10:15:02.193Z", "2025-11-28T10:15:02.193z",
              "2025-11-28T10:15:0a.193Z", "2025-11-28T10:15:02.1a3Z", "0001-01-01T00:00:00.000Z",
              "9999-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z", "2025-11-28T10:15", "",
              "2025-11-28T10:15:02.193Z2", "2025-11-28T10:15:+2.193Z", "2025-11-28T10:15:-1.193Z",
              "\u0661\u0662025-11-28T10:15:02.193Z", "2025-11-28T10:1\u0665:02.193Z"]
    for stamp in stamps:
        compare([row(stamp=stamp) + b"\r\n"])
    compare([b"".join(row(stamp=stamp) + b"\r\n" for stamp in stamps)])
    # every pair in one chunk: the newest of the two, whichever shapes they have
    for first in stamps:
        for second in stamps:
            compare([row(stamp=first) + b"\r\n" + row(stamp=second, event="DEFER") + b"\r\n"])


def test_a_fields_line_changes_the_layout_mid_file() -> None:
    """2013 rows, a 2010 `#Fields:` line, 2010 rows (SEND now counts), a 2013 one again, and a
    `#Fields:` line that names no event-id: cut at every size, each chunk's layout is the one its
    lines follow."""
    no_event = b"#Fields: date-time,recipient-status\r\n"
    data = (b"\xef\xbb\xbf#Software: Microsoft Exchange Server\r\n" + HEADER_2013
            + b"".join(r + b"\r\n" for r in ROWS_2013)
            + HEADER_2010 + (ROW_2010 + b"\r\n") * 3 + b"\xef\xbb\xbf" + HEADER_2013 + ROWS_2013[6] + b"\r\n"
            + ROWS_2013[0] + b"\r\n" + no_event + ROWS_2013[1] + b"\r\n" + HEADER_2010 + ROW_2010 + b"\r\n")
    for size in (64, 300, 700, 1500, len(data)):
        compare(line_chunks(data, size))


# --- hypothesis-built rows ------------------------------------------------------------------

def quoted(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A field's value as written: plain, or quoted as the csv module writes it, or quoted badly."""
    return values.flatmap(lambda v: st.sampled_from([v, '"' + v.replace('"', '""') + '"', '"' + v, v + '"']))


ODD = st.text(alphabet=st.sampled_from(list('a5.,;" \r\t\xe9Z:-[]{}=') + ["\x00"]), max_size=8)
EVENTS = st.sampled_from(["FAIL", "DEFER", "DELIVER", "SENDEXTERNAL", "SEND", "RECEIVE", "DSN", "fail"])
STATUSES = st.sampled_from(["250 2.0.0 OK", "550 5.1.1 unknown", "550 4.4.7 QUEUE.Expired;x", "2.1.5Recipient OK",
                            "451 4.7.0 a;451 4.7.1 b", "[{LRT=};{LED=550 5.4.8 loop}]", "", "354 go", "5.7.1 no"])
RECIPIENTS = st.sampled_from(["a@x.example", "a@x.example;b@y.example", ";", "", " ; a@x.example ;",
                              "a@x.example;b@y.example;c@z.example"])
STAMPS = st.sampled_from(["2025-11-28T10:15:02.193Z", "2025-11-28T10:15:60.193Z", "2025-11-28T10:15:02Z",
                          "2025-02-30T10:15:02.193Z", "x"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(quoted(EVENTS | ODD), quoted(STATUSES | ODD), quoted(RECIPIENTS | ODD),
                          quoted(STAMPS | ODD), quoted(st.sampled_from(["SMTP", "STOREDRIVER", "smtp"]) | ODD),
                          quoted(st.sampled_from(["mx.example", "", "EX01"]) | ODD),
                          quoted(st.sampled_from(["a,b", "x", ""]) | ODD), st.booleans()),
                min_size=1, max_size=12))
def test_hypothesis_rows_give_the_same_counts(rows: list[tuple]) -> None:
    data = b""
    for event, status, recipients, stamp, source, host, other, crlf in rows:
        data += row(event=event, status=status, recipients=recipients, stamp=stamp, source=source, host=host,
                    context=other, subject=other)
        data += b"\r\n" if crlf else b"\n"
    compare([data])
    compare(data.splitlines(keepends=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([r + b"\r\n" for r in ROWS_2013] + [b",FAIL,\n", b'"\n', b"#Fields: x\n", b"\n"])
                | st.binary(max_size=40), max_size=10))
def test_arbitrary_pieces_give_the_same_counts(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    compare([data])
    compare(line_chunks(data, 100))
