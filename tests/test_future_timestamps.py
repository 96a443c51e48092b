"""Issue 16, "wrong signals": a few lines dated far ahead of the clock must not pin
ndr_exporter_last_event_timestamp_seconds in the future (NdrLogStale could not fire), neither
while running nor across a restart from a checkpoint that holds such a value.

The real exporter reads syslog lines with full ISO 8601 stamps (rsyslog's high-precision
format), so the year is the one written, not one inferred."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from tests.helpers.exporter_process import ExporterProcess, sample, total

YEAR = 365 * 86400
TOLERANCE = 300   # exporter.metrics.FUTURE_TOLERANCE, as documented in docs/metrics.md


def line(when: float, i: int) -> bytes:
    stamp = datetime.fromtimestamp(int(when), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return (f"{stamp} mx postfix/smtp[{100 + i}]: 4ABCDEF{i:03X}: to=<u{i}@example.net>, "
            f"relay=mx1.example.org[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, "
            f"status=bounced (host mx1.example.org[192.0.2.1] said: 550 5.1.1 no such user "
            f"(in reply to RCPT TO command))\n").encode()


def last_event(samples: dict) -> float | None:
    return sample(samples, "ndr_exporter_last_event_timestamp_seconds", source="mail.log")


def test_lines_a_year_ahead_do_not_pin_the_last_event_in_the_future(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    past = int(time.time()) - 3600
    log.write_bytes(line(past, 0) + b"".join(line(time.time() + YEAR, i) for i in range(1, 6)))
    args = ["--source.path", str(log), "--source.start-at", "beginning"]
    before = time.time()
    with ExporterProcess(args) as exp:
        samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 6)
        after = time.time()
        assert "mail.log: status events dated" in exp.output()
        assert "ahead of the clock (more than 300 s)" in exp.output()
    # All six counted; the newest is taken as read now (between the start and the scrape), not a year on.
    newest = last_event(samples)
    assert newest is not None and before <= newest <= after


def test_a_line_a_minute_ahead_is_kept_as_written(tmp_path: Path) -> None:
    """Within the tolerance (clock skew between hosts) the timestamp is the log's own."""
    log = tmp_path / "mail.log"
    ahead = int(time.time()) + 60
    log.write_bytes(line(ahead, 1))
    with ExporterProcess(["--source.path", str(log), "--source.start-at", "beginning"]) as exp:
        samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 1)
    assert last_event(samples) == ahead


def test_a_checkpoint_does_not_keep_a_future_last_event(tmp_path: Path) -> None:
    """A checkpoint written by an exporter without the clamp holds the year-ahead value: on load it
    is brought back to when that checkpoint was written."""
    log = tmp_path / "mail.log"
    past = int(time.time()) - 3600
    log.write_bytes(line(past, 0))
    state = tmp_path / "state.json"
    args = ["--source.path", str(log), "--source.start-at", "beginning", "--state.file", str(state)]
    with ExporterProcess(args) as exp:
        samples = exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 1)
        assert last_event(samples) == past
        assert exp.stop() == 0
    saved = json.loads(state.read_text())
    saved["metrics"]["last_event"]["mail.log"] = time.time() + YEAR
    state.write_text(json.dumps(saved))
    with ExporterProcess(args) as exp:
        samples = exp.wait_for_metrics(lambda s: last_event(s) is not None)
        assert last_event(samples) == saved["written_at"]
        assert exp.stop() == 0
    assert json.loads(state.read_text())["metrics"]["last_event"]["mail.log"] == saved["written_at"]
