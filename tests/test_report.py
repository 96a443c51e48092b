"""`ndr-exporter report`: the real console command over logs real Postfix and Exim wrote.

Every expected number comes from the tables below, which were written by reading the
fixtures line by line (test_the_tables_match_the_fixtures checks that no status line was
missed or misread); nothing is taken from the exporter's own output. The same tables serve
tests/test_backfill.py and tests/test_demo.py.
"""

from __future__ import annotations

import gzip
import json
import os
import pty
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.exporter_process import EXPORTER_CMD, REPO, exporter_env, run_exporter

# The bundled demo sample: the first log the e2e suite captured from real Postfix 3.7.11 (29 Nov
# 2026, 05:38). tests/testdata/real/ holds the newest capture, which changes as the suite grows;
# this copy stays as it is, so the tables below keep matching it.
POSTFIX_LOG = REPO / "exporter" / "data" / "samples" / "postfix-demo.log"
EXIM_LOG = REPO / "tests" / "testdata" / "parsers" / "exim" / "exim-testsuite-0622.log"
POSTFIX_LINES = 205   # wc -l
EXIM_LINES = 70
UTC_ENV = {"TZ": "UTC"}   # syslog and Exim stamps are local time: read them as UTC

# Every status line of the real Postfix log (POSTFIX_LOG), read by eye:
# (line number, second of "Nov 29 05:38:SS", outcome, code, provider). The code is the
# record's dsn=, or the enhanced code of a reject's reply; qmgr's "status=expired, returned to
# sender" has no code and counts as 4.4.7 (delivery time expired). provider is "none" when
# the line names no remote host (relay=local, relay=none, qmgr), else "other" (127.0.0.1 and
# the smtpd clients localhost / 127.0.0.2 are no known mailbox provider).
POSTFIX_EVENTS: list[tuple[int, int, str, str, str]] = [
    (13, 14, "deferred", "4.4.1", "none"), (20, 14, "deferred", "4.7.1", "other"),
    (27, 15, "deferred", "4.2.2", "other"), (34, 15, "deferred", "4.0.0", "other"),
    (41, 16, "deferred", "4.4.2", "other"), (48, 16, "delivered", "2.0.0", "none"),
    (51, 16, "rejected", "5.1.1", "other"),
    (54, 17, "rejected", "5.7.1", "other"), (57, 17, "rejected", "5.3.4", "other"),
    (65, 17, "bounced", "5.2.2", "none"), (70, 17, "delivered", "2.0.0", "none"),
    (79, 18, "bounced", "5.4.6", "none"), (83, 18, "delivered", "2.0.0", "none"),
    (92, 18, "delivered", "2.0.0", "other"), (100, 18, "bounced", "5.1.1", "other"),
    (105, 18, "delivered", "2.0.0", "none"),
    (113, 19, "bounced", "5.7.606", "other"), (118, 19, "delivered", "2.0.0", "none"),
    (126, 19, "bounced", "5.4.6", "other"), (131, 19, "delivered", "2.0.0", "none"),
    (139, 20, "bounced", "5.3.4", "other"), (144, 20, "delivered", "2.0.0", "none"),
    (152, 20, "bounced", "5.7.1", "other"), (157, 20, "delivered", "2.0.0", "none"),
    (164, 23, "deferred", "4.2.2", "other"), (165, 23, "deferred", "4.0.0", "other"),
    (166, 23, "expired", "4.4.7", "none"), (167, 23, "expired", "4.4.7", "none"),
    (173, 23, "deferred", "4.4.1", "none"), (174, 23, "expired", "4.4.7", "none"),
    (175, 23, "delivered", "2.0.0", "none"), (181, 23, "delivered", "2.0.0", "none"),
    (183, 23, "deferred", "4.4.2", "other"), (184, 23, "expired", "4.4.7", "none"),
    (189, 23, "delivered", "2.0.0", "none"), (191, 23, "deferred", "4.7.1", "other"),
    (192, 23, "expired", "4.4.7", "none"), (201, 23, "delivered", "2.0.0", "none"),
    (203, 23, "delivered", "2.0.0", "none"),
]

