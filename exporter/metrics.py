"""The metrics stage: the counters, and the only module that touches prometheus_client.

Counting and publishing are separate (DESIGN.md section 5, "commit, then publish"):
the pipeline adds to the live counts as it parses; commit() copies them into the
published snapshot only after the checkpoint that holds them has been written,
so /metrics never runs ahead of what a restart would resume from.
"""

from __future__ import annotations

import platform
import threading
import time
from collections import Counter
from functools import partial
from operator import attrgetter, is_not, itemgetter
from typing import Any, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.classifier import classify_event
from exporter.events import StatusEvent

STATUS_LABELS = ("mta", "outcome", "code", "class", "subject", "meaning", "provider")
LINE_RESULTS = ("matched", "ignored", "unparsed", "oversized")
OVERFLOW_CODE = "overflow"
DEFAULT_CODE_CAP = 500
LABEL_CACHE_SIZE = 50_000   # distinct event fields whose labels are remembered (remote hosts make many)
# Fixed code values that never count against the cap: no code logged, a malformed one.
UNCAPPED_CODES = frozenset({"none", "invalid"})
# What add_events() reads from each event: the fields the labels come from, and the time.
_LABEL_FIELDS = itemgetter(0, 1, 2, 3, 4)   # mta, outcome, code, reply, remote
_TIMESTAMP = attrgetter("timestamp")
_IS_NOT_NONE = partial(is_not, None)


