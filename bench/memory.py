"""Memory: where the daemon's resident memory goes, after start and with 2,000 status series.

    python bench/memory.py                          # this checkout
    python bench/memory.py --repo /path/to/checkout # another one (before/after)
    python bench/memory.py --top 25 --no-imports    # longer tables; skip the per-import table

The daemon (the checkout's, with a state file, listening on 127.0.0.1) follows a Postfix
log of ten status lines. The bench reads its memory once it listens and has idled 2 s
("idle"), then appends a generated log with --series distinct codes (one status series each, as
bench/scrape.py writes), waits for them all on /metrics (scraping as Prometheus does:
OpenMetrics, gzip) and reads it again ("series"):

- VmRSS and VmHWM from /proc/PID/status, and /proc/PID/smaps_rollup: Private_Dirty is the
  daemon's own heap (Python objects, buffers), Shared_Clean the interpreter and the shared
  libraries mapped from disk (the same pages for every Python process on the host);
- the Python allocations still live at each point (tracemalloc, one frame), summed by the
  module whose code made them, and what the series added between the two points;
- what the landing page's recent window holds after a whole window (15 minutes of
  snapshots, simulated in a separate process: no waiting);
- what each top-level import of the daemon adds, in the order the daemon imports them
  (python -X importtime gives the order and the time; a fresh interpreter imports them one
  by one and reads tracemalloc and VmRSS after each). Startup code run by a module (parsers
  compiling their patterns, tables read from data files) counts under that module.

tracemalloc itself costs memory (about a third more while it runs): its figures are for
comparing modules, the /proc figures (from a run without it) for the daemon's real size.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)

from run import free_port  # noqa: E402
from scrape import log_lines  # noqa: E402

# Runs the daemon with tracemalloc on; SIGUSR1 writes a snapshot to $NDR_MEMORY_SNAPSHOT.N.
TRACED = """
import os, signal, sys, tracemalloc
tracemalloc.start(1)
taken = [0]
def dump(*_):
    taken[0] += 1
    tracemalloc.take_snapshot().dump(os.environ["NDR_MEMORY_SNAPSHOT"] + "." + str(taken[0]))
signal.signal(signal.SIGUSR1, dump)
from exporter.cli import main
sys.exit(main(sys.argv[1:]))
"""

# The landing page's RecentWindow over a registry of N codes for a whole window of snapshots
# (a tenth of the codes counting more at each), without its thread: what the snapshots hold.
WINDOW = """
import sys, tracemalloc
from prometheus_client import CollectorRegistry
from exporter import landing
from exporter.metrics import Metrics, MetricsCollector
codes = int(sys.argv[1])
metrics = Metrics(code_cap=codes + 100)
keys = [("postfix", "bounced", f"5.{1 + i // 300}.{i % 300}", "permanent", "s", f"meaning {i}", "other")
        for i in range(codes)]
for key in keys:
    metrics.live.status[key] = 1.0
metrics.commit()
registry = CollectorRegistry()
registry.register(MetricsCollector(metrics))
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
window = landing.RecentWindow(registry)
snapshots = landing.WINDOW_SECONDS // int(landing.SNAPSHOT_SECONDS) + 1
for n in range(1, snapshots + 1):
    for key in keys[n % 10::10]:
        metrics.live.status[key] += 1
    metrics.commit()
    window.take(n * landing.SNAPSHOT_SECONDS)
print(snapshots, tracemalloc.get_traced_memory()[0] - before)
"""

# Imports the modules named in argv one by one and prints what each added.
IMPORTS = """
import importlib, sys, tracemalloc
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
tracemalloc.start(1)
for name in sys.argv[1:]:
    before, kb = tracemalloc.get_traced_memory()[0], rss()
    try:
        importlib.import_module(name)
    except Exception as err:
        print(name, "failed", type(err).__name__, flush=True)
        continue
    print(name, tracemalloc.get_traced_memory()[0] - before, rss() - kb, flush=True)
"""


def proc_memory(pid: int) -> dict[str, int]:
    """kB figures of /proc/PID/status and smaps_rollup."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                found[key] = int(value.split()[0])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty"):
                    found[key] = int(value.split()[0])
    except OSError:   # kernels before 4.14
        pass
    return found


def module_of(filename: str, roots: list[str]) -> str:
    """A dotted module name for a source file (the longest sys.path root it is under), or the name."""
    if filename.startswith("<"):
        return filename
    best = ""
    for root in roots:
        if filename.startswith(root.rstrip("/") + "/") and len(root) > len(best):
            best = root
    if not best:
        return filename
    name = os.path.splitext(filename[len(best.rstrip("/")) + 1:])[0].replace("/", ".")
    return name.removesuffix(".__init__")


def by_module(snapshot: tracemalloc.Snapshot, roots: list[str]) -> collections.Counter[str]:
    sizes: collections.Counter[str] = collections.Counter()
    for stat in snapshot.statistics("filename"):
        sizes[module_of(stat.traceback[0].filename, roots)] += stat.size
    return sizes


def start(argv: list[str], repo: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=repo, **env), cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the daemon did not listen within 30 s")


# What Prometheus sends: OpenMetrics first, and gzip.
PROMETHEUS_HEADERS = {"Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                                "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                      "Accept-Encoding": "gzip"}


