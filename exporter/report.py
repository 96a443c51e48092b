"""`ndr-exporter report FILE…`: a one-shot summary of mail logs for a postmaster's morning.

Runs the same stages as the daemon once over whole files (logfiles -> parser ->
classifier) and prints counts by outcome, class, subject, mta and provider, the top
codes with their meanings, and an hourly breakdown (UTC) — as a terminal table or JSON.

FILE "-" reads standard input (`zcat mail.log.2.gz | ndr-exporter report -`).

Exit status: 0 when every file was read to its end; 1 when one could not be (missing,
unreadable, a damaged or cut-off gzip file: nothing is printed on stdout, the error
names the file); 2 for a bad flag; 130 when interrupted (Ctrl-C); 141 when the reader
of the output went away (`report ... | head`: the CLI ends quietly, as on SIGPIPE).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from exporter.argparsing import SuggestingParser
from exporter.classifier import classify_event
from exporter.events import OUTCOMES
from exporter.logfiles import LogFileError, file_size, parse_file
from exporter.parsers import FORMATS
from exporter.parsers.base import Tally

PROGRESS_MIN_BYTES = 1024 * 1024   # smaller files are read before a bar would be seen


def utc_hour(timestamp: float) -> int:
    """report's time bucket: the start of the UTC hour (Unix seconds, a multiple of 3600)."""
    return int(timestamp // 3600) * 3600


@dataclass
class Summary:
    files: list[str] = field(default_factory=list)
    lines: Counter = field(default_factory=Counter)
    by_outcome: Counter = field(default_factory=Counter)
    by_class: Counter = field(default_factory=Counter)
    by_subject: Counter = field(default_factory=Counter)
    by_mta: Counter = field(default_factory=Counter)
    by_provider: Counter = field(default_factory=Counter)
    codes: dict[tuple[str, str, str, str, str], Counter] = field(default_factory=dict)
    by_hour: dict[int, Counter] = field(default_factory=dict)
    no_timestamp: int = 0   # events whose line had no time: in every count but by_hour

    def add(self, counted: Tally) -> None:
        """Count events added up by label fields and UTC hour (or None: no time in the line)."""
        for fields, hours in counted.items():
            mta, outcome = fields.mta, fields.outcome
            c, provider = classify_event(*fields)
            n = sum(hours.values())
            self.by_outcome[outcome] += n
            self.by_class[c.status_class] += n
            self.by_subject[c.subject] += n
            self.by_mta[mta] += n
            self.by_provider[provider] += n
            key = (c.code, c.status_class, c.subject, c.meaning, c.source)
            self.codes.setdefault(key, Counter())[outcome] += n
            for hour, m in hours.items():
                if hour is not None:
                    self.by_hour.setdefault(hour, Counter())[outcome] += m
                else:
                    self.no_timestamp += m

    def to_json(self, top: int) -> dict[str, Any]:
        codes = sorted(self.codes.items(), key=lambda item: (-sum(item[1].values()), item[0][0]))
        return {
            "files": self.files,
            "lines": {k: self.lines.get(k, 0) for k in ("total", "matched", "ignored", "unparsed", "oversized")},
            "events": sum(self.by_outcome.values()),
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "by_class": dict(sorted(self.by_class.items())),
            "by_subject": dict(sorted(self.by_subject.items())),
            "by_mta": dict(sorted(self.by_mta.items())),
            "by_provider": dict(sorted(self.by_provider.items())),
            "codes": [
                {"code": code, "count": sum(outcomes.values()), "class": cls, "subject": subject,
                 "meaning": meaning, "source": source, "outcomes": dict(sorted(outcomes.items()))}
                for (code, cls, subject, meaning, source), outcomes in codes[:top]
            ],
            "by_hour": [
                {"hour": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(hour)),
                 **{o: counts.get(o, 0) for o in OUTCOMES}}
                for hour, counts in sorted(self.by_hour.items())
            ],
            "events_without_time": self.no_timestamp,
        }


def summarise(paths: list[str], fmt: str = "auto", progress: ProgressBar | None = None) -> Summary:
    """Read every file once and add up what it holds; LogFileError when one cannot be read."""
    summary = Summary(files=list(paths))
    try:
        for path in paths:
            for chunk, result in parse_file(path, fmt, progress.update if progress else None, bucket=utc_hour):
                summary.lines["oversized"] += chunk.oversized
                summary.lines["total"] += chunk.oversized + result.lines
                summary.lines["matched"] += result.matched
                summary.lines["ignored"] += result.ignored
                summary.lines["unparsed"] += result.unparsed
                summary.add(result.tally)
            if progress is not None:
                progress.file_done(path)
    finally:
        if progress is not None:
            progress.clear()
    return summary


