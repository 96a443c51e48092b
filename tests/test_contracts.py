"""The stage contracts hold together: a chunk of real log lines goes through parser, classifier and metrics.

The lines are lines 8, 9 and 100 of the bundled real Postfix 3.7.11 capture
(exporter/data/samples/postfix-demo.log): a Subject header logged by cleanup and a
message-id, both full of code-like text that is not a status, and one smtp bounce.
"""

from pathlib import Path

from exporter.events import UNPARSED
from exporter.metrics import Metrics
from exporter.parsers import make_parser
from exporter.pipeline import process_chunk

SAMPLE = Path(__file__).resolve().parents[1] / "exporter" / "data" / "samples" / "postfix-demo.log"


def sample_lines(*numbers: int) -> bytes:
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    return b"".join(lines[n - 1] for n in numbers)


def test_chunk_is_counted_and_published_only_after_commit():
    chunk = sample_lines(8, 9, 100)
    metrics = Metrics()
    process_chunk("mail", make_parser("syslog"), chunk, metrics)
    assert metrics.published().status == {}
    metrics.commit()
    counts = metrics.published()
    assert counts.status == {
        ("postfix", "bounced", "5.1.1", "permanent", "addressing", "recipient mailbox does not exist", "other"): 1.0}
    assert counts.lines[("mail", "matched")] == 1.0
    assert counts.lines[("mail", "ignored")] == 2.0
    assert counts.bytes_read["mail"] == float(len(chunk))
    assert counts.last_event["mail"] > 0


def test_unparsed_marker_is_a_singleton():
    assert type(UNPARSED)() is UNPARSED


def test_sources_only_read():
    """No module of the source stage imports the parser or the metrics stage (or the glue
    between them): sources hand chunks and events to the daemon's stream (exporter/stream.py)."""
    import ast

    sources = Path(__file__).resolve().parents[1] / "exporter" / "sources"
    forbidden = ("exporter.metrics", "exporter.parsers", "exporter.pipeline", "exporter.stream")
    found = []
    for path in sorted(sources.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [(path.name, name) for name in names if name.startswith(forbidden)]
    assert found == []
