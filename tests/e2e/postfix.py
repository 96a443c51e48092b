"""A private Postfix instance for the end-to-end suite: its own config, queue and log file.

The programs are Debian's postfix package, unpacked by tools/setup.sh under .cache/postfix
(`dpkg -x`, never installed: the package would replace the host's mail server). main.cf points
daemon_directory, command_directory, shlib_directory and meta_directory into that tree, and
the programs find their shared libraries (libpostfix-*.so, which Debian's binaries look for in
/usr/lib/postfix) through LD_LIBRARY_PATH: set here for the commands we run, and passed on by
master(8) to its daemons through import_environment. Everything else lives under one
directory that the test owns:

    ROOT/etc/      main.cf, master.cf (from templates/), aliases(.db), transport, header_checks,
                   recipient_access, verify_domains (domains checked by reject_unverified_recipient)
    ROOT/queue/    queue_directory (Postfix creates the subdirectories on start)
    ROOT/data/     data_directory
    ROOT/mail/     the files local(8) delivers to (aliases "name: /ROOT/mail/name.mbox")
    ROOT/maillog   maillog_file, written by postlogd

It listens only on 127.0.0.1:smtpd_port. Mail for a domain in `routes` goes to that loopback
port (transport_maps, `smtp:[127.0.0.1]:PORT`); nothing else leaves. Started with
`postfix -c ROOT/etc start` as root; stopped with `postfix -c ROOT/etc stop`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.util import fill_template, wait_until, wait_for_port

REPO = Path(__file__).resolve().parents[2]
PREFIX = REPO / ".cache" / "postfix"            # the unpacked package
LIBDIR = PREFIX / "usr" / "lib" / "postfix"     # its libpostfix-*.so
POSTFIX = PREFIX / "usr" / "sbin" / "postfix"
POSTCONF = PREFIX / "usr" / "sbin" / "postconf"
POSTQUEUE = PREFIX / "usr" / "sbin" / "postqueue"
POSTALIAS = PREFIX / "usr" / "sbin" / "postalias"

HOSTNAME = "mx.e2e.test"        # myhostname, and the local domain

MESSAGE_SIZE_LIMIT = 200_000
MAILBOX_SIZE_LIMIT = 1_000_000

# Local recipients: name -> what the alias expands to ("/path" names a mailbox file).
ALIASES = {
    "inbox": "@@ROOT@@/mail/inbox.mbox",
    "sender": "@@ROOT@@/mail/sender.mbox",
    "full": "@@ROOT@@/mail/full.mbox",
    "postmaster": "@@ROOT@@/mail/postmaster.mbox",
    "mailer-daemon": "postmaster",
    "loop-a": "loop-b",
    "loop-b": "loop-a",
}


def environment() -> dict[str, str]:
    """Our environment plus the unpacked package's library directory, for its programs."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(LIBDIR), env.get("LD_LIBRARY_PATH")) if p)
    return env


def version() -> str:
    """The unpacked Postfix's version, e.g. "3.7.11"."""
    # -c: the package's own (main.cf-less) config directory, not the host's /etc/postfix.
    out = subprocess.run([str(POSTCONF), "-c", str(PREFIX / "etc" / "postfix"), "-d", "-h", "mail_version"],
                         capture_output=True, text=True, check=True, env=environment())
    return out.stdout.strip()


def available() -> bool:
    return os.access(POSTFIX, os.X_OK) and os.geteuid() == 0