def wait_series(port: int, series: int) -> None:
    """Scrape as Prometheus does until the series show."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=PROMETHEUS_HEADERS)
        text = gzip.decompress(urllib.request.urlopen(request, timeout=10).read()).decode()
        if sum(line.startswith("ndr_status_codes_total{") for line in text.splitlines()) >= series:
            return
        time.sleep(0.2)
    raise SystemExit(f"{series} status series did not show within 60 s")


def run_daemon(repo: str, series: int, traced: str | None) -> tuple[dict[str, int], dict[str, int]]:
    """Memory figures idle and with `series` status series; with `traced` (a file name prefix),
    the daemon runs under tracemalloc and writes snapshots prefix.1 (idle) and prefix.2."""
    work = tempfile.mkdtemp(prefix="ndr-memory-")
    log = os.path.join(work, "mail.log")
    with open(log, "wb") as f:
        f.write(log_lines(10))   # ten status lines: the format is detected and counted before "idle"
    port = free_port()
    flags = ["--source.path", log, "--source.start-at", "beginning", "--state.file", os.path.join(work, "state.json"),
             "--metrics.code-cap", str(series + 100), "--web.listen-address", f"127.0.0.1:{port}"]
    command = [sys.executable, "-c", TRACED] if traced else [sys.executable, "-m", "exporter.cli"]
    proc = start(command + flags, repo, {"NDR_MEMORY_SNAPSHOT": traced} if traced else {})
    try:
        wait_listening(port, proc)
        time.sleep(2)
        idle = proc_memory(proc.pid)
        if traced:
            proc.send_signal(signal.SIGUSR1)
        with open(log, "ab") as f:
            f.write(log_lines(series))
        wait_series(port, series)
        time.sleep(1)
        loaded = proc_memory(proc.pid)
        if traced:
            proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while not os.path.exists(traced + ".2") and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)   # the file appears when the dump starts: let it finish
        return idle, loaded
    finally:
        proc.terminate()
        proc.wait(10)


def import_order(repo: str) -> list[tuple[str, int]]:
    """(top-level module, cumulative import µs) in the order the daemon imports them at start."""
    work = tempfile.mkdtemp(prefix="ndr-memory-")
    log = os.path.join(work, "mail.log")
    open(log, "wb").close()
    port = free_port()
    err_path = os.path.join(work, "importtime.txt")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "exporter.cli", "--source.path", log,
                                 "--web.listen-address", f"127.0.0.1:{port}"],
                                env=dict(os.environ, PYTHONPATH=repo), cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_listening(port, proc)
            time.sleep(1)
        finally:
            proc.terminate()
            proc.wait(10)
    order = []
    after_site = False
    with open(err_path) as f:
        for line in f:
            if not line.startswith("import time:") or "[us]" in line:
                continue
            _, cumulative, name = line[len("import time:"):].split("|")
            if name.startswith("  "):   # nested: counted in its parent's cumulative time
                continue
            name = name.strip()
            if name == "site":
                after_site = True   # what comes before is the interpreter's own start
                continue
            if after_site:
                order.append((name, int(cumulative)))
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=os.path.dirname(ROOT), help="checkout to measure (default: this one)")
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--top", type=int, default=15, help="rows of each table")
    parser.add_argument("--no-imports", action="store_true", help="skip the per-import table")
    args = parser.parse_args(argv)
    repo = os.path.abspath(args.repo)

    idle, loaded = run_daemon(repo, args.series, None)
    print(f"daemon following a Postfix log of 10 status lines, then {args.series:,} status series (kB; {repo}):")
    keys = ["VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss", "Private_Dirty", "Private_Clean", "Shared_Clean"]
    print(f"  {'':14}" + "".join(f"{k:>14}" for k in keys))
    for label, figures in (("idle", idle), (f"{args.series} series", loaded)):
        print(f"  {label:14}" + "".join(f"{figures.get(k, 0):>14,}" for k in keys))

    prefix = os.path.join(tempfile.mkdtemp(prefix="ndr-memory-"), "snapshot")
    run_daemon(repo, args.series, prefix)
    roots = sorted({p for p in sys.path if p} | {repo}, key=len)
    first = by_module(tracemalloc.Snapshot.load(prefix + ".1"), roots)
    second = by_module(tracemalloc.Snapshot.load(prefix + ".2"), roots)
    print(f"\nlive Python allocations by module (tracemalloc, kB; total idle {sum(first.values()) // 1024:,}, "
          f"with series {sum(second.values()) // 1024:,}):")
    print(f"  {'module':44}{'idle':>10}{'series':>10}{'added':>10}")
    for name, _size in (second + first).most_common(args.top):
        print(f"  {name[-44:]:44}{first[name] // 1024:>10,}{second[name] // 1024:>10,}"
              f"{(second[name] - first[name]) // 1024:>10,}")

    out = subprocess.run([sys.executable, "-c", WINDOW, str(args.series)], env=dict(os.environ, PYTHONPATH=repo),
                         cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    print(f"\nthe landing page's recent window, {out[0]} snapshots of {args.series:,} codes (a tenth changing "
          f"at each): {int(out[1]) // 1024:,} kB held (tracemalloc)")

    if not args.no_imports:
        order = import_order(repo)
        out = subprocess.run([sys.executable, "-c", IMPORTS] + [name for name, _ in order], env=dict(
            os.environ, PYTHONPATH=repo), cwd=repo, capture_output=True, text=True, check=True).stdout
        added = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] != "failed":
                added[parts[0]] = (int(parts[1]), int(parts[2]))
        print("\neach top-level import of the daemon, in its order (what it adds with what it imports first; "
              "import time from -X importtime):")
        print(f"  {'module':36}{'ms':>8}{'traced kB':>11}{'RSS kB':>9}")
        for name, micros in order:
            traced_bytes, rss_kb = added.get(name, (0, 0))
            print(f"  {name:36}{micros / 1000:>8.1f}{traced_bytes // 1024:>11,}{rss_kb:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
