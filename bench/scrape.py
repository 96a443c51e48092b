"""Scrape latency: p50 and p99 of /metrics with many concurrent scrapers and thousands of status series.

    python bench/scrape.py --gzip --interval 1      # 50 scrapers each about once a second, as Prometheus
    python bench/scrape.py --gzip                   # 50 scrapers back to back: the server saturated
    python bench/scrape.py --gzip --new-connections # a new connection per scrape
    python bench/scrape.py --repo /path/to/checkout # the same against another checkout (before/after)
    python bench/scrape.py --client python          # scrapers as threads of this process (no wrk)

The exporter (the checkout's, with a state file) counts a generated Postfix log holding
--series distinct codes (one status series each; the code cap is raised to fit), then
--scrapers clients scrape it. Each keeps its connection alive (Prometheus keeps one per target)
unless --new-connections. With --interval S each waits a random 0.5 S to 1.5 S after each reply
(about one scrape every S, at random phases); without it they scrape back to back, which
measures a saturated server (latency is then mostly queueing: 50 / scrapes per second).

The load comes from wrk (Debian: `apt-get install wrk`), an event-loop client in C, so the
measurement does not compete for the GIL; its latency runs from writing the request to having
read the whole reply (the connect of a new connection is not in it). `--client python` uses
threads of this process instead (connect included, but their own wait for the GIL too: an upper
bound). Besides latency the bench prints the server's CPU time per scrape (user + system, from
/proc), the figure that does not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log_lines(series: int) -> bytes:
    """One Postfix bounce or deferral per distinct code: `series` status series."""
    out = []
    for i in range(series):
        first = 5 if i % 2 else 4
        subject, detail = 1 + (i // 2) // 300, (i // 2) % 300
        code = f"{first}.{subject}.{detail}"
        status = "bounced" if first == 5 else "deferred"
        reply = "550" if first == 5 else "450"
        out.append(f"Nov 28 00:00:01 mx postfix/smtp[123]: A{i:05X}: to=<u@example.org>, relay=mx[192.0.2.1]:25, "
                   f"delay=1, delays=0/0/0/1, dsn={code}, status={status} (host mx said: {reply} {code} no)\n")
    return "".join(out).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes per scraper (python client)")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between one scraper's scrapes, on average (each pause is 0.5 to 1.5 "
                             "times it, at random); default 0: back to back, the worst case")
    parser.add_argument("--new-connections", action="store_true",
                        help="open a new connection for each scrape (default: keep one alive per scraper)")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="the load generator (default wrk when installed)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load with wrk")
    parser.add_argument("--lines-per-second", type=int, default=0,
                        help="append this many status lines a second to the log while scraping (20 writes a "
                             "second, the same codes): each publish makes the next scrape render the series again")
    parser.add_argument("--repo", default=ROOT, help="checkout whose exporter is measured (default: this one)")
    args = parser.parse_args(argv)
    if args.client == "wrk" and args.new_connections and args.interval:
        # wrk applies its delay() only between requests on one connection, not after a reconnect
        print("wrk cannot pace new connections: using --client python", file=sys.stderr)
        args.client = "python"

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import free_port

    work = tempfile.mkdtemp(prefix="ndr-scrape-")
    log = os.path.join(work, "mail.log")
    with open(log, "wb") as f:
        f.write(log_lines(args.series))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "exporter.cli", "--source.path", log,
                             "--source.start-at", "beginning", "--state.file", os.path.join(work, "state.json"),
                             "--metrics.code-cap", str(args.series + 100),
                             "--web.listen-address", f"127.0.0.1:{port}"],
                            env=dict(os.environ, PYTHONPATH=args.repo), cwd=args.repo,   # -m: cwd comes first
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        series = 0
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                series = sum(1 for line in text.splitlines() if line.startswith("ndr_status_codes_total{"))
                if series >= args.series:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if series < args.series:
            print(f"only {series} status series showed", file=sys.stderr)
            return 1
        time.sleep(1)
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(3)
        idle = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)   # the daemon's own, not the scrapes'
        stop = threading.Event()
        writer = threading.Thread(target=_write_lines, args=(log, args.series, args.lines_per_second, stop))
        if args.lines_per_second:
            writer.start()
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        try:
            if args.client == "wrk":
                result = _wrk(args, port)
            else:
                result = _threads(args, port)
        finally:
            stop.set()
        cpu = _cpu_seconds(proc.pid) - cpu0 - idle * (time.monotonic() - t0)
        if args.lines_per_second:
            writer.join()
        if result is None:
            return 1
        count, p50, p99, worst, size = result
        how = f"every {args.interval:g} s (0.5-1.5x, random)" if args.interval else "back to back"
        conns = "a new connection per scrape" if args.new_connections else "kept-alive connections"
        lines = f", {args.lines_per_second:,} lines/s appended" if args.lines_per_second else ""
        print(f"{args.client}: {args.scrapers} scrapers {how}, {conns}, {series} status series{lines}, "
              f"{'gzip' if args.gzip else 'plain'} body {size:,} bytes: {count:,} scrapes, "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms; "
              f"server CPU beyond idle ({idle * 100:.1f}%) {cpu:.2f} s, {cpu / max(count, 1) * 1e6:.0f} us per scrape")
        return 0
    finally:
        proc.terminate()
        proc.wait(10)


def _write_lines(log: str, series: int, per_second: int, stop: threading.Event) -> None:
    """Append `per_second` lines a second to the log in 20 writes, cycling through the same codes."""
    lines = log_lines(series).splitlines(keepends=True)
    per_write = max(1, per_second // 20)
    at = 0
    next_write = time.monotonic()
    with open(log, "ab", buffering=0) as f:
        while not stop.is_set():
            f.write(b"".join(lines[(at + i) % len(lines)] for i in range(per_write)))
            at += per_write
            next_write += 0.05
            stop.wait(max(0.0, next_write - time.monotonic()))


def _threads(args: argparse.Namespace, port: int) -> tuple[int, float, float, float, int]:
    """Scrapers as threads of this process: each opens its connection (a new one per scrape with
    --new-connections), scrapes once to warm up, then all at once scrape --scrapes times each."""
    headers = {"Accept-Encoding": "gzip"} if args.gzip else {}
    latencies: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(args.scrapers)

    def scraper() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        conn.request("GET", "/metrics", headers=headers)   # connect and warm up, not counted
        conn.getresponse().read()
        start.wait()
        if args.interval:
            time.sleep(random.uniform(0, args.interval))
        for i in range(args.scrapes):
            if args.interval and i:
                time.sleep(random.uniform(0.5, 1.5) * args.interval)
            t0 = time.perf_counter()
            if args.new_connections:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/metrics", headers=headers)
            body = conn.getresponse().read()
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            latencies.extend(mine)
            sizes.append(len(body))

    threads = [threading.Thread(target=scraper) for _ in range(args.scrapers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return len(ordered), statistics.median(ordered) * 1000, p99 * 1000, ordered[-1] * 1000, sizes[0]


# wrk's Lua hooks: a random pause after each reply when paced, and the figures in one line
# (errors.status counts replies that are not 2xx or 3xx).
WRK_SCRIPT = """
local interval = tonumber(os.getenv("SCRAPE_INTERVAL_MS") or "0")
math.randomseed(os.time())
delay = function()
  if interval == 0 then return 0 end
  return math.random(interval / 2, interval * 3 / 2)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %.3f %.3f %.3f\\n", summary.requests, e.connect + e.write + e.timeout,
    e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def _wrk(args: argparse.Namespace, port: int) -> tuple[int, float, float, float, int] | None:
    """Load from wrk: --scrapers connections on one wrk thread (an epoll loop), for --duration s."""
    size = len(urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"} if args.gzip else {})).read())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{args.scrapers}", f"-d{args.duration:g}s", "--timeout", "10s", "-s", script.name]
    if args.gzip:
        command += ["-H", "Accept-Encoding: gzip"]
    if args.new_connections:
        command += ["-H", "Connection: close"]   # wrk counts each close as a read error: not counted here
    out = subprocess.run(command + [f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True,
                         env=dict(os.environ, SCRAPE_INTERVAL_MS=str(int(args.interval * 1000))))
    os.unlink(script.name)
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\S+) (\S+) (\S+)$", out.stdout, re.M)
    if out.returncode != 0 or found is None:
        print(f"wrk failed: {out.stdout}{out.stderr}", file=sys.stderr)
        return None
    count, errors, bad = (int(found.group(i)) for i in (1, 2, 3))
    if errors or bad:
        print(f"wrk: {errors} connect/write/timeout errors, {bad} replies not 200", file=sys.stderr)
        return None
    return count, float(found.group(4)), float(found.group(5)), float(found.group(6)), size


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