class Counts:
    """Plain dictionaries of counter values; copied whole for a checkpoint or a snapshot."""

    def __init__(self) -> None:
        self.status: dict[tuple[str, ...], float] = {}
        self.lines: dict[tuple[str, str], float] = {}
        self.bytes_read: dict[str, float] = {}
        self.rotations: dict[str, float] = {}
        self.read_errors: dict[str, float] = {}
        self.folded: float = 0.0
        self.last_event: dict[str, float] = {}

    def copy(self) -> "Counts":
        other = Counts()
        other.status = dict(self.status)
        other.lines = dict(self.lines)
        other.bytes_read = dict(self.bytes_read)
        other.rotations = dict(self.rotations)
        other.read_errors = dict(self.read_errors)
        other.folded = self.folded
        other.last_event = dict(self.last_event)
        return other

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable form, for the checkpoint file."""
        return {
            "status": [list(k) + [v] for k, v in self.status.items()],
            "lines": [list(k) + [v] for k, v in self.lines.items()],
            "bytes_read": self.bytes_read,
            "rotations": self.rotations,
            "read_errors": self.read_errors,
            "folded": self.folded,
            "last_event": self.last_event,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Counts":
        counts = cls()
        counts.status = {tuple(row[:-1]): float(row[-1]) for row in state.get("status", [])
                         if len(row) == len(STATUS_LABELS) + 1}
        counts.lines = {(row[0], row[1]): float(row[2]) for row in state.get("lines", []) if len(row) == 3}
        counts.bytes_read = {str(k): float(v) for k, v in state.get("bytes_read", {}).items()}
        counts.rotations = {str(k): float(v) for k, v in state.get("rotations", {}).items()}
        counts.read_errors = {str(k): float(v) for k, v in state.get("read_errors", {}).items()}
        counts.folded = float(state.get("folded", 0.0))
        counts.last_event = {str(k): float(v) for k, v in state.get("last_event", {}).items()}
        return counts


class Metrics:
    """Live counts, the published snapshot, and the cardinality guard on code values."""

    def __init__(self, code_cap: int = DEFAULT_CODE_CAP, counts: Counts | None = None,
                 checkpointing: bool = False) -> None:
        self.code_cap = code_cap
        # Checkpoint health (only with a state file): when the last checkpoint was written, and
        # how many writes failed since start. Set by the pipeline thread, read by the collector.
        self.checkpointing = checkpointing
        self.checkpoint_last_success: float | None = None
        self.checkpoint_failures = 0
        # Where each file source is, as of the last commit: source -> [(path, offset)] of the
        # files it follows now (rotated files it is finishing are left out).
        self._positions: dict[str, list[tuple[str, int]]] = {}
        self.live = counts.copy() if counts else Counts()
        self._codes_seen: set[str] = {key[2] for key in self.live.status} - UNCAPPED_CODES - {OVERFLOW_CODE}
        self._published = self.live.copy()
        self._lock = threading.Lock()
        # fields -> (label values, folded): each distinct event is classified once, not per chunk
        self._labels: dict[tuple[Any, ...], tuple[tuple[str, ...], bool]] = {}

    # --- counting (pipeline thread) ---
    def add_event(self, source: str, event: StatusEvent) -> tuple[str, ...]:
        """Count one event; returns the label values (STATUS_LABELS order) it was counted under."""
        key = self._count(event.mta, event.outcome, event.code, event.reply, event.remote, 1)
        if event.timestamp is not None and event.timestamp > self.live.last_event.get(source, 0.0):
            self.live.last_event[source] = event.timestamp
        return key

    def add_events(self, source: str, events: list[StatusEvent]) -> None:
        """Count a chunk's events: the same counts as add_event() for each in turn, in fewer steps.

        Events that differ only in timestamp and queue id are counted under the same labels,
        so they are tallied first and each distinct one is classified once. The tally keeps
        the order in which they first appear, so codes meet the cardinality cap in the same
        order as one by one.
        """
        if not events:
            return
        newest = max(filter(_IS_NOT_NONE, map(_TIMESTAMP, events)), default=None)
        self.add_tally(source, Counter(map(_LABEL_FIELDS, events)), newest)

    def add_tally(self, source: str, tally: Mapping[tuple[Any, ...], int], newest: float | None) -> None:
        """Count events already added up by their label fields (ChunkResult.tally, in the order
        each first appeared); newest is the latest timestamp among them. The same counts as
        add_events() on the events themselves."""
        labels = self._labels
        status = self.live.status
        for fields, n in tally.items():
            known = labels.get(fields)
            if known is None:
                self._count(*fields, n)   # classifies it and remembers its labels
                continue
            key, folded = known
            if folded:
                self.live.folded += n
            status[key] = status.get(key, 0.0) + n
        if newest is not None and newest > self.live.last_event.get(source, 0.0):
            self.live.last_event[source] = newest

    def _count(self, mta: str, outcome: str, code: str | None, reply: str | None, remote: str | None,
               n: int) -> tuple[str, ...]:
        """Add n events of these fields; returns the label values they were counted under."""
        fields = (mta, outcome, code, reply, remote)
        known = self._labels.get(fields)
        if known is None:
            known = self._labels[fields] = self._label(mta, outcome, code, reply, remote)
            if len(self._labels) > LABEL_CACHE_SIZE:
                self._labels = {fields: known}
        key, folded = known
        if folded:
            self.live.folded += n
        status = self.live.status
        status[key] = status.get(key, 0.0) + n
        return key

    def _label(self, mta: str, outcome: str, code: str | None, reply: str | None, remote: str | None
               ) -> tuple[tuple[str, ...], bool]:
        """The label values for these fields, and whether the cap folds their code. Both hold
        for good once found: a code under the cap stays, and the cap, once full, stays full."""
        c, provider = classify_event(mta, outcome, code, reply, remote)
        label = c.code
        folded = False
        if label not in self._codes_seen and label not in UNCAPPED_CODES:
            if len(self._codes_seen) >= self.code_cap:
                folded = True
                label = OVERFLOW_CODE
                c = c._replace(meaning="code beyond the cardinality cap")
            else:
                self._codes_seen.add(label)
        return (mta, outcome, label, c.status_class, c.subject, c.meaning, provider), folded

    def add_lines(self, source: str, matched: int, ignored: int, unparsed: int, oversized: int = 0) -> None:
        lines = self.live.lines
        for result, n in (("matched", matched), ("ignored", ignored), ("unparsed", unparsed), ("oversized", oversized)):
            if n:
                lines[(source, result)] = lines.get((source, result), 0.0) + n

    def add_bytes(self, source: str, n: int) -> None:
        self.live.bytes_read[source] = self.live.bytes_read.get(source, 0.0) + n

    def add_rotation(self, source: str) -> None:
        self.live.rotations[source] = self.live.rotations.get(source, 0.0) + 1

    def add_read_error(self, source: str) -> None:
        self.live.read_errors[source] = self.live.read_errors.get(source, 0.0) + 1

    def declare_source(self, source: str) -> None:
        """Make a source's line counters appear at 0 before its first line."""
        for result in LINE_RESULTS:
            self.live.lines.setdefault((source, result), 0.0)
        self.live.bytes_read.setdefault(source, 0.0)
        self.live.rotations.setdefault(source, 0.0)
        self.live.read_errors.setdefault(source, 0.0)

    # --- checkpoint and publish ---
    def state(self) -> dict[str, Any]:
        return self.live.to_state()

    def checkpoint_written(self, ok: bool) -> None:
        """Record one checkpoint write: its time when it succeeded, one more failure when not."""
        if ok:
            self.checkpoint_last_success = time.time()
        else:
            self.checkpoint_failures += 1

    def commit(self, source_states: Mapping[str, Any] | None = None) -> None:
        """Publish the live counts; call only after the checkpoint holding them is written.
        source_states (the sources' state(), as checkpointed) gives the published read positions."""
        snapshot = self.live.copy()
        positions = None if source_states is None else _positions(source_states)
        with self._lock:
            self._published = snapshot
            if positions is not None:
                self._positions = positions

    def positions(self) -> dict[str, list[tuple[str, int]]]:
        with self._lock:
            return self._positions

    def published(self) -> Counts:
        with self._lock:
            return self._published


