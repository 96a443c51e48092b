"""Where the time goes: a profile of the hot path (parse a chunk, count its events).

    python bench/profile.py                      # 400,000 generated Postfix lines
    python bench/profile.py --format exim        # 400,000 generated Exim mainlog lines
    python bench/profile.py --lines 1000000 --top 30
    python bench/profile.py --log /var/log/mail.log --format syslog
    python bench/profile.py --events             # the reference path (parse(), one event per line)

It reads the log in the chunks the one-shot commands use (exporter/logfiles.py) and sends
each through the parser's count() into a Metrics, as the daemon does, under cProfile
(the compiled scanner reads what it can and the events come back added up); --events
profiles the reference path instead: parse(), which makes one event per status line,
then those events added up. It prints the wall time without the profiler (the profiler's own cost inflates
every figure), then the cumulative time of each stage (reading, finding candidate lines,
the general parse path, counting), then the functions that cost the most
time of their own and the share of the total each takes; so a change can be judged on the
row it was meant to shrink. A regex search or match shows as one row whoever calls it: the
stage rows tell the prefilter's passes from the parsers' own patterns.
"""

from __future__ import annotations

import argparse
import os
import sys

# This file shares its name with the standard library's profile module, which cProfile
# imports: take bench/ off the path until cProfile is loaded, then put it back last.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != HERE]
import cProfile  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.append(HERE)
sys.path.insert(0, os.path.dirname(HERE))
import generate  # noqa: E402  (bench/generate.py, beside this file)

from exporter.logfiles import open_log, read_chunks  # noqa: E402
from exporter.metrics import Metrics  # noqa: E402
from exporter.parsers import make_parser  # noqa: E402
from exporter.parsers.base import tally  # noqa: E402
from exporter.pipeline import process_chunk  # noqa: E402


def run(path: str, fmt: str, reference: bool) -> Metrics:
    """Read one file through the parser into a fresh Metrics (by parse() when reference)."""
    metrics = Metrics()
    parser = make_parser(fmt)
    with open_log(path) as stream:
        for chunk in read_chunks(stream):
            if reference:
                metrics.add("bench", tally(parser.parse(chunk.data)))
            else:
                process_chunk("bench", parser, chunk.data, metrics)
    return metrics


def report(stats: pstats.Stats, top: int) -> None:
    """The top functions by their own time, with their share of the total."""
    rows = []
    total = 0.0
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += own
        rows.append((own, cumulative, calls, f"{os.path.basename(filename)}:{line}({name})"))
    rows.sort(reverse=True)
    print(f"{'own s':>8} {'share':>6} {'cum s':>8} {'calls':>10}  function")
    for own, cumulative, calls, where in rows[:top]:
        print(f"{own:8.3f} {own / total:6.1%} {cumulative:8.3f} {calls:10d}  {where}")


# The stages of the hot path per format, as (label, file, function): their cumulative time under the profiler.
SCAN = ("~", "<method 'scan' of 'exporter._fastscan.Scanner' objects>")
STAGES = {
    "syslog": (
        ("read the file in chunks", "logfiles.py", "read_chunks"),
        ("count a chunk (all of the parser stage)", "syslog.py", "count"),
        ("  reference path (parse: one event per line)", "syslog.py", "parse"),
        ("  compiled scanner (prefilter and fast path in C)", *SCAN),
        ("  find candidate lines (prefilter passes)", "prefilter.py", "line_starts"),
        ("  general path (decode, envelope, dispatch)", "syslog.py", "_line"),
        ("count the chunk's tally (classify, add)", "metrics.py", "add"),
    ),
    "exim": (
        ("read the file in chunks", "logfiles.py", "read_chunks"),
        ("count a chunk (all of the parser stage)", "exim_files.py", "count"),
        ("  reference path (parse: one event per line)", "exim_files.py", "parse"),
        ("  compiled scanner (grammar exim, in C)", *SCAN),
        ("  lines handed back, read in Python", "exim_files.py", "_line"),
        ("count the chunk's tally (classify, add)", "metrics.py", "add"),
    ),
}
GENERATED = {"syslog": generate.postfix, "exim": generate.exim}   # what --lines generates for each format


def stages(stats: pstats.Stats, fmt: str) -> None:
    """Cumulative time of each stage of the hot path, and its share of the whole run."""
    found: dict[tuple[str, str], float] = {}
    whole = 0.0
    for (filename, _line, name), (_cc, _calls, _own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = (os.path.basename(filename), name)
        found[key] = found.get(key, 0.0) + cumulative
        if key == ("profile.py", "run"):
            whole = cumulative
    print(f"{'cum s':>8} {'share':>6}  stage")
    for label, filename, name in STAGES.get(fmt, STAGES["syslog"][:1] + STAGES["syslog"][-1:]):
        seconds = found.get((filename, name), 0.0)
        print(f"{seconds:8.3f} {seconds / whole if whole else 0:6.1%}  {label}")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=400_000, help="generated lines (default 400,000)")
    parser.add_argument("--log", help="profile this file instead of a generated log")
    parser.add_argument("--format", default="syslog",
                        help="the log's format (default syslog); without --log, syslog (Postfix) and exim are generated")
    parser.add_argument("--top", type=int, default=20, help="rows to print (default 20)")
    parser.add_argument("--events", action="store_true",
                        help="profile the one-shot commands' parser (one event per line), not the daemon's")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ndr-profile-") as work:
        path = args.log
        lines = None
        if path is None:
            if args.format not in GENERATED:
                parser.error(f"--format {args.format}: give a --log (only {' and '.join(GENERATED)} are generated)")
            path = os.path.join(work, f"{args.format}.log")
            with open(path, "w", encoding="utf-8", newline="") as out:
                GENERATED[args.format](out, args.lines)
            lines = args.lines
        start = time.perf_counter()
        cpu = time.process_time()
        metrics = run(path, args.format, args.events)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        if lines is None:
            lines = int(sum(v for (_s, _r), v in metrics.live.lines.items()))
        events = int(sum(metrics.live.status.values()))
        print(f"{lines} lines, {events} events: {seconds:.2f} s wall, {cpu:.2f} s CPU without the profiler "
              f"({lines / seconds:,.0f} lines/s, {cpu * 1e6 / lines:.2f} CPU s per 1M lines)")

        profiler = cProfile.Profile()
        profiler.enable()
        run(path, args.format, args.events)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stages(stats, args.format)
        report(stats, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
