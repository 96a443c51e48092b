"""The benchmark: how fast ndr-exporter reads mail logs, beside its peers, in one run.

    python bench/run.py                 # 2 million lines per format (takes a few minutes)
    python bench/run.py --lines 20000   # the quick size CI uses to keep this script working

For each generated log (bench/generate.py, fixed seed) it measures the one-shot
`ndr-exporter report` and the daemon catching up on a backlog appended to a followed
file (from the start of the append to the counters being complete, observed by
scraping /metrics). On the same Postfix log it measures the peers that Debian
packages: prometheus-postfix-exporter (same appended-backlog method, done when its
delivery counter reaches the expected total), mtail with its shipped postfix program
(--one_shot), and `grep -c` as the floor of I/O cost. Figures: lines per second, CPU
seconds per million lines, peak RSS; then ratios, since absolute times vary between
machines. It also measures an idle daemon's CPU and the delay until one appended
line is counted. Every tool's count is checked against what the generator wrote.
Each measurement runs --runs times (default 3) and the run with the median wall time is
shown, with every run's seconds beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402  (bench/generate.py, beside this file)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MTAIL_POSTFIX = "/usr/share/doc/mtail/examples/postfix.mtail"
# Debian's prometheus-postfix-exporter depends on postfix: tools/setup.sh unpacks it here instead
# of installing it (dpkg -x); an installed one on PATH is used when this is absent.
POSTFIX_EXPORTER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                ".cache", "postfix-exporter", "usr", "bin", "prometheus-postfix-exporter")
FORMATS = {"postfix": "syslog", "exim": "exim", "exchange": "exchange_tracking"}
# grep -c's floor for each log: fixed strings that find the lines carrying that format's
# status (Postfix's "status="; Exim's delivery flags and "rejected"; the tracking log's
# counted event ids, as exporter/parsers/exchange_tracking.py lists them).
GREP_MARKS = {
    "postfix": ["status="],
    "exim": [" ** ", " == ", " => ", " -> ", " >> ", " rejected "],
    "exchange": [",FAIL,", ",DEFER,", ",DELIVER,", ",SENDEXTERNAL,", ",SEND,"],
}


def grep_argv(name: str, log: str) -> list[str]:
    """grep -c -F with every mark of the log's format."""
    argv = ["grep", "-c", "-F"]
    for mark in GREP_MARKS[name]:
        argv += ["-e", mark]
    return argv + [log]


