"""The benchmark keeps working: bench/run.py at a tiny size, every tool's count checked.

Not a timed test: no figure is asserted. What is asserted is that the script runs
end to end — generating the three logs, timing `report`, the daemon's catch-up, and the
peers on the same Postfix log — and that every tool counted exactly what the generator
wrote (bench/run.py exits 1 on any count mismatch).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_runs_at_a_tiny_size_and_every_count_matches(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--lines", "3000",
                          "--json", str(figures), "--timeout", "60", "--runs", "2"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(figures.read_text())
    rows = {(r["tool"], r["log"], r["mode"]): r for r in data["results"]}
    for log in ("postfix", "exim", "exchange"):
        for tool, mode in (("ndr-exporter report", "one-shot"), ("ndr-exporter", "catch-up")):
            row = rows[(tool, log, mode)]
            assert row["lines"] == 3000
            assert row["counted"] == row["expected"] > 0, (tool, log)
            assert len(row["runs"]) == 2 and round(row["seconds"], 3) in row["runs"], (tool, log)
    for peer in (("grep -c", "postfix", "one-shot"), ("mtail --one_shot", "postfix", "one-shot"),
                 ("prometheus-postfix-exporter", "postfix", "catch-up")):
        assert peer in rows, f"{peer[0]} was not measured"
    for peer in (("mtail --one_shot", "postfix", "one-shot"), ("prometheus-postfix-exporter", "postfix", "catch-up")):
        assert rows[peer]["counted"] == rows[peer]["expected"] > 0, peer[0]
    assert "| ndr-exporter | postfix | catch-up | 3000 |" in run.stdout
