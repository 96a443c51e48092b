"""exporter/parsers/detect.py: the first bytes of each kind of log name its format.

Samples are the heads of the golden .log files (each directory's README says where its lines
come from) and of the public corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.parsers import FORMATS
from exporter.parsers.detect import detect_format

GOLDEN = Path(__file__).resolve().parent / "testdata" / "parsers"
from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)


def head(path: Path, size: int = 4096) -> bytes:
    return path.read_bytes()[:size]


GOLDEN_LOGS = sorted(GOLDEN.glob("*/*.log"))


@pytest.mark.parametrize("log", GOLDEN_LOGS, ids=[f"{p.parent.name}/{p.name}" for p in GOLDEN_LOGS])
def test_every_golden_file(log: Path):
    # A directory named after a format holds that format; every other one holds syslog lines
    # (the rule of tests/testdata/parsers/README.md).
    expected = log.parent.name if log.parent.name in FORMATS else "syslog"
    assert detect_format(head(log)) == expected


def test_exim_test_suite_logs_in_the_corpus():
    if not CORPUS.is_dir():
        pytest.skip("no corpus")
    assert detect_format(head(CORPUS / "exim" / "0536")) == "exim"
    assert detect_format(head(CORPUS / "fail2ban" / "postfix")) == "syslog"
    assert detect_format(head(CORPUS / "fail2ban" / "dovecot")) == "syslog"


def test_header_shapes():
    assert detect_format(b"\xef\xbb\xbf#Software: Microsoft Exchange Server\r\n#Version: 15.02\r\n"
                         b"#Log-type: Message Tracking Log\r\n#Date: 2024-03-11T08:00:01.482Z\r\n") == "exchange_tracking"
    assert detect_format(b"#Software: Microsoft Exchange Server\n#Log-type: SMTP Receive Protocol Log\n") == "exchange_protocol"
    assert detect_format(b"#Software: Microsoft Exchange Server\n#Log-type: Connectivity Log\n") == "syslog"
    assert detect_format(b"#Software: Microsoft Internet Information Services 6.0\n#Version: 1.0\n") == "iis_smtp"


def test_exim_stamp_forms_and_majority():
    assert detect_format(b"2026-11-29 04:12:47 1tQxyA-000AbC-12 <= a@example.org\n") == "exim"
    assert detect_format(b"2026-11-29 04:14:00.123 +0100 [4711] 1tQxz0-00000001234-ABCD Completed\n") == "exim"
    rfc3339 = b"2026-11-29T04:12:47.123456+01:00 mx1 postfix/smtp[1]: x\n"
    assert detect_format(rfc3339 * 3) == "syslog"
    assert detect_format(b"garbage first line\n" + b"2026-11-29 04:12:47 Start queue run: pid=1\n" * 2) == "exim"
    assert detect_format(b"Nov 29 04:12:47 mx1 exim[1]: x\n" + b"2026-11-29 04:12:47 one\n") == "syslog"
    # A rejectlog: each record is followed by the rejected message's header lines.
    assert detect_format(b"2026-11-29 05:45:28 [11488] H=(c) [127.0.0.1] rejected after DATA: 550 5.7.1 no\n"
                         b"Envelope-from: <a@example.org>\nEnvelope-to: <b@example.net>\nP Received: from x\n") == "exim"


@pytest.mark.parametrize("sample", [b"", b"\n\n", b"\x00\xff", b"#", b"#Software:", b"\xef\xbb\xbf"])
def test_odd_samples_are_syslog(sample: bytes):
    assert detect_format(sample) == "syslog"


def test_result_is_always_a_format():
    for sample in (b"", b"#Software: Microsoft Exchange Server\n#Log-type: Message Tracking Log\n"):
        assert detect_format(sample) in FORMATS