@dataclass
class PostfixServer:
    root: Path
    smtpd_port: int
    routes: dict[str, int]          # domain -> loopback port of its next hop
    queue_lifetime: str = "1d"      # maximal_queue_lifetime and bounce_queue_lifetime
    verified_domains: tuple[str, ...] = ()  # recipients here pass reject_unverified_recipient first

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    log_path = maillog  # the name both MTA helpers share

    # --- configuration ---
    def write_config(self) -> None:
        """Write etc/ from the templates and prepare the mail directory."""
        values = {
            "ROOT": str(self.root),
            "PREFIX": str(PREFIX),
            "SMTPD_ADDRESS": f"127.0.0.1:{self.smtpd_port}",
            "MESSAGE_SIZE_LIMIT": str(MESSAGE_SIZE_LIMIT),
            "MAILBOX_SIZE_LIMIT": str(MAILBOX_SIZE_LIMIT),
            "QUEUE_LIFETIME": self.queue_lifetime,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the postfix user must reach queue/ and data/
        self.etc.mkdir(exist_ok=True)
        (self.root / "queue").mkdir(exist_ok=True)  # postfix fills in the subdirectories
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        shutil.chown(data, "postfix", "postfix")
        for name in ("main.cf", "master.cf"):
            (self.etc / name).write_text(fill_template(f"postfix-{name}", values))
        aliases = "".join(f"{name}: {target.replace('@@ROOT@@', str(self.root))}\n"
                          for name, target in ALIASES.items())
        (self.etc / "aliases").write_text(aliases)
        subprocess.run([str(POSTALIAS), "-c", str(self.etc), str(self.etc / "aliases")], check=True,
                       env=environment())
        (self.etc / "transport").write_text(
            "".join(f"{domain} smtp:[127.0.0.1]:{port}\n" for domain, port in self.routes.items()))
        (self.etc / "header_checks").write_text("/^Subject:/ INFO\n")
        (self.etc / "recipient_access").write_text(f"tempfail@{HOSTNAME} 451 4.7.1 Try again later\n")
        (self.etc / "verify_domains").write_text(
            "".join(f"{domain} reject_unverified_recipient\n" for domain in self.verified_domains))
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        os.chmod(mail, 0o1777)  # local(8) writes alias files as nobody
        # A mailbox already at the size limit: the next delivery to it fails with EFBIG (5.2.2).
        full = mail / "full.mbox"
        full.write_bytes(b"X" * MAILBOX_SIZE_LIMIT)
        os.chmod(full, 0o666)
        self.maillog.touch()

    # --- life cycle ---
    def start(self) -> "PostfixServer":
        self.write_config()
        self._postfix("start")
        wait_for_port(self.smtpd_port, timeout=20)
        return self

    def stop(self) -> None:
        pid_file = self.root / "queue" / "pid" / "master.pid"
        if not pid_file.exists():
            return
        subprocess.run([str(POSTFIX), "-c", str(self.etc), "stop"], capture_output=True, text=True,
                       env=environment())
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        # `postfix stop` returns before master has exited; wait so the log is complete.
        wait_until(lambda: not _alive(pid), timeout=15, what="postfix master to exit")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _postfix(self, command: str) -> None:
        result = subprocess.run([str(POSTFIX), "-c", str(self.etc), command], capture_output=True, text=True,
                                env=environment())
        if result.returncode != 0:
            raise RuntimeError(f"postfix {command} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                               f"\nmaillog:\n{self.log_text()[-4000:]}")

    # --- the queue ---
    def flush(self) -> None:
        """Ask for every queued message to be tried again now (`postqueue -f`)."""
        subprocess.run([str(POSTQUEUE), "-c", str(self.etc), "-f"], check=True, capture_output=True,
                       env=environment())

    def queued(self, *queues: str) -> int:
        """Messages in the named queues (default: all but deferred and hold)."""
        names = queues or ("maildrop", "incoming", "active")
        count = 0
        for name in names:
            top = self.root / "queue" / name
            if top.is_dir():
                count += sum(len(files) for _, _, files in os.walk(top))
        return count

    def log_text(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_settled(server: PostfixServer, timeout: float = 30) -> None:
    """Wait until nothing is in flight: no message in maildrop, incoming or active."""
    # Two quiet readings a little apart: a bounce notice can enter incoming just after active empties.
    def quiet() -> bool:
        if server.queued():
            return False
        time.sleep(0.3)
        return server.queued() == 0

    wait_until(quiet, timeout=timeout, what="the postfix queue to settle")