# Exim's own test suite log 0622 (all at 1999-03-02 09:44:33): (line numbers, outcome, code,
# provider). "=>"/"->" with C="250 ..." are deliveries to 127.0.0.1 with no enhanced code;
# ":blackhole:" deliveries name no host; "==" lines are deferrals and "temporarily rejected
# RCPT" lines rejects, all "452 4.5.3".
EXIM_GROUPS: list[tuple[list[int], str, str, str]] = [
    ([2, 3, 4, 5, 6, 7, 10, 16, 19, 20, 21, 22], "delivered", "none", "other"),
    ([32, 37, 38, 39, 42, 43, 53, 60, 61, 62, 67, 68], "delivered", "none", "none"),
    ([11, 12, 13, 14, 15, 17, 18], "deferred", "4.5.3", "other"),
    ([26, 27, 28, 29, 30, 34, 35, 47, 48, 49, 50, 51, 57, 58], "rejected", "4.5.3", "other"),
]
EXIM_EVENTS = [(line, outcome, code, provider) for lines, outcome, code, provider in EXIM_GROUPS
               for line in lines]

# RFC 3463: the first digit is the class, the second the subject. The label words are the
# ones docs/metrics.md lists. A code-less delivery ("none") is class success, subject other.
CLASSES = {"2": "success", "4": "transient", "5": "permanent"}
SUBJECTS = {"0": "other", "1": "addressing", "2": "mailbox", "3": "mail_system", "4": "network_routing",
            "5": "protocol", "6": "content", "7": "security_policy"}
# The meaning of each code the fixtures hold, as exporter/data/status_codes.csv words it.
MEANINGS = {
    "2.0.0": ("no detail beyond the class", "iana"), "4.0.0": ("no detail beyond the class", "iana"),
    "4.4.7": ("delivery time expired", "iana"), "4.2.2": ("mailbox full", "iana"),
    "4.4.1": ("no answer from host", "iana"), "4.4.2": ("connection broken", "iana"),
    "4.7.1": ("delivery not authorized", "iana"), "5.1.1": ("recipient mailbox does not exist", "iana"),
    "5.3.4": ("message too big for system", "iana"), "5.4.6": ("routing loop detected", "iana"),
    "5.7.1": ("delivery not authorized", "iana"), "5.2.2": ("mailbox full", "iana"),
    "5.7.606": ("banned sending ip", "microsoft"), "4.5.3": ("too many recipients", "iana"),
    "none": ("no enhanced status code logged", "project"),
}
OUTCOME_ORDER = ("delivered", "deferred", "bounced", "expired", "rejected", "verified", "verify_failed")


def syslog_year(month: int, day: int, hour: int, minute: int, second: int) -> int:
    """The year the parser gives an RFC 3164 stamp (no year): the latest one that puts the
    stamp at most two days after now (tests/testdata/parsers/README.md), in UTC here."""
    now = datetime.now(timezone.utc)
    for year in (now.year + 1, now.year, now.year - 1):
        if datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc) <= now + timedelta(days=2):
            return year
    raise AssertionError("unreachable")


POSTFIX_YEAR = syslog_year(11, 29, 5, 38, 23)


def code_class(code: str) -> str:
    return "success" if code == "none" else CLASSES[code[0]]


def code_subject(code: str) -> str:
    return "other" if code == "none" else SUBJECTS[code.split(".")[1]]


def expected_summary(events: list[tuple[str, str, str, str, str]], files: list[str],
                     lines: int) -> dict[str, Any]:
    """The report JSON for events given as (mta, outcome, code, provider, hour)."""
    codes: dict[str, Counter] = {}
    by_hour: dict[str, Counter] = {}
    for _mta, outcome, code, _provider, hour in events:
        codes.setdefault(code, Counter())[outcome] += 1
        by_hour.setdefault(hour, Counter())[outcome] += 1
    ranked = sorted(codes.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))

    def count(index: int, fn: Any = None) -> dict[str, int]:
        found = Counter((fn(e[index]) if fn else e[index]) for e in events)
        return dict(sorted(found.items()))

    return {
        "files": files,
        "lines": {"total": lines, "matched": len(events), "ignored": lines - len(events),
                  "unparsed": 0, "oversized": 0},
        "events": len(events),
        "by_outcome": count(1),
        "by_class": count(2, code_class),
        "by_subject": count(2, code_subject),
        "by_mta": count(0),
        "by_provider": count(3),
        "codes": [{"code": code, "count": sum(outcomes.values()), "class": code_class(code),
                   "subject": code_subject(code), "meaning": MEANINGS[code][0], "source": MEANINGS[code][1],
                   "outcomes": dict(sorted(outcomes.items()))} for code, outcomes in ranked],
        "by_hour": [{"hour": hour, **{o: counts.get(o, 0) for o in OUTCOME_ORDER}}
                    for hour, counts in sorted(by_hour.items())],
        "events_without_time": 0,
    }


def postfix_events(times: int = 1) -> list[tuple[str, str, str, str, str]]:
    hour = f"{POSTFIX_YEAR}-11-29T05:00:00Z"
    return [("postfix", outcome, code, provider, hour)
            for _line, _second, outcome, code, provider in POSTFIX_EVENTS] * times