def _positions(states: Mapping[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """(path, offset) of the current files in each file source's state (see sources/files.py)."""
    found: dict[str, list[tuple[str, int]]] = {}
    for source, state in states.items():
        files = state.get("files") if isinstance(state, dict) else None
        if not isinstance(files, list):
            continue
        found[source] = [(str(f["path"]), int(f["offset"])) for f in files
                         if isinstance(f, dict) and "path" in f and "offset" in f and not f.get("rotated")]
    return found


class MetricsCollector(Collector):
    """Exposes the published snapshot through prometheus_client."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        counts = self.metrics.published()
        status = CounterMetricFamily(
            "ndr_status_codes", "SMTP status codes found in mail logs, by code and its meaning.",
            labels=STATUS_LABELS)
        for key, value in sorted(counts.status.items()):
            status.add_metric(key, value)
        yield status

        lines = CounterMetricFamily("ndr_exporter_lines", "Log lines read, by source and result.",
                                    labels=("source", "result"))
        for (source, result), value in sorted(counts.lines.items()):
            lines.add_metric((source, result), value)
        yield lines

        for name, doc, values in (
            ("ndr_exporter_read_bytes", "Bytes read from each source.", counts.bytes_read),
            ("ndr_exporter_rotations", "Log rotations and truncations followed, per source.", counts.rotations),
            ("ndr_exporter_read_errors", "Errors opening or reading a source.", counts.read_errors),
        ):
            family = CounterMetricFamily(name, doc, labels=("source",))
            for source, value in sorted(values.items()):
                family.add_metric((source,), value)
            yield family

        folded = CounterMetricFamily(
            "ndr_exporter_codes_folded",
            "Events whose code was folded into code=\"overflow\" by the cardinality cap.")
        folded.add_metric((), counts.folded)
        yield folded

        last = GaugeMetricFamily("ndr_exporter_last_event_timestamp_seconds",
                                 "Log timestamp of the newest status event, per source.", labels=("source",))
        for source, value in sorted(counts.last_event.items()):
            last.add_metric((source,), value)
        yield last

        position = GaugeMetricFamily("ndr_exporter_source_position_bytes",
                                     "Read position in each file a file source follows now, as of the last "
                                     "checkpoint.", labels=("source", "path"))
        for source, files in sorted(self.metrics.positions().items()):
            for path, offset in files:
                position.add_metric((source, path), offset)
        yield position

        if self.metrics.checkpointing:
            written = self.metrics.checkpoint_last_success
            if written is not None:
                success = GaugeMetricFamily("ndr_exporter_checkpoint_last_success_timestamp_seconds",
                                            "Unix time of the last checkpoint written to the state file.")
                success.add_metric((), written)
                yield success
            failures = CounterMetricFamily("ndr_exporter_checkpoint_failures",
                                           "Checkpoint writes that failed since start (the counts go on; "
                                           "a restart would recount from the last checkpoint written).")
            failures.add_metric((), self.metrics.checkpoint_failures)
            yield failures

        info = GaugeMetricFamily("ndr_exporter_build_info", "Build information; always 1.",
                                 labels=("version", "python_version"))
        info.add_metric((__version__, platform.python_version()), 1.0)
        yield info
