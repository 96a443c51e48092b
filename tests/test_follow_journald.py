"""journald for real: a journal file built by systemd-journal-remote, followed through `journalctl --file`.

The entries carry real Postfix messages (fail2ban's corpus, see tests/helpers/follow.py)
with the fields journald gives a Postfix process on Debian: SYSLOG_IDENTIFIER=postfix/smtpd,
_SYSTEMD_UNIT=postfix@-.service, _PID, __REALTIME_TIMESTAMP. Entries of another unit
(sshd) must not be read with the default unit filter. Totals must be exact across a live
append, a kill -9 and a clean restart (the __CURSOR checkpoint).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers.follow import Lines, counter, settle, status_total, wait_status

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
SOURCE = "journal"
BOOT_ID = "5c0d2f9e4b7a4a3e9d7c1b2a3f4e5d6c"

pytestmark = pytest.mark.skipif(not Path(JOURNAL_REMOTE).exists() or shutil.which("journalctl") is None,
                                reason="systemd-journal-remote and journalctl are needed")


def entry(fields: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in fields.items()) + "\n"


def postfix_entries(lines: Lines, start: int, n: int) -> str:
    out = []
    for i in range(start, start + n):
        text = lines.line(i).decode().rstrip("\n")
        message = text.split("]: ", 1)[1]           # the syslog header is journald's fields here
        usec = (1_700_000_000 + i) * 1_000_000
        out.append(entry({"__REALTIME_TIMESTAMP": str(usec), "__MONOTONIC_TIMESTAMP": str(usec),
                          "_BOOT_ID": BOOT_ID, "_HOSTNAME": "mx1", "PRIORITY": "6",
                          "SYSLOG_IDENTIFIER": "postfix/smtpd", "_PID": str(10000 + i),
                          "_SYSTEMD_UNIT": "postfix@-.service", "MESSAGE": message}))
    return "".join(out)


def sshd_entries(n: int) -> str:
    return "".join(entry({"__REALTIME_TIMESTAMP": str((1_600_000_000 + i) * 1_000_000),
                          "__MONOTONIC_TIMESTAMP": str((1_600_000_000 + i) * 1_000_000),
                          "_BOOT_ID": BOOT_ID, "_HOSTNAME": "mx1", "SYSLOG_IDENTIFIER": "sshd",
                          "_PID": "77", "_SYSTEMD_UNIT": "ssh.service",
                          "MESSAGE": "Accepted publickey for root from 192.0.2.9 port 52113 ssh2"})
                   for i in range(n))


def write_journal(path: Path, export: str) -> None:
    """Append entries (journal export format) to a journal file with the real systemd-journal-remote."""
    result = subprocess.run([JOURNAL_REMOTE, f"--output={path}", "-"], input=export.encode(),
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()


def test_journal_file_followed_across_restarts(tmp_path: Path, exporter_factory) -> None:
    lines = Lines()
    journal = tmp_path / "remote.journal"
    write_journal(journal, postfix_entries(lines, 0, 30) + sshd_entries(5))
    config = tmp_path / "config.yaml"
    config.write_text(f"sources:\n  - name: {SOURCE}\n    journald:\n      file: {journal}\n"
                      f"    start_at: beginning\nstate_file: {tmp_path / 'state.json'}\n")
    args = ["--config.file", str(config)]

    exp = exporter_factory(args)
    samples = wait_status(exp, 30)
    write_journal(journal, postfix_entries(lines, 30, 12))      # appended while followed
    samples = wait_status(exp, 42)
    assert counter(samples, "ndr_exporter_lines_total", source=SOURCE, result="matched") == 42
    assert counter(samples, "ndr_exporter_lines_total", source=SOURCE, result="ignored") == 0  # sshd not read
    exp.stop(signal.SIGKILL)

    write_journal(journal, postfix_entries(lines, 42, 8) + sshd_entries(2))   # while down
    exp = exporter_factory(args)
    assert status_total(exp.metrics()) >= 42
    wait_status(exp, 50)
    assert status_total(settle(exp, 1.0)) == 50
    assert exp.stop() == 0

    exp = exporter_factory(args)                                  # clean restart: nothing new
    assert status_total(settle(exp, 1.0)) == 50
    samples = exp.metrics()
    assert counter(samples, "ndr_exporter_lines_total", source=SOURCE, result="matched") == 50
    assert counter(samples, "ndr_exporter_read_errors_total", source=SOURCE) == 0


def test_journalctl_failure_is_logged_counted_and_retried(tmp_path: Path, exporter_factory) -> None:
    journal = tmp_path / "missing.journal"
    config = tmp_path / "config.yaml"
    config.write_text(f"sources:\n  - name: {SOURCE}\n    journald:\n      file: {journal}\n"
                      f"    start_at: beginning\n")
    exp = exporter_factory(["--config.file", str(config)])
    exp.wait_for_metrics(lambda s: counter(s, "ndr_exporter_read_errors_total", source=SOURCE) >= 1)
    assert "journalctl stopped" in exp.output()
    write_journal(journal, postfix_entries(Lines(), 0, 4))
    wait_status(exp, 4, timeout=20)


def test_journald_from_flags_alone(tmp_path: Path, exporter_factory) -> None:
    """`--source.journald` with `--source.journald.file` and a unit filter, no config file."""
    lines = Lines()
    journal = tmp_path / "flags.journal"
    write_journal(journal, postfix_entries(lines, 0, 12) + sshd_entries(3))
    exp = exporter_factory(["--source.journald", "--source.journald.file", str(journal),
                            "--source.journald.unit", "postfix@-.service", "--start-at", "beginning"])
    samples = wait_status(exp, 12)
    assert counter(samples, "ndr_exporter_lines_total", source=SOURCE, result="matched") == 12
    assert counter(samples, "ndr_exporter_lines_total", source=SOURCE, result="ignored") == 0  # sshd not read
    assert status_total(settle(exp, 0.5)) == 12
    # only the unit asked for: a filter on another unit reads nothing of the Postfix entries
    other = exporter_factory(["--source.journald", "--source.journald.file", str(journal),
                              "--source.journald.unit", "ssh.service", "--start-at", "beginning"])
    samples = other.wait_for_metrics(
        lambda s: counter(s, "ndr_exporter_lines_total", source=SOURCE, result="ignored") == 3)
    assert status_total(samples) == 0
