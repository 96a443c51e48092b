"""Steady state: what following a live mail server's trickle costs, ours beside prometheus-postfix-exporter.

    python bench/run.py --steady                      # 10, 100, 1,000 lines/s, 20 s each, 3 runs, + 60 s idle
    python bench/run.py --steady --rates 100 --seconds 10 --runs 1 --idle-seconds 5   # quick
    python bench/run.py --steady --repo /path/to/other/checkout   # another version (before/after)

Both daemons follow the same file (ndr-exporter with a state file in a folder of its own, as a
mail server runs it).
A writer appends a generated Postfix log at the chosen rate in 20 writes a second. Two phases
per rate, with both daemons up:

  1. CPU: --seconds of writing with nobody scraping; CPU seconds of each daemon over that
     phase, from /proc/<pid>/task/*/schedstat (nanoseconds, every thread; /proc/<pid>/stat's
     10 ms ticks are kept beside it in the per-run lines as "cpu_ticks"). Then both are scraped once to check
     that they counted every line written.
  2. Latency: --seconds more of writing while /metrics of each daemon is scraped every 10 ms;
     for each write, the time from the write until the daemon's counter first showed it.
     The p50 and p99 over the writes are reported (resolution: one scrape, about 10-20 ms).
     The CPU phase is kept apart so that the scrapes do not count as following cost.

Then an idle phase: one ndr-exporter with a state file following a file nobody writes, CPU
over --idle-seconds. Each figure is the median of --runs runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import generate  # bench/generate.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITES_PER_SECOND = 20


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen
    port: int
    counted: "callable"       # text of /metrics -> how many of what it counts it has seen
    per_line: list[int] = field(default_factory=list)   # what each written line adds to counted


def proc_cpu(pid: int) -> float:
    """CPU seconds the process has run, every thread included, in nanoseconds from the scheduler.

    /proc/<pid>/stat counts in clock ticks (10 ms here): a daemon that spends 20 ms following a
    trickle for 20 s would read 0.01 or 0.03. /proc/<pid>/schedstat's first field is the time
    on a CPU in nanoseconds; the process's own line holds only its main thread, so every
    thread's line under task/ is added up (a thread that ended meanwhile is not counted: both
    daemons keep their threads)."""
    total = 0
    task = f"/proc/{pid}/task"
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass   # the thread ended between the listing and the read
    return total / 1e9


def proc_ticks_cpu(pid: int) -> float:
    from run import proc_cpu as cpu   # utime + stime in clock ticks (10 ms), kept as a cross-check
    return cpu(pid)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def start_ours(followed: str, state: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)   # the checkout this benchmark lives in
    # cwd: `python -m` puts the current folder first on sys.path, before PYTHONPATH
    return subprocess.Popen([sys.executable, "-m", "exporter.cli", "--source.path", followed,
                             "--source.format", "syslog", "--state.file", state,
                             "--web.listen-address", f"127.0.0.1:{port}"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_peer(binary: str, followed: str, work: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([binary, "--postfix.logfile_path", followed,
                             "--web.listen-address", f"127.0.0.1:{port}",
                             "--postfix.showq_path", os.path.join(work, "no-showq")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ready(port: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            scrape(port)
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Writer:
    """Appends lines from a pool at `rate` lines a second in WRITES_PER_SECOND writes."""

    def __init__(self, path: str, pool: list[str], rate: int) -> None:
        self.path = path
        self.pool = pool
        self.rate = rate
        self.next = 0
        self.written = 0           # lines written so far
        self.marks: list[tuple[float, int]] = []   # (time of a write, lines written after it)

    def run(self, seconds: float) -> None:
        per_write = max(1, self.rate // WRITES_PER_SECOND)
        interval = per_write / self.rate
        writes = int(seconds / interval)
        start = time.monotonic()
        with open(self.path, "a", buffering=1) as f:
            for i in range(writes):
                wait = start + i * interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                chunk = []
                for _ in range(per_write):
                    chunk.append(self.pool[self.next % len(self.pool)])
                    self.next += 1
                f.write("".join(chunk))
                f.flush()
                self.written += per_write
                self.marks.append((time.monotonic(), self.written))


def lines_seen(text: str) -> int:
    from run import metric_sum
    return int(metric_sum(text, r'^ndr_exporter_lines_total\{[^}]*\} (\S+)'))


def peer_seen(text: str) -> int:
    from run import smtp_deliveries_counted
    return smtp_deliveries_counted(text)


def latencies(daemon: Daemon, writer: Writer, seconds: float) -> list[float]:
    """Write for `seconds` while scraping daemon every 10 ms; per write, seconds until it showed."""
    base = daemon.counted(scrape(daemon.port))
    cumulative = [0]
    for n in daemon.per_line:
        cumulative.append(cumulative[-1] + n)
    pool = len(daemon.per_line)
    first_line = writer.next

    def expected_after(written_total: int) -> int:
        # what the counter should reach once the first written_total lines of this phase are read
        full, part = divmod(written_total, pool)
        start = first_line % pool
        # lines first_line .. first_line+written_total-1 of the pool, wrapping
        total = full * cumulative[-1]
        end = start + part
        if end <= pool:
            total += cumulative[end] - cumulative[start]
        else:
            total += cumulative[-1] - cumulative[start] + cumulative[end - pool]
        return total

    observed: list[tuple[float, int]] = []
    done = threading.Event()

    def poller() -> None:
        while not done.is_set():
            try:
                observed.append((time.monotonic(), daemon.counted(scrape(daemon.port)) - base))
            except OSError:
                pass
            time.sleep(0.01)

    marks_before = len(writer.marks)
    written_before = writer.written
    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    writer.run(seconds)
    time.sleep(1.5)
    done.set()
    thread.join()
    result = []
    for t_write, written in writer.marks[marks_before:]:
        want = expected_after(written - written_before)
        if want == 0:
            continue
        seen = next((t for t, n in observed if n >= want and t >= t_write), None)
        result.append(float("inf") if seen is None else seen - t_write)
    return result


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_rate(rate: int, seconds: float, pool: list[str], peer_binary: str | None, work: str) -> dict:
    from run import free_port
    followed = os.path.join(work, f"steady-{rate}.log")
    os.makedirs(os.path.join(work, "state"), exist_ok=True)
    state = os.path.join(work, "state", f"steady-{rate}.json")
    for path in (followed, state):
        if os.path.exists(path):
            os.unlink(path)
    open(followed, "w").close()
    daemons = [Daemon("ndr-exporter", start_ours(followed, state, port := free_port()), port, lines_seen,
                      [1] * len(pool))]
    if peer_binary:
        daemons.append(Daemon("prometheus-postfix-exporter", start_peer(peer_binary, followed, work,
                                                                         port2 := free_port()), port2,
                              peer_seen, [1 if "postfix/smtp[" in l and " delays=" in l else 0 for l in pool]))
    try:
        for d in daemons:
            if not ready(d.port):
                raise RuntimeError(f"{d.name} did not start")
        time.sleep(1.0)
        writer = Writer(followed, pool, rate)
        bases = [d.counted(scrape(d.port)) for d in daemons]
        cpu0 = [proc_cpu(d.proc.pid) for d in daemons]
        ticks0 = [proc_ticks_cpu(d.proc.pid) for d in daemons]
        writer.run(seconds)
        time.sleep(1.5)   # the last write is read
        cpu = [proc_cpu(d.proc.pid) - c for d, c in zip(daemons, cpu0)]
        ticks = [proc_ticks_cpu(d.proc.pid) - c for d, c in zip(daemons, ticks0)]
        out: dict = {"rate": rate, "lines": writer.written}
        for d, c, t, b in zip(daemons, cpu, ticks, bases):
            want = sum(d.per_line[i % len(pool)] for i in range(writer.written))
            got = d.counted(scrape(d.port)) - b
            out[d.name] = {"cpu_seconds": round(c, 4), "cpu_ticks": round(t, 2), "counted": got, "expected": want}
        for d in daemons:
            lat = latencies(d, writer, seconds)
            out[d.name]["p50"] = round(p(lat, 0.5), 3)
            out[d.name]["p99"] = round(p(lat, 0.99), 3)
        return out
    finally:
        for d in daemons:
            d.proc.terminate()
            try:
                d.proc.wait(10)
            except subprocess.TimeoutExpired:
                d.proc.kill()


def idle(seconds: float, work: str) -> float:
    from run import free_port
    followed = os.path.join(work, "idle.log")
    state = os.path.join(work, "idle.state")
    open(followed, "w").close()
    if os.path.exists(state):
        os.unlink(state)
    proc = start_ours(followed, state, port := free_port())
    try:
        if not ready(port):
            raise RuntimeError("ndr-exporter did not start")
        time.sleep(2.0)
        c0 = proc_cpu(proc.pid)
        time.sleep(seconds)
        return round(proc_cpu(proc.pid) - c0, 4)
    finally:
        proc.terminate()
        proc.wait(10)


def main(rates: list[int], seconds: float, runs: int, idle_seconds: float, peer_binary: str | None) -> int:
    work = tempfile.mkdtemp(prefix="ndr-steady-")
    source = os.path.join(work, "pool.log")
    with open(source, "w", encoding="utf-8", newline="") as f:
        generate.postfix(f, 50_000)
    with open(source, encoding="utf-8") as f:
        pool = f.readlines()
    names = ["ndr-exporter"] + (["prometheus-postfix-exporter"] if peer_binary else [])
    rows = []
    bad = []
    for rate in rates:
        results = []
        for run in range(runs):
            r = one_rate(rate, seconds, pool, peer_binary, work)
            print(f"rate {rate} run {run + 1}: {r}", file=sys.stderr)
            results.append(r)
            for name in names:
                if r[name]["counted"] != r[name]["expected"]:
                    bad.append(f"{name} at {rate} lines/s counted {r[name]['counted']}, expected {r[name]['expected']}")
        row = {"rate": rate}
        for name in names:
            row[name] = {k: statistics.median(r[name][k] for r in results) for k in ("cpu_seconds", "p50", "p99")}
            row[name]["all_cpu"] = [r[name]["cpu_seconds"] for r in results]
        rows.append(row)
    idles = [idle(idle_seconds, work) for _ in range(runs)] if idle_seconds > 0 else []

    print(f"| lines/s | ndr-exporter CPU s ({seconds:.0f} s) | p50 / p99 latency s | "
          + ("prometheus-postfix-exporter CPU s | p50 / p99 latency s | ours / theirs |" if peer_binary else ""))
    print("|---:|---:|---:|" + ("---:|---:|---:|" if peer_binary else ""))
    for row in rows:
        o = row["ndr-exporter"]
        line = f"| {row['rate']:,} | {o['cpu_seconds']:.3f} ({', '.join(f'{x:.3f}' for x in o['all_cpu'])}) | " \
               f"{o['p50']:.3f} / {o['p99']:.3f} |"
        if peer_binary:
            g = row["prometheus-postfix-exporter"]
            ratio = o["cpu_seconds"] / g["cpu_seconds"] if g["cpu_seconds"] else float("inf")
            line += f" {g['cpu_seconds']:.3f} ({', '.join(f'{x:.3f}' for x in g['all_cpu'])}) | " \
                    f"{g['p50']:.3f} / {g['p99']:.3f} | {ratio:.2f} |"
        print(line)
    if idles:
        print(f"\n- idle ndr-exporter (state file, nothing written): {statistics.median(idles):.3f} CPU s "
              f"in {idle_seconds:.0f} s (runs: {', '.join(f'{x:.3f}' for x in idles)})")
    for b in bad:
        print(f"COUNT MISMATCH: {b}", file=sys.stderr)
    return 1 if bad else 0
