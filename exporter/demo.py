"""`ndr-exporter demo`: live counters from a bundled real mail log, for a first look in a browser.

It listens on 127.0.0.1 only (--web.listen-address to serve elsewhere), and says, on start and
in its log at each pass, that what it counts is a replay of the bundled sample in a loop, not
the mail server of the machine it runs on.

A writer thread replays the bundled sample (the log a real Postfix 3.7.11 wrote, see
exporter/data/samples/README.md) into a temporary log file at a steady pace, giving each
line the current time; the ordinary daemon follows that file through the whole pipeline
and serves /metrics. Nothing is faked after the writer: the source, parser, classifier and
metrics stages are the ones `ndr-exporter` runs in production. The temporary directory is
removed on exit (SIGTERM or Ctrl-C, exit status 0).

--passes N stops writing after N passes over the sample and keeps serving, so that the
counters settle at N times the sample's counts.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from importlib import resources

from exporter.config import DEFAULT_PORT

SAMPLE = "postfix-demo.log"
DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"
log = logging.getLogger("ndr_exporter.demo")
_SYSLOG_TIME = re.compile(r"^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d ")
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)? ")


def sample_lines(path: str | None = None) -> list[str]:
    """The sample's log lines, comments and blank lines left out; OSError when path cannot be read."""
    if path is None:
        text = resources.files("exporter.data.samples").joinpath(SAMPLE).read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def restamp(line: str, now: float) -> str:
    """The same line with its timestamp replaced by `now` (local time, as syslog writes it)."""
    if _SYSLOG_TIME.match(line):
        return time.strftime("%b %e %H:%M:%S ", time.localtime(now)) + line[16:]
    match = _ISO_TIME.match(line)
    if match:
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00 ", time.gmtime(now)) + line[match.end():]
    return line


def replay(lines: list[str], path: str, rate: float, passes: int, stop: threading.Event) -> None:
    """Append the lines to path, `rate` lines a second, `passes` times (0: until stopped)."""
    interval = 1.0 / rate
    done = 0
    with open(path, "a", encoding="utf-8") as out:
        while not stop.is_set() and (passes == 0 or done < passes):
            log.info("demo: a replay pass starts: the sample log is written again, each line stamped now",
                     extra={"replay_pass": done + 1, "passes": passes or "endless", "lines": len(lines),
                            "file": path})
            for line in lines:
                if stop.wait(interval):
                    return
                out.write(restamp(line, time.time()) + "\n")
                out.flush()
            done += 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ndr-exporter demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_ADDRESS,
                        metavar="HOST:PORT",
                        help=f"address to listen on (default {DEFAULT_ADDRESS}: this machine only; "
                             f":{DEFAULT_PORT} for every address)")
    parser.add_argument("--rate", type=float, default=5.0, help="lines written per second (default 5)")
    parser.add_argument("--passes", type=int, default=0,
                        help="passes over the sample, then stop writing and keep serving (default 0: endless)")
    parser.add_argument("--sample", metavar="FILE", help="replay this log instead of the bundled sample")
    args = parser.parse_args(argv)
    if not args.rate > 0:
        parser.error(f"--rate: must be more than 0 lines a second, not {args.rate:g}")
    if args.passes < 0:
        parser.error(f"--passes: must be 0 (endless) or more, not {args.passes}")
    try:
        lines = sample_lines(args.sample)
    except OSError as err:
        print(f"ndr-exporter demo: cannot read {args.sample}: {err.strerror}", file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix="ndr-demo-")
    # The file's name is the source's name: source="demo-replay.log" in every series and on the
    # landing page says where the counts come from.
    log = os.path.join(workdir, "demo-replay.log")
    open(log, "w").close()
    stop = threading.Event()
    writer = threading.Thread(target=replay, args=(lines, log, args.rate, args.passes, stop),
                              name="demo-writer", daemon=True)
    host, _, port = args.listen_address.rpartition(":")
    shown = host if host and host not in ("0.0.0.0", "[::]") else "localhost"
    what = f"the log {args.sample}" if args.sample else "the bundled sample log (a real Postfix 3.7.11's)"
    times = "in a loop" if args.passes == 0 else f"{args.passes} time{'s' if args.passes > 1 else ''}"
    print(f"ndr-exporter demo: a REPLAY, not this machine's mail: {what}, {len(lines)} lines, is written\n"
          f"{times} into {log} at {args.rate:g} lines/s, each line stamped with the current time.\n"
          f"open http://{shown}:{port}/ (metrics at /metrics); Ctrl-C stops.", file=sys.stderr, flush=True)
    from exporter import logsetup
    from exporter.cli import serve

    logsetup.setup()  # serve() sets it up again the same way; the writer logs from its first pass
    writer.start()
    try:
        return serve(["--source.path", log, "--start-at", "beginning", "--web.listen-address", args.listen_address])
    finally:
        stop.set()
        writer.join(5)
        shutil.rmtree(workdir, ignore_errors=True)
