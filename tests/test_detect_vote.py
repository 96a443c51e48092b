"""Issue 16, "wrong signals": `format: auto` is decided by a vote over a file's first lines, not by
its first line, in the daemon and again for the new file after a rotation; and a file whose
first lines are nearly all "ignored" gets a warning in the log.

The real exporter follows real-shaped logs: Postfix lines from fail2ban's test corpus (as in
tests/test_cli.py), Exim mainlog lines from tests/testdata/parsers/exim (a real Exim 4.96), and
one date-first cron line of the kind that used to make a Postfix log Exim."""

from __future__ import annotations

import json
import os
from pathlib import Path

from exporter.parsers.detect import detect_format
from tests.helpers.exporter_process import ExporterProcess, run_exporter, sample

CRON = b"2026-12-07 10:00:00 cron: (root) CMD (run-parts /etc/cron.hourly)\n"
REJECT = (b"Jul 12 07:47:48 saturn postfix/smtpd[8738]: NOQUEUE: reject: RCPT from mx.example.com[192.0.2.1]: "
          b"554 5.7.1 <smtp@example.com>: Relay access denied; from=<a@example.com> to=<b@example.org> "
          b"proto=SMTP helo=<mx.example.com>\n")
NOT_STATUS = (b"Feb 18 09:45:10 xxx postfix/smtpd[42]: lost connection after CONNECT from "
              b"spammer.example.com[192.0.2.10]\n")
EXIM_DEFER = (b"2026-11-29 05:50:43 1xXXoB-00074c-1r == nobody@refused.test R=remote T=remote_smtp "
              b"defer (111): Connection refused\n")
EXIM_NOISE = b"2026-11-29 05:50:43 exim user lost privilege for using -C option\n"


def lines(samples: dict, result: str, source: str = "mail.log") -> float | None:
    return sample(samples, "ndr_exporter_lines_total", source=source, result=result)


def args_for(log: Path) -> list[str]:
    return ["--source.path", str(log), "--source.start-at", "beginning"]   # format: auto, the default


def test_one_date_first_line_does_not_make_a_postfix_log_exim(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(CRON + REJECT * 5 + NOT_STATUS * 3)
    with ExporterProcess(args_for(log)) as exp:
        samples = exp.wait_for_metrics(lambda s: lines(s, "matched") == 5)
        assert lines(samples, "ignored") == 4
        assert sample(samples, "ndr_status_codes_total", mta="postfix", outcome="rejected", code="5.7.1",
                      **{"class": "permanent"}, subject="security_policy", meaning="delivery not authorized",
                      provider="other") == 5
    # `report` reads the same window and votes the same way
    assert detect_format(log.read_bytes()) == "syslog"
    report = run_exporter(["report", "--json", str(log)])
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["lines"] == {"total": 9, "matched": 5, "ignored": 4, "unparsed": 0,
                                                  "oversized": 0}


def test_the_new_file_after_a_rotation_is_detected_by_the_vote_too(tmp_path: Path) -> None:
    """The new mail.log holds only the cron line when the exporter first reads it: its format
    is decided again as lines come, until the window is full."""
    log = tmp_path / "mail.log"
    log.write_bytes(REJECT * 2)
    with ExporterProcess(args_for(log)) as exp:
        exp.wait_for_metrics(lambda s: lines(s, "matched") == 2)
        os.rename(log, tmp_path / "mail.log.1")
        log.write_bytes(CRON)
        exp.wait_for_metrics(lambda s: lines(s, "ignored") == 1
                             and sample(s, "ndr_exporter_rotations_total", source="mail.log") == 1)
        with log.open("ab") as f:
            f.write(REJECT * 3 + NOT_STATUS)
        samples = exp.wait_for_metrics(lambda s: lines(s, "matched") == 5)
        assert lines(samples, "ignored") == 2
        assert lines(samples, "unparsed") == 0
        assert "mail.log: format of" in exp.output() and "now syslog" in exp.output()


def test_an_exim_log_that_starts_with_one_line_is_still_exim(tmp_path: Path) -> None:
    """The other way round: a new Exim mainlog read when it holds one line, then more."""
    log = tmp_path / "mainlog"
    log.write_bytes(EXIM_NOISE)
    with ExporterProcess(args_for(log)) as exp:
        exp.wait_for_metrics(lambda s: lines(s, "ignored", "mainlog") == 1)
        with log.open("ab") as f:
            f.write(EXIM_DEFER * 4 + EXIM_NOISE)
        samples = exp.wait_for_metrics(lambda s: lines(s, "matched", "mainlog") == 4)
        assert lines(samples, "ignored", "mainlog") == 2
        assert sample(samples, "ndr_status_codes_total", mta="exim", outcome="deferred", code="none",
                      **{"class": "transient"}, subject="other", meaning="no enhanced status code logged",
                      provider="none") == 4


def test_a_file_of_ignored_lines_gets_a_warning(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(NOT_STATUS * 1000)
    with ExporterProcess(args_for(log)) as exp:
        exp.wait_for_metrics(lambda s: lines(s, "ignored") == 1000)
        assert (f"mail.log: 1000 of the first 1000 lines of {log} were ignored by the syslog parser "
                "(0 matched, 0 unparsed): is this a mail log, and is its format right?") in exp.output()


def test_a_mail_log_with_status_lines_gets_no_warning(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes((NOT_STATUS * 9 + REJECT) * 100)
    with ExporterProcess(args_for(log)) as exp:
        exp.wait_for_metrics(lambda s: lines(s, "matched") == 100)
        assert "were ignored" not in exp.output()