def exim_events() -> list[tuple[str, str, str, str, str]]:
    return [("exim", outcome, code, provider, "1999-03-02T09:00:00Z") for _l, outcome, code, provider in EXIM_EVENTS]


def report_json(*args: str) -> dict[str, Any]:
    result = run_exporter(["report", "--json", *args], env=UTC_ENV)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


# --- the tables themselves ----------------------------------------------------------------------

def test_the_tables_match_the_fixtures() -> None:
    lines = POSTFIX_LOG.read_text().splitlines()
    assert len(lines) == POSTFIX_LINES
    status_lines = [i for i, line in enumerate(lines, 1) if "status=" in line or ": reject: " in line]
    assert status_lines == [row[0] for row in POSTFIX_EVENTS]
    for number, second, outcome, code, _provider in POSTFIX_EVENTS:
        line = lines[number - 1]
        assert line.startswith(f"Nov 29 05:38:{second:02d} "), line
        if outcome == "expired":
            assert line.endswith("status=expired, returned to sender"), line
        elif outcome == "rejected":
            assert f"NOQUEUE: reject: " in line and f" {code} " in line, line
        else:
            status = {"delivered": "sent", "deferred": "deferred", "bounced": "bounced"}[outcome]
            assert f"dsn={code}, status={status} " in line, line
    exim = EXIM_LOG.read_text().splitlines()
    assert len(exim) == EXIM_LINES
    marks = {"delivered": (" => ", " -> "), "deferred": (" == ",), "rejected": ("temporarily rejected RCPT",)}
    found = sorted(i for i, line in enumerate(exim, 1) if any(m in line for ms in marks.values() for m in ms))
    assert found == sorted(row[0] for row in EXIM_EVENTS)
    for number, outcome, code, provider in EXIM_EVENTS:
        line = exim[number - 1]
        assert any(m in line for m in marks[outcome]), line
        assert (": 452 4.5.3 " in line) == (code == "4.5.3"), line
        assert ("[127.0.0.1]" in line) == (provider == "other"), line


# --- report --json --------------------------------------------------------------------------------

def test_json_on_the_real_postfix_log() -> None:
    # 39 events: 14 delivered (2.0.0), 10 deferred, 7 bounced, 5 expired (4.4.7), 3 rejected
    want = expected_summary(postfix_events(), [str(POSTFIX_LOG)], POSTFIX_LINES)
    assert want["by_outcome"] == {"bounced": 7, "deferred": 10, "delivered": 14, "expired": 5, "rejected": 3}
    assert report_json(str(POSTFIX_LOG)) == want


def test_gzip_gives_the_same_json(tmp_path: Path) -> None:
    packed = tmp_path / "maillog.1.gz"
    packed.write_bytes(gzip.compress(POSTFIX_LOG.read_bytes()))
    want = expected_summary(postfix_events(), [str(packed)], POSTFIX_LINES)
    assert report_json(str(packed)) == want


def test_several_files_add_up(tmp_path: Path) -> None:
    packed = tmp_path / "maillog.1.gz"
    packed.write_bytes(gzip.compress(POSTFIX_LOG.read_bytes()))
    want = expected_summary(postfix_events(2), [str(POSTFIX_LOG), str(packed)], 2 * POSTFIX_LINES)
    assert want["events"] == 78
    assert report_json(str(POSTFIX_LOG), str(packed)) == want


def test_a_log_cut_in_two_adds_up_to_the_whole(tmp_path: Path) -> None:
    # Cut after line 100 (a status line) and drop the second part's final newline: 205 lines, 39 events.
    lines = POSTFIX_LOG.read_bytes().split(b"\n")[:-1]
    first, second = tmp_path / "part1.log", tmp_path / "part2.log"
    first.write_bytes(b"\n".join(lines[:100]) + b"\n")
    second.write_bytes(b"\n".join(lines[100:]))
    got = report_json(str(first), str(second))
    assert got == expected_summary(postfix_events(), [str(first), str(second)], POSTFIX_LINES)


def test_a_mix_of_formats_with_format_auto() -> None:
    # Postfix's own maillog (syslog-like) and an Exim mainlog, each format detected from its file.
    events = postfix_events() + exim_events()
    want = expected_summary(events, [str(POSTFIX_LOG), str(EXIM_LOG)], POSTFIX_LINES + EXIM_LINES)
    assert want["by_mta"] == {"exim": 45, "postfix": 39}
    assert want["by_outcome"] == {"bounced": 7, "deferred": 17, "delivered": 38, "expired": 5, "rejected": 17}
    assert report_json("--format", "auto", str(POSTFIX_LOG), str(EXIM_LOG)) == want


