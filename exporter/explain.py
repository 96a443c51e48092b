"""`ndr-exporter explain ARG...`: what a status code, a reply or a log line means to the exporter.

Place in the project: a reading aid beside the pipeline, not part of it. cli.py hands it
the arguments after "explain". Each ARG is one of:
  - an enhanced status code, `5.1.1`;
  - a 3-digit SMTP reply, `550`: its class and usual sense (RFC 5321), and how the exporter
    counts a line that logs only the reply (code="none");
  - a reply line as a remote server sends it, `"550 5.1.1 user unknown"`: the reply, then
    the enhanced code behind it;
  - a whole log line: the real parser reads it (the format is detected from the line as the
    daemon detects it from a file's start, or --format), and explain prints the event it
    yields and the exact ndr_status_codes_total series the daemon would add it to, found
    by running the daemon's own counting (exporter.pipeline.process_chunk) on that line.
For each code it prints the class, the subject, every
meaning the table knows (one per source: iana, microsoft, google, yahoo, project) with
its operator hint, and which meaning the exporter puts in the `meaning` label. --mta
and --host (or --provider) show the choice the daemon makes for a line from that MTA
and remote. --json prints the same as a JSON list for scripts. --list prints every row
of the table, i.e. every value the `meaning` label can take.

Exit status: 0 when every argument could be read, 2 when one looked like a code and was
not one, e.g. 5.01.1 (the others are still explained); a message on stderr names it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from typing import Any

from exporter.argparsing import SuggestingParser
from exporter.classifier import (
    CLASSES, INVALID_MEANING, NO_CODE_MEANING, SUBJECTS, TABLE, Entry, classify, classify_without_code,
    entries_for,
)
from exporter.codes import is_valid_code
from exporter.parsers import FORMATS
from exporter.parsers.smtp_reply import reply_at
from exporter.providers import PROVIDERS, provider_for_host

REPLY_ONLY = re.compile(r"[245][0-9][0-9]\Z")
REPLY_LINE = re.compile(r"[245][0-9][0-9](?:[ \-]|\Z)")
CODE_LIKE = re.compile(r"[0-9.]+\Z")   # digits and dots only: meant as a code or a reply

# The usual sense of the 3-digit replies (RFC 5321, with RFC 3207, 4954 and 7504), in short.
REPLY_NOTES = {
    "211": "system status", "214": "help message", "220": "service ready", "221": "closing the connection",
    "235": "authentication succeeded", "250": "requested action done", "251": "user not local; will forward",
    "252": "cannot verify the user, will try to deliver",
    "421": "service not available, closing the connection", "450": "mailbox unavailable for now (busy or "
    "held back by policy)", "451": "local error while processing; try again", "452": "not enough storage, "
    "or too many recipients", "454": "TLS or authentication not available for now",
    "455": "cannot accommodate the parameters now",
    "500": "command not recognised", "501": "syntax error in the parameters", "502": "command not implemented",
    "503": "bad sequence of commands", "504": "parameter not implemented", "521": "this host accepts no mail",
    "530": "authentication required", "534": "authentication mechanism too weak",
    "535": "authentication credentials invalid", "550": "mailbox unavailable: no such user, no access, or "
    "refused by policy", "551": "user not local", "552": "storage allocation exceeded (message too big)",
    "553": "mailbox name not allowed", "554": "transaction failed (often: refused by policy)",
    "555": "MAIL or RCPT parameters not recognised", "556": "the domain accepts no mail",
}

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
    parser = SuggestingParser(
        prog="ndr-exporter explain",
        description="Explain RFC 3463 enhanced status codes such as 5.1.1, 4.7.28 or 5.7.606, SMTP replies "
                    "such as 550 or \"550 5.1.1 user unknown\", and whole log lines (what the daemon counts).")
    parser.add_argument("codes", nargs="*", metavar="ARG",
                        help="an enhanced status code (5.4.8), a 3-digit reply (550), a reply line "
                             "(\"550 5.1.1 user unknown\") or a log line, quoted")
    parser.add_argument("--format", default="auto", choices=("auto",) + FORMATS,
                        help="format of a log line ARG (default: detected, as the daemon does)")
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


def describe_reply(reply: str, code: str | None, text: str | None, mta: str | None = None,
                   provider: str | None = None) -> dict[str, Any]:
    """A 3-digit reply, alone or with the rest of its reply line (and the enhanced code in it)."""
    cls = CLASSES[reply[0]]
    data: dict[str, Any] = {
        "reply": reply,
        "class": cls,
        "class_note": CLASS_NOTES[reply[0]],
        "reply_note": REPLY_NOTES.get(reply, "not a reply RFC 5321 names; read its first digit"),
        "text": text,
    }
    if code is None:
        alone = classify_without_code(reply, "")
        data["code"] = None
        data["label"] = {"code": alone.code, "class": alone.status_class, "meaning": alone.meaning}
    else:
        data["code"] = describe(code, mta, provider)
    return data


def render_reply(info: dict[str, Any], width: int = 78) -> str:
    lines = [info["text"] or info["reply"],
             f"  reply    {info['reply']} {info['class']:<12} {info['reply_note']}"]
    if info["code"] is None:
        label = info["label"]
        lines.append(f"  label    a line with this reply and no enhanced code is counted as code=\"{label['code']}\", "
                     f"class=\"{label['class']}\", meaning=\"{label['meaning']}\"")
        return "\n".join(lines)
    code = info["code"]
    if code["class"] != info["class"]:
        lines.append(f"  note     the reply's class ({info['class']}) and the code's ({code['class']}) differ; "
                     "the code's is counted")
    return "\n".join(lines) + "\n" + render(code, width)


def describe_line(text: str, fmt: str = "auto") -> dict[str, Any]:
    """What the daemon makes of one log line: the parser's result and the series it adds to."""
    from exporter.metrics import STATUS_LABELS, Metrics
    from exporter.parsers import make_parser
    from exporter.parsers.detect import detect_format
    from exporter.pipeline import process_chunk
    from exporter.stream import parser_for

    chunk = text.rstrip("\n").encode("utf-8", "surrogateescape") + b"\n"
    found = detect_format(chunk) if fmt == "auto" else fmt
    result = make_parser(found).parse(chunk)   # the events one by one, for their fields
    metrics = Metrics()
    process_chunk("explain", parser_for(found, chunk), chunk, metrics)   # as the daemon counts
    lines = {result_name: int(n) for (_, result_name), n in metrics.live.lines.items() if n}
    return {
        "line": text,
        "format": found,
        "result": next(iter(lines), "ignored"),
        "events": [{"mta": e.mta, "outcome": e.outcome, "code": e.code, "reply": e.reply,
                    "provider": provider_for_host(e.remote)} for e in result.events],
        "counted": [{**dict(zip(STATUS_LABELS, key)), "value": int(n)}
                    for key, n in metrics.live.status.items()],
        "codes": [describe(e.code, e.mta, provider_for_host(e.remote)) for e in result.events
                  if e.code is not None],
    }


