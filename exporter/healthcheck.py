"""Health check for the container image: is the exporter answering HTTP where it listens?

Outside the pipeline; the image's HEALTHCHECK runs `python -m exporter.healthcheck`. It does not
guess the address from flags, environment or config file (any of which may set it): it reads, from
/proc, the TCP sockets that the exporter process actually listens on, connects to each and counts
any HTTP answer as healthy (a 401 from basic auth, a 404, a TLS endpoint answering HTTPS). Exit
status 0 means healthy, 1 unhealthy, with one line saying why.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import sys
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column
WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def socket_inodes(pid: int) -> set[str]:
    """Inode numbers of the sockets process `pid` holds open (empty if its fds cannot be read)."""
    inodes = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def exporter_pids() -> list[int]:
    """Processes of this user, other than this one, whose command line names the exporter."""
    me, pids = os.getpid(), []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"ndr-exporter" in arg or arg == b"exporter.cli" for arg in argv):
            pids.append(int(entry.name))
    return sorted(pids)


def _ipv4(hexaddr: str) -> str:
    return socket.inet_ntop(socket.AF_INET, bytes.fromhex(hexaddr)[::-1])


def _ipv6(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening_addresses(inodes: set[str]) -> list[tuple[str, int]]:
    """(address, port) of the listening TCP sockets among `inodes`, IPv4 first."""
    found = []
    for table, decode in (("tcp", _ipv4), ("tcp6", _ipv6)):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN or fields[9] not in inodes:
                continue
            host, port = fields[1].split(":")
            found.append((decode(host), int(port, 16)))
    return found


def http_answers(host: str, port: int, timeout: float) -> str | None:
    """The HTTP status line the endpoint gives to GET /, trying plain HTTP then HTTPS; None if neither."""
    host = WILDCARD_TO_LOOPBACK.get(host, host)
    attempts = [http.client.HTTPConnection(host, port, timeout=timeout)]
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE   # only asks "is it up?"; no data is trusted
    attempts.append(http.client.HTTPSConnection(host, port, timeout=timeout, context=unverified))
    for conn in attempts:
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            return f"{response.status} {response.reason}"
        except (OSError, http.client.HTTPException):
            continue
        finally:
            conn.close()
    return None


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check(pids: list[int], timeout: float) -> tuple[bool, str]:
    if not pids:
        return False, "no ndr-exporter process found"
    inodes = set().union(*(socket_inodes(pid) for pid in pids))
    addresses = listening_addresses(inodes)
    if not addresses:
        return False, f"ndr-exporter (pid {', '.join(map(str, pids))}) listens on no TCP port"
    for host, port in addresses:
        status = http_answers(host, port, timeout)
        if status is not None:
            return True, f"ndr-exporter answers on {host_port(host, port)}: {status}"
    where = ", ".join(host_port(h, p) for h, p in addresses)
    return False, f"ndr-exporter listens on {where} but gives no HTTP answer"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, action="append", default=[],
                        help="check this process (default: every ndr-exporter process of this user)")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per connection (default 4)")
    args = parser.parse_args(argv)
    healthy, why = check(args.pid or exporter_pids(), args.timeout)
    print(why)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
