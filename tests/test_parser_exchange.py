"""Exchange message tracking and SMTP protocol log parsers: exact events, chunking, bad input.

The lines follow the layouts documented in tests/testdata/parsers/exchange_tracking/README.md
and tests/testdata/parsers/exchange_protocol/README.md (the golden pairs there are run by
tests/test_golden.py); these tests check the rules one at a time.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from exporter.events import BOUNCED, DEFERRED, DELIVERED, EXPIRED, REJECTED, StatusEvent
from exporter.parsers.exchange_protocol import ExchangeProtocolParser
from exporter.parsers.exchange_tracking import FIELDS_2010, FIELDS_2013, ExchangeTrackingParser
from exporter.parsers.w3c import split_reply

DATA = Path(__file__).resolve().parent / "testdata" / "parsers"
TRACKING_FILE = DATA / "exchange_tracking" / "exchange2013_2010.log"
SEND_FILE = DATA / "exchange_protocol" / "send.log"
RECEIVE_FILE = DATA / "exchange_protocol" / "receive.log"

HEADER_2013 = ("#Software: Microsoft Exchange Server\r\n#Version: 15.02.1258.012\r\n"
               "#Log-type: Message Tracking Log\r\n#Date: 2024-03-11T08:00:01.482Z\r\n"
               "#Fields: " + ",".join(FIELDS_2013) + "\r\n").encode()
HEADER_2010 = ("#Software: Microsoft Exchange Server\r\n#Version: 14.03.0123.004\r\n"
               "#Log-type: Message Tracking Log\r\n#Date: 2024-03-13T10:00:00.102Z\r\n"
               "#Fields: " + ",".join(FIELDS_2010) + "\r\n").encode()


def tracking_line(fields: list[str], **values: str) -> bytes:
    """One tracking row in a layout; values named like the columns (dashes as underscores)."""
    cells = []
    for name in fields:
        value = values.get(name.replace("-", "_"), "")
        if any(ch in value for ch in ',"'):
            value = '"' + value.replace('"', '""') + '"'
        cells.append(value)
    return (",".join(cells) + "\r\n").encode()


FAIL_TWO = tracking_line(
    FIELDS_2013, date_time="2024-03-11T08:40:12.913Z", client_ip="10.20.1.15", client_hostname="EX01",
    server_ip="40.97.1.2", server_hostname="tenant-example.mail.protection.outlook.com", source="SMTP",
    event_id="FAIL", internal_message_id="46171603615830",
    recipient_address="x@tenant.example;y@tenant.example",
    recipient_status="550 5.7.606 Access denied, banned sending IP [203.0.113.9];"
                     "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    message_subject="hello, world; again", sender_address="ann@contoso.example")
SEND_2013 = tracking_line(
    FIELDS_2013, date_time="2024-03-11T08:33:10.250Z", server_hostname="EX02.contoso.example",
    source="SMTP", event_id="SEND", internal_message_id="46171603615821",
    recipient_address="kim@contoso.example", recipient_status="250 2.1.5 Recipient OK")
SEND_2010 = tracking_line(
    FIELDS_2010, date_time="2024-03-13T10:05:01.300Z", server_ip="209.85.233.26",
    server_hostname="gmail-smtp-in.l.google.com", source="SMTP", event_id="SEND",
    internal_message_id="1187", recipient_address="pat@gmail.example",
    recipient_status="250 2.0.0 OK 1710324301 x12si123 - gsmtp")


def test_fail_with_two_recipients_gives_one_event_each_with_its_own_code():
    result = ExchangeTrackingParser().parse(HEADER_2013 + FAIL_TWO)
    remote = "tenant-example.mail.protection.outlook.com"
    stamp = 1710146412.913
    assert result.events == [
        StatusEvent("exchange", BOUNCED, "5.7.606", "550", remote, stamp, "46171603615830"),
        StatusEvent("exchange", BOUNCED, "5.1.10", "550", remote, stamp, "46171603615830"),
    ]
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (6, 1, 5, 0)


def test_without_a_header_the_2013_layout_is_assumed():
    # A follower that starts at the end of a file never sees the #Fields: line.
    result = ExchangeTrackingParser().parse(FAIL_TWO)
    assert [e.code for e in result.events] == ["5.7.606", "5.1.10"]
    assert (result.lines, result.matched) == (1, 1)


def test_a_new_header_resets_the_column_map():
    parser = ExchangeTrackingParser()
    # In the 2013 layout SEND is an internal hop: ignored.
    first = parser.parse(HEADER_2013 + SEND_2013)
    assert first.events == [] and first.ignored == 6
    # The 2010 header moves every column after message-id by one, and SEND is counted.
    second = parser.parse(HEADER_2010 + SEND_2010)
    assert second.events == [StatusEvent("exchange", DELIVERED, "2.0.0", "250",
                                         "gmail-smtp-in.l.google.com", 1710324301.3, "1187")]
    # Back to the 2013 header: the FAIL row reads right again, and SEND is ignored again.
    third = parser.parse(HEADER_2013 + FAIL_TWO + SEND_2013)
    assert [e.code for e in third.events] == ["5.7.606", "5.1.10"]
    assert (third.matched, third.ignored) == (1, 6)


def test_expired_and_deferred_and_dsn():
    expired = tracking_line(FIELDS_2013, date_time="2024-03-13T09:02:45.001Z", source="QUEUE",
                            event_id="FAIL", recipient_address="lee@slow.example",
                            recipient_status="550 4.4.7 QUEUE.Expired; message expired")
    deferred = tracking_line(FIELDS_2013, date_time="2024-03-11T09:02:44.318Z", source="SMTP",
                             server_hostname="mx.slow.example", event_id="DEFER",
                             recipient_address="lee@slow.example",
                             recipient_status="[{LRT=3/11/2024 8:57:44 AM};{LED=451 4.4.0 Primary target "
                                              "IP address responded with: \"421 4.4.2 Connection dropped\"};"
                                              "{FQDN=mx.slow.example};{IP=192.0.2.77}]")
    dsn = tracking_line(FIELDS_2013, date_time="2024-03-13T09:02:45.100Z", source="DSN", event_id="DSN",
                        recipient_address="ann@contoso.example")
    result = ExchangeTrackingParser().parse(expired + deferred + dsn)
    assert [(e.outcome, e.code, e.reply, e.remote) for e in result.events] == [
        (EXPIRED, "4.4.7", "550", None),
        (DEFERRED, "4.4.0", "451", "mx.slow.example"),
    ]
    assert (result.matched, result.ignored, result.unparsed) == (2, 1, 0)


def test_two_deferred_recipients_each_with_a_last_error_block():
    block = "[{{LRT=3/11/2024 8:57:44 AM}};{{LED={led}}};{{FQDN=mx.slow.example}};{{IP=192.0.2.77}}]"
    line = tracking_line(FIELDS_2013, date_time="2024-03-11T09:02:44.318Z", source="SMTP",
                         server_hostname="mx.slow.example", event_id="DEFER",
                         recipient_address="lee@slow.example;kai@slow.example",
                         recipient_status=block.format(led="451 4.4.0 DNS query failed") + ";"
                         + block.format(led="452 4.2.2 Mailbox full"))
    result = ExchangeTrackingParser().parse(line)
    assert [(e.outcome, e.code, e.reply) for e in result.events] == [
        (DEFERRED, "4.4.0", "451"), (DEFERRED, "4.2.2", "452")]


def test_truncated_and_short_rows_are_unparsed():
    cut = FAIL_TWO[: FAIL_TWO.index(b"Recipient not found")] + b"\r\n"
    short = b"2024-03-13T10:07:00.000Z,10.20.1.30,HUB01,,HUB01,,,SMTP,DEFER,1189\r\n"
    result = ExchangeTrackingParser().parse(cut + short)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (2, 0, 0, 2)
    assert result.events == []


def test_tracking_file_in_any_chunking_gives_the_same_events():
    data = TRACKING_FILE.read_bytes()
    whole = ExchangeTrackingParser().parse(data)
    assert (whole.lines, whole.matched, whole.ignored, whole.unparsed) == (24, 9, 13, 2)
    assert len(whole.events) == 12
    assert _in_pieces(ExchangeTrackingParser(), data, 5) == (whole.events, whole.lines, whole.matched,
                                                            whole.ignored, whole.unparsed)


def test_no_address_or_free_text_reaches_an_event():
    for parser, path in ((ExchangeTrackingParser(), TRACKING_FILE), (ExchangeProtocolParser(), SEND_FILE),
                         (ExchangeProtocolParser(), RECEIVE_FILE)):
        for event in parser.parse(path.read_bytes()).events:
            assert event.code is None or event.code.count(".") == 2
            assert event.reply is None or (len(event.reply) == 3 and event.reply.isdigit())
            assert event.remote is None or "@" not in event.remote


# --- protocol logs -------------------------------------------------------------------------

def test_send_log_pairs_pipelined_replies_with_their_commands():
    result = ExchangeProtocolParser().parse(SEND_FILE.read_bytes())
    assert [(e.outcome, e.code, e.reply, e.remote, e.queue_id) for e in result.events] == [
        (BOUNCED, "5.1.1", "550", "142.250.153.27", "08DC4171A8E3D001"),
        (DELIVERED, "2.0.0", "250", "142.250.153.27", "08DC4171A8E3D001"),
        (DEFERRED, "4.5.3", "452", "198.51.100.60", "08DC4171A8E3D002"),
        (DELIVERED, "2.0.0", "250", "198.51.100.60", "08DC4171A8E3D002"),
        (DELIVERED, "2.0.0", "250", "198.51.100.60", "08DC4171A8E3D002"),
        (BOUNCED, "5.7.606", "550", "2001:db8:5::25", "08DC4171A8E3D003"),
        (DEFERRED, None, "451", "192.0.2.77", "08DC4171A8E3D004"),
        (DEFERRED, "4.3.2", "421", "198.51.100.99", "08DC4171A8E3D005"),
    ]
    assert (result.lines, result.matched, result.unparsed) == (72, 7, 1)


def test_receive_log_counts_our_refusals_only():
    result = ExchangeProtocolParser().parse(RECEIVE_FILE.read_bytes())
    assert [(e.outcome, e.code, e.reply, e.remote) for e in result.events] == [
        (REJECTED, "5.1.10", "550", "198.51.100.23"),
        (REJECTED, "5.7.54", "550", "198.51.100.23"),
        (REJECTED, "4.3.1", "452", "203.0.113.200"),
        (REJECTED, "5.6.0", "554", "203.0.113.200"),
    ]
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (45, 4, 40, 1)


def test_a_session_split_across_chunks_keeps_its_pending_commands():
    data = SEND_FILE.read_bytes()
    whole = ExchangeProtocolParser().parse(data)
    for step in (1, 3, 7):
        assert _in_pieces(ExchangeProtocolParser(), data, step)[0] == whole.events


def test_replies_to_commands_not_seen_give_no_delivery():
    # Started in the middle of a session: a 250 with nothing pending is not a delivery.
    line = (b"2024-03-11T08:31:40.400Z,Outbound to Internet,08DC4171A8E3D001,13,10.20.1.15:51234,"
            b"142.250.153.27:25,<,250 2.0.0 OK  1710145900 a1si123456pjb.11 - gsmtp,\r\n")
    result = ExchangeProtocolParser().parse(line)
    assert result.events == [] and (result.matched, result.ignored) == (0, 1)


# --- helpers and bad input -----------------------------------------------------------------

def test_split_reply():
    assert split_reply("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found") == ("550", "5.1.1")
    assert split_reply("550-5.7.26 This mail is unauthenticated") == ("550", "5.7.26")
    assert split_reply("[{LRT=};{LED=550 5.4.8 MX record points to a loop};{FQDN=};{IP=}]") == ("550", "5.4.8")
    assert split_reply("2.1.5Recipient OK") == (None, "2.1.5")
    assert split_reply("451 Temporary local problem - please try later") == ("451", None)
    assert split_reply("550 5.01.1 bad code") == ("550", None)
    assert split_reply("To") == (None, None)


def _in_pieces(parser, data: bytes, step: int):
    """Feed data in pieces of `step` lines; the summed result."""
    lines = data.splitlines(keepends=True)
    events: list[StatusEvent] = []
    totals = [0, 0, 0, 0]
    for start in range(0, len(lines), step):
        result = parser.parse(b"".join(lines[start:start + step]))
        events.extend(result.events)
        totals = [a + b for a, b in zip(totals, result[1:])]
    return (events, *totals)


_PIECES = st.sampled_from([
    HEADER_2013, HEADER_2010, FAIL_TWO, SEND_2010, b"\xef\xbb\xbf", b"\r\n", b"\n", b",", b'"',
    b",FAIL,", b",DEFER,", b",<,", b",>,", b",-,", b"550 5.1.1 ", b"RCPT TO:<a@b>", b"DATA", b"354 go",
    b"#Fields: event,data\n", b"#Fields:\n", b"\xff\xfe", b"\x00", b"\r",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.binary(max_size=40),
                         st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass"))),
                max_size=25))
def test_arbitrary_bytes_never_raise(pieces: list[bytes]):
    data = b"".join(pieces)
    for make in (ExchangeTrackingParser, ExchangeProtocolParser):
        result = make().parse(data)
        assert result.lines == result.matched + result.ignored + result.unparsed
        assert min(result.matched, result.ignored, result.unparsed) >= 0
        assert result.matched <= len(result.events)
        # Line by line, the same events and counts.
        assert _line_by_line(make(), data) == (result.events, *result[1:5])


def test_a_stray_carriage_return_in_an_unquoted_field_is_unparsed():
    # The csv module refuses a CR outside quotes: the line is unparsed, not an exception.
    line = b'2024-03-11T08:40:12.913Z,,,,,,,SMTP,FAIL,1,x\ry,,a@b.example,"550 5.1.1 x",1,1\n'
    result = ExchangeTrackingParser().parse(line)
    assert (result.lines, result.matched, result.ignored, result.unparsed) == (1, 0, 0, 1)


def _line_by_line(parser, data: bytes):
    """Feed data one line (up to and with its b"\\n") at a time; the summed result."""
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    events: list[StatusEvent] = []
    totals = [0, 0, 0, 0]
    for line in lines:
        result = parser.parse(line)
        events.extend(result.events)
        totals = [a + b for a, b in zip(totals, result[1:])]
    return (events, *totals)


def test_tracking_file_through_the_pipeline_counts_exact_series():
    from exporter.metrics import Metrics
    from exporter.pipeline import process_chunk

    metrics = Metrics()
    process_chunk("msgtrk", ExchangeTrackingParser(), TRACKING_FILE.read_bytes(), metrics)
    metrics.commit()
    published = metrics.published()
    by_outcome_code: dict[tuple[str, str], float] = {}
    for key, value in published.status.items():
        assert key[0] == "exchange"
        assert all("@" not in label for label in key)
        by_outcome_code[(key[1], key[2])] = by_outcome_code.get((key[1], key[2]), 0.0) + value
    assert by_outcome_code == {
        (DELIVERED, "2.1.5"): 3.0, (DELIVERED, "2.0.0"): 1.0, (DELIVERED, "none"): 1.0,
        (BOUNCED, "5.1.1"): 2.0, (BOUNCED, "5.7.606"): 1.0, (BOUNCED, "5.1.10"): 1.0,
        (BOUNCED, "5.4.1"): 1.0, (DEFERRED, "4.4.0"): 1.0, (EXPIRED, "4.4.7"): 1.0,
    }
    assert published.lines[("msgtrk", "matched")] == 9.0
    assert published.lines[("msgtrk", "unparsed")] == 2.0


# --- issue 13: Exchange Online message-trace CSV (format exchange_trace) -------------------------

def test_message_trace_downloads_through_the_real_process():
    import json
    from pathlib import Path

    from tests.helpers.exporter_process import run_exporter

    data_dir = Path(__file__).parent / "testdata" / "parsers" / "exchange_trace"
    files = [str(data_dir / name) for name in ("summary.log", "enhanced-summary.log", "extended-report.log")]
    result = run_exporter(["report", "--json", "--format", "exchange_trace", *files], env={"TZ": "UTC"})
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert data["by_outcome"] == {"delivered": 5, "bounced": 4, "deferred": 3}
    counted = sorted((c["code"], o, n) for c in data["codes"] for o, n in c["outcomes"].items())
    assert ("5.1.10", "bounced", 1) in counted and ("4.7.500", "deferred", 1) in counted
    assert not any(code in ("5.1.1", "5.7.1") and o != "bounced" for code, o, _ in counted)
    assert data["lines"]["unparsed"] == 1


def test_auto_detection_names_each_message_trace_layout():
    from pathlib import Path

    from exporter.parsers.detect import detect_format

    data_dir = Path(__file__).parent / "testdata" / "parsers" / "exchange_trace"
    for name in ("summary.log", "enhanced-summary.log", "extended-report.log"):
        assert detect_format((data_dir / name).read_bytes()[:4096]) == "exchange_trace", name


# --- several recipients in one row; Exchange 2013+ SEND / RECEIVE (issue 13) --------------------

MULTI_FILE = DATA / "exchange_tracking" / "multi-recipient-2013.log"


def test_per_recipient_statuses_through_the_real_process():
    """One event per recipient with its own status; RECEIVE, 2013+ SEND, DSN and the other rows
    nothing (tests/testdata/parsers/exchange_tracking/README.md lists the rows)."""
    import json

    from tests.helpers.exporter_process import run_exporter

    result = run_exporter(["report", "--json", "--format", "exchange_tracking", str(MULTI_FILE)], env={"TZ": "UTC"})
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    counted = {(c["code"], o): n for c in data["codes"] for o, n in c["outcomes"].items()}
    assert counted == {
        ("2.1.5", DELIVERED): 5,                     # DELIVER x3, SENDEXTERNAL x2; SEND not counted
        ("5.1.1", BOUNCED): 3, ("5.7.1", BOUNCED): 4, ("5.2.2", BOUNCED): 1, ("5.7.606", BOUNCED): 1,
        ("5.5.3", BOUNCED): 1, ("5.1.10", BOUNCED): 1,
        ("4.7.500", DEFERRED): 1, ("4.2.2", DEFERRED): 1, ("4.4.0", DEFERRED): 3,
        ("4.4.7", EXPIRED): 2,
    }
    assert data["by_outcome"] == {"delivered": 5, "bounced": 11, "deferred": 5, "expired": 2}
    assert (data["lines"]["matched"], data["lines"]["unparsed"]) == (9, 0)


def test_a_number_after_a_semicolon_inside_a_status_does_not_start_a_status():
    parser = ExchangeTrackingParser()
    line = tracking_line(
        FIELDS_2013, date_time="2024-05-02T10:07:00.300Z", event_id="FAIL", source="ROUTING",
        recipient_address="a@contoso.example;b@contoso.example",
        recipient_status="550 5.5.3 RESOLVER.ADR.RecipLimit; too many recipients; 500 at most;"
                         "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found")
    events = parser.parse(HEADER_2013 + line).events
    assert [(e.outcome, e.code) for e in events] == [(BOUNCED, "5.5.3"), (BOUNCED, "5.1.10")]


def test_a_fields_header_with_a_stray_carriage_return_is_not_a_crash():
    """Found by the fuzzer (fuzz/run.py): a "#Fields:" line of a protocol log with a CR inside it
    made the csv module raise, and the parser with it. Such a header names no field; the lines
    after it cannot be read as rows of it and count as unparsed, and the parser goes on."""
    from exporter.parsers import make_parser

    chunk = (b"#Date: 2024-03-11T09:00:00.002Z\r\n"
             b"#Fields: date-time,session-id,connector-id,sequence-number,local-endpoint\r4\n"
             b"2024-03-11T09:01:00.000Z,08DC,Internet,2,[2001:db8:1::15]:50111,[2001:db8:5::25]:25,>,EHLO x,\r\n")
    for fmt in ("exchange_protocol", "exchange_tracking", "iis_smtp"):
        result = make_parser(fmt).parse(chunk)
        assert result.lines == 3 and result.matched == 0 and result.events == []
        assert result.lines == result.matched + result.ignored + result.unparsed


def test_a_status_of_one_or_two_digits_or_other_scripts_digits_gives_no_reply() -> None:
    """A recipient-status "3" (a shifted row, as the fuzzer built one) was read as reply "3":
    the real `explain --json` must show no reply for it, nor for "33" or Arabic-Indic digits,
    and still the intermediate reply of "354 go on"."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    replies = {}
    for status in ("3", "33", "3\u0663\u0663 x", "354 go on"):
        line = ("2024-05-02T10:09:00.500Z,10.0.0.1,EX01,192.0.2.90,relay.example,,Out,SMTP,FAIL,5153,<m@x>,abc,"
                f"a@x.example,{status},1500,1,,,hi,b@x,b@x,,Originating,,,,,Email,,15.02")
        run = subprocess.run([sys.executable, "-m", "exporter.cli", "explain", "--json", "--format",
                              "exchange_tracking", line], cwd=root, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        [explained] = json.loads(run.stdout)
        [event] = explained["events"]
        replies[status] = event["reply"]
    assert replies == {"3": None, "33": None, "3\u0663\u0663 x": None, "354 go on": "354"}
