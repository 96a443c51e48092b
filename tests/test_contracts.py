"""The stage contracts hold together: a chunk goes through parser, classifier and metrics."""

from exporter.events import UNPARSED, StatusEvent
from exporter.metrics import Metrics
from exporter.parsers.base import ChunkResult
from exporter.pipeline import process_chunk


class OneEventParser:
    format = "test"

    def parse(self, chunk: bytes) -> ChunkResult:
        lines = chunk.count(b"\n")
        event = StatusEvent("postfix", "bounced", "5.1.1", "550", "mx.example.net")
        return ChunkResult([event], lines, 1, lines - 1, 0)


def test_chunk_is_counted_and_published_only_after_commit():
    metrics = Metrics()
    process_chunk("mail", OneEventParser(), b"a\nb\nc\n", metrics)
    assert metrics.published().status == {}
    metrics.commit()
    counts = metrics.published()
    ((key, value),) = counts.status.items()
    assert key[:5] == ("postfix", "bounced", "5.1.1", "permanent", "addressing")
    assert key[6] == "other"
    assert value == 1.0
    assert counts.lines[("mail", "matched")] == 1.0
    assert counts.lines[("mail", "ignored")] == 2.0
    assert counts.bytes_read["mail"] == 6.0


def test_unparsed_marker_is_a_singleton():
    assert type(UNPARSED)() is UNPARSED
