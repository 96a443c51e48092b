"""Several sources at once, format detection, SIGHUP reload, and polling mode, with the real exporter.

Postfix lines: fail2ban's corpus (tests/helpers/follow.py). Exim lines: Exim's own test
suite output, test/log/0536 (Exim/exim @ 13835a3c, GPL-2.0-or-later; see the corpus'
SOURCES.md): 41 mainlog lines of which 28 are rejections. Exchange message tracking: the
parser fixture tests/testdata/parsers/exchange_tracking/exchange2013_2010.log (written by
hand in Exchange's layout; its README gives the sources), used here for its #Fields: header.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from exporter.parsers import make_parser
from tests.helpers.exporter_process import REPO, total
from tests.helpers.follow import (
    Lines, append, counter, follow_args, logrotate, logrotate_conf, settle, status_total, wait_status,
)

from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)
EXIM_0536 = CORPUS / "exim" / "0536"
EXIM_EVENTS = 28
EXCHANGE_FIXTURE = REPO / "tests/testdata/parsers/exchange_tracking/exchange2013_2010.log"


def config_text(state: Path, sources: list[tuple[str, Path, str]]) -> str:
    body = "".join(f"  - name: {name}\n    path: {path}\n    format: {fmt}\n    start_at: beginning\n"
                   for name, path, fmt in sources)
    return f"state_file: {state}\nsources:\n{body}"


def inotify_fds(pid: int) -> int:
    fd_dir = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fd_dir.iterdir() if "inotify" in os.readlink(fd))


def test_two_sources_each_with_its_parser_and_a_sighup_reload(tmp_path: Path, exporter_factory) -> None:
    lines = Lines()
    postfix_log, exim_log = tmp_path / "mail.log", tmp_path / "mainlog"
    append(postfix_log, lines.block(0, 5))
    exim_log.write_bytes(EXIM_0536.read_bytes())
    state = tmp_path / "state.json"
    config = tmp_path / "config.yaml"
    config.write_text(config_text(state, [("postfix", postfix_log, "auto")]))
    exp = exporter_factory(["--config.file", str(config)])
    wait_status(exp, 5)

    # Add the Exim source (its format found from its first lines); the Postfix source carries
    # on where it was (no recount).
    config.write_text(config_text(state, [("postfix", postfix_log, "auto"), ("exim", exim_log, "auto")]))
    exp.signal(signal.SIGHUP)
    samples = wait_status(exp, 5 + EXIM_EVENTS)
    assert total(samples, "ndr_status_codes_total", mta="exim") == EXIM_EVENTS
    assert total(samples, "ndr_status_codes_total", mta="postfix") == 5
    assert counter(samples, "ndr_exporter_lines_total", source="exim", result="matched") == EXIM_EVENTS
    assert counter(samples, "ndr_exporter_lines_total", source="exim", result="ignored") == 41 - EXIM_EVENTS
    append(postfix_log, lines.block(5, 3))
    wait_status(exp, 8 + EXIM_EVENTS)

    # Remove the Postfix source: its file is no longer read.
    config.write_text(config_text(state, [("exim", exim_log, "auto")]))
    exp.signal(signal.SIGHUP)
    time.sleep(1.0)
    append(postfix_log, lines.block(8, 4))
    samples = settle(exp, 1.0)
    assert status_total(samples) == 8 + EXIM_EVENTS
    assert exp.stop() == 0


def test_polling_mode_follows_appends_and_rotation_without_inotify(tmp_path: Path, exporter_factory) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 3))
    exp = exporter_factory(follow_args(log, tmp_path / "state.json", "--poll", "--start-at", "beginning"))
    wait_status(exp, 3)
    assert exp.proc is not None and inotify_fds(exp.proc.pid) == 0
    append(log, lines.block(3, 4))
    wait_status(exp, 7)
    conf = logrotate_conf(tmp_path, log, ["create"])
    append(log, lines.block(7, 2))
    logrotate(conf, tmp_path / "logrotate.state")
    append(log, lines.block(9, 5))
    samples = wait_status(exp, 14)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    assert status_total(settle(exp, 2.0)) == 14


def test_daily_files_with_a_header_across_a_kill_9(tmp_path: Path, exporter_factory) -> None:
    """A glob of Exchange tracking logs: resumed mid-file, the parser still knows the #Fields: header."""
    data = EXCHANGE_FIXTURE.read_bytes()
    lines = data.splitlines(keepends=True)
    first_part = b"".join(lines[:8])            # the header and the first records

    def events(chunk: bytes) -> int:
        return len(make_parser("exchange_tracking").parse(chunk).events)

    logs = tmp_path / "MessageTracking"
    logs.mkdir()
    day1 = logs / "MSGTRK20240311-1.LOG"
    day1.write_bytes(first_part)
    config = tmp_path / "config.yaml"
    config.write_text(f"state_file: {tmp_path / 'state.json'}\nsources:\n  - name: exchange\n"
                      f"    path: {logs}/MSGTRK*.LOG\n    format: auto\n    start_at: beginning\n")
    exp = exporter_factory(["--config.file", str(config)])
    wait_status(exp, events(first_part))
    assert events(first_part) > 0
    exp.stop(signal.SIGKILL)

    append(day1, data[len(first_part):])        # the rest of the day, written while down
    (logs / "MSGTRK20240312-1.LOG").write_bytes(data)   # and the next day's file
    exp = exporter_factory(["--config.file", str(config)])
    want = events(data) * 2
    samples = wait_status(exp, want)
    assert counter(samples, "ndr_exporter_lines_total", source="exchange", result="unparsed") == \
        2 * make_parser("exchange_tracking").parse(data).unparsed
    assert status_total(settle(exp, 1.0)) == want
