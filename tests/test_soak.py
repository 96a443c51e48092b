"""Hours of a mail server's life, compressed: the real exporter while everything happens at once.

A writer appends real Postfix status lines the whole time. Meanwhile, chosen by a seeded random
walk, the log is rotated by the real logrotate (create, compress, delaycompress, copytruncate),
the exporter is stopped with SIGTERM or killed with SIGKILL and started again from its checkpoint,
the config is reloaded with SIGHUP, the web config is rewritten in place, and a scraper reads
/metrics with basic auth without pause. At the end every line written must be counted exactly
once, no counter may ever go back (within a process or across a restart), and no unauthenticated
scrape may ever succeed.

    python3 -m pytest -m soak -s                             # NDR_SOAK_SECONDS long (default 60)
    NDR_SOAK_SECONDS=3600 NDR_SOAK_SEED=7 make soak          # an hour

The figures (seconds, lines, rotations, restarts, reloads, scrapes) are printed at the end.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import bcrypt
import pytest
import yaml

from tests.helpers.exporter_process import ExporterProcess, http_get
from tests.helpers.exporter_process import parse_exposition
from tests.helpers.follow import Writer, counter, logrotate, logrotate_conf, status_total

pytestmark = [pytest.mark.soak, pytest.mark.slow]

SECONDS = float(os.environ.get("NDR_SOAK_SECONDS", "60"))
SEED = int(os.environ.get("NDR_SOAK_SEED", "1"))
ROTATIONS = (["create"], ["create", "compress", "delaycompress"], ["create", "compress"], ["copytruncate"])


class Scraper(threading.Thread):
    """Scrapes while the exporter lives: checks counters never go back and anonymous access never works."""

    def __init__(self, get_exporter: Callable[[], ExporterProcess | None], auth: tuple[str, str],
                 source: str) -> None:
        super().__init__(daemon=True)
        self.get_exporter = get_exporter
        self.auth = auth
        # The soak's own source name: a scrape of a port that a stopped exporter left, and that
        # another process (another test run on the machine) took since, is not held against it.
        self.mark = f'source="{source}"'.encode()
        self.highest = 0.0
        self.scrapes = 0
        self.problems: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            exp = self.get_exporter()
            if exp is None:
                time.sleep(0.05)
                continue
            try:
                status, _, body = http_get(exp.url(), auth=self.auth, timeout=5)
                anonymous, _, anonymous_body = http_get(exp.url(), timeout=5)
            except (OSError, http.client.HTTPException):
                continue  # the exporter is being stopped or started
            if status == 200 and self.mark not in body:
                continue   # not the soak's exporter: the port was left and taken by someone else
            # 401, or 503 while an in-place rewrite leaves the file briefly asking for less (web_config.py)
            if anonymous not in (401, 503) and not (anonymous == 200 and self.mark not in anonymous_body):
                self.problems.append(f"an anonymous scrape got {anonymous}")
            if status != 200:
                continue
            value = status_total(parse_exposition(body.decode()))
            if value < self.highest:
                self.problems.append(f"status total went back from {self.highest} to {value}")
            self.highest = max(self.highest, value)
            self.scrapes += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def test_soak_rotations_restarts_reloads_and_scrapes_count_every_line_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    log.touch()
    password = "soak-pass"
    web = tmp_path / "web.yml"
    web_text = yaml.safe_dump({"basic_auth_users": {"prometheus": bcrypt.hashpw(password.encode(),
                                                                                bcrypt.gensalt(4)).decode()}})
    web.write_text(web_text)
    config = tmp_path / "config.yml"
    source = f"soak-{os.getpid()}-{time.monotonic_ns()}"
    config.write_text(yaml.safe_dump({"sources": [{"name": source, "path": str(log), "format": "syslog",
                                                   "start_at": "beginning"}]}))
    args = ["--config.file", str(config), "--state-file", str(tmp_path / "state.json"),
            "--web.config.file", str(web)]
    figures = {"rotations": 0, "sigterm restarts": 0, "kill -9 restarts": 0, "sighup reloads": 0,
               "web config rewrites": 0}
    current: list[ExporterProcess | None] = [None]
    exp = ExporterProcess(args).start()
    current[0] = exp
    writer = Writer(log, batch=3, interval=0.01)
    scraper = Scraper(lambda: current[0], ("prometheus", password), source)
    writer.start()
    scraper.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < SECONDS:
            time.sleep(rng.uniform(0.3, 1.5))
            action = rng.choice(["rotate", "rotate", "sigterm", "kill", "sighup", "web"])
            if action == "rotate":
                options = rng.choice(ROTATIONS)
                conf = logrotate_conf(tmp_path, log, options)
                if options == ["copytruncate"]:
                    writer.pause()  # copytruncate loses what is written between copy and truncate (logrotate says so)
                    logrotate(conf, tmp_path / "logrotate.state")
                    writer.resume()
                else:
                    logrotate(conf, tmp_path / "logrotate.state")
                figures["rotations"] += 1
            elif action in ("sigterm", "kill"):
                current[0] = None
                if action == "sigterm":
                    assert exp.stop(signal.SIGTERM) == 0, exp.output()
                    figures["sigterm restarts"] += 1
                else:
                    exp.stop(signal.SIGKILL)
                    figures["kill -9 restarts"] += 1
                exp.__exit__(None, None, None)
                time.sleep(rng.uniform(0, 0.5))  # lines written (and maybe rotated) while it is down
                exp = ExporterProcess(args).start()
                current[0] = exp
            elif action == "sighup":
                exp.signal(signal.SIGHUP)
                figures["sighup reloads"] += 1
            else:
                with open(web, "w") as f:  # in place, as `cat web.yml.new > web.yml`
                    f.write(web_text)
                figures["web config rewrites"] += 1
        written = writer.stop()
        try:
            exp.wait_for_metrics(lambda s: status_total(s) == written, timeout=60, auth=("prometheus", password))
        except TimeoutError:
            pass   # the assertion below says by how much, with the figures of the run
        time.sleep(1.0)  # nothing more may arrive late
        samples = exp.metrics(auth=("prometheus", password))
    finally:
        writer.stop()
        scraper.stop()
        current[0] = None
        output = exp.output()
        exp.__exit__(None, None, None)
    figures |= {"seconds": round(time.monotonic() - started), "lines written": written,
                "lines counted": int(status_total(samples)), "scrapes": scraper.scrapes, "seed": SEED}
    print("\nsoak:", ", ".join(f"{k} {v}" for k, v in figures.items()))
    assert scraper.problems == [], scraper.problems[:5]
    assert status_total(samples) == written, (figures, output[-3000:])
    assert counter(samples, "ndr_exporter_lines_total", source=source, result="matched") == written
