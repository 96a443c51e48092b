"""The metrics stage: the counters, and the only module that touches prometheus_client.

Counting and publishing are separate (DESIGN.md section 5, "commit, then publish"):
the pipeline adds to the live counts as it parses; commit() copies them into the
published snapshot only after the checkpoint that holds them has been written,
so /metrics never runs ahead of what a restart would resume from.

Two caps bound ndr_status_codes_total (docs/metrics.md, "The cardinality caps"):
  - the code cap: at most code_cap distinct code values; an event with a further code is
    counted under code="overflow" (its other labels kept) and in ndr_exporter_codes_folded_total;
  - the series cap: at most series_cap distinct series (label sets, code-folded ones included);
    an event that would open a further series is counted in the series of its (mta, outcome,
    class) with code, subject and provider "overflow" and meaning SERIES_FOLD_MEANING, and in
    ndr_exporter_series_folded_total. Those fold series are at most len(MTAS) x len(OUTCOMES)
    x 3 classes, and do not count against the cap, so the family never holds more than
    series_cap plus that many series.
Both hold for good once reached, and the series and codes seen come back from the checkpoint.

ndr_exporter_last_event_timestamp_seconds never runs more than FUTURE_TOLERANCE ahead of the
clock: a chunk whose newest event is dated further ahead (a wrong year, a host's clock far off)
sets it to the time the chunk was counted, with a warning; a checkpoint that holds such a value
is brought back to the time it was written (Counts.clamp_future). Else a few lines dated a year
ahead would pin it there, across restarts, and NdrLogStale could not fire for a year.
"""

from __future__ import annotations

import logging
import platform
import sys
import threading
import time
from typing import Any, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.classifier import classify_event
from exporter.parsers.base import Counted, LabelFields

STATUS_LABELS = ("mta", "outcome", "code", "class", "subject", "meaning", "provider")
LINE_LABELS = ("source", "result")
_CODE = STATUS_LABELS.index("code")
LINE_RESULTS = ("matched", "ignored", "unparsed", "oversized")
OVERFLOW_CODE = "overflow"
CODE_FOLD_MEANING = "code beyond the cardinality cap"
SERIES_FOLD_MEANING = "series beyond the cardinality cap"
_SUBJECT = STATUS_LABELS.index("subject")
_MEANING = STATUS_LABELS.index("meaning")
_PROVIDER = STATUS_LABELS.index("provider")
_checkpoint_log = logging.getLogger("ndr_exporter.checkpoint")
log = logging.getLogger("ndr_exporter.metrics")
# How far ahead of the clock an event's timestamp is believed (clock skew between hosts, a
# syslog line stamped a little ahead); a newest event further ahead counts as read now.
FUTURE_TOLERANCE = 300.0
DEFAULT_CODE_CAP = 500
DEFAULT_SERIES_CAP = 2000   # 500 codes x 12 providers made 6,000 series, /metrics 1 MB (issue 16)
LABEL_CACHE_SIZE = 50_000   # distinct event fields whose labels are remembered (remote hosts make many)
# Fixed code values that never count against the cap: no code logged, a malformed one.
UNCAPPED_CODES = frozenset({"none", "invalid"})


