"""Scrape latency: p50 and p99 of /metrics with many concurrent scrapers and thousands of status series.

    python bench/scrape.py                          # 50 scrapers, 2,000 status series, 20 scrapes each
    python bench/scrape.py --repo /path/to/checkout # the same against another checkout (before/after)
    python bench/scrape.py --gzip                   # with Accept-Encoding: gzip, as Prometheus sends

The exporter (the checkout's, with a state file) counts a generated Postfix log holding
--series distinct codes (one status series each; the code cap is raised to fit), then
--scrapers threads each open a kept-alive connection (as Prometheus keeps one per target) and
scrape once to warm up, then all at once scrape it --scrapes times each. Latency is from sending
the request to having read the whole body; the scrapers are threads of this Python process, so
it includes their own waiting for the GIL (an upper bound on the server's share).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
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
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes per scraper")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between one scraper's scrapes, each starting at a random phase "
                             "(default 0: back to back, the worst case)")
    parser.add_argument("--repo", default=ROOT, help="checkout whose exporter is measured (default: this one)")
    args = parser.parse_args(argv)

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
                    time.sleep(args.interval)
                t0 = time.perf_counter()
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
        p50 = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"{args.scrapers} scrapers x {args.scrapes} scrapes"
              f"{f' every {args.interval:g} s' if args.interval else ' back to back'}, {series} status series, "
              f"{'gzip' if args.gzip else 'plain'} body {sizes[0]:,} bytes: "
              f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms")
        return 0
    finally:
        proc.terminate()
        proc.wait(10)
if __name__ == "__main__":
    sys.exit(main())
