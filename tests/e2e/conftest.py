"""Fixtures for the end-to-end suite: one run of each MTA's scenario, shared by its tests.

A run starts the SMTP responders, the MTA in its own directory, and the exporter following
the MTA's log from its first line; then it sends the scenario's mail, waits until the MTA's
queue is empty, and stops the MTA so the log is complete. The tests then read the log and
the exporter's /metrics. Set NDR_E2E_KEEP=1 to keep the MTA's directory for a look.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e import exim, exim_scenario, postfix, postfix_scenario
from tests.e2e.following import follow
from tests.e2e.responder import Responder
from tests.e2e.scenario import Case
from tests.e2e.util import free_port
from tests.helpers.exporter_process import ExporterProcess


@dataclass
class MtaRun:
    log: Path                          # the MTA's finished log file
    cases: list[Case]                  # what was sent
    exporter: ExporterProcess | None   # the exporter that followed the log while it was written
    exporter_error: str | None         # why it is None

    def require_exporter(self) -> ExporterProcess:
        if self.exporter is None:
            pytest.fail(f"the exporter did not start: {self.exporter_error}")
        return self.exporter


def _unavailable(reason: str) -> None:
    """Skip; under NDR_REQUIRE_E2E=1 (CI, where tools/setup.sh ran) fail instead."""
    if os.environ.get("NDR_REQUIRE_E2E") == "1":
        pytest.fail(f"NDR_REQUIRE_E2E=1: {reason}")
    pytest.skip(reason)


def _work_dir(prefix: str) -> Path:
    # Not pytest's tmp_path: the MTAs' unprivileged users must be able to reach it.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


def _start_exporter(log: Path, fmt: str | None) -> tuple[ExporterProcess | None, str | None]:
    try:
        return follow(log, fmt), None
    except Exception as err:  # the test that needs it reports this
        return None, f"{type(err).__name__}: {err}"


def _cleanup(root: Path, exporter: ExporterProcess | None) -> None:
    if exporter is not None:
        exporter.__exit__(None, None, None)
    if not os.environ.get("NDR_E2E_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def responders() -> Iterator[tuple[Responder, Responder]]:
    """Two SMTP responders: the usual remote server, and one for the 421 case alone."""
    with Responder() as main, Responder() as drop:
        yield main, drop


@pytest.fixture(scope="module")
def postfix_run(responders: tuple[Responder, Responder]) -> Iterator[MtaRun]:
    if not postfix.available():
        _unavailable(f"postfix is not unpacked at {postfix.POSTFIX} or we are not root (run tools/setup.sh as root)")
    main, drop = responders
    root = _work_dir("ndr-e2e-postfix-")
    exporter = None
    try:
        server = postfix_scenario.start(root, main.port, drop.port, free_port(), free_port())
        try:
            exporter, error = _start_exporter(server.maillog, None)
            postfix_scenario.run(server)
        finally:
            server.stop()
        yield MtaRun(server.maillog, postfix_scenario.CASES, exporter, error)
    finally:
        _cleanup(root, exporter)


@pytest.fixture(scope="module")
def exim_run(responders: tuple[Responder, Responder]) -> Iterator[MtaRun]:
    if not exim.available():
        _unavailable(f"exim4 is not unpacked at {exim.EXIM} or we are not root (run tools/setup.sh as root)")
    main, drop = responders
    root = _work_dir("ndr-e2e-exim-")
    exporter = None
    try:
        server = exim_scenario.start(root, main.port, drop.port, free_port(), free_port())
        try:
            exporter, error = _start_exporter(server.mainlog, "exim")
            exim_scenario.run(server)
        finally:
            server.stop()
        yield MtaRun(server.mainlog, exim_scenario.CASES, exporter, error)
    finally:
        _cleanup(root, exporter)
