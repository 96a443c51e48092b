"""Shared pytest fixtures: the real exporter process, a real Prometheus, the public log corpus.

The helpers live in tests/helpers/ (exporter_process.py, prometheus.py) and can be imported
directly as `tests.helpers...`; these fixtures start them and make sure they are stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.helpers.exporter_process import ExporterProcess  # noqa: E402
from tests.helpers.prometheus import PrometheusServer  # noqa: E402

CORPUS = Path("/work/shared/eval/public-corpus")


@pytest.fixture
def corpus() -> Path:
    """The public log corpus (real lines written by real mail servers); see its SOURCES.md."""
    if not CORPUS.is_dir():
        pytest.skip(f"public corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def exporter_factory() -> Iterator[Callable[..., ExporterProcess]]:
    """Start the real exporter: exporter_factory(args, env=None, **kw) -> a started ExporterProcess.

    Every process started through it is killed at teardown if the test left it running.
    """
    started: list[ExporterProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None, **kw: object) -> ExporterProcess:
        proc = ExporterProcess(args, env=env, **kw)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.__exit__(None, None, None)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start a real Prometheus: prometheus_factory(targets, **kw) -> a started PrometheusServer."""
    started: list[PrometheusServer] = []

    def start(targets: list[str], **kw: object) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus{len(started)}", targets, **kw)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
