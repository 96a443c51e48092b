"""The compiled scanner under AddressSanitizer and UndefinedBehaviorSanitizer.

A fault in exporter/_fastscan.c would not raise an exception: it would read past a buffer
or corrupt memory inside the daemon. So the scanner is built again with gcc's sanitizers
into a copy of the project (the package, the tests and the benchmark's generator), and
tests/test_fastscan.py (every test log, the benchmark log, one to four threads, arbitrary
bytes, hypothesis-made lines) and tests/test_fastscan_exim.py (the same for the Exim grammar)
run there against that build; any out-of-bounds access, use after free or undefined
behaviour stops the run with a report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.shared import SHARED

ROOT = Path(__file__).resolve().parent.parent


def _runtime(gcc: str, name: str) -> str | None:
    found = subprocess.run([gcc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def test_the_scanner_tests_pass_under_asan_and_ubsan(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc: the scanner is not built here either")
    asan, ubsan = _runtime(gcc, "libasan.so"), _runtime(gcc, "libubsan.so")
    assert asan and ubsan, "gcc's sanitizer runtimes (libasan, libubsan) are missing"
    skip = shutil.ignore_patterns("__pycache__", "*.so", ".hypothesis")
    for part in ("exporter", "tests", "bench"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=skip)
    package = tmp_path / "exporter"
    target = package / ("_fastscan" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([gcc, "-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined", "-shared", "-fPIC", "-pthread",
                    "-I", sysconfig.get_paths()["include"], str(package / "_fastscan.c"), "-o", str(target)],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LD_PRELOAD": f"{asan} {ubsan}", "NDR_SHARED_DIR": str(SHARED),
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=99",   # CPython's own allocations are not ours
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=98",
           "PYTHONMALLOC": "malloc"}   # small chunks in malloc'd blocks, where ASan sees a read past the end
    env.pop("NDR_EXPORTER_PURE_PYTHON", None)
    env["NDR_FASTSCAN_BUILD"] = str(target)   # test_fastscan.py checks that this build is the one loaded
    where = subprocess.run([sys.executable, "-c", "import exporter._fastscan as m; print(m.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(target), where.stderr[-2000:]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-x",
                          "tests/test_fastscan.py", "tests/test_fastscan_exim.py"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    report = run.stderr[run.stderr.find("ERROR: AddressSanitizer"):] if "ERROR: AddressSanitizer" in run.stderr \
        else run.stderr[-3000:]
    assert run.returncode == 0, (run.stdout[-2000:], report[:4000])
    assert "ERROR: AddressSanitizer" not in run.stderr and "runtime error:" not in run.stderr
