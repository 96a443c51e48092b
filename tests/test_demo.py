"""`ndr-exporter demo`: the real daemon following the bundled real Postfix log as it is replayed.

The counters are checked against the per-line table of the sample in tests/test_report.py
(tests/test_report.py::test_the_tables_match_the_fixtures reads it line by line), not
against the exporter's own report. That the sample is in a (non-editable) wheel is checked by
tests/test_packaging.py::test_wheel_holds_the_code_the_data_and_the_command, which
builds one and looks for every file under exporter/data/.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from exporter.config import DEFAULT_PORT
from tests.helpers.exporter_process import (EXPORTER_CMD, REPO, ExporterProcess, exporter_env, run_exporter,
                                            sample, total)
from tests.test_report import POSTFIX_EVENTS, POSTFIX_LINES


def test_one_pass_of_the_sample_gives_its_exact_counts(exporter_factory: Callable[..., ExporterProcess]) -> None:
    started = time.time()
    exp = exporter_factory(["demo", "--rate", "200", "--passes", "1"])
    # All 205 lines read (about a second at 200 lines/s), then nothing more is written.
    samples = exp.wait_for_metrics(
        lambda s: total(s, "ndr_exporter_lines_total", source="demo-replay.log") == POSTFIX_LINES, timeout=20)
    want = Counter((outcome, code, provider) for _line, _second, outcome, code, provider in POSTFIX_EVENTS)
    got: Counter = Counter()
    for (name, labels), value in samples.items():
        if name == "ndr_status_codes_total":
            found = dict(labels)
            assert found["mta"] == "postfix"
            got[(found["outcome"], found["code"], found["provider"])] += int(value)
    assert got == want
    assert total(samples, "ndr_status_codes_total") == 39
    assert sample(samples, "ndr_exporter_lines_total", source="demo-replay.log", result="matched") == 39
    assert sample(samples, "ndr_exporter_lines_total", source="demo-replay.log", result="ignored") == 166
    # the lines were given the current time as they were written
    last = sample(samples, "ndr_exporter_last_event_timestamp_seconds", source="demo-replay.log")
    assert last is not None and started - 1 <= last <= time.time() + 1
    time.sleep(0.5)
    assert total(exp.metrics(), "ndr_status_codes_total") == 39   # one pass only
    status, headers, body = exp.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<a href="/metrics">' in body
    assert exp.stop(signal.SIGTERM) == 0
    assert "open http://127.0.0.1:" in exp.output()


def test_endless_by_default_and_sigint_exits_0(exporter_factory: Callable[..., ExporterProcess]) -> None:
    exp = exporter_factory(["demo", "--rate", "400"])
    # past one pass (39 events) the replay starts again from the top
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") > 39, timeout=20)
    assert exp.stop(signal.SIGINT) == 0


def test_bad_flags_exit_2_and_a_missing_sample_exits_1(tmp_path: Path) -> None:
    for args, message in (
        (["--rate", "0"], "ndr-exporter demo: error: --rate: must be more than 0 lines a second, not 0"),
        (["--passes", "-2"], "ndr-exporter demo: error: --passes: must be 0 (endless) or more, not -2"),
        (["--rate", "fast"], "ndr-exporter demo: error: argument --rate: invalid float value: 'fast'"),
    ):
        result = run_exporter(["demo", *args])
        assert (result.returncode, result.stderr.splitlines()[-1]) == (2, message)
    missing = tmp_path / "none.log"
    result = run_exporter(["demo", "--sample", str(missing)])
    assert (result.returncode, result.stderr) == (1, f"ndr-exporter demo: cannot read {missing}: "
                                                     "No such file or directory\n")


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on port, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:   # 0A: LISTEN
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words))
    return found


def test_by_default_it_listens_on_loopback_says_it_is_a_replay_and_prints_the_readme_url() -> None:
    # The README's first lines tell a new user which URL `make demo` serves.
    readme_top = (REPO / "README.md").read_text().split("\n## ", 1)[0]
    urls = re.findall(r"open (http://\S+/)", readme_top)
    assert urls == [f"http://127.0.0.1:{DEFAULT_PORT}/"]
    # No --web.listen-address: the demo's own default, on the default port.
    proc = subprocess.Popen(EXPORTER_CMD + ["demo", "--rate", "200"], env=exporter_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        banner = [proc.stdout.readline().decode() for _ in range(3)]  # type: ignore[union-attr]
        deadline = time.monotonic() + 15
        while not _listening_addresses(DEFAULT_PORT) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert _listening_addresses(DEFAULT_PORT) == {"127.0.0.1"}, "".join(banner)
        assert banner[0].startswith("ndr-exporter demo: a REPLAY, not this machine's mail: the bundled sample "
                                    "log (a real Postfix 3.7.11's), 205 lines, is written\n")
        assert banner[1].startswith("in a loop into /tmp/")
        assert banner[2] == f"open {urls[0]} (metrics at /metrics); Ctrl-C stops.\n"
        # The log says so too, at each pass, and the source's name says where the counts come from.
        line = proc.stdout.readline().decode()  # type: ignore[union-attr]
        assert 'logger=ndr_exporter.demo msg="demo: a replay pass starts: the sample log is written again, ' \
               'each line stamped now" replay_pass=1 passes=endless lines=205 file=/tmp/' in line
        assert line.rstrip().endswith("/demo-replay.log")
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0