def test_an_oversized_line_is_counted_and_the_rest_still_read(tmp_path: Path) -> None:
    lines = POSTFIX_LOG.read_bytes().split(b"\n")
    log = tmp_path / "mail.log"
    # a 100 000-byte line (over the 64 KiB limit) after line 50, holding a status-like text
    log.write_bytes(b"\n".join(lines[:50] + [b"Nov 29 05:38:16 mx postfix/smtp[1]: status=" + b"x" * 99957]
                               + lines[50:]))
    got = report_json(str(log))
    assert got["lines"] == {"total": 206, "matched": 39, "ignored": 166, "unparsed": 0, "oversized": 1}
    assert got["events"] == 39


def test_top_limits_the_code_list() -> None:
    got = report_json("--top", "2", str(POSTFIX_LOG))
    assert [(c["code"], c["count"]) for c in got["codes"]] == [("2.0.0", 14), ("4.4.7", 5)]


# --- the text table -------------------------------------------------------------------------------

def parse_text(text: str) -> dict[str, Any]:
    """The numbers of the text table, by section."""
    out: dict[str, Any] = {"sections": {}}
    section = None
    for line in text.splitlines():
        if line.startswith("lines: "):
            out["lines"] = [int(word) for word in line.replace(",", "").split() if word.isdigit()]
        elif line.startswith("status events: "):
            out["events"] = int(line.split(": ")[1])
        elif line.endswith(":") and not line.startswith(" "):
            section = line[:-1]
            out["sections"][section] = {}
        elif line.startswith("  ") and section is not None:
            words = line.split()
            if section == "top codes" and words[0] != "code":
                out["sections"][section][words[0]] = (int(words[1]), words[2], words[3])
            elif section == "per hour (UTC)" and words[0] != "hour":
                out["sections"][section][words[0]] = [int(w) for w in words[1:]]
            elif section.startswith("by "):
                out["sections"][section][words[0]] = int(words[1])
    return out


def test_text_table_shows_the_same_numbers() -> None:
    result = run_exporter(["report", str(POSTFIX_LOG)], env=UTC_ENV)
    assert (result.returncode, result.stderr) == (0, "")
    want = expected_summary(postfix_events(), [str(POSTFIX_LOG)], POSTFIX_LINES)
    got = parse_text(result.stdout)
    assert result.stdout.splitlines()[0] == f"files: {POSTFIX_LOG}"
    assert got["lines"] == [205, 39, 166, 0, 0]
    assert got["events"] == 39
    sections = got["sections"]
    for key in ("outcome", "class", "subject", "mta", "provider"):
        assert sections[f"by {key}"] == want[f"by_{key}"]
    assert sections["top codes"] == {c["code"]: (c["count"], c["class"], c["subject"]) for c in want["codes"]}
    assert sections["per hour (UTC)"] == {f"{POSTFIX_YEAR}-11-29T05:00:00Z": [14, 10, 7, 5, 3, 0, 0]}
    assert "  5.7.606          1  permanent  security_policy  banned sending ip (microsoft)" in result.stdout


# --- errors and exit codes ------------------------------------------------------------------------

def test_a_missing_file_exits_1_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.log"
    result = run_exporter(["report", str(POSTFIX_LOG), str(missing)])
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"ndr-exporter report: cannot read {missing}: No such file or directory\n"


def test_a_cut_off_gzip_exits_1(tmp_path: Path) -> None:
    whole = gzip.compress(POSTFIX_LOG.read_bytes())
    cut = tmp_path / "maillog.2.gz"
    cut.write_bytes(whole[:-200])
    result = run_exporter(["report", "--json", str(cut)])
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"ndr-exporter report: cannot read {cut}: "
                             "the gzip stream ends early (the file is cut off)\n")


def test_bad_flags_exit_2_naming_the_flag() -> None:
    cases = {
        ("--top", "-1", str(POSTFIX_LOG)): "ndr-exporter report: error: --top: must be 0 or more, not -1",
        ("--top", "many", str(POSTFIX_LOG)): "ndr-exporter report: error: argument --top: invalid int value: 'many'",
        ("--format", "mbox", str(POSTFIX_LOG)): "ndr-exporter report: error: argument --format: invalid choice: 'mbox'",
        (): "ndr-exporter report: error: the following arguments are required: FILE",
    }
    for args, message in cases.items():
        result = run_exporter(["report", *args])
        assert (result.returncode, result.stdout) == (2, ""), args
        assert result.stderr.splitlines()[-1].startswith(message), result.stderr


# --- the progress bar -----------------------------------------------------------------------------

