"""`ndr-exporter report --trace FILE…`: each status line beside the event it produced.

A way for a postmaster to check a count: the same stages as `report` (logfiles -> parser ->
classifier), but one line at a time, printing every line that gave an event (its code,
outcome, reply, class and meaning) and every line judged unparsed, with its file and line
number. Lines that are not status lines (ignored) are not printed; the last line adds up the
four counts, which are the counts `report` gives for the same files.

Text output (one block per printed line):

    mail.log:12  bounced  code=5.1.1  reply=550  permanent  bad destination mailbox address  [postfix]
      | Nov 29 04:12:47 mx1 postfix/smtp[2116]: 3F2A...: to=<a@example.net>, ... status=bounced (...)
    mail.log:14  UNPARSED
      | Nov 29 04:12:49 mx1 postfix/smtp[2116]: 3F2B...: to=<b@example.net>, ... dsn=5.01.1, ...

With --json: one JSON object per printed line ({"file", "line", "result", "events", "text"}),
then one {"summary": ...} object. The printed text is the log line itself: it stays on the
postmaster's terminal; nothing from it becomes a metric label.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from exporter.classifier import classify_event
from exporter.events import StatusEvent
from exporter.logfiles import MAX_LINE_BYTES, LogFileError, open_log, parser_for, read_chunks

_READ_ERRORS = (OSError, EOFError, ValueError)


def trace_files(paths: list[str], fmt: str, out: TextIO, as_json: bool = False) -> Counter:
    """Print the trace of every file to out; the line counts. LogFileError when a file cannot be read."""
    counts: Counter = Counter()
    for path in paths:
        _trace_file(path, fmt, out, as_json, counts)
    summary = {k: counts.get(k, 0) for k in ("total", "matched", "ignored", "unparsed", "oversized", "events")}
    if as_json:
        out.write(json.dumps({"summary": summary}) + "\n")
    else:
        out.write(f"lines: {summary['total']} total, {summary['matched']} matched, {summary['ignored']} ignored, "
                  f"{summary['unparsed']} unparsed, {summary['oversized']} oversized; {summary['events']} events\n")
    return counts


def _trace_file(path: str, fmt: str, out: TextIO, as_json: bool, counts: Counter) -> None:
    """Each line of one file through a fresh parser, in order. Lines are cut by the daemon's cutter
    (framing.LineCutter), so a line longer than MAX_LINE_BYTES is skipped and counted as
    oversized, never read whole."""
    try:
        parser = parser_for(path, fmt)
        number = 0
        with open_log(path) as stream:
            for chunk in read_chunks(stream, MAX_LINE_BYTES):
                counts["total"] += chunk.oversized
                counts["oversized"] += chunk.oversized
                number += chunk.oversized
                for raw in chunk.data.splitlines(keepends=True):
                    number += 1
                    counts["total"] += 1
                    result = parser.parse(raw)
                    counts["matched"] += result.matched
                    counts["ignored"] += result.ignored
                    counts["unparsed"] += result.unparsed
                    counts["events"] += len(result.events)
                    if result.unparsed:
                        _print(out, as_json, path, number, "unparsed", [], raw)
                    elif result.events:
                        _print(out, as_json, path, number, "matched", result.events, raw)
    except BrokenPipeError:
        raise  # the reader went away (`| head`): not a problem with the file
    except _READ_ERRORS as err:
        raise LogFileError(path, str(err) or type(err).__name__) from None


def _event_fields(event: StatusEvent) -> dict[str, Any]:
    c, provider = classify_event(event.mta, event.outcome, event.code, event.reply, event.remote)
    return {"mta": event.mta, "outcome": event.outcome, "code": c.code, "reply": event.reply,
            "class": c.status_class, "subject": c.subject, "meaning": c.meaning, "provider": provider}


def _print(out: TextIO, as_json: bool, path: str, number: int, result: str,
           events: list[StatusEvent], raw: bytes) -> None:
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    fields = [_event_fields(e) for e in events]
    if as_json:
        out.write(json.dumps({"file": path, "line": number, "result": result, "events": fields, "text": text}) + "\n")
        return
    if not fields:
        out.write(f"{path}:{number}  {result.upper()}\n")
    for f in fields:
        out.write(f"{path}:{number}  {f['outcome']}  code={f['code']}  reply={f['reply'] or '-'}  "
                  f"{f['class']}  {f['meaning']}  [{f['mta']}]\n")
    out.write(f"  | {text}\n")
