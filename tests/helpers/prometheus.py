"""Run a real Prometheus server (/usr/bin/prometheus) for tests, and query its HTTP API.

    with PrometheusServer(tmp_path, targets=[f"127.0.0.1:{exp.port}"]) as prom:
        prom.wait_for_targets_up()
        result = prom.wait_for_query('sum by (code) (ndr_status_codes_total)',
                                     lambda r: len(r) == 3)

The server listens on a free loopback port, keeps its TSDB under tmp_path and scrapes every
target each second. Extra scrape settings (scheme, tls_config, basic_auth) go in `scrape_extra`;
rule files in `rule_files`; more command-line flags in `extra_args`. The TSDB is workdir/data:
blocks put there before start() (e.g. by promtool) are served.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from tests.helpers.exporter_process import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool_check_metrics(exposition: str) -> subprocess.CompletedProcess[str]:
    """Run `promtool check metrics` on exposition text; returncode 0 and empty output when clean."""
    return subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, capture_output=True,
                          text=True, timeout=30)


class PrometheusServer:
    def __init__(self, workdir: Path, targets: Iterable[str], job: str = "ndr",
                 metrics_path: str = "/metrics", scrape_extra: Mapping[str, Any] | None = None,
                 rule_files: Iterable[str] = (), interval: str = "1s", extra_args: Iterable[str] = ()) -> None:
        self.workdir = Path(workdir)
        self.extra_args = list(extra_args)   # more prometheus flags, e.g. a longer retention
        self.port = free_port()
        scrape: dict[str, Any] = {
            "job_name": job,
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "metrics_path": metrics_path,
            "static_configs": [{"targets": list(targets)}],
        }
        scrape.update(scrape_extra or {})
        self.config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": list(rule_files),
            "scrape_configs": [scrape],
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "PrometheusServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"prometheus not ready within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns the `data` field, raises on status != success."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the result list (vector) of {"metric": {...}, "value": [t, "v"]}."""
        return self.api("query", query=promql)["result"]

    def query_values(self, promql: str, by: str) -> dict[str, float]:
        """An instant query turned into {value of label `by`: float value}."""
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in self.query(promql)}

    def wait_for_query(self, promql: str, done: Callable[[list[dict[str, Any]]], bool],
                       timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if done(result):
                return result
            time.sleep(0.25)
        raise TimeoutError(f"{promql}: last result {result}\nprometheus log:\n{self.log()}")

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]

    def wait_for_targets_up(self, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        targets: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            targets = self.targets()
            if targets and all(t["health"] == "up" for t in targets):
                return targets
            time.sleep(0.5)
        raise TimeoutError(f"targets not up: {targets}\nprometheus log:\n{self.log()}")
