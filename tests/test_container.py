"""The container image, built from the committed Dockerfile and run as a user would run it.

tests/helpers/podman.py builds the image with podman (on a debootstrapped stand-in for the base
image, since no registry is reachable); these tests run it with a read-only root, every
capability dropped and no new privileges, follow a mounted real Postfix log, scrape the exporter
over HTTP, restart it on its checkpoint volume, and run the image's HEALTHCHECK with
`podman healthcheck run`. Where podman cannot run, every test here is skipped with the reason.

Select them with `pytest -m container`; the first run debootstraps and builds (a few minutes),
later runs reuse .cache/container/.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.helpers import podman as pm
from tests.helpers.exporter_process import (
    REPO, ExporterProcess, Samples, free_port, http_get, parse_exposition, sample, total,
)

pytestmark = [pytest.mark.container, pytest.mark.slow]

SAMPLE = REPO / "tests" / "testdata" / "real" / "postfix-3.7.11-maillog.log"
IMAGE_PORT = 19798
# How the tests run the image: what a careful user (or the Kubernetes example) does.
LOCKED_DOWN = ["--read-only", "--cap-drop=all", "--security-opt=no-new-privileges"]


@pytest.fixture(scope="module")
def image() -> str:
    reason = pm.why_podman_cannot_run()
    if reason:
        pytest.skip(f"podman cannot build or run images here: {reason}")
    log: list[str] = []
    try:
        return pm.build_image(log)
    finally:
        print("container image:", "; ".join(log) or "base and layers reused from .cache/container")


class Container:
    """One container of the image, removed (with its anonymous volumes) at the end."""

    def __init__(self, image: str, run_args: list[str], cmd: list[str], port: int) -> None:
        self.name = f"ndr-exporter-test-{uuid.uuid4().hex[:8]}"
        self.image, self.run_args, self.cmd, self.port = image, run_args, cmd, port

    def start(self) -> "Container":
        pm.podman("run", "--detach", "--name", self.name, *self.run_args, self.image, *self.cmd)
        return self

    def inspect(self) -> dict:
        return json.loads(pm.podman("inspect", self.name).stdout)[0]

    def logs(self) -> str:
        result = pm.podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def healthcheck(self) -> str:
        """Run the image's HEALTHCHECK now (`podman healthcheck run`); what it printed, if healthy."""
        result = pm.podman("healthcheck", "run", self.name, check=False)
        health = self.inspect()["State"]["Health"]
        last = health["Log"][-1]
        assert (result.returncode, health["Status"], last["ExitCode"]) == (0, "healthy", 0), (
            f"{result.stdout}{result.stderr}{last}\n{self.logs()}")
        return last["Output"].strip()

    def metrics(self) -> Samples:
        status, _, body = http_get(f"http://127.0.0.1:{self.port}/metrics")
        assert status == 200, body[:300]
        return parse_exposition(body.decode())

    def wait_for_metrics(self, done: Callable[[Samples], bool], timeout: float = 60) -> Samples:
        """Scrape until done(samples); while the exporter starts, refused connections are retried."""
        deadline = time.monotonic() + timeout
        samples: Samples = {}
        while time.monotonic() < deadline:
            try:
                samples = self.metrics()
            except OSError:
                samples = {}
            if samples and done(samples):
                return samples
            time.sleep(0.2)
        raise TimeoutError(f"metrics not as expected after {timeout}s; last scrape:\n"
                           + "\n".join(f"{k}: {v}" for k, v in sorted(samples.items()))
                           + f"\ncontainer log:\n{self.logs()}")

    def remove(self) -> None:
        pm.podman("rm", "--force", "--volumes", "--time=0", self.name, check=False)


@pytest.fixture
def containers(image: str) -> Iterator[Callable[..., Container]]:
    made: list[Container] = []

    def start(run_args: list[str], cmd: list[str], port: int) -> Container:
        container = Container(image, run_args, cmd, port)
        made.append(container)
        return container.start()

    yield start
    for container in made:
        container.remove()


@pytest.fixture
def volume(image: str) -> Iterator[str]:
    name = f"ndr-exporter-state-{uuid.uuid4().hex[:8]}"
    pm.podman("volume", "create", name)
    yield name
    pm.podman("volume", "rm", "--force", name, check=False)


def status_codes(samples: Samples) -> dict[tuple, float]:
    return {labels: v for (name, labels), v in samples.items() if name == "ndr_status_codes_total"}


def lines_read(samples: Samples) -> float:
    return total(samples, "ndr_exporter_lines_total")


def host_reference(log: Path, exporter_factory: Callable[..., ExporterProcess]) -> Samples:
    """What the exporter run on the host from the same sources counts in `log`, read from the start."""
    lines = len(log.read_text().splitlines())
    proc = exporter_factory(["--source.path", str(log), "--start-at", "beginning"])
    samples = proc.wait_for_metrics(lambda s: lines_read(s) == lines)
    proc.stop()
    return samples


# --- the image itself ------------------------------------------------------------------------

def test_image_metadata_port_healthcheck_and_default_command(image: str) -> None:
    info = json.loads(pm.podman("image", "inspect", image).stdout)[0]
    config = info["Config"]
    assert config["User"] == "10001"
    assert config["Entrypoint"] == ["ndr-exporter"]
    assert config["Cmd"] == ["--source.path=/var/log/mail.log", f"--web.listen-address=:{IMAGE_PORT}"]
    assert "NDR_EXPORTER_STATE_FILE=/var/lib/ndr-exporter/checkpoint.json" in config["Env"]
    assert list(config["ExposedPorts"]) == [f"{IMAGE_PORT}/tcp"]
    assert list(config["Volumes"]) == ["/var/lib/ndr-exporter"]
    assert info["Healthcheck"]["Test"] == ["CMD", "python", "-m", "exporter.healthcheck"]


