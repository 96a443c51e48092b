"""A private Exim daemon for the end-to-end suite: its own config, spool and log directory.

The binary is Debian's exim4 (exim4-daemon-light), unpacked by tools/setup.sh under
.cache/exim4 because the package conflicts with postfix. Everything else lives under one
directory that the test owns:

    ROOT/bin/exim4       a copy of the binary: deliveries re-execute it as Debian-exim, who
                         may not be able to reach the repository (a clone under /root)
    ROOT/etc/exim.conf   from templates/exim.conf
    ROOT/etc/ports       "domain: port" for each remote domain (manualroute to 127.0.0.1)
    ROOT/spool/          spool_directory (owned by Debian-exim)
    ROOT/log/mainlog     log_file_path ROOT/log/%slog (also rejectlog, paniclog)
    ROOT/mail/           appendfile mailboxes, written as Debian-exim

The daemon runs in the foreground (`exim4 -C ROOT/etc/exim.conf -bdf -oX PORT`) as a child
of the test; we are root, so Exim keeps its privileges with -C. A forced queue run is
`exim4 -C ... -qff`, which returns when the run is over.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.util import fill_template, wait_for_port, wait_until

REPO = Path(__file__).resolve().parents[2]
EXIM = REPO / ".cache" / "exim4" / "usr" / "sbin" / "exim4"
EXIM_USER = "Debian-exim"

HOSTNAME = "mx.e2e.test"
MESSAGE_SIZE_LIMIT = 200_000
MAILBOXES = ("inbox", "sender", "full", "postmaster")

# "<date> <time> <message id> <flag>" for the lines that say where a message is.
_STATE = re.compile(r"^\S+ \S+ (?:\[\d+\] )?(\w{6}-\w{6}-\w{2}|\w{6}-\w{11}-\w{4}) (<=|==|Completed)", re.M)


def version() -> str:
    """The unpacked Exim's version, e.g. "4.96"."""
    out = subprocess.run([str(EXIM), "-C", "/dev/null", "-bV"], capture_output=True, text=True)
    match = re.search(r"Exim version (\S+)", out.stdout)
    if not match:
        raise RuntimeError(f"cannot tell the exim version:\n{out.stdout}{out.stderr}")
    return match.group(1)


def available() -> bool:
    return os.access(EXIM, os.X_OK) and os.geteuid() == 0


@dataclass
class EximServer:
    root: Path
    smtp_port: int
    routes: dict[str, int]             # remote domain -> loopback port
    retry_cutoff: str = "1d"           # the F,<cutoff>,1s retry rule for every error but quota
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.root / "etc" / "exim.conf"

    @property
    def mainlog(self) -> Path:
        return self.root / "log" / "mainlog"

    log_path = mainlog  # the name both MTA helpers share

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "exim4"

    # --- configuration ---
    def write_config(self) -> None:
        values = {
            "ROOT": str(self.root),
            "EXIM": str(self.binary),
            "SMTP_PORT": str(self.smtp_port),
            "MESSAGE_SIZE_LIMIT": str(MESSAGE_SIZE_LIMIT),
            "RETRY_CUTOFF": self.retry_cutoff,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.binary.parent.mkdir(exist_ok=True)
        shutil.copy2(EXIM, self.binary)  # keeps the set-uid root mode it was unpacked with
        etc = self.root / "etc"
        etc.mkdir(exist_ok=True)
        self.config.write_text(fill_template("exim.conf", values))
        (etc / "ports").write_text("".join(f"{d}: {p}\n" for d, p in self.routes.items()))
        for name in ("spool", "log", "mail"):
            path = self.root / name
            path.mkdir(exist_ok=True)
            shutil.chown(path, EXIM_USER, EXIM_USER)
        # The exporter reads the log as whoever runs it; Exim writes it as Debian-exim.
        self.mainlog.touch()
        shutil.chown(self.mainlog, EXIM_USER, EXIM_USER)
        # Already over the quota, so the next delivery to "full" fails.
        full = self.root / "mail" / "full.mbox"
        full.write_bytes(b"X" * 4096)
        shutil.chown(full, EXIM_USER, EXIM_USER)

    # --- life cycle ---
    def start(self) -> "EximServer":
        self.write_config()
        check = self.exim("-bV")
        if check.returncode != 0:
            raise RuntimeError(f"exim rejects its config:\n{check.stdout}{check.stderr}")
        with open(self.root / "daemon-output.log", "wb") as output:
            self.process = subprocess.Popen(
                [str(self.binary), "-C", str(self.config), "-bdf", "-oX", str(self.smtp_port)],
                stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.smtp_port, timeout=20)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the daemon and wait for its delivery processes, so the log is complete."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
        wait_until(lambda: not self._children_running(), timeout=15, what="exim processes to exit")

    def exim(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the exim binary with this instance's config."""
        return subprocess.run([str(self.binary), "-C", str(self.config), *args], capture_output=True, text=True,
                              timeout=timeout)

    def _children_running(self) -> bool:
        """Any exim process using this config (delivery processes outlive the daemon)."""
        return bool(_processes_using(self.config))

    # --- the queue ---
    def force_queue_run(self) -> None:
        """Try every queued message now, retry times and freezing ignored (`exim -qff`)."""
        result = self.exim("-qff")
        if result.returncode != 0:
            raise RuntimeError(f"exim -qff failed:\n{result.stdout}{result.stderr}")

    def unfinished(self) -> set[str]:
        """Ids of messages that arrived and have not been completed, according to the log."""
        states = _STATE.findall(self.log_text())
        arrived = {msg_id for msg_id, flag in states if flag == "<="}
        completed = {msg_id for msg_id, flag in states if flag == "Completed"}
        return arrived - completed

    def deferred(self) -> set[str]:
        """Unfinished messages whose last logged word is a deferral."""
        last: dict[str, str] = {}
        for msg_id, flag in _STATE.findall(self.log_text()):
            last[msg_id] = flag
        return {m for m in self.unfinished() if last.get(m) == "=="}

    def log_text(self) -> str:
        return self.mainlog.read_text(errors="replace") if self.mainlog.exists() else ""


def wait_settled(server: EximServer, deferred: int, timeout: float = 30) -> None:
    """Wait until every message has been completed except `deferred` ones, each deferred."""
    def settled() -> bool:
        return len(server.unfinished()) == deferred and len(server.deferred()) == deferred \
            and not _delivering(server)

    wait_until(settled, timeout=timeout, what=f"exim to settle with {deferred} deferred messages")


def _delivering(server: EximServer) -> bool:
    """A process of this instance other than the daemon is running (receiving or delivering)."""
    daemon = server.process.pid if server.process else -1
    return any(pid != daemon for pid in _processes_using(server.config))


def _processes_using(config: Path) -> list[int]:
    """Pids of the processes whose command line names this config file."""
    needle = str(config).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = (Path("/proc") / entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline.split(b"\0"):
            pids.append(int(entry))
    return pids
