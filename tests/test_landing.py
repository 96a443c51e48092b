"""The landing page's table of codes, served by the real exporter process.

It must show what /metrics publishes: one row per code and meaning, the total and the split
by outcome, most frequent first. The log is the bundled real Postfix 3.7.11 capture
(exporter/data/samples/README.md); its five `status=expired, returned to sender` lines are
counted as 4.4.7 expired (counted with grep, independently of the exporter).
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

from tests.helpers.exporter_process import total

SAMPLE = Path(__file__).resolve().parents[1] / "exporter" / "data" / "samples" / "postfix-demo.log"
ROW = re.compile(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
                 r'<td class="n">(\d+)</td>((?:<td class="n">\d+</td>){7})</tr>')
OUTCOMES = ("delivered", "deferred", "bounced", "expired", "rejected", "verified", "verify_failed")


def test_empty_page_says_nothing_was_counted_yet(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    log.touch()
    exp = exporter_factory(["--source.path", str(log)])
    status, _headers, body = exp.get("/")
    assert status == 200
    assert "None yet: no status line has been read." in body.decode()


def test_table_shows_the_published_counts_per_code(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    shutil.copy(SAMPLE, log)
    lines = len(SAMPLE.read_bytes().splitlines())
    exp = exporter_factory(["--source.path", str(log), "--start-at", "beginning"])
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", source="mail.log") == lines)
    page = exp.get("/")[2].decode()
    rows = ROW.findall(page)
    assert rows, page

    published: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0.0))
    for (name, labels), value in samples.items():
        if name == "ndr_status_codes_total":
            d = dict(labels)
            published[(d["code"], d["class"], d["subject"], d["meaning"])][d["outcome"]] += value
    shown = {}
    for code, cls, subject, meaning, row_total, outcome_cells in rows:
        by_outcome = [int(n) for n in re.findall(r"\d+", outcome_cells)]
        assert int(row_total) == sum(by_outcome)
        shown[(code, cls, subject, meaning)] = dict(zip(OUTCOMES, by_outcome))
    assert shown == {key: {o: int(v) for o, v in counts.items()} for key, counts in published.items()}
    totals = [int(r[4]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    expired = shown[("4.4.7", "transient", "network_routing", "delivery time expired")]
    assert expired == {"delivered": 0, "deferred": 0, "bounced": 0, "expired": 5, "rejected": 0,
                       "verified": 0, "verify_failed": 0}