def big_log(tmp_path: Path) -> Path:
    """The real log 40 times over: 1 064 320 bytes (wc -c gives 26 608 a copy), above the 1 MiB the bar waits for."""
    log = tmp_path / "big.log"
    log.write_bytes(POSTFIX_LOG.read_bytes() * 40)
    assert log.stat().st_size == 1_064_320
    return log


def under_a_terminal(args: list[str], interrupt_on: bytes | None = None) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr: (exit status, all it wrote).
    With interrupt_on, SIGINT is sent as soon as those bytes appear."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(EXPORTER_CMD + args, stdin=slave, stdout=slave, stderr=slave,
                            env=exporter_env(UTC_ENV), cwd=REPO)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not data:
            break
        output += data
        if interrupt_on is not None and interrupt_on in output:
            proc.send_signal(signal.SIGINT)
            interrupt_on = None
    os.close(master)
    return proc.wait(10), output.decode()


def test_progress_bar_under_a_terminal(tmp_path: Path) -> None:
    log = big_log(tmp_path)
    status, text = under_a_terminal(["report", str(log)])
    assert status == 0
    assert f"\r[##############################] 100% {log}" in text
    assert text.count("\r[") >= 2   # drawn more than once as the file is read
    assert "status events: 1560\r\n" in text   # 40 x 39, after the bar was cleared


def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    log.write_bytes(POSTFIX_LOG.read_bytes() * 800)   # 21 MB: about a second to read
    status, text = under_a_terminal(["report", str(log)], interrupt_on=b"\r[")
    assert status == 130
    assert "Traceback" not in text and "status events" not in text
    assert text.endswith("\r\x1b[K")   # the bar cleared


def test_no_progress_bar_when_piped(tmp_path: Path) -> None:
    log = big_log(tmp_path)
    result = run_exporter(["report", str(log)], env=UTC_ENV)
    assert (result.returncode, result.stderr) == (0, "")
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    assert parse_text(result.stdout)["events"] == 1560


def _fall_back_day(zone: str) -> datetime:
    """The latest day, not in the future, on which `zone` leaves daylight saving time: its
    01:30 comes twice."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    now = datetime.now(timezone.utc)
    for year in (now.year, now.year - 1):
        for day in range(1, 8):   # the first Sunday of November in the US rules
            morning = datetime(year, 11, day, 0, 30, tzinfo=tz)
            if morning.dst() and not datetime(year, 11, day, 12, 0, tzinfo=tz).dst() and morning < now - timedelta(days=1):
                return morning
    raise AssertionError("no fall-back day found")


@pytest.mark.parametrize("pure", [False, True], ids=["scanner", "python"])
def test_the_repeated_hour_at_dst_end_does_not_depend_on_the_file_read_before(tmp_path: Path, pure: bool) -> None:
    """A syslog line in the hour that comes twice when daylight saving ends (no zone in the
    stamp) is counted in the earlier of the two, whatever was read before it. Before the fix,
    `report mail.log mail.log.1` (as a shell glob orders them: the newer file first) put the
    older file's 01:30 bounce an hour later than `report mail.log.1` alone did: time.mktime's
    answer for that hour followed the stamp converted before it."""
    day = _fall_back_day("America/New_York")
    stamp = day.strftime("%b ") + f"{day.day:2d}"
    older = tmp_path / "mail.log.1"
    newer = tmp_path / "mail.log"
    older.write_text(f"{stamp} 01:30:00 mx postfix/smtp[1]: 4F2A: to=<a@example.org>, relay=mx.example.org"
                     "[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx.example.org"
                     "[192.0.2.1] said: 550 5.1.1 No such user (in reply to RCPT TO command))\n")
    newer.write_text(f"{stamp} 03:00:00 mx postfix/smtp[1]: 4F2B: to=<b@example.org>, relay=mx.example.org"
                     "[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (connect to "
                     "mx.example.org[192.0.2.1]:25: Connection timed out)\n")
    env = {"TZ": "America/New_York"} | ({"NDR_EXPORTER_PURE_PYTHON": "1"} if pure else {})
    earlier = day.replace(hour=1).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")   # 01:00 EDT
    later = day.replace(hour=3).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")     # 03:00 EST
    for files, want in (([older], [(earlier, 1, 0)]), ([newer, older], [(earlier, 1, 0), (later, 0, 1)])):
        result = run_exporter(["report", "--json", *map(str, files)], env=env)
        assert result.returncode == 0, result.stderr
        hours = [(h["hour"], h["bounced"], h["deferred"]) for h in json.loads(result.stdout)["by_hour"]]
        assert hours == want, [f.name for f in files]
