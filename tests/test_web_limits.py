"""The real exporter under connection pressure: a low default open-files limit, a thousand idle
connections held open by clients that never send a request, and a scrape storm's backlog."""

from __future__ import annotations

import resource
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.helpers.exporter_process import ExporterProcess

Factory = Callable[..., ExporterProcess]
IDLE_CONNECTIONS = 1100


def _limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


@pytest.fixture
def default_soft_limit() -> Iterator[int]:
    """Start children with Linux's default soft limit of 1,024 open files (the hard one unchanged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNECTIONS + 200:
        pytest.skip(f"the hard open-files limit here is {hard}, below what this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_idle_connections_neither_block_scrapes_nor_stay_open(
        tmp_path: Path, exporter_factory: Factory, default_soft_limit: int) -> None:
    log = tmp_path / "mail.log"
    log.touch()
    exp = exporter_factory(["--source.path", str(log)])
    assert exp.proc is not None
    resource.setrlimit(resource.RLIMIT_NOFILE, (default_soft_limit, default_soft_limit))  # ours, for the sockets
    # the daemon raised its soft limit to the hard one at start, as Go exporters do
    assert _limits(exp.proc.pid) == (default_soft_limit, default_soft_limit)
    idle = [socket.create_connection(("127.0.0.1", exp.port), timeout=5) for _ in range(IDLE_CONNECTIONS)]
    try:
        status, _, body = exp.get(timeout=10)
        assert status == 200 and b"ndr_exporter_build_info" in body
        # idle connections are closed by the server after a few seconds (each held a thread and an fd)
        deadline = time.monotonic() + 15
        by_fd = {s.fileno(): s for s in idle}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        while by_fd and time.monotonic() < deadline:
            for fd, _event in poller.poll(500):
                if by_fd[fd].recv(1) == b"":
                    poller.unregister(fd)
                    del by_fd[fd]
        assert len(by_fd) == 0, f"{len(by_fd)} idle connections still open after 15 s"
        assert exp.get()[0] == 200 and exp.proc.poll() is None
    finally:
        for s in idle:
            s.close()


def test_the_listen_backlog_takes_a_scrape_storm(tmp_path: Path, exporter_factory: Factory) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) not installed")
    log = tmp_path / "mail.log"
    log.touch()
    exp = exporter_factory(["--source.path", str(log)])
    # for a listening socket, ss shows the accept backlog in Send-Q
    out = subprocess.run(["ss", "-Hltn", f"sport = :{exp.port}"], capture_output=True, text=True, check=True).stdout
    backlog = int(out.split()[2])
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert backlog == min(1024, somaxconn)


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no 'Threads' line")


def test_threads_kept_for_the_next_connections_are_at_most_sixteen(
        tmp_path: Path, exporter_factory: Factory) -> None:
    """A thread done with a connection waits for the next one (web.py's ExporterServer), but no
    more than SPARE_THREADS (16) wait: of 50 connections' threads at most 16 stay once they
    close, and those serve the next connections without new threads."""
    import http.client

    log = tmp_path / "mail.log"
    log.touch()
    exp = exporter_factory(["--source.path", str(log)])
    assert exp.proc is not None and exp.get()[0] == 200
    conns = [http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10) for _ in range(50)]
    for conn in conns:
        conn.request("GET", "/metrics")
    for conn in conns:   # all 50 are open at once, each on its own thread
        response = conn.getresponse()
        assert response.status == 200 and b"ndr_exporter_build_info" in response.read()
    during = _threads(exp.proc.pid)
    for conn in conns:
        conn.close()
    deadline = time.monotonic() + 15
    while _threads(exp.proc.pid) > during - (50 - 16) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _threads(exp.proc.pid)
    assert after <= during - (50 - 16), f"{during - after} of 50 connection threads ended; 34 should have"
    for _ in range(40):   # one connection each, served by the waiting threads: no new ones
        assert exp.get()[0] == 200
    assert _threads(exp.proc.pid) == after