class Counts:
    """Plain dictionaries of counter values; copied whole for a checkpoint or a snapshot."""

    def __init__(self) -> None:
        self.status: dict[tuple[str, ...], float] = {}
        self.lines: dict[tuple[str, str], float] = {}
        self.bytes_read: dict[str, float] = {}
        self.rotations: dict[str, float] = {}
        self.read_errors: dict[str, float] = {}
        self.folded: float = 0.0
        self.series_folded: float = 0.0
        self.last_event: dict[str, float] = {}

    def copy(self) -> "Counts":
        other = Counts()
        other.status = dict(self.status)
        other.lines = dict(self.lines)
        other.bytes_read = dict(self.bytes_read)
        other.rotations = dict(self.rotations)
        other.read_errors = dict(self.read_errors)
        other.folded = self.folded
        other.series_folded = self.series_folded
        other.last_event = dict(self.last_event)
        return other

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable form, for the checkpoint file; it names the labels of its rows."""
        return {
            "labels": {"status": list(STATUS_LABELS), "lines": list(LINE_LABELS)},
            "status": [list(k) + [v] for k, v in self.status.items()],
            "lines": [list(k) + [v] for k, v in self.lines.items()],
            "bytes_read": self.bytes_read,
            "rotations": self.rotations,
            "read_errors": self.read_errors,
            "folded": self.folded,
            "series_folded": self.series_folded,
            "last_event": self.last_event,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Counts":
        """The counts a checkpoint holds. Rows are read by the label names the checkpoint gives
        (checkpoint.py migrates older files to name them): a label that no longer exists is
        summed away, and a label the checkpoint has no value for drops that family's rows;
        either is logged, as is any malformed row dropped."""
        counts = cls()
        labels = state["labels"]
        counts.status = _rows("ndr_status_codes_total", state.get("status", []), labels["status"], STATUS_LABELS)
        counts.lines = _rows("ndr_exporter_lines_total", state.get("lines", []), labels["lines"], LINE_LABELS)
        counts.bytes_read = {str(k): float(v) for k, v in state.get("bytes_read", {}).items()}
        counts.rotations = {str(k): float(v) for k, v in state.get("rotations", {}).items()}
        counts.read_errors = {str(k): float(v) for k, v in state.get("read_errors", {}).items()}
        counts.folded = float(state.get("folded", 0.0))
        counts.series_folded = float(state.get("series_folded", 0.0))   # absent before issue 16: 0
        counts.last_event = {str(k): float(v) for k, v in state.get("last_event", {}).items()}
        return counts

    def clamp_future(self, now: float, written_at: Any = None) -> list[str]:
        """Bring every last-event time beyond now + FUTURE_TOLERANCE back to written_at (when the
        checkpoint holding it was written; now if that is unknown or itself ahead); returns the
        sources it changed."""
        limit = now + FUTURE_TOLERANCE
        to = float(written_at) if isinstance(written_at, (int, float)) and written_at <= limit else now
        changed = sorted(source for source, value in self.last_event.items() if value > limit)
        for source in changed:
            self.last_event[source] = to
        return changed


def _rows(family: str, rows: list[list[Any]], saved: list[str], wanted: tuple[str, ...]
          ) -> dict[tuple[str, ...], float]:
    """A family's checkpointed rows (label values in `saved` order, then the count) keyed by
    the `wanted` labels' values; what cannot be kept is logged under ndr_exporter.checkpoint."""
    missing = [name for name in wanted if name not in saved]
    if missing:
        _checkpoint_log.error(
            "checkpoint: dropped %d series of %s: the label(s) %s are new and the checkpoint has no "
            "value for them; those counters restart from 0", len(rows), family, ", ".join(missing))
        return {}
    where = [list(saved).index(name) for name in wanted]
    out: dict[tuple[str, ...], float] = {}
    bad = 0
    for row in rows:
        if not isinstance(row, list) or len(row) != len(saved) + 1:
            bad += 1
            continue
        key = tuple(str(row[i]) for i in where)
        out[key] = out.get(key, 0.0) + float(row[-1])
    if bad:
        _checkpoint_log.error("checkpoint: dropped %d malformed row(s) of %s (not %d label values and a count)",
                              bad, family, len(saved))
    gone = [name for name in saved if name not in wanted]
    if gone:
        _checkpoint_log.warning("checkpoint: the label(s) %s of %s no longer exist: %d series summed into %d",
                                ", ".join(gone), family, len(rows) - bad, len(out))
    return out


