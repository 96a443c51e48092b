"""The command line as a user meets it, through the real `ndr-exporter` process: commands and
flags (typos get a suggestion), the old flag spellings, a start with no source or an unusable
state folder, `report -` and a closed pipe, `explain` on replies and log lines, one logger
namespace, and the checkpoint health metrics when the state folder goes away under it."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.helpers.exporter_process import (
    EXPORTER_CMD, REPO, ExporterProcess, exporter_env, run_exporter, sample, total,
)

Factory = Callable[..., ExporterProcess]
POSTFIX_LOG = REPO / "tests" / "testdata" / "real" / "postfix-3.7.11-maillog.log"
REJECT = ("Jul 12 07:47:48 saturn postfix/smtpd[8738]: NOQUEUE: reject: RCPT from 1-2-3-4-example.com[1.2.3.4]: "
          "554 5.7.1 <smtp@example.com>: Relay access denied; from=<john@example.com> to=<smtp@example.org> "
          "proto=SMTP helo=<198.51.100.17>")
BOUNCE = ("Aug 13 15:45:46 mx postfix/smtp[13844]: 00ADB3C0899: to=<someone@example.net>, "
          "relay=mx.example.net[192.0.2.7]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced "
          "(host mx.example.net[192.0.2.7] said: 550 5.1.1 <someone@example.net>: Recipient address rejected: "
          "User unknown (in reply to RCPT TO command))")
NO_SOURCE = ("ndr-exporter: sources: none configured; give --source.path FILE (e.g. /var/log/mail.log), "
             "--source.journald or --source.stdin, or list sources in --config.file\n")


# --- commands and flags ------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["reprot", "mail.log"], "ndr-exporter: unknown command 'reprot'; did you mean 'report'?\n"),
    (["explian", "550"], "ndr-exporter: unknown command 'explian'; did you mean 'explain'?\n"),
    (["srve"], "ndr-exporter: unknown command 'srve'; did you mean 'serve'?\n"),
    (["frobnicate"], "ndr-exporter: unknown command 'frobnicate'; commands: serve, explain, report, backfill, "
                     "demo (serve is the default)\n"),
])
def test_unknown_command_exits_2_with_a_suggestion(args: list[str], message: str) -> None:
    result = run_exporter(args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


@pytest.mark.parametrize("args, error", [
    (["--sorce.path", "/var/log/mail.log"], "unknown flag '--sorce.path'; did you mean '--source.path'?"),
    (["--state.flie=/tmp/x"], "unknown flag '--state.flie'; did you mean '--state.file'?"),
    (["--web.listen-adress", ":1"], "unknown flag '--web.listen-adress'; did you mean '--web.listen-address'?"),
    (["--log.level", "info", "report", "x"], "'report': a command goes first, e.g. ndr-exporter report --help"),
])
def test_unknown_flag_exits_2_with_a_suggestion(args: list[str], error: str) -> None:
    result = run_exporter(args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"ndr-exporter: error: {error}"
    assert result.stderr.startswith("usage: ndr-exporter [serve] [flags]")


@pytest.mark.parametrize("args, error", [
    (["report", "--jsn", "mail.log"], "ndr-exporter report: error: unknown flag '--jsn'; did you mean '--json'?"),
    (["explain", "--lst"], "ndr-exporter explain: error: unknown flag '--lst'; did you mean '--list'?"),
    (["backfill", "--outptu", "/tmp/x", "mail.log"],
     "ndr-exporter backfill: error: unknown flag '--outptu'; did you mean '--output'?"),
])
def test_a_command_s_unknown_flag_gets_a_suggestion(args: list[str], error: str) -> None:
    result = run_exporter(args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == error


def test_serve_is_the_default_and_can_be_named(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    for args in (["--config.check"], ["serve", "--config.check"]):
        result = run_exporter(args + ["--source.path", str(log)])
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == "ndr-exporter: config OK; sources: mail.log; listen address: :19798\n"


def test_help_shows_the_dotted_flags_and_the_commands() -> None:
    result = run_exporter(["--help"])
    assert result.returncode == 0
    options = result.stdout.split("options:")[1]
    for flag in ("--state.file FILE", "--source.start-at {end,beginning}", "--source.poll"):
        assert flag in options
    # the old spellings are accepted but not advertised, except in the list of old spellings
    assert "--state-file FILE" not in options and "  --poll" not in options
    assert "Old flag spellings still accepted: --state-file (--state.file), --start-at (--source.start-at), " \
           "--poll (--source.poll)." in " ".join(result.stdout.split())
    assert "Commands: serve (the default: these flags), explain, report, backfill, demo;" in result.stdout


@pytest.mark.parametrize("spelling", ["new", "old"])
def test_dotted_flags_and_their_old_spellings_do_the_same(tmp_path: Path, exporter_factory: Factory,
                                                          spelling: str) -> None:
    log = tmp_path / "mail.log"
    log.write_text(REJECT + "\n" + BOUNCE + "\n")
    state = tmp_path / "state" / "checkpoint.json"
    state.parent.mkdir()
    flags = {"new": ["--source.start-at", "beginning", "--source.poll", "--state.file", str(state)],
             "old": ["--start-at", "beginning", "--poll", "--state-file", str(state)]}[spelling]
    exp = exporter_factory(["--source.path", str(log)] + flags)
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="mail.log", result="matched") == 2)
    assert total(samples, "ndr_status_codes_total", code="5.7.1") == 1   # start-at beginning took effect
    assert total(samples, "ndr_status_codes_total", code="5.1.1") == 1
    assert exp.stop() == 0
    saved = json.loads(state.read_text())   # the state file took effect
    assert saved["sources"]["mail.log"]["files"][0]["offset"] == log.stat().st_size


# --- a start that cannot work is refused ---------------------------------------------------------

def test_no_source_exits_2_at_start_and_with_config_check(tmp_path: Path) -> None:
    empty = tmp_path / "c.yml"
    empty.write_text(yaml.safe_dump({"sources": [], "web": {"listen_address": "127.0.0.1:0"}}))
    for args in ([], ["--config.check"], ["--config.file", str(empty)], ["--config.file", str(empty), "--config.check"]):
        result = run_exporter(args)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", NO_SOURCE)


def test_sighup_with_no_sources_left_keeps_the_running_ones(tmp_path: Path, exporter_factory: Factory) -> None:
    import signal
    import time

    log = tmp_path / "mail.log"
    log.write_text("")
    cfg = tmp_path / "c.yml"
    cfg.write_text(yaml.safe_dump({"sources": [{"name": "mail", "path": str(log)}]}))
    exp = exporter_factory(["--config.file", str(cfg)])
    cfg.write_text(yaml.safe_dump({"sources": []}))
    exp.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "config not reloaded" not in exp.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(r'level=error logger=ndr_exporter\.cli msg="SIGHUP: config not reloaded; keeping the current '
                     r'sources" error="sources: none configured; ', exp.output()), exp.output()
    with log.open("a") as f:
        f.write(REJECT + "\n")
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="mail", result="matched") == 1)
    assert total(samples, "ndr_status_codes_total", code="5.7.1") == 1


def _state_cases(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    return [
        (str(tmp_path / "missing" / "cp.json"),
         f"the folder {tmp_path / 'missing'} does not exist; create it, writable by the exporter's user"),
        (str(tmp_path / "a-file" / "cp.json"), f"{tmp_path / 'a-file'} is not a folder"),
        (str(tmp_path / "a-folder"),
         f"{tmp_path / 'a-folder'} is a folder; give a file in it, e.g. {tmp_path / 'a-folder' / 'checkpoint.json'}"),
    ]


def test_unusable_state_folder_exits_2_naming_where_it_was_set(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    for state, problem in _state_cases(tmp_path):
        cfg = tmp_path / "c.yml"
        cfg.write_text(yaml.safe_dump({"state_file": state, "sources": [{"name": "mail", "path": str(log)}],
                                       "web": {"listen_address": "127.0.0.1:0"}}))
        for check in ([], ["--config.check"]):   # at start (nothing served) and with --config.check
            for args, env, field in (
                (["--source.path", str(log), "--state.file", state], None, "--state.file"),
                (["--source.path", str(log), "--state-file", state], None, "--state.file"),
                (["--source.path", str(log)], {"NDR_EXPORTER_STATE_FILE": state}, "NDR_EXPORTER_STATE_FILE"),
                (["--config.file", str(cfg)], None, "state_file"),
            ):
                result = run_exporter(args + ["--web.listen-address", "127.0.0.1:0"] + check, env=env)
                assert (result.returncode, result.stdout, result.stderr) == \
                    (2, "", f"ndr-exporter: {field}: {problem}\n")


def test_config_check_names_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "cp.json"
    result = run_exporter(["--source.path", str(tmp_path / "mail.log"), "--state.file", str(state), "--config.check"])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (f"ndr-exporter: config OK; sources: mail.log; listen address: :19798; "
                             f"state file: {state}\n")
    assert sorted(os.listdir(tmp_path)) == []   # the write probe leaves nothing behind


# --- checkpoint health -------------------------------------------------------------------------

CHECKPOINT_OK = "ndr_exporter_checkpoint_last_success_timestamp_seconds"
CHECKPOINT_FAILURES = "ndr_exporter_checkpoint_failures_total"


def test_checkpoint_failures_are_counted_and_the_counts_go_on(tmp_path: Path, exporter_factory: Factory) -> None:
    log = tmp_path / "mail.log"
    log.write_text(REJECT + "\n")
    folder = tmp_path / "state"
    folder.mkdir()
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning",
                            "--state.file", str(folder / "cp.json")])
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="mail.log", result="matched") == 1)
    first_ok = sample(samples, CHECKPOINT_OK)
    assert first_ok is not None and first_ok > 0
    assert sample(samples, CHECKPOINT_FAILURES) == 0

    # The state folder goes away and a file takes its place: every write now fails.
    folder.rename(tmp_path / "state.away")
    folder.write_text("not a folder")
    with log.open("a") as f:
        f.write(BOUNCE + "\n")
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="mail.log", result="matched") == 2
        and (sample(s, CHECKPOINT_FAILURES) or 0) >= 1)
    assert sample(samples, CHECKPOINT_FAILURES) == 1          # one write was due, and it failed
    assert sample(samples, CHECKPOINT_OK) == first_ok         # the last success stays where it was
    assert total(samples, "ndr_status_codes_total", code="5.1.1") == 1   # counting went on
    assert re.search(r"level=error logger=ndr_exporter\.checkpoint msg=\"cannot write checkpoint "
                     + re.escape(str(folder / "cp.json")), exp.output())
    page = exp.get("/")[2].decode()   # the landing page says so too
    assert re.search(r'<p class="bad">Checkpoint: last written \d+ s ago; 1 write failed since start', page), page

    # The folder comes back: the next write succeeds and the gauge moves on.
    folder.unlink()
    (tmp_path / "state.away").rename(folder)
    with log.open("a") as f:
        f.write(REJECT + "\n")
    samples = exp.wait_for_metrics(lambda s: (sample(s, CHECKPOINT_OK) or 0) > first_ok)
    assert sample(samples, CHECKPOINT_FAILURES) == 1
    assert sample(samples, "ndr_exporter_lines_total", source="mail.log", result="matched") == 3
    assert exp.stop() == 0
    assert "checkpoint " + str(folder / "cp.json") + " written again" in exp.output()


def test_no_checkpoint_metrics_without_a_state_file(tmp_path: Path, exporter_factory: Factory) -> None:
    log = tmp_path / "mail.log"
    log.write_text(REJECT + "\n")
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning"])
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="mail.log", result="matched") == 1)
    assert not [key for key in samples if key[0].startswith("ndr_exporter_checkpoint_")]
    assert sample(samples, "ndr_exporter_source_position_bytes", source="mail.log", path=str(log)) == \
        log.stat().st_size


# --- report ------------------------------------------------------------------------------------

def test_report_reads_standard_input_plain_and_gzip(tmp_path: Path) -> None:
    from_file = run_exporter(["report", "--json", str(POSTFIX_LOG)])
    assert (from_file.returncode, from_file.stderr) == (0, "")
    expected = json.loads(from_file.stdout)
    expected["files"] = ["-"]
    assert expected["events"] == 40
    for data in (POSTFIX_LOG.read_bytes(), gzip.compress(POSTFIX_LOG.read_bytes())):
        result = subprocess.run(EXPORTER_CMD + ["report", "--json", "-"], input=data, capture_output=True,
                                env=exporter_env(), cwd=REPO, timeout=60)
        assert (result.returncode, result.stderr) == (0, b"")
        assert json.loads(result.stdout) == expected
    cut = gzip.compress(POSTFIX_LOG.read_bytes())[:200]
    result = subprocess.run(EXPORTER_CMD + ["report", "-"], input=cut, capture_output=True,
                            env=exporter_env(), cwd=REPO, timeout=60)
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr == (b"ndr-exporter report: cannot read standard input: the gzip stream ends early "
                             b"(the file is cut off)\n")


@pytest.mark.parametrize("args", [["report", "--json", str(POSTFIX_LOG)], ["explain", "--list"]])
def test_a_closed_pipe_ends_quietly(args: list[str]) -> None:
    # The reading end is closed before the command writes: its first write meets EPIPE, as
    # `ndr-exporter report --json FILE | head -1` does once head has its line.
    proc = subprocess.Popen(EXPORTER_CMD + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=exporter_env(), cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert (proc.wait(60), stderr) == (141, b"")


# --- explain -----------------------------------------------------------------------------------

def test_explain_a_three_digit_reply() -> None:
    result = run_exporter(["explain", "550"])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "550\n"
        "  reply    550 permanent    mailbox unavailable: no such user, no access, or refused by policy\n"
        "  label    a line with this reply and no enhanced code is counted as code=\"none\", "
        "class=\"permanent\", meaning=\"no enhanced status code logged\"\n")
    data = json.loads(run_exporter(["explain", "--json", "421"]).stdout)
    assert data == [{"reply": "421", "class": "transient",
                     "class_note": "a temporary failure; the sender keeps retrying",
                     "reply_note": "service not available, closing the connection", "text": None, "code": None,
                     "label": {"code": "none", "class": "transient", "meaning": "no enhanced status code logged"}}]


def test_explain_a_whole_reply_line() -> None:
    result = run_exporter(["explain", "550 5.1.1 user unknown"])
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "550 5.1.1 user unknown",
        "  reply    550 permanent    mailbox unavailable: no such user, no access, or refused by policy",
        "5.1.1",
        "  class    permanent        a permanent failure; resending the same message will fail again",
        "  subject  addressing       addressing",
    ]
    assert "    iana       recipient mailbox does not exist  <- used as the label" in lines
    reply_only = run_exporter(["explain", "--json", "451 try again later"])
    assert json.loads(reply_only.stdout)[0]["label"]["class"] == "transient"
    assert json.loads(reply_only.stdout)[0]["code"] is None


def test_explain_a_log_line_gives_what_the_daemon_counts(tmp_path: Path, exporter_factory: Factory) -> None:
    result = run_exporter(["explain", REJECT])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[:5] == [
        REJECT,
        "  format   syslog",
        "  result   a status line, 1 event",
        "  event    mta=postfix outcome=rejected code=5.7.1 reply=554 provider=other",
        '  counted  ndr_status_codes_total{mta="postfix",outcome="rejected",code="5.7.1",class="permanent",'
        'subject="security_policy",meaning="delivery not authorized",provider="other"} +1',
    ]
    # The same lines through the daemon give exactly the series explain names.
    log = tmp_path / "mail.log"
    log.write_text(REJECT + "\n" + BOUNCE + "\n")
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning"])
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="mail.log", result="matched") == 2)
    served = {tuple(sorted(labels)): value for (name, labels), value in samples.items()
              if name == "ndr_status_codes_total"}
    explained = {}
    for line in (REJECT, BOUNCE):
        data = json.loads(run_exporter(["explain", "--json", line]).stdout)[0]
        assert data["result"] == "matched"
        for series in data["counted"]:
            value = series.pop("value")
            explained[tuple(sorted(series.items()))] = value
    assert explained == served


def test_explain_detects_the_format_of_the_line_as_the_daemon_does() -> None:
    line = "2026-11-29 05:50:45 1xXXoD-00076l-23 ** full@mx.e2e.test: retry timeout exceeded"   # Exim mainlog
    result = run_exporter(["explain", line])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[:5] == [
        line,
        "  format   exim",
        "  result   a status line, 1 event",
        "  event    mta=exim outcome=expired code=4.4.7 reply=- provider=none",
        '  counted  ndr_status_codes_total{mta="exim",outcome="expired",code="4.4.7",class="transient",'
        'subject="network_routing",meaning="delivery time expired",provider="none"} +1',
    ]


def test_explain_a_line_that_is_no_status_line() -> None:
    line = "Feb 18 09:45:10 mx postfix/smtpd[42]: connect from spammer.example.com[192.0.2.10]"
    result = run_exporter(["explain", line])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (f"{line}\n  format   syslog\n  result   not a status line: counted only as "
                             "ndr_exporter_lines_total{result=\"ignored\"}\n")


# --- logging -----------------------------------------------------------------------------------

def test_every_logger_is_in_the_ndr_exporter_namespace() -> None:
    names = []
    for path in (REPO / "exporter").rglob("*.py"):
        for match in re.finditer(r"getLogger\(([^)]*)\)", path.read_text()):
            names.append((path.name, match.group(1)))
    ours = [(file, arg) for file, arg in names if arg not in ("", '"watchdog"')]   # root; a library's
    assert len(ours) >= 8
    assert [(file, arg) for file, arg in ours if not re.fullmatch(r'"ndr_exporter(\.[a-z_.]+)?"', arg)] == []
