"""Coverage-guided fuzzing of the parser stage: every format's parser and the compiled scanner.

    python3 fuzz/fuzz_parsers.py -max_total_time=60 fuzz/corpus     # plain build
    make fuzz                                                         # the scanner with ASan, longer

atheris (libFuzzer for Python) feeds byte strings; the first byte picks a format from the parser
registry and the rest becomes a chunk of complete lines. For each input, a fresh parser must:

- never raise, whatever the bytes (the daemon must never stop on a line);
- count() exactly what its own reference parse() gives, added up (tally): for the syslog and exim
  formats count() runs the compiled scanner (exporter/_fastscan.c, its two grammars), so this is a
  differential test of the C fast paths against the Python grammars, with and without time buckets;
- give label fields from the bounded sets only: an outcome of events.OUTCOMES, an mta of
  events.MTAS, a code that is None or an RFC 3463 code, a reply that is None or three digits;
- account for every line: lines == matched + ignored + unparsed.

A failure stops the run with the input saved as crash-<hash>; tests/test_fuzz.py runs this briefly
on every CI run, `make fuzz` for longer with the scanner built under AddressSanitizer
(fuzz/run.py builds it).
"""

from __future__ import annotations

import os
import re
import sys

import atheris

with atheris.instrument_imports(include=["exporter"]):
    from exporter.events import MTAS, OUTCOMES
    from exporter.parsers import FORMATS, make_parser
    from exporter.parsers.base import tally
    for _fmt in FORMATS:
        make_parser(_fmt)     # loads every format's modules (and syslog's message parsers) instrumented

# The formats whose count() runs the compiled scanner here. fuzz/run.py --asan names in
# NDR_FUZZ_SCANNERS those it built the scanner for: a format among them without one would
# fuzz only its Python path, so that stops the run.
SCANNED = [fmt for fmt in FORMATS if getattr(make_parser(fmt), "scanner", None) is not None]
print(f"fuzz: count() runs the compiled scanner for: {', '.join(SCANNED) or 'no format'}", file=sys.stderr, flush=True)
_MISSING = [fmt for fmt in os.environ.get("NDR_FUZZ_SCANNERS", "").split(",") if fmt and fmt not in SCANNED]
if _MISSING:
    sys.exit(f"fuzz: no compiled scanner for {', '.join(_MISSING)}")

CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
REPLY = re.compile(r"[2-5]\d\d")


def _hour(timestamp: float) -> int:
    return int(timestamp // 3600)


def check(data: bytes) -> None:
    if not data:
        return
    fmt = FORMATS[data[0] % len(FORMATS)]
    chunk = data[1:]
    if not chunk.endswith(b"\n"):
        chunk += b"\n"        # the contract: a chunk holds complete lines only
    reference = make_parser(fmt).parse(chunk)
    assert reference.lines == reference.matched + reference.ignored + reference.unparsed, reference
    for event in reference.events:
        assert event.outcome in OUTCOMES, event
        assert event.mta in MTAS, event
        assert event.code is None or CODE.fullmatch(event.code), event
        assert event.reply is None or REPLY.fullmatch(event.reply), event
    for bucket in (None, _hour):
        want = tally(reference, bucket)
        got = make_parser(fmt).count(chunk, bucket)
        assert got == want, (fmt, bucket, got, want)


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
