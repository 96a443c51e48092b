"""A checkpoint written by an older exporter is upgraded, or its counters refused with a log line.

Through the real process: a version 1 state file, laid out as the exporter wrote it before
checkpoints named their labels (issue 12), is read by today's exporter, which resumes the
file at the saved offset and carries every counter on from its saved value, exactly; the
file it then writes is version 2 and names its labels. A checkpoint whose label names lack
one the exporter now has cannot be read into the new series: the exporter says in its log
which series it dropped and why, starts those counters from 0, and keeps the rest.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from exporter.metrics import Metrics
from exporter.parsers import make_parser
from exporter.pipeline import process_chunk
from exporter.sources.rotated import FP_BYTES, fingerprint
from tests.helpers.exporter_process import parse_exposition, sample
from tests.helpers.follow import SOURCE, Lines, append, follow_args, wait_status

V1_STATUS_LABELS = ["mta", "outcome", "code", "class", "subject", "meaning", "provider"]


def counted(data: bytes) -> Metrics:
    """What the pipeline counts for these lines (the values a checkpoint would hold)."""
    metrics = Metrics()
    process_chunk(SOURCE, make_parser("syslog"), data, metrics)
    return metrics


def v1_state(log: Path, metrics: Metrics) -> dict:
    """A version 1 checkpoint of `log` read to its end, as the exporter wrote it before issue 12."""
    st = os.stat(log)
    head = log.read_bytes()[:FP_BYTES]
    live = metrics.live
    return {
        "version": 1,
        "written_at": time.time(),
        "sources": {SOURCE: {"files": [{"path": str(log), "dev": st.st_dev, "ino": st.st_ino,
                                        "offset": st.st_size, "skipping": False, "fp": fingerprint(head),
                                        "fp_len": len(head), "rotated": False}]}},
        "metrics": {
            "status": [list(key) + [value] for key, value in live.status.items()],
            "lines": [list(key) + [value] for key, value in live.lines.items()],
            "bytes_read": live.bytes_read, "rotations": live.rotations, "read_errors": live.read_errors,
            "folded": live.folded, "last_event": live.last_event,
        },
    }


def status_series(text: str) -> dict[tuple[str, ...], float]:
    """ndr_status_codes_total's series, keyed by their label values in version 1's order."""
    return {tuple(dict(labels)[name] for name in V1_STATUS_LABELS): value
            for (name, labels), value in parse_exposition(text).items() if name == "ndr_status_codes_total"}


def test_a_version_1_checkpoint_is_upgraded_and_every_counter_continues(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    before, after = lines.block(0, 24), lines.block(24, 11)
    append(log, before)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(v1_state(log, counted(before))))

    exp = exporter_factory(follow_args(log, state))
    first = wait_status(exp, 24)
    assert "upgraded from version 1 to 2" in exp.output()
    append(log, after)
    wait_status(exp, 35)
    text = exp.scrape()
    want = counted(before + after).live
    assert status_series(text) == want.status
    samples = parse_exposition(text)
    for (source, result), value in want.lines.items():
        assert sample(samples, "ndr_exporter_lines_total", source=source, result=result) == value
    assert sample(first, "ndr_exporter_lines_total", source=SOURCE, result="matched") == 24.0
    exp.stop(signal.SIGTERM)

    saved = json.loads(state.read_text())
    assert saved["version"] == 2
    assert saved["metrics"]["labels"] == {"status": V1_STATUS_LABELS, "lines": ["source", "result"]}
    assert saved["sources"][SOURCE]["files"][0]["offset"] == len(before + after)


def test_a_checkpoint_without_a_label_the_exporter_has_drops_those_series_and_says_so(
        tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    lines = Lines()
    before = lines.block(0, 16)
    append(log, before)
    data = v1_state(log, counted(before))
    # A checkpoint from an exporter whose status series had no "provider" label.
    data["version"] = 2
    data["metrics"]["labels"] = {"status": V1_STATUS_LABELS[:-1], "lines": ["source", "result"]}
    data["metrics"]["status"] = [row[:-2] + row[-1:] for row in data["metrics"]["status"]]
    series = len(data["metrics"]["status"])
    state = tmp_path / "state.json"
    state.write_text(json.dumps(data))

    exp = exporter_factory(follow_args(log, state))
    append(log, lines.block(16, 5))
    samples = wait_status(exp, 5)
    assert (f"checkpoint: dropped {series} series of ndr_status_codes_total: the label(s) provider are new "
            "and the checkpoint has no value for them; those counters restart from 0") in exp.output()
    # the line counters, whose labels are known, go on
    assert sample(samples, "ndr_exporter_lines_total", source=SOURCE, result="matched") == 21.0