@dataclass
class Result:
    tool: str
    log: str
    mode: str
    lines: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    counted: int | None = None
    expected: int | None = None
    runs: list[float] | None = None   # every run's wall seconds; the figures are the median run's

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_seconds * 1e6 / self.lines if self.lines else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_run(runs: int, measure: Callable[[bool], tuple[Result | None, dict]]) -> tuple[Result | None, dict]:
    """measure(last) runs times: the run with the median wall time, with every run's seconds.

    One run alone is at the mercy of the machine (page cache, reclaim, the other core's work);
    every tool gets the same number of runs. The extra figures come from the last run."""
    done = [measure(i == runs - 1) for i in range(runs)]
    if any(result is None for result, _extra in done):
        return None, {}
    middle = sorted(done, key=lambda pair: pair[0].seconds)[len(done) // 2][0]  # type: ignore[union-attr]
    middle.runs = [round(result.seconds, 3) for result, _extra in done]  # type: ignore[union-attr]
    return middle, done[-1][1]


def run_once(tool: str, log: str, mode: str, lines: int, argv: list[str]) -> tuple[Result, bytes]:
    """Run a command to completion; wall time, CPU and peak RSS from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}")
    return Result(tool, log, mode, lines, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024), out


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def metric_sum(text: str, pattern: str) -> float:
    total = 0.0
    for match in re.finditer(pattern, text, re.M):
        total += float(match.group(1))
    return total


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_until(check, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


def append_file(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "ab") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def catch_up(tool: str, log_name: str, log: str, lines: int, argv: list[str], port: int, followed: str,
             done, counted, expected: int, timeout: float, after=None) -> tuple[Result, dict]:
    """Start a follower on an empty file, append the backlog, time until its counters are complete.

    after(pid), when given, runs while the follower is still up and returns extra figures.
    """
    open(followed, "wb").close()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_until(lambda: scrape(port) is not None, 30):
            raise RuntimeError(f"{tool} did not start")
        time.sleep(1.0)  # let it open the file and settle at its end
        cpu0 = proc_cpu(proc.pid)
        start = time.perf_counter()
        append_file(log, followed)
        finished = wait_until(lambda: done(scrape(port)), timeout)
        seconds = time.perf_counter() - start
        cpu = proc_cpu(proc.pid) - cpu0
        text = scrape(port)
        result = Result(tool, log_name, "catch-up", lines, seconds if finished else float("inf"), cpu,
                        proc_hwm_mb(proc.pid), int(counted(text)), expected)
        return result, (after(proc.pid) if after else {})
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def ours_catch_up(log_name: str, log: str, lines: int, expected: int, work: str, timeout: float,
                  idle_and_latency_too: bool = True) -> tuple[Result, dict]:
    port = free_port()
    followed = os.path.join(work, f"follow-{log_name}.log")
    argv = ["ndr-exporter", "--source.path", followed, "--source.format", FORMATS[log_name],
            "--start-at", "end", "--web.listen-address", f"127.0.0.1:{port}"]
    source = os.path.basename(followed)
    lines_re = r'^ndr_exporter_lines_total\{[^}]*source="' + re.escape(source) + r'"[^}]*\} (\S+)'
    status_re = r"^ndr_status_codes_total\{[^}]*\} (\S+)"

    def idle_and_latency(pid: int) -> dict:
        extra = {}
        # Idle: no CPU while nothing is written.
        idle0 = proc_cpu(pid)
        time.sleep(5)
        extra["idle_cpu_seconds_per_5s"] = round(proc_cpu(pid) - idle0, 3)
        # One appended status line: how long until it is counted.
        before = metric_sum(scrape(port), status_re)
        with open(log) as f:
            line = next(l for l in f if "status=sent" in l)
        t0 = time.perf_counter()
        with open(followed, "a") as f:
            f.write(line)
        wait_until(lambda: metric_sum(scrape(port), status_re) > before, 10, 0.01)
        extra["one_line_latency_seconds"] = round(time.perf_counter() - t0, 3)
        return extra

    return catch_up("ndr-exporter", log_name, log, lines, argv, port, followed,
                    lambda text: metric_sum(text, lines_re) >= lines, lambda text: metric_sum(text, status_re),
                    expected, timeout, idle_and_latency if log_name == "postfix" and idle_and_latency_too else None)


def peer_binary() -> str | None:
    """prometheus-postfix-exporter: the copy tools/setup.sh unpacked, else one on PATH."""
    return POSTFIX_EXPORTER if os.access(POSTFIX_EXPORTER, os.X_OK) else shutil.which("prometheus-postfix-exporter")


def postfix_exporter_catch_up(log: str, lines: int, work: str, timeout: float) -> Result | None:
    binary = peer_binary()
    if not binary:
        return None
    expected = smtp_delivery_lines(log)
    port = free_port()
    followed = os.path.join(work, "follow-peer.log")
    result, _ = catch_up("prometheus-postfix-exporter", "postfix", log, lines,
                         [binary, "--postfix.logfile_path", followed, "--web.listen-address", f"127.0.0.1:{port}",
                          "--postfix.showq_path", os.path.join(work, "no-showq")],
                         port, followed, lambda text: smtp_deliveries_counted(text) >= expected,
                         smtp_deliveries_counted, expected, timeout)
    return result


def mtail_one_shot(log: str, lines: int, work: str) -> Result | None:
    binary = shutil.which("mtail")
    if not binary or not os.path.exists(MTAIL_POSTFIX):
        return None
    progs = os.path.join(work, "mtail-progs")
    os.makedirs(progs, exist_ok=True)
    shutil.copy(MTAIL_POSTFIX, progs)
    result, out = run_once("mtail --one_shot", "postfix", "one-shot", lines,
                         [binary, "--one_shot", "--one_shot_format", "prometheus", "--address", "127.0.0.1", "--port", "0",
                          "--progs", progs, "--logs", log,
                          "--logtostderr"])
    # mtail's postfix program counts smtp deliveries in its delay histogram.
    result.counted = smtp_deliveries_counted(out.decode())
    result.expected = smtp_delivery_lines(log)
    return result


def smtp_deliveries_counted(text: str) -> int:
    """Smtp deliveries a peer counted: each observes the four delay stages of every record.

    mtail's program puts them under stage="before_queue_manager" and the three others;
    Debian's prometheus-postfix-exporter 0.3.0 puts all four under stage="", so the sum
    over every series divided by four is the count for both.
    """
    return int(metric_sum(text, r"^postfix_smtp_delivery_delay_seconds_count\{[^}]*\} (\S+)") // 4)


def smtp_delivery_lines(log: str) -> int:
    """The Postfix smtp delivery records in a log: what the peers' delivery counters should reach."""
    with open(log) as f:
        return sum(1 for line in f if "postfix/smtp[" in line and " delays=" in line)


def table(results: list[Result]) -> str:
    rows = ["| tool | log | mode | lines | seconds | lines/s | CPU s per 1M lines | peak RSS MB | counted / expected | all runs (s) |",
            "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        counted = "" if r.expected is None else f"{r.counted} / {r.expected}"
        runs = ", ".join(f"{x:.2f}" for x in r.runs or [])
        rows.append(f"| {r.tool} | {r.log} | {r.mode} | {r.lines} | {r.seconds:.2f} | {r.lines_per_second:,.0f} | "
                    f"{r.cpu_per_million:.2f} | {r.peak_rss_mb:.1f} | {counted} | {runs} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines per generated log (default 2,000,000)")
    parser.add_argument("--logs", default="postfix,exim,exchange", help="which generated logs to measure")
    parser.add_argument("--no-peers", action="store_true", help="skip prometheus-postfix-exporter, mtail and grep")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a catch-up")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; the median is shown (default 3)")
    parser.add_argument("--steady", action="store_true",
                        help="steady state instead (bench/steady.py): CPU and latency following a trickle, beside "
                             "prometheus-postfix-exporter, and idle CPU")
    parser.add_argument("--rates", default="10,100,1000", help="with --steady: lines per second to follow")
    parser.add_argument("--seconds", type=float, default=20, help="with --steady: seconds of writing per phase")
    parser.add_argument("--idle-seconds", type=float, default=60, help="with --steady: seconds of idle measured")
    parser.add_argument("--repo", help="with --steady: the checkout whose exporter is measured (default: this one)")
    args = parser.parse_args(argv)
    if args.steady:
        import steady  # bench/steady.py, beside this file
        if args.repo:
            steady.ROOT = os.path.abspath(args.repo)
        return steady.main([int(r) for r in args.rates.split(",")], args.seconds, args.runs, args.idle_seconds,
                           None if args.no_peers else peer_binary())

    work = tempfile.mkdtemp(prefix="ndr-bench-")
    results: list[Result] = []
    extra: dict = {}
    failures: list[str] = []
    try:
        for name in args.logs.split(","):
            log = os.path.join(work, f"{name}.log")
            with open(log, "w", encoding="utf-8", newline="") as out:
                expected = generate.GENERATORS[name](out, args.lines)
            print(f"generated {args.lines} lines of {name} ({os.path.getsize(log) / 1e6:.0f} MB, "
                  f"{expected} status events)", file=sys.stderr)
            def one_report(_last: bool, name: str = name, log: str = log, expected: int = expected) -> tuple[Result, dict]:
                report, out_json = run_once("ndr-exporter report", name, "one-shot", args.lines,
                                            ["ndr-exporter", "report", "--json", "--format", FORMATS[name], log])
                report.counted, report.expected = json.loads(out_json)["events"], expected
                return report, {}

            report, _ = median_run(args.runs, one_report)
            results.append(report)  # type: ignore[arg-type]
            follow, more = median_run(args.runs, lambda last, name=name, log=log, expected=expected: ours_catch_up(
                name, log, args.lines, expected, work, args.timeout, idle_and_latency_too=last))
            results.append(follow)  # type: ignore[arg-type]
            extra.update(more)
            if not args.no_peers:
                grep, _ = median_run(args.runs, lambda _last, name=name, log=log: (run_once(
                    "grep -c", name, "one-shot", args.lines, grep_argv(name, log))[0], {}))
                results.append(grep)  # type: ignore[arg-type]
            if name == "postfix" and not args.no_peers:
                mtail, _ = median_run(args.runs, lambda _last, log=log: (mtail_one_shot(log, args.lines, work), {}))
                if mtail:
                    results.append(mtail)
                peer, _ = median_run(args.runs, lambda _last, log=log: (
                    postfix_exporter_catch_up(log, args.lines, work, args.timeout), {}))
                if peer:
                    results.append(peer)
            print(table(results), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for r in results:
        if r.expected is not None and r.counted != r.expected:
            failures.append(f"{r.tool} on {r.log} ({r.mode}) counted {r.counted}, expected {r.expected}")
    print(table(results))
    print()
    by = {(r.tool, r.log, r.mode): r for r in results}
    ours = by.get(("ndr-exporter", "postfix", "catch-up"))
    ours_report = by.get(("ndr-exporter report", "postfix", "one-shot"))
    ratios = {}
    for key, label in ((("prometheus-postfix-exporter", "postfix", "catch-up"), "catch-up vs prometheus-postfix-exporter"),
                       (("mtail --one_shot", "postfix", "one-shot"), "catch-up vs mtail --one_shot")):
        if ours and key in by and by[key].seconds not in (0, float("inf")):
            ratios[label] = round(ours.lines_per_second / by[key].lines_per_second, 1)
    for name in args.logs.split(","):
        grep = by.get(("grep -c", name, "one-shot"))
        if grep is None or grep.seconds == 0:
            continue
        for tool, mode, what in (("ndr-exporter report", "one-shot", "report"), ("ndr-exporter", "catch-up", "catch-up")):
            mine = by.get((tool, name, mode))
            if mine:
                ratios[f"{name} {what} time / grep -c time"] = round(mine.seconds / grep.seconds, 1)
    for label, value in ratios.items():
        print(f"- {label}: {value}x")
    for label, value in extra.items():
        print(f"- {label.replace('_', ' ')}: {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"lines": args.lines, "results": [asdict(r) | {"lines_per_second": r.lines_per_second,
                                                                    "cpu_per_million": r.cpu_per_million}
                                                        for r in results],
                       "ratios": ratios, "extra": extra}, f, indent=2, default=str)
    for failure in failures:
        print(f"COUNT MISMATCH: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