class Metrics:
    """Live counts, the published snapshot, and the cardinality caps on codes and on series."""

    def __init__(self, code_cap: int = DEFAULT_CODE_CAP, counts: Counts | None = None,
                 checkpointing: bool = False, series_cap: int = DEFAULT_SERIES_CAP) -> None:
        self.code_cap = code_cap
        self.series_cap = series_cap
        # Checkpoint health (only with a state file): when the last checkpoint was written, and
        # how many writes failed since start. Set by the pipeline thread, read by the collector.
        self.checkpointing = checkpointing
        self.checkpoint_last_success: float | None = None
        self.checkpoint_failures = 0
        # Where each file source is, as of the last commit: source -> [(path, offset)] of the
        # files it follows now (rotated files it is finishing are left out).
        self._positions: dict[str, list[tuple[str, int]]] = {}
        self.live = counts.copy() if counts else Counts()
        self._codes_seen: set[str] = {key[_CODE] for key in self.live.status} - UNCAPPED_CODES - {OVERFLOW_CODE}
        # The series under the series cap (restored ones kept, even beyond a cap lowered since).
        self._series_seen: set[tuple[str, ...]] = {key for key in self.live.status if not is_series_fold(key)}
        self._published = self.live.copy()
        self._lock = threading.Lock()
        self._version = 0   # see version()
        # fields -> (label values, code folded, series folded): each distinct event is classified
        # once, not per chunk
        self._labels: dict[LabelFields, tuple[tuple[str, ...], bool, bool]] = {}
        self._ahead: set[str] = set()   # sources whose timestamps ran ahead of the clock (warned once)

    # --- counting (pipeline thread) ---
    def add(self, source: str, counted: Counted) -> None:
        """Count what a parser's count() handed back for one chunk of a source: its events
        (every time bucket alike: the live counters have no time), its line results and its
        newest timestamp. Each distinct LabelFields is classified once and remembered; the
        tally keeps the order in which each first appeared, so codes meet the cardinality
        cap in the order of the log."""
        labels = self._labels
        status = self.live.status
        for fields, buckets in counted.tally.items():
            n = sum(buckets.values())
            known = labels.get(fields)
            if known is None:
                known = self._learn(fields)
            key, code_folded, series_folded = known
            if code_folded:
                self.live.folded += n
            if series_folded:
                self.live.series_folded += n
            status[key] = status.get(key, 0.0) + n
        newest = counted.newest
        if newest is not None and newest > self.live.last_event.get(source, 0.0):
            now = time.time()
            if newest > now + FUTURE_TOLERANCE:
                self._ran_ahead(source, newest, now)
                newest = now
            if newest > self.live.last_event.get(source, 0.0):
                self.live.last_event[source] = newest
        self.add_lines(source, counted.matched, counted.ignored, counted.unparsed)

    def _ran_ahead(self, source: str, newest: float, now: float) -> None:
        """Warn (once per source) that its events are dated too far ahead to be believed."""
        if source in self._ahead:
            return
        self._ahead.add(source)
        log.warning("%s: status events dated %.0f s ahead of the clock (more than %.0f s): the last event "
                    "time is taken as the time they were read; check the log's timestamps or this host's clock",
                    source, newest - now, FUTURE_TOLERANCE)

    def labels(self, fields: LabelFields) -> tuple[str, ...]:
        """The label values (STATUS_LABELS order) events of these fields are counted under;
        a new code takes its place under the cap as add() would give it one."""
        known = self._labels.get(fields)
        if known is None:
            known = self._learn(fields)
        return known[0]

    def _learn(self, fields: LabelFields) -> tuple[tuple[str, ...], bool, bool]:
        """Classify these fields once and remember their label values and whether they fold.
        The fields kept (and the series key made of them) hold one shared copy of each string:
        a parser makes new ones per chunk, so 2,000 series kept about 2,000 equal copies each
        of "postfix", "bounced", "550" and the relay's name."""
        fields = LabelFields._make(None if value is None else sys.intern(value) for value in fields)
        known = self._labels[fields] = self._label(*fields)
        if len(self._labels) > LABEL_CACHE_SIZE:
            self._labels = {fields: known}
        return known

    def _label(self, mta: str, outcome: str, code: str | None, reply: str | None, remote: str | None
               ) -> tuple[tuple[str, ...], bool, bool]:
        """The label values for these fields, whether the code cap folds their code and whether
        the series cap folds their series. All hold for good once found: a code or a series under
        its cap stays, and a cap, once full, stays full."""
        c, provider = classify_event(mta, outcome, code, reply, remote)
        label = c.code
        folded = new_code = False
        if label not in self._codes_seen and label not in UNCAPPED_CODES:
            if len(self._codes_seen) >= self.code_cap:
                folded = True
                label = OVERFLOW_CODE
                c = c._replace(meaning=CODE_FOLD_MEANING)
            else:
                new_code = True
        key = (mta, outcome, label, c.status_class, c.subject, c.meaning, provider)
        if key not in self._series_seen:
            if len(self._series_seen) >= self.series_cap:
                return series_fold(key), folded, True   # a new code here takes no place under the code cap
            self._series_seen.add(key)
        if new_code:
            self._codes_seen.add(label)
        return key, folded, False

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

    def version(self) -> int:
        """Changes whenever what MetricsCollector shows may have (web.py renders it once per version)."""
        return self._version

    def checkpoint_written(self, ok: bool) -> None:
        """Record one checkpoint write: its time when it succeeded, one more failure when not."""
        self._version += 1
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
            self._version += 1

    def positions(self) -> dict[str, list[tuple[str, int]]]:
        with self._lock:
            return self._positions

    def published(self) -> Counts:
        with self._lock:
            return self._published


