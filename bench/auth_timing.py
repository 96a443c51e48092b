"""Does the time a 401 takes tell who exists? Times basic-auth failures against the real exporter.

    python bench/auth_timing.py                 # htpasswd's default cost 5, 200 tries each
    python bench/auth_timing.py --cost 10 --tries 50

Starts the real exporter with one user whose bcrypt hash has the given cost, then sends
requests with a known user and a wrong password, an unknown user, and both with a 73-byte
password, and prints the median and 90th percentile of each. A user-name oracle shows as an
unknown user answering faster (or slower, or differently) than a known one. Figures, not a
test: the test suite checks the replies are identical (tests/test_web.py), this measures time.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.exporter_process import ExporterProcess  # noqa: E402


def _time_one(url: str, user: str, password: str) -> tuple[int | str, float]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError:
        status = "closed"   # the connection ended without a reply
    return status, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cost", type=int, default=5, help="bcrypt cost of the known user's hash (htpasswd: 5)")
    ap.add_argument("--tries", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "mail.log")
        log.touch()
        web = Path(tmp, "web.yml")
        hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(args.cost)).decode()
        web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        with ExporterProcess(["--source.path", str(log), "--web.config.file", str(web)]) as exp:
            cases = {"known user, wrong password": ("prometheus", "wrong"),
                     "unknown user": ("nobody", "wrong"),
                     "known user, 73-byte password": ("prometheus", "x" * 73),
                     "unknown user, 73-byte password": ("nobody", "x" * 73)}
            print(f"bcrypt cost {args.cost}, {args.tries} tries each, pid {exp.proc.pid if exp.proc else '?'}")
            for name, (user, password) in cases.items():
                times: list[float] = []
                statuses: set[int | str] = set()
                for _ in range(args.tries):
                    status, seconds = _time_one(exp.url(), user, password)
                    statuses.add(status)
                    times.append(seconds * 1000)
                times.sort()
                p90 = times[int(len(times) * 0.9) - 1]
                print(f"  {name:32s} status {sorted(map(str, statuses))}  median {statistics.median(times):6.2f} ms"
                      f"  p90 {p90:6.2f} ms")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