def render_line(info: dict[str, Any], width: int = 78) -> str:
    events = info["events"]
    what = {"matched": f"a status line, {len(events)} event{'s' if len(events) != 1 else ''}",
            "ignored": "not a status line: counted only as ndr_exporter_lines_total{result=\"ignored\"}",
            "unparsed": "looks like a status line but does not parse: counted as "
                        "ndr_exporter_lines_total{result=\"unparsed\"}"}[info["result"]]
    lines = [info["line"], f"  format   {info['format']}", f"  result   {what}"]
    for event in events:
        fields = " ".join(f"{k}={event[k] if event[k] is not None else '-'}"
                          for k in ("mta", "outcome", "code", "reply", "provider"))
        lines.append(f"  event    {fields}")
    for series in info["counted"]:
        labels = ",".join(f'{k}="{series[k]}"' for k in series if k != "value")
        lines.append(f"  counted  ndr_status_codes_total{{{labels}}} +{series['value']}")
    out = "\n".join(lines)
    for code in info["codes"]:
        out += "\n" + render(code, width)
    return out


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
        parser.error("give at least one ARG (a code, a reply or a log line), or --list")
    provider = args.provider
    if args.host:
        provider = provider_for_host(args.host)
    results: list[dict[str, Any]] = []
    texts: list[str] = []
    status = 0
    for text in args.codes:
        arg = text.strip()
        if is_valid_code(arg):
            results.append(describe(arg, args.mta, provider))
            texts.append(render(results[-1]))
        elif REPLY_ONLY.match(arg):
            results.append(describe_reply(arg, None, None, args.mta, provider))
            texts.append(render_reply(results[-1]))
        elif CODE_LIKE.match(arg):
            print(f"ndr-exporter explain: {text!r} is not an enhanced status code "
                  "(class 2, 4 or 5, then subject and detail of 1-3 digits without "
                  "leading zeros, e.g. 5.1.1) nor a 3-digit reply (2xx, 4xx or 5xx, e.g. 550)", file=sys.stderr)
            status = 2
        elif REPLY_LINE.match(arg):
            reply, code = reply_at(arg)
            assert reply is not None
            results.append(describe_reply(reply, code, arg, args.mta, provider))
            texts.append(render_reply(results[-1]))
        else:
            results.append(describe_line(arg, args.format))
            texts.append(render_line(results[-1]))
    if args.json:
        print(json.dumps(results, indent=2))
    elif results:
        print("\n\n".join(texts))
    return status
