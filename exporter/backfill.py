"""`ndr-exporter backfill FILE… --output DIR`: past logs as OpenMetrics with their own timestamps.

The same stages as the daemon (logfiles -> parser -> classifier -> metrics), run once
over old files. Instead of serving the counters, it writes the value every series had
at the end of each step (default one minute), from one step before the first event to
the last, so that `promtool tsdb create-blocks-from openmetrics` turns months of logs
into Prometheus blocks and rate()/increase() over the imported history give what the
live exporter would have shown. Each series starts with a 0 one step before its first
event, so that increase() over the whole history counts every event.

Events are filed under the step of their own timestamp, so the files may be given in
any order (`mail.log*` as the shell sorts it) and lines a little out of order are fine.
Only the steps that saw events are held in memory; the dense output is written at the end.

Events at or after --until are left out (default: three hours before now). Prometheus
documents that the newest ~3 hours belong to the running server's head block and must not
be backfilled; the live exporter counts that period. A syslog line has no year: the parser
takes the latest year that does not put it in the future, so no event is later than now.

Only ndr_status_codes_total is written: the other series describe the exporter's own work,
which a backfill does not repeat. Exit status: 0 written, 1 a file could not be read or
written, 2 bad flags (including output larger than --max-samples), 130 interrupted.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from datetime import datetime
from typing import TextIO

from exporter.argparsing import SuggestingParser
from exporter.logfiles import LogFileError, parse_file
from exporter.metrics import DEFAULT_SERIES_CAP, STATUS_LABELS, Metrics
from exporter.parsers import FORMATS
from exporter.parsers.base import Tally

OUTPUT_NAME = "ndr-backfill.om"
FAMILY = "ndr_status_codes"
HEAD_WINDOW = 3 * 3600          # the newest data a running Prometheus keeps in its head block
DEFAULT_MAX_SAMPLES = 20_000_000
TOO_NEW = "too new"             # the bucket of events at or after --until

Key = tuple[str, ...]
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class History:
    """How much each series grew in each step, for the steps that saw events."""

    def __init__(self, metrics: Metrics, step: int, until: float, labels: dict[str, str] | None = None) -> None:
        self.metrics = metrics
        self.step = step
        self.until = until
        self.extra = "".join(f',{name}="{_escape(value)}"' for name, value in (labels or {}).items())
        self.steps: dict[int, dict[Key, int]] = {}
        self.first_step: dict[Key, int] = {}
        self.events = 0
        self.no_timestamp = 0
        self.too_new = 0

    def bucket(self, timestamp: float) -> int | str:
        """backfill's time bucket: the end of the step that holds the event (the sample at time
        T holds every event up to and including T), or TOO_NEW at or after --until."""
        if timestamp >= self.until:
            return TOO_NEW
        return math.ceil(timestamp / self.step) * self.step

    def add(self, counted: Tally) -> None:
        """Count a chunk's events, added up by label fields and self.bucket (None: no time)."""
        for fields, buckets in counted.items():
            key: Key | None = None
            for end, n in buckets.items():
                if end is None:
                    self.no_timestamp += n
                    continue
                if end == TOO_NEW:
                    self.too_new += n
                    continue
                if key is None:
                    key = self.metrics.labels(fields)
                grown = self.steps.setdefault(end, {})
                grown[key] = grown.get(key, 0) + n
                if end < self.first_step.get(key, end + 1):
                    self.first_step[key] = end
                self.events += n

    def span(self) -> tuple[int, int] | None:
        """The times of the first sample (the zeros) and of the last, or None with no events."""
        if not self.steps:
            return None
        return min(self.steps) - self.step, max(self.steps)

    def sample_count(self) -> int:
        span = self.span()
        if span is None:
            return 0
        last = span[1]
        return sum((last - (first - self.step)) // self.step + 1 for first in self.first_step.values())

    def write(self, out: TextIO) -> None:
        """The OpenMetrics text: every series at every step from its zero to the last step."""
        out.write(f"# HELP {FAMILY} SMTP status codes found in mail logs, by code and its meaning.\n")
        out.write(f"# TYPE {FAMILY} counter\n")
        span = self.span()
        if span is not None:
            values: dict[Key, int] = {}
            labels: dict[Key, str] = {}
            order: list[Key] = []
            for t in range(span[0], span[1] + 1, self.step):
                for key, n in self.steps.get(t, {}).items():
                    values[key] += n
                born = [key for key in self.steps.get(t + self.step, {}) if key not in values]
                for key in born:   # first counted in the next step: 0 now
                    values[key] = 0
                    labels[key] = ",".join(f'{name}="{_escape(v)}"' for name, v in zip(STATUS_LABELS, key)) + self.extra
                if born:
                    order = sorted(values)
                out.write("".join(f"{FAMILY}_total{{{labels[key]}}} {values[key]} {t}\n" for key in order))
        out.write("# EOF\n")


def parse_until(text: str, now: float) -> float:
    """--until: "now", Unix seconds, or an RFC 3339 time with its zone; ValueError otherwise."""
    if text == "now":
        return now
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError("give the time zone (Z or +hh:mm)")
    return stamp.timestamp()


def parse_label(text: str) -> tuple[str, str]:
    """--label NAME=VALUE; ValueError when NAME is not a label name this output can carry."""
    name, sep, value = text.partition("=")
    if not sep or not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
        raise ValueError(f"{text!r} is not NAME=VALUE with a Prometheus label name")
    if name in STATUS_LABELS:
        raise ValueError(f"{name!r} is one of the metric's own labels ({', '.join(STATUS_LABELS)})")
    return name, value


def main(argv: list[str]) -> int:
    parser = SuggestingParser(
        prog="ndr-exporter backfill",
        description="Write OpenMetrics with the logs' own timestamps for promtool tsdb create-blocks-from openmetrics.",
        epilog="Exit status: 0 written, 1 a file could not be read or written, 2 bad flags.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="log files, plain or gzip, in any order")
    parser.add_argument("--output", required=True, metavar="DIR", help=f"directory to write {OUTPUT_NAME} into")
    parser.add_argument("--format", default="auto", choices=("auto",) + FORMATS)
    parser.add_argument("--step", type=int, default=60, help="seconds between samples (default 60)")
    parser.add_argument("--until", default=None, metavar="TIME",
                        help="leave out events at or after TIME: now, Unix seconds or RFC 3339 "
                             "(default: 3 hours ago, the running Prometheus's head block)")
    parser.add_argument("--max-samples", dest="max_samples", type=int, default=DEFAULT_MAX_SAMPLES,
                        help=f"refuse to write more samples than this (default {DEFAULT_MAX_SAMPLES:,}); "
                             "samples = series x steps")
    parser.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                        help="add this label to every series (repeatable), e.g. job=ndr and instance=mx1:19798, "
                             "the labels the live exporter's series get from the scrape")
    parser.add_argument("--metrics.code-cap", dest="code_cap", type=int, default=500,
                        help="distinct code values before the rest fold into code=\"overflow\" (default 500)")
    parser.add_argument("--metrics.series-cap", dest="series_cap", type=int, default=DEFAULT_SERIES_CAP,
                        help="distinct series before the rest fold into code, subject and provider "
                             f"\"overflow\" (default {DEFAULT_SERIES_CAP}), as in the daemon")
    args = parser.parse_args(argv)
    if args.step < 1:
        parser.error(f"--step: must be at least 1 second, not {args.step}")
    if args.code_cap < 1:
        parser.error(f"--metrics.code-cap: must be at least 1, not {args.code_cap}")
    if args.series_cap < 1:
        parser.error(f"--metrics.series-cap: must be at least 1, not {args.series_cap}")
    now = time.time()
    try:
        until = now - HEAD_WINDOW if args.until is None else parse_until(args.until, now)
    except ValueError as err:
        parser.error(f"--until: cannot read {args.until!r}: {err}")

    labels: dict[str, str] = {}
    for text in args.label:
        try:
            name, value = parse_label(text)
        except ValueError as err:
            parser.error(f"--label: {err}")
        labels[name] = value

    history = History(Metrics(code_cap=args.code_cap, series_cap=args.series_cap), args.step, until, labels)
    try:
        for log in args.files:
            for _chunk, result in parse_file(log, args.format, bucket=history.bucket):
                history.add(result.tally)
    except LogFileError as err:
        print(f"ndr-exporter backfill: cannot read {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:   # Ctrl-C while reading: nothing written, no traceback
        return 130

    samples = history.sample_count()
    if samples > args.max_samples:
        span = history.span() or (0, 0)
        parser.error(f"--max-samples: the output would hold {samples:,} samples ({len(history.first_step)} "
                     f"series over {(span[1] - span[0]) // 3600:,} hours at a {args.step} s step), more than "
                     f"{args.max_samples:,}; raise --max-samples or --step, or give fewer files")
    path = os.path.join(args.output, OUTPUT_NAME)
    try:
        os.makedirs(args.output, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            history.write(out)
    except OSError as err:
        print(f"ndr-exporter backfill: cannot write {path}: {err.strerror}", file=sys.stderr)
        return 1
    _summary(history, samples, path, until)
    return 0


def _summary(history: History, samples: int, path: str, until: float) -> None:
    say = sys.stderr.write
    span = history.span()
    if span is None:
        say(f"no status events with a time before {_utc(until)}: {path} holds no samples, nothing to import\n")
    else:
        say(f"wrote {samples} samples of {len(history.first_step)} series from {history.events} events, "
            f"{_utc(span[0])} to {_utc(span[1])}, to {path}\n")
    if history.too_new:
        say(f"left out {history.too_new} events at or after {_utc(until)} (--until; the live exporter counts them)\n")
    if history.no_timestamp:
        say(f"left out {history.no_timestamp} events whose line had no time\n")
    if span is not None:
        say(f"import with: promtool tsdb create-blocks-from openmetrics --max-block-duration=24h {path} BLOCKDIR\n"
            "then move BLOCKDIR/* into Prometheus's data directory (see 'backfill' in the README)\n")


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
