"""`ndr-exporter explain CODE...`: what a status code means, from the same table the daemon uses.

Place in the project: a reading aid beside the pipeline, not part of it. cli.py hands it
the arguments after "explain". For each code it prints the class, the subject, every
meaning the table knows (one per source: iana, microsoft, google, yahoo, project) with
its operator hint, and which meaning the exporter puts in the `meaning` label. --mta
and --host (or --provider) show the choice the daemon makes for a line from that MTA
and remote. --json prints the same as a JSON list for scripts. --list prints every row
of the table, i.e. every value the `meaning` label can take.

Exit status: 0 when every argument was a code, 2 when any was not (the others are
still explained); a message on stderr names each bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from exporter.classifier import (
    CLASSES, INVALID_MEANING, NO_CODE_MEANING, SUBJECTS, TABLE, Entry, classify, entries_for,
)
from exporter.codes import is_valid_code
from exporter.providers import PROVIDERS, provider_for_host

CLASS_NOTES = {
    "2": "the attempt succeeded",
    "4": "a temporary failure; the sender keeps retrying",
    "5": "a permanent failure; resending the same message will fail again",
}
SUBJECT_NOTES = {
    "0": "other or undefined", "1": "addressing", "2": "mailbox", "3": "mail system",
    "4": "network and routing", "5": "mail delivery protocol", "6": "message content or media",
    "7": "security or policy",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ndr-exporter explain",
        description="Explain RFC 3463 enhanced status codes such as 5.1.1, 4.7.28 or 5.7.606.")
    parser.add_argument("codes", nargs="*", metavar="CODE", help="an enhanced status code, e.g. 5.4.8")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    parser.add_argument("--list", action="store_true",
                        help="list every row of the table: the meanings a dashboard can see")
    parser.add_argument("--mta", help="the MTA that logged the code (e.g. exchange, postfix)")
    hosts = parser.add_mutually_exclusive_group()
    hosts.add_argument("--host", help="the remote host that replied; its provider is recognised")
    hosts.add_argument("--provider", choices=PROVIDERS, help="the remote's provider, if already known")
    return parser


def describe(code: str, mta: str | None = None, provider: str | None = None) -> dict[str, Any]:
    """Everything explain says about one valid code, as plain data."""
    cls, subject, _detail = code.split(".")
    chosen = classify(code, mta, provider)
    meanings = [_entry_data(entry) for entry in entries_for(code)]
    return {
        "code": code,
        "class": CLASSES[cls],
        "class_note": CLASS_NOTES[cls],
        "subject": SUBJECTS.get(subject, "other"),
        "subject_note": SUBJECT_NOTES.get(subject, "not a subject RFC 3463 defines"),
        "label": {"meaning": chosen.meaning, "source": chosen.source,
                  "mta": mta, "provider": provider},
        "meanings": meanings,
    }


def _entry_data(entry: Entry) -> dict[str, Any]:
    return {
        "source": entry.source,
        "meaning": entry.meaning,
        "hint": entry.hint,
        "reference": entry.reference,
        "table_code": entry.pattern,
        "usual_classes": list(entry.classes),
        "deprecated": entry.deprecated,
    }


def render(info: dict[str, Any], width: int = 78) -> str:
    """The terminal form of describe()'s data."""
    lines = [
        info["code"],
        f"  class    {info['class']:<16} {info['class_note']}",
        f"  subject  {info['subject']:<16} {info['subject_note']}",
        "  meanings",
    ]
    label = info["label"]
    for meaning in info["meanings"]:
        marks = []
        if meaning["source"] == label["source"]:
            marks.append("<- used as the label")
        if meaning["deprecated"]:
            marks.append("(deprecated)")
        lines.append(f"    {meaning['source']:<10} {meaning['meaning']}  {' '.join(marks)}".rstrip())
        wrapped = textwrap.wrap(meaning["hint"], width=width - 15)
        lines.extend(f"{' ' * 15}{part}" for part in wrapped)
        lines.append(f"{' ' * 15}[{meaning['reference']}; table row {meaning['table_code']}]")
    context = [f"{key} {label[key]}" for key in ("mta", "provider") if label[key]]
    if context:
        lines.append(f"  label    with {', '.join(context)}: {label['meaning']} ({label['source']})")
    return "\n".join(lines)


def list_table(as_json: bool) -> str:
    """Every table row: code pattern, source, meaning (the possible `meaning` label values)."""
    rows = [{"table_code": e.pattern, "source": e.source, "meaning": e.meaning,
             "usual_classes": list(e.classes), "deprecated": e.deprecated} for e in TABLE]
    # The two fixed meanings that come from no row: code="none" and code="invalid".
    rows += [{"table_code": code, "source": "project", "meaning": meaning,
              "usual_classes": ["2", "4", "5"], "deprecated": False}
             for code, meaning in (("none", NO_CODE_MEANING), ("invalid", INVALID_MEANING))]
    if as_json:
        return json.dumps(rows, indent=2)
    return "\n".join(f"{r['table_code']:<12} {r['source']:<10} {r['meaning']}"
                     f"{'  (deprecated)' if r['deprecated'] else ''}" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        if args.codes:
            parser.error("--list takes no CODE")
        print(list_table(args.json))
        return 0
    if not args.codes:
        parser.error("give at least one CODE, or --list")
    provider = args.provider
    if args.host:
        provider = provider_for_host(args.host)
    results: list[dict[str, Any]] = []
    status = 0
    for text in args.codes:
        code = text.strip()
        if not is_valid_code(code):
            print(f"ndr-exporter explain: {text!r} is not an enhanced status code "
                  "(class 2, 4 or 5, then subject and detail of 1-3 digits without "
                  "leading zeros, e.g. 5.1.1)", file=sys.stderr)
            status = 2
            continue
        results.append(describe(code, args.mta, provider))
    if args.json:
        print(json.dumps(results, indent=2))
    elif results:
        print("\n\n".join(render(info) for info in results))
    return status