class ProgressBar:
    """A one-line bar on a terminal: the share of all the files' bytes on disk read so far."""

    WIDTH = 30

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = max(1, total)
        self.done_before = 0   # bytes of the files already read

    def update(self, path: str, done: int, size: int) -> None:
        share = min(1.0, (self.done_before + min(done, size)) / self.total)
        filled = int(self.WIDTH * share)
        self.out.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {int(100 * share):3d}% {path}\x1b[K")
        self.out.flush()

    def file_done(self, path: str) -> None:
        self.done_before += file_size(path)

    def clear(self) -> None:
        self.out.write("\r\x1b[K")
        self.out.flush()


def progress_bar(paths: list[str], stdout: TextIO, stderr: TextIO) -> ProgressBar | None:
    """A bar on stderr when stdout and stderr are both terminals and the files are large; else None."""
    if not (stdout.isatty() and stderr.isatty()):
        return None
    total = sum(file_size(path) for path in paths)
    return ProgressBar(stderr, total) if total >= PROGRESS_MIN_BYTES else None


def render_text(data: dict[str, Any]) -> str:
    """The summary as plain terminal tables."""
    out: list[str] = []
    lines = data["lines"]
    out.append(f"files: {', '.join(data['files'])}")
    out.append(f"lines: {lines['total']} read, {lines['matched']} with a status, {lines['ignored']} ignored, "
               f"{lines['unparsed']} unparsed, {lines['oversized']} oversized")
    out.append(f"status events: {data['events']}")
    for title, key in (("outcome", "by_outcome"), ("class", "by_class"), ("subject", "by_subject"),
                       ("mta", "by_mta"), ("provider", "by_provider")):
        out.append("")
        out.append(f"by {title}:")
        for name, count in sorted(data[key].items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  {name:<18} {count:>10}")
    out.append("")
    out.append("top codes:")
    out.append(f"  {'code':<9} {'count':>8}  {'class':<10} {'subject':<16} meaning")
    for row in data["codes"]:
        out.append(f"  {row['code']:<9} {row['count']:>8}  {row['class']:<10} {row['subject']:<16} "
                   f"{row['meaning']} ({row['source']})")
    if data["by_hour"]:
        out.append("")
        out.append("per hour (UTC):")
        out.append(f"  {'hour':<21}" + "".join(f"{o:>11}" for o in OUTCOMES))
        for row in data["by_hour"]:
            out.append(f"  {row['hour']:<21}" + "".join(f"{row[o]:>11}" for o in OUTCOMES))
    if data["events_without_time"]:
        out.append(f"  {'(no time in the line)':<21}{data['events_without_time']:>11} events")
    return "\n".join(out) + "\n"


def _trace(paths: list[str], fmt: str, as_json: bool) -> int:
    from exporter.trace import trace_files

    try:
        trace_files(paths, fmt, sys.stdout, as_json)
    except LogFileError as err:
        print(f"ndr-exporter report: cannot read {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `report --trace FILE | head`: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the flush at exit fails no more
    return 0


def main(argv: list[str]) -> int:
    parser = SuggestingParser(
        prog="ndr-exporter report",
        description="Summarise the status codes in mail log files (plain or gzip).",
        epilog="Exit status: 0 done, 1 a file could not be read, 2 bad flags.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="a log file (plain or gzip), or - for standard input")
    parser.add_argument("--format", default="auto", choices=("auto",) + FORMATS,
                        help="log format (default: detected from each file's first lines)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--top", type=int, default=20, help="how many codes to list (default 20)")
    parser.add_argument("--trace", action="store_true",
                        help="print each status line beside the event it gave, and the unparsed lines")
    args = parser.parse_args(argv)
    if args.top < 0:
        parser.error(f"--top: must be 0 or more, not {args.top}")
    if args.files.count("-") > 1:
        parser.error("FILE: - (standard input) can be given once")
    if args.trace:
        return _trace(args.files, args.format, args.json)
    try:
        summary = summarise(args.files, args.format, progress_bar(args.files, sys.stdout, sys.stderr))
    except LogFileError as err:
        print(f"ndr-exporter report: cannot read {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:   # Ctrl-C on a long run: no traceback
        return 130
    data = summary.to_json(args.top)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(data))
    return 0
