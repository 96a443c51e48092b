"""Run an MTA scenario once and save the log it wrote as a fixture in tests/testdata/real/.

    python3 -m tests.e2e.capture postfix     # -> tests/testdata/real/postfix-<version>-maillog.log
    python3 -m tests.e2e.capture exim        # -> tests/testdata/real/exim-<version>-mainlog.log

Needs root and tools/setup.sh. The lines are kept exactly as the MTA wrote them; the file
name carries the MTA's version. tests/testdata/real/README.md says how they were made.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.responder import Responder  # noqa: E402
from tests.e2e.util import free_port  # noqa: E402

OUT = REPO / "tests" / "testdata" / "real"


def capture(mta: str) -> Path:
    """Run the named MTA's scenario and copy its log to OUT; returns the fixture's path."""
    module = importlib.import_module(f"tests.e2e.{mta}")
    scenario = importlib.import_module(f"tests.e2e.{mta}_scenario")
    root = Path(tempfile.mkdtemp(prefix=f"ndr-e2e-{mta}-"))
    os.chmod(root, 0o755)
    try:
        with Responder() as main, Responder() as drop:
            server = scenario.start(root, main.port, drop.port, free_port(), free_port())
            try:
                scenario.run(server)
            finally:
                server.stop()
        log = server.log_path
        target = OUT / f"{mta}-{module.version()}-{log.name}.log"
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
        return target
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mta", nargs="+", choices=("postfix", "exim"))
    args = parser.parse_args(argv)
    for mta in args.mta:
        print(capture(mta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
