"""The landing page, served by the real exporter process.

It must show what /metrics publishes: each source with its files, read positions, line
counts, read errors and newest event; the checkpoint's health; and one row per code and
meaning with the knowledge base's hint, the recent count, the total and the split by
outcome, failures first (permanent, transient, success), most frequent first within each. The log is the bundled real Postfix 3.7.11 capture
(exporter/data/samples/README.md); its five `status=expired, returned to sender` lines are
counted as 4.4.7 expired (counted with grep, independently of the exporter).
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

from exporter.landing import hint_for
from tests.helpers.exporter_process import run_exporter, sample, total

SAMPLE = Path(__file__).resolve().parents[1] / "exporter" / "data" / "samples" / "postfix-demo.log"
ROW = re.compile(r'<tr class="[a-z]+"><td class="code">([^<]*)</td><td class="class">([^<]*)</td>'
                 r'<td class="subject">([^<]*)</td><td class="meaning">([^<]*)</td><td class="hint">([^<]*)</td>'
                 r'<td class="n recent">([\d,]+)</td><td class="n total">([\d,]+)</td>((?:<td class="n">[\d,]+</td>){7})</tr>')
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
    for code, cls, subject, meaning, hint, recent, row_total, outcome_cells in rows:
        by_outcome = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", outcome_cells)]
        assert int(row_total) == sum(by_outcome) == int(recent)   # the whole run is within the window
        shown[(code, cls, subject, meaning)] = dict(zip(OUTCOMES, by_outcome))
        assert hint == html.escape(hint_for(code, meaning)) and (hint or code == "none"), code
    assert shown == {key: {o: int(v) for o, v in counts.items()} for key, counts in published.items()}
    # failures first: permanent, then transient, then success; most frequent first within each
    order = {"permanent": 0, "transient": 1, "success": 2}
    keys = [(order[r[1]], -int(r[6])) for r in rows]
    assert keys == sorted(keys)
    assert [r[1] for r in rows][0] == "permanent" and [r[1] for r in rows][-1] == "success"
    expired = shown[("4.4.7", "transient", "network_routing", "delivery time expired")]
    assert expired == {"delivered": 0, "deferred": 0, "bounced": 0, "expired": 5, "rejected": 0,
                       "verified": 0, "verify_failed": 0}


def test_sources_and_checkpoint_are_shown(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    shutil.copy(SAMPLE, log)
    lines = len(SAMPLE.read_bytes().splitlines())
    exp = exporter_factory(["--source.path", str(log), "--source.start-at", "beginning"])
    samples = exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", source="mail.log") == lines)
    page = exp.get("/")[2].decode()
    assert "Checkpoint: no state file (--state.file)" in page
    numbers = [sample(samples, "ndr_exporter_lines_total", source="mail.log", result=r)
               for r in ("matched", "ignored", "unparsed", "oversized")]
    cells = "".join(f'<td class="n">{n:,.0f}</td>' for n in numbers + [0])
    assert f"<tr><td>mail.log</td><td>{log} &middot; byte {log.stat().st_size:,}</td>{cells}<td>" in page

    state = tmp_path / "state"
    state.mkdir()
    exp = exporter_factory(["--source.path", str(log), "--state.file", str(state / "cp.json")])
    page = exp.get("/")[2].decode()
    assert re.search(r'<p class="ok">Checkpoint: last written \d+ s ago; no write has failed.</p>', page), page


def test_recent_column_counts_since_start_beside_restored_totals(tmp_path: Path, exporter_factory) -> None:
    log = tmp_path / "mail.log"
    shutil.copy(SAMPLE, log)
    lines = len(SAMPLE.read_bytes().splitlines())
    state = tmp_path / "state"
    state.mkdir()
    args = ["--source.path", str(log), "--source.start-at", "beginning", "--state.file", str(state / "cp.json")]
    exp = exporter_factory(args)
    exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", source="mail.log") == lines)
    assert exp.stop() == 0
    exp = exporter_factory(args)   # the counts come back from the checkpoint; the window starts empty
    rows = ROW.findall(exp.get("/")[2].decode())
    assert rows and all(r[5] == "0" and int(r[6].replace(",", "")) > 0 for r in rows)
    line = next(text for text in SAMPLE.read_text().splitlines() if "status=bounced" in text)
    explained = json.loads(run_exporter(["explain", "--json", line]).stdout)[0]
    assert len(explained["counted"]) == 1
    with log.open("a") as f:
        f.write(line + "\n")
    exp.wait_for_metrics(lambda s: total(s, "ndr_exporter_lines_total", source="mail.log") == lines + 1)
    rows = ROW.findall(exp.get("/")[2].decode())
    recent = {r[0]: int(r[5]) for r in rows if r[5] != "0"}
    assert recent == {explained["counted"][0]["code"]: 1}
