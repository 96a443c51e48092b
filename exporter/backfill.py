"""`ndr-exporter backfill FILE… --output DIR`: past logs as OpenMetrics with their own timestamps.

The same stages as the daemon (logfiles -> parser -> classifier -> metrics), run once
over old files; instead of serving the counters, it writes their value at the end of
every step (default one minute) from the first event to the last, so that
`promtool tsdb create-blocks-from openmetrics` turns months of logs into Prometheus
blocks and rate() over the imported history gives what the live exporter would have.
Only ndr_status_codes_total is written: the other series describe the exporter's
own work, which a backfill does not repeat.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from exporter.events import StatusEvent
from exporter.logfiles import open_log, parser_for, read_chunks
from exporter.metrics import STATUS_LABELS, Metrics
from exporter.parsers import FORMATS

OUTPUT_NAME = "ndr-backfill.om"
FAMILY = "ndr_status_codes"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class OpenMetricsWriter:
    """Writes the counters' values once per step, in time order."""

    def __init__(self, out: TextIO, metrics: Metrics, step: int) -> None:
        self.out = out
        self.metrics = metrics
        self.step = step
        self.step_end: int | None = None   # the timestamp of the sample being built
        self.samples = 0
        self.late_events = 0               # older than the step being built: counted into it
        self.out.write(f"# HELP {FAMILY} SMTP status codes found in mail logs, by code and its meaning.\n")
        self.out.write(f"# TYPE {FAMILY} counter\n")

    def add(self, event: StatusEvent) -> None:
        assert event.timestamp is not None
        end = (int(event.timestamp) // self.step + 1) * self.step
        if self.step_end is None:
            self.step_end = end
        elif end > self.step_end:
            while self.step_end < end:
                self._write_step()
                self.step_end += self.step
        elif end < self.step_end:
            self.late_events += 1
        self.metrics.add_event("backfill", event)

    def _write_step(self) -> None:
        for key, value in self.metrics.live.status.items():
            labels = ",".join(f'{name}="{_escape(v)}"' for name, v in zip(STATUS_LABELS, key))
            self.out.write(f"{FAMILY}_total{{{labels}}} {value:g} {self.step_end}\n")
            self.samples += 1

    def close(self) -> None:
        if self.step_end is not None:
            self._write_step()
        self.out.write("# EOF\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ndr-exporter backfill",
        description="Write OpenMetrics with the logs' own timestamps for promtool tsdb create-blocks-from openmetrics.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="log files in time order, plain or .gz")
    parser.add_argument("--output", required=True, metavar="DIR", help=f"directory to write {OUTPUT_NAME} into")
    parser.add_argument("--format", default="auto", choices=("auto",) + FORMATS)
    parser.add_argument("--step", type=int, default=60, help="seconds between samples (default 60)")
    parser.add_argument("--metrics.code-cap", dest="code_cap", type=int, default=500)
    args = parser.parse_args(argv)
    if args.step < 1:
        parser.error("--step: must be at least 1 second")

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, OUTPUT_NAME)
    metrics = Metrics(code_cap=args.code_cap)
    no_timestamp = 0
    try:
        with open(path, "w", encoding="utf-8") as out:
            writer = OpenMetricsWriter(out, metrics, args.step)
            for log in args.files:
                log_parser = parser_for(log, args.format)
                with open_log(log) as stream:
                    for chunk in read_chunks(stream):
                        for event in log_parser.parse(chunk.data).events:
                            if event.timestamp is None:
                                no_timestamp += 1
                            else:
                                writer.add(event)
            writer.close()
    except OSError as err:
        print(f"ndr-exporter backfill: {err.filename}: {err.strerror}", file=sys.stderr)
        return 1
    events = int(sum(metrics.live.status.values()))
    print(f"wrote {writer.samples} samples of {len(metrics.live.status)} series from {events} events to {path}",
          file=sys.stderr)
    if no_timestamp:
        print(f"skipped {no_timestamp} events whose line had no timestamp", file=sys.stderr)
    if writer.late_events:
        print(f"{writer.late_events} events were older than the step being written and were counted in it",
              file=sys.stderr)
    print(f"import with: promtool tsdb create-blocks-from openmetrics {path} /var/lib/prometheus/metrics2",
          file=sys.stderr)
    return 0
