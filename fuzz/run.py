"""Run the parser fuzzer: seed it from the golden logs, build the scanner with sanitizers, go.

    python3 fuzz/run.py --seconds 60                 # plain build of the package in this checkout
    python3 fuzz/run.py --seconds 600 --asan         # the compiled scanner under AddressSanitizer

Seeds: every tests/testdata/parsers/<dir>/X.log and the public corpus' logs, cut into chunks of
a few lines, each prefixed by the byte that picks its format in fuzz/fuzz_parsers.py (the corpus'
Exim mainlogs, under exim/, both as exim and as syslog). With
--asan the scanner (exporter/_fastscan.c) is built by clang with -fsanitize=address and libFuzzer's
edge counters (fuzzer-no-link) into a copy of the package, and run with atheris' ASan runtime
preloaded, so libFuzzer is guided by the C code's branches too and an out-of-bounds read stops the
run with a report. Prints the libFuzzer summary (runs, coverage, corpus) and exits with its status:
0 when no input failed. A failing input is written to fuzz/out/crash-*; replay it with
`python3 fuzz/fuzz_parsers.py fuzz/out/crash-...`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "out"
CHUNK_LINES = 6


def _format_byte(directory: str, formats: tuple[str, ...]) -> int:
    """The first byte that makes fuzz_parsers.py read a chunk as this golden directory is read."""
    return formats.index(directory) if directory in formats else formats.index("syslog")


def write_seeds(corpus: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from exporter.parsers import FORMATS

    corpus.mkdir(parents=True, exist_ok=True)
    logs = [(p.parent.name, p) for p in sorted((ROOT / "tests" / "testdata" / "parsers").glob("*/*.log"))]
    shared = ROOT.parent / "shared" / "eval" / "public-corpus"
    public = [p for p in sorted(shared.rglob("*")) if p.is_file() and p.suffix not in (".md", ".gz")]
    logs += [("syslog", p) for p in public]
    logs += [("exim", p) for p in public if p.parent.name == "exim"]   # mainlogs: the exim grammar's seeds
    n = 0
    for directory, path in logs:
        lines = path.read_bytes().splitlines(keepends=True)
        prefix = bytes([_format_byte(directory, FORMATS)])
        for start in range(0, min(len(lines), 600), CHUNK_LINES):
            (corpus / f"seed-{directory}-{path.parent.name}-{path.stem}-{start}").write_bytes(
                prefix + b"".join(lines[start:start + CHUNK_LINES]))
            n += 1
    return n


def build_asan_copy(dest: Path) -> dict[str, str]:
    """The package copied to dest with the scanner built for fuzzing; the environment to run it."""
    import atheris

    clang = shutil.which("clang") or shutil.which("clang-14")
    if clang is None:
        sys.exit("fuzz: --asan needs clang (apt-get install clang-14)")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ROOT / "exporter", dest / "exporter", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    target = dest / "exporter" / ("_fastscan" + sysconfig.get_config_var("EXT_SUFFIX"))
    # No -shared-libasan: the module would then need libclang_rt.asan by name, which the loader
    # does not find beside atheris' preloaded runtime; the import failed, the parsers took their
    # Python paths and the scanner went unfuzzed. Left undefined, the ASan symbols bind to the
    # runtime preloaded below.
    subprocess.run([clang, "-O1", "-g", "-fsanitize=address,fuzzer-no-link", "-fno-omit-frame-pointer",
                    "-shared", "-fPIC", "-pthread", "-I", sysconfig.get_paths()["include"],
                    str(dest / "exporter" / "_fastscan.c"), "-o", str(target)], check=True)
    runtime = Path(atheris.path()) / "asan_with_fuzzer.so"
    return {"PYTHONPATH": str(dest), "LD_PRELOAD": str(runtime),
            "ASAN_OPTIONS": "detect_leaks=0:allocator_may_return_null=1",
            "PYTHONMALLOC": "malloc",   # small chunks in malloc's blocks, not pymalloc's arenas: ASan sees past them
            "NDR_FUZZ_SCANNERS": "syslog,exim"}   # fuzz_parsers.py stops when either runs without it


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--asan", action="store_true", help="build the compiled scanner with ASan and libFuzzer counters")
    ap.add_argument("--out", type=Path, default=OUT, help=f"corpus, ASan build and failing inputs (default {OUT})")
    args = ap.parse_args()
    out = args.out.resolve()
    corpus = out / "corpus"
    seeds = write_seeds(corpus)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NDR_EXPORTER_PURE_PYTHON", None)
    if args.asan:
        env |= build_asan_copy(out / "asan")
    print(f"fuzz: {seeds} seeds, {args.seconds} s{' with ASan' if args.asan else ''}", flush=True)
    cmd = [sys.executable, str(ROOT / "fuzz" / "fuzz_parsers.py"), f"-max_total_time={args.seconds}",
           "-max_len=8192", "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={out}/", "-print_final_stats=1",
           str(corpus)]
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