def series_fold(key: tuple[str, ...]) -> tuple[str, ...]:
    """The series an event of labels `key` is counted in beyond the series cap: its mta, outcome
    and class kept; code, subject and provider "overflow"; meaning SERIES_FOLD_MEANING."""
    folded = list(key)
    folded[_CODE] = folded[_SUBJECT] = folded[_PROVIDER] = OVERFLOW_CODE
    folded[_MEANING] = SERIES_FOLD_MEANING
    return tuple(folded)


def is_series_fold(key: tuple[str, ...]) -> bool:
    return key[_MEANING] == SERIES_FOLD_MEANING and key[_PROVIDER] == OVERFLOW_CODE


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
    """Exposes the published snapshot through prometheus_client.

    render() gives what an encoder of prometheus_client renders for collect()'s families, faster:
    each status series' line up to its value ("name{labels} ") is rendered by that encoder once
    per content type and kept, and each render only writes the values after them, as the
    encoders do (prometheus_client.utils.floatToGoString). Thousands of series render in a few
    milliseconds instead of tens: web.py renders at the first scrape after each publish, while
    the scrapes that come meanwhile wait or get the snapshot before.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # content type -> (the family's HELP and TYPE lines, series key -> its line up to the value)
        self._lines: dict[str, tuple[bytes, dict[tuple[str, ...], bytes]]] = {}

    def collect(self) -> Iterable[Any]:
        counts = self.metrics.published()
        yield _status_family(sorted(counts.status.items()))
        yield from self._others(counts)

    def render(self, encoder: Any, content_type: str) -> bytes:
        counts = self.metrics.published()
        status = sorted(counts.status.items())
        known = self._lines.get(content_type)
        if known is None:
            known = self._lines[content_type] = (_status_lines(encoder, [])[0], {})
        head, prefixes = known
        new = [key for key, _value in status if key not in prefixes]
        if new:
            _head, lines = _status_lines(encoder, new)
            for key, line in zip(new, lines):
                prefixes[key] = line[:line.rindex(b" ") + 1]
        out = [head]
        out.extend(prefixes[key] + floatToGoString(value).encode() + b"\n" for key, value in status)
        out.append(encoder(_Families(list(self._others(counts)))))
        return b"".join(out)

    def _others(self, counts: Counts) -> Iterable[Any]:
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

        series_folded = CounterMetricFamily(
            "ndr_exporter_series_folded",
            "Events counted in a code=\"overflow\", provider=\"overflow\" series by the series cap.")
        series_folded.add_metric((), counts.series_folded)
        yield series_folded

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


def _status_family(items: Iterable[tuple[tuple[str, ...], float]]) -> CounterMetricFamily:
    status = CounterMetricFamily(
        "ndr_status_codes", "SMTP status codes found in mail logs, by code and its meaning.",
        labels=STATUS_LABELS)
    for key, value in items:
        status.add_metric(key, value)
    return status


def _status_lines(encoder: Any, keys: list[tuple[str, ...]]) -> tuple[bytes, list[bytes]]:
    """The status family's HELP and TYPE lines, and one sample line per key (value 0), as the
    encoder renders them."""
    text = encoder(_Families([_status_family((key, 0.0) for key in keys)]))
    lines = text.split(b"\n")
    head = [line for line in lines if line.startswith(b"# HELP") or line.startswith(b"# TYPE")]
    samples = [line for line in lines if line and not line.startswith(b"#")]
    if len(head) != 2 or len(samples) != len(keys):
        raise ValueError(f"unexpected rendering of the status family: {len(head)} comments, "
                         f"{len(samples)} samples for {len(keys)} series")
    return b"\n".join(head) + b"\n", samples


class _Families(Collector):
    """Families already made, for an encoder that takes a registry."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families
