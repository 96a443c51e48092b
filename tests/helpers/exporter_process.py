"""Run the real `ndr-exporter` as a subprocess and read its /metrics over HTTP.

Shared by the service, dashboards and end-to-end tests. Typical use:

    from tests.helpers.exporter_process import ExporterProcess, parse_exposition, sample

    with ExporterProcess(["--source.path", str(log), "--start-at", "beginning"]) as exp:
        samples = exp.wait_for_metrics(lambda s: sample(s, "ndr_exporter_lines_total",
                                                       source="mail.log", result="matched") == 3)

ExporterProcess picks a free loopback port and adds `--web.listen-address` unless the
arguments already carry one. It is ready when the port accepts connections: the CLI
binds the HTTP port only after the daemon has started its sources.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
# The command that runs the CLI; `-c` so that no console script needs to be installed.
EXPORTER_CMD = [sys.executable, "-c", "import sys; from exporter.cli import main; sys.exit(main())"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exporter_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an exporter subprocess: the repo importable, no NDR_EXPORTER_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NDR_EXPORTER_")}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_exporter(args: list[str], env: Mapping[str, str] | None = None,
                 timeout: float = 30, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (e.g. `--config.check`, a bad flag); returns code, stdout, stderr."""
    return subprocess.run(EXPORTER_CMD + args, env=exporter_env(env), cwd=REPO, timeout=timeout,
                          input=stdin.decode() if stdin is not None else None,
                          capture_output=True, text=True)


def parse_exposition(text: str) -> Samples:
    """Parse Prometheus text exposition into {(sample name, sorted labels): value}."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the one sample with exactly these labels, or None when it is absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over all samples of `name` whose labels include `labels` (others may vary)."""
    want = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and want <= set(lbls))


def http_get(url: str, *, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None,
             headers: Mapping[str, str] | None = None, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """GET a URL; returns (status, headers, body) and does not raise on 4xx/5xx."""
    req = urllib.request.Request(url, headers=dict(headers or {}))
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, context=context, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


class ExporterProcess:
    """The real exporter in a subprocess, on a free loopback port."""

    def __init__(self, args: Iterable[str], env: Mapping[str, str] | None = None,
                 scheme: str = "http", ssl_context: ssl.SSLContext | None = None,
                 stdin: int | None = None) -> None:
        self.args = list(args)
        if not any(a == "--web.listen-address" or a.startswith("--web.listen-address=") for a in self.args):
            self.port = free_port()
            self.args += ["--web.listen-address", f"127.0.0.1:{self.port}"]
        else:
            i = next(i for i, a in enumerate(self.args) if a.startswith("--web.listen-address"))
            addr = self.args[i].split("=", 1)[1] if "=" in self.args[i] else self.args[i + 1]
            self.port = int(addr.rsplit(":", 1)[1])
        self.env = env
        self.scheme = scheme
        self.ssl_context = ssl_context
        self.stdin = stdin
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr_path: Path | None = None

    # --- life cycle ---
    def start(self, timeout: float = 15) -> "ExporterProcess":
        """Start the process and wait until its port accepts connections."""
        import tempfile

        fd, name = tempfile.mkstemp(prefix="ndr-exporter-", suffix=".log")
        self._stderr_path = Path(name)
        self.proc = subprocess.Popen(EXPORTER_CMD + self.args, env=exporter_env(self.env), cwd=REPO,
                                     stdin=self.stdin, stdout=fd, stderr=subprocess.STDOUT)
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"exporter did not listen on {self.port} within {timeout}s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send a signal (SIGTERM by default) and wait for the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def output(self) -> str:
        """What the process wrote to stdout and stderr so far (its log)."""
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        return self._stderr_path.read_text(errors="replace")

    def __enter__(self) -> "ExporterProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        if self._stderr_path is not None:
            self._stderr_path.unlink(missing_ok=True)

    # --- HTTP ---
    def url(self, path: str = "/metrics") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def get(self, path: str = "/metrics", **kw: object) -> tuple[int, dict[str, str], bytes]:
        kw.setdefault("context", self.ssl_context)
        return http_get(self.url(path), **kw)  # type: ignore[arg-type]

    def scrape(self, path: str = "/metrics", **kw: object) -> str:
        """The exposition text; AssertionError with the body when the status is not 200."""
        status, _, body = self.get(path, **kw)
        assert status == 200, f"GET {path}: {status} {body[:500]!r}"
        return body.decode()

    def metrics(self, path: str = "/metrics", **kw: object) -> Samples:
        return parse_exposition(self.scrape(path, **kw))

    def wait_for_metrics(self, done: Callable[[Samples], bool], timeout: float = 15,
                         path: str = "/metrics", **kw: object) -> Samples:
        """Scrape until done(samples) is true; TimeoutError shows the last scrape."""
        deadline = time.monotonic() + timeout
        samples: Samples = {}
        while time.monotonic() < deadline:
            samples = self.metrics(path, **kw)
            if done(samples):
                return samples
            time.sleep(0.1)
        raise TimeoutError(f"metrics not as expected after {timeout}s; last scrape:\n"
                           + "\n".join(f"{k}: {v}" for k, v in sorted(samples.items()))
                           + f"\nexporter log:\n{self.output()}")
