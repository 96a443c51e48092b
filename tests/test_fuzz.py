"""The coverage-guided fuzzer, briefly, on every run: fuzz/run.py --asan for NDR_FUZZ_SECONDS (30).

It seeds libFuzzer (through atheris) with every golden log and the public corpus, builds the
compiled scanner with AddressSanitizer and libFuzzer's edge counters, and checks on every input
that no parser raises, that count() equals its reference parse() added up (the compiled scanner
against the Python grammar, for the syslog format), that label fields come from bounded sets and
that every line is accounted for (fuzz/fuzz_parsers.py). `make fuzz` runs the same for longer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(os.environ.get("NDR_FUZZ_SECONDS", "30"))


def _missing() -> str | None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "atheris is not installed (pip install -e '.[test]')"
    if not (shutil.which("clang") or shutil.which("clang-14")):
        return "clang is not installed (tools/setup.sh installs clang-14 and libclang-rt-14-dev)"
    return None


def test_the_fuzzer_finds_no_failing_input(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must fuzz: {missing}")
        pytest.skip(missing)
    run = subprocess.run([sys.executable, str(ROOT / "fuzz" / "run.py"), "--asan", "--seconds", str(SECONDS),
                          "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 600)
    tail = run.stdout[-2000:] + run.stderr[-6000:]
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert run.returncode == 0 and not crashes, (crashes, tail)
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", run.stderr)
    assert executed is not None and int(executed.group(1)) > 100, tail
    coverage = re.findall(r"cov: (\d+)", run.stderr)
    assert coverage and int(coverage[-1]) > 500, tail   # the seeds reach the parsers, not just the harness
