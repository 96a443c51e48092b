"""Issue 16, "hangs": a state file that is not a regular file is a start error (exit 2, the field
named), never a hang; and SIGTERM ends the exporter even while its start is blocked.

Everything runs the real `ndr-exporter` process. A FIFO with no writer is what blocks: opening it
for reading waits for a writer, and reading it then waits for data."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.exporter_process import EXPORTER_CMD, REPO, exporter_env, free_port, run_exporter

REJECT = (b"Jul 12 07:47:48 saturn postfix/smtpd[8738]: NOQUEUE: reject: RCPT from mx.example.com[192.0.2.1]: "
          b"554 5.7.1 <smtp@example.com>: Relay access denied; from=<a@example.com> to=<b@example.org> "
          b"proto=SMTP helo=<mx.example.com>\n")


def _special(tmp_path: Path, kind: str) -> Path:
    """A path in tmp_path that is a FIFO, a listening Unix socket or (a link to) a character device."""
    path = tmp_path / f"state.{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))   # the socket file stays after the test's socket is gone
        sock.close()
    else:
        path.symlink_to("/dev/null")   # stat() follows the link: a character device
    return path


KINDS = {"fifo": "a FIFO (named pipe)", "socket": "a socket", "device": "a character device"}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("check", [False, True], ids=["serve", "config.check"])
def test_a_state_file_that_is_not_a_regular_file_is_a_start_error(tmp_path: Path, kind: str, check: bool) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(REJECT)
    state = _special(tmp_path, kind)
    args = ["--source.path", str(log), "--state.file", str(state), "--web.listen-address", "127.0.0.1:0"]
    result = run_exporter(args + (["--config.check"] if check else []), timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"ndr-exporter: --state.file: {state} is {KINDS[kind]}, not a regular file; "
                             "the checkpoint must be a regular file (or not exist yet)\n")


def test_the_config_file_key_is_named_for_a_fifo_state_file(tmp_path: Path) -> None:
    state = _special(tmp_path, "fifo")
    config = tmp_path / "c.yml"
    config.write_text(f"sources:\n  - name: mail\n    path: {tmp_path / 'mail.log'}\nstate_file: {state}\n")
    result = run_exporter(["--config.file", str(config), "--config.check"], timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ndr-exporter: state_file: {state} is a FIFO (named pipe), not a regular file")


def _open_writer(fifo: Path, proc: subprocess.Popen[bytes]) -> int:
    """Open the FIFO's write end once the exporter has opened its read end (ENXIO until then).
    From then on the exporter is blocked in read(): nobody writes, and the write end stays open."""
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as err:
            if err.errno != errno.ENXIO:
                raise
        if proc.poll() is not None:
            raise AssertionError(f"the exporter exited ({proc.returncode}) before opening {fifo}")
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_a_start_blocked_reading_its_config(tmp_path: Path, sig: signal.Signals) -> None:
    """`--config.file <(...)` hands the exporter a pipe; one that never delivers blocks the start.
    The handlers are installed before the config is read: the stop is clean (exit 0, said in the
    log), not the default action of the signal."""
    fifo = tmp_path / "config.pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen(EXPORTER_CMD + ["--config.file", str(fifo)], env=exporter_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer = _open_writer(fifo, proc)
    try:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)   # a fail-safe, not a measure: a hang fails here
    finally:
        os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (0, b"", f"ndr-exporter: stopped by {sig.name} while starting\n".encode())


def _sigterm_when_listening(proc: subprocess.Popen[bytes], port: int) -> None:
    """SIGTERM the moment the port takes a connection: the first instant a client (or a test
    fixture, or a service manager's readiness probe) sees the exporter up."""
    while proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                proc.send_signal(signal.SIGTERM)
                return
    raise AssertionError(f"the exporter exited ({proc.returncode}) before listening")


def test_a_stop_signal_once_listening_is_a_clean_stop(tmp_path: Path) -> None:
    """Once the port listens, the exporter is up: SIGTERM then is a clean stop (the final
    checkpoint, "stopped" logged), never "stopped while starting" with the pipeline thread cut
    off. Before the fix, a signal between listen() and the end of the start took the start's
    path in a run or two out of ten (seen first as an intermittent test_json_logs)."""
    log = tmp_path / "mail.log"
    log.write_bytes(REJECT * 3)
    for attempt in range(10):
        state = tmp_path / f"state-{attempt}.json"
        port = free_port()
        proc = subprocess.Popen(EXPORTER_CMD + ["--source.path", str(log), "--source.start-at", "beginning",
                                                "--state.file", str(state), "--log.format", "json",
                                                "--web.listen-address", f"127.0.0.1:{port}"],
                                env=exporter_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _sigterm_when_listening(proc, port)
            out, err = proc.communicate(timeout=30)   # a fail-safe, not a measure
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
        assert (attempt, proc.returncode, out) == (attempt, 0, b"")
        assert "while starting" not in err.decode(), (attempt, err.decode())
        assert [r["msg"] for r in records][-2:] == ["stopping", "stopped"], (attempt, err.decode())
        saved = json.loads(state.read_text())
        assert [f["offset"] for f in saved["sources"]["mail.log"]["files"]] == [3 * len(REJECT)], attempt