def test_image_has_the_compiled_scanner_and_no_pip(image: str) -> None:
    probe = (
        "import importlib.util, shutil, exporter._fastscan, exporter.parsers.syslog as s\n"
        "print(s.SyslogParser().scanner is not None, importlib.util.find_spec('pip'),"
        " [shutil.which(t) for t in ('pip', 'pip3', 'gcc', 'curl')])\n"
    )
    result = pm.podman("run", "--rm", *LOCKED_DOWN, "--entrypoint", "python", image, "-c", probe)
    assert result.stdout == "True None [None, None, None, None]\n"
    # the system python under the virtual environment has no pip either
    system = pm.podman("run", "--rm", *LOCKED_DOWN, "--entrypoint", "/usr/bin/env", image,
                       "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "python3", "-m", "pip", "--version", check=False)
    assert system.returncode == 1 and "No module named pip" in system.stderr


# --- running it ------------------------------------------------------------------------------

def test_bare_run_serves_on_19798_and_is_healthy(containers: Callable[..., Container]) -> None:
    """`podman run IMAGE` with no arguments: the default command follows /var/log/mail.log (here
    not mounted, so it waits for it) on port 19798 rather than exiting 2. It runs in a network
    namespace of its own (the host's port 19798 may be in use), so it is scraped from inside."""
    c = containers([*LOCKED_DOWN, "--network=none"], [], IMAGE_PORT)
    scrape = ("import urllib.request as r\n"
              f"body = r.urlopen('http://127.0.0.1:{IMAGE_PORT}/metrics', timeout=5).read().decode()\n"
              "print(sorted({l.split('{')[0] for l in body.splitlines() if l.startswith('ndr_exporter_lines')}))\n")
    deadline = time.monotonic() + 60
    while True:
        result = pm.podman("exec", c.name, "python", "-c", scrape, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.stdout == "['ndr_exporter_lines_total']\n", result.stderr + c.logs()
    assert c.healthcheck() == f"ndr-exporter answers on [::]:{IMAGE_PORT}: 200 OK"
    assert c.inspect()["State"]["Running"] is True


def test_counts_continue_across_a_restart_without_double_counting(
        tmp_path: Path, containers: Callable[..., Container], volume: str,
        exporter_factory: Callable[..., ExporterProcess]) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    first, second = lines[:100], lines[100:]
    half = tmp_path / "half" / "mail.log"
    half.parent.mkdir()
    half.write_text("".join(first))
    full_reference = host_reference(SAMPLE, exporter_factory)
    half_reference = host_reference(half, exporter_factory)

    # the host's log folder, mounted whole (as for rotation) and read-only, with the first half in it
    logs = tmp_path / "var-log"
    logs.mkdir()
    log = logs / "mail.log"
    log.write_text("".join(first))
    log.chmod(0o644)
    port = free_port()
    mounts = [*LOCKED_DOWN, "-v", f"{logs}:/var/log:ro", "-v", f"{volume}:/var/lib/ndr-exporter"]
    flags = ["--source.path=/var/log/mail.log", f"--web.listen-address=127.0.0.1:{port}"]
    c = containers(mounts, [*flags, "--start-at=beginning"], port)
    after_first = c.wait_for_metrics(lambda s: lines_read(s) == len(first))
    assert status_codes(after_first) == status_codes(half_reference)
    assert c.healthcheck() == f"ndr-exporter answers on 127.0.0.1:{port}: 200 OK"

    pm.podman("stop", "--time=30", c.name)
    assert c.inspect()["State"]["ExitCode"] == 0, c.logs()
    # the checkpoint is on the volume (its schema is the checkpoint module's business)
    checkpoint = pm.podman("run", "--rm", *LOCKED_DOWN, "-v", f"{volume}:/state:ro", "--entrypoint", "python",
                           c.image, "-c", "import json; print(type(json.load(open('/state/checkpoint.json'))).__name__)")
    assert checkpoint.stdout == "dict\n"
    # lines written while the exporter is down are read by the next container on the same volume,
    # which starts where the checkpoint says (its own start is the default, the end of the file):
    # a lost checkpoint would skip them, a lost counter state would show only them
    with log.open("a") as f:
        f.writelines(second)
    c = containers(mounts, flags, port)
    final = c.wait_for_metrics(lambda s: lines_read(s) == len(lines))
    assert status_codes(final) == status_codes(full_reference)
    assert sample(final, "ndr_exporter_lines_total", result="matched", source="mail.log") == 40
    assert sample(final, "ndr_exporter_lines_total", result="ignored", source="mail.log") == 169
    assert total(final, "ndr_status_codes_total") == 40
    assert total(final, "ndr_status_codes_total", code="4.4.7", outcome="expired") == 5
    assert c.healthcheck() == f"ndr-exporter answers on 127.0.0.1:{port}: 200 OK"
    # and `podman restart`: the counters come back from the checkpoint, nothing is read again
    pm.podman("restart", "--time=30", c.name)
    assert status_codes(c.wait_for_metrics(lambda s: lines_read(s) == len(lines))) == status_codes(full_reference)
