"""The landing page at "/": what the exporter is reading, how healthy that is, and the codes counted.

Part of the exposition stage (beside exporter/web.py). Everything on it is read from the
registry that /metrics serves, so the page shows exactly the published numbers:

  - the checkpoint: when it was last written and how many writes failed
    (ndr_exporter_checkpoint_*), or that there is no state file;
  - each source: the files it follows and the read position in each
    (ndr_exporter_source_position_bytes), lines matched/ignored/unparsed/oversized,
    read errors, and the age of its newest event (ndr_exporter_last_event_timestamp_seconds);
  - the codes (ndr_status_codes_total summed per code and meaning): failures first
    (permanent, then transient, then success; most frequent first within each), the
    operator hint from the knowledge base (exporter/data/status_codes.csv) for the
    meaning shown, the count over a recent window beside the total since the counters
    began, and the split by outcome.

The recent window comes from snapshots of the code totals kept in memory (RecentWindow,
one every SNAPSHOT_SECONDS, for WINDOW_SECONDS): a restart starts it again. Label values
come from the project's bounded sets and the operator's config; they are HTML-escaped all
the same.
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from collections import Counter, deque

from prometheus_client.registry import CollectorRegistry

from exporter import __version__
from exporter.classifier import entries_for
from exporter.codes import is_valid_code
from exporter.events import OUTCOMES

STATUS_SAMPLE = "ndr_status_codes_total"
MAX_ROWS = 50
WINDOW_SECONDS = 15 * 60
SNAPSHOT_SECONDS = 30.0
CLASS_ORDER = {"permanent": 0, "transient": 1, "success": 2}
FIXED_HINTS = {
    "none": "The line carried no enhanced status code; the class comes from the 3-digit reply or the outcome.",
    "invalid": "The line carried something shaped like a code that RFC 3463 does not allow.",
    "overflow": "More distinct codes than --metrics.code-cap, or series than --metrics.series-cap: "
                "the rest are folded here.",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta http-equiv="refresh" content="10"><title>ndr-exporter</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}td.n,th.n{{text-align:right}}
td.hint{{font-size:.85em;color:#555;max-width:32em}}tr.permanent td.code{{border-left:4px solid #c0392b}}
tr.transient td.code{{border-left:4px solid #e67e22}}tr.success td.code{{border-left:4px solid #27ae60}}
p.bad{{color:#c0392b;font-weight:bold}}p.ok{{color:#27ae60}}</style></head>
<body>
<h1>ndr-exporter</h1>
<p>Counts SMTP status codes (RFC 3463) found in mail-server logs, for Prometheus.</p>
<p><a href="{path}">Metrics</a> &middot; version {version} &middot; this page refreshes every 10 s</p>
<h2>Sources</h2>
{checkpoint}
{sources}
<h2>Status codes counted</h2>
{table}
</body>
</html>
"""


# --- reading the registry ------------------------------------------------------------------------

def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in registry.collect() for s in family.samples]


def code_totals(registry: CollectorRegistry,
                samples: list[tuple[str, dict[str, str], float]] | None = None
                ) -> dict[tuple[str, str, str, str], Counter]:
    """(code, class, subject, meaning) -> counts by outcome."""
    totals: dict[tuple[str, str, str, str], Counter] = {}
    for name, labels, value in (samples if samples is not None else _samples(registry)):
        if name != STATUS_SAMPLE:
            continue
        key = (labels["code"], labels["class"], labels["subject"], labels["meaning"])
        totals.setdefault(key, Counter())[labels["outcome"]] += value
    return totals


def hint_for(code: str, meaning: str) -> str:
    """The knowledge base's hint for the meaning a code is shown with."""
    if not is_valid_code(code):
        return FIXED_HINTS.get(code, "")
    entries = entries_for(code)
    for entry in entries:
        if entry.meaning == meaning:
            return entry.hint
    return entries[0].hint if entries else ""


# --- the recent window ---------------------------------------------------------------------------

class RecentWindow:
    """Snapshots of the code totals (one every SNAPSHOT_SECONDS, for WINDOW_SECONDS), so the page
    can show the counts of the last WINDOW_SECONDS beside the totals.

    Only the oldest snapshot kept (the window's start) is whole; each later one holds the totals
    that changed since the one before, and becomes the start (added to it) once it is old
    enough. Every snapshot holding all the codes was 30 copies of up to thousands of entries.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._started = 0.0                                        # when the oldest snapshot was taken
        self._oldest: dict[tuple[str, str, str, str], float] = {}  # the totals then
        self._later: deque[tuple[float, dict[tuple[str, str, str, str], float]]] = deque()   # changes since
        self._newest: dict[tuple[str, str, str, str], float] = {}  # the totals at the last snapshot
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._taken = False
        self.take()

    def take(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        totals = {key: sum(c.values()) for key, c in code_totals(self.registry).items()}
        with self._lock:
            if not self._taken:
                self._started, self._oldest, self._taken = now, dict(totals), True
            else:
                changed = {key: value for key, value in totals.items() if self._newest.get(key) != value}
                self._later.append((now, changed))
            self._newest = totals
            # keep the newest snapshot at least WINDOW_SECONDS old as the window's start
            while self._later and self._later[0][0] <= now - WINDOW_SECONDS:
                self._started, changed = self._later.popleft()
                self._oldest.update(changed)

    def baseline(self) -> tuple[float, dict[tuple[str, str, str, str], float]]:
        """(seconds the window covers now, the totals at its start)."""
        with self._lock:
            return time.monotonic() - self._started, dict(self._oldest)

    def start(self) -> "RecentWindow":
        _windows[self.registry] = self
        thread = threading.Thread(target=self._run, name="landing-window", daemon=True)
        thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SNAPSHOT_SECONDS):
            try:
                self.take()
            except Exception:   # a failed snapshot only makes the window coarser
                pass


_windows: "weakref.WeakKeyDictionary[CollectorRegistry, RecentWindow]" = weakref.WeakKeyDictionary()


# --- the page ------------------------------------------------------------------------------------

def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _checkpoint(samples: list[tuple[str, dict[str, str], float]], now: float) -> str:
    written = next((v for n, _, v in samples if n == "ndr_exporter_checkpoint_last_success_timestamp_seconds"), None)
    failures = next((v for n, _, v in samples if n == "ndr_exporter_checkpoint_failures_total"), None)
    if failures is None:
        return ('<p class="bad">Checkpoint: no state file (--state.file): after a restart the counters '
                'start again from 0 and the logs are read from the configured start.</p>')
    when = "never written yet" if written is None else f"last written {_age(now - written)}"
    if failures:
        writes = "write" if failures == 1 else "writes"
        return (f'<p class="bad">Checkpoint: {when}; {failures:.0f} {writes} failed since start '
                '(see the exporter\'s log): a restart would recount from the last checkpoint written.</p>')
    return f'<p class="ok">Checkpoint: {when}; no write has failed.</p>'


def _sources(samples: list[tuple[str, dict[str, str], float]], now: float) -> str:
    rows: dict[str, dict[str, object]] = {}
    for name, labels, value in samples:
        source = labels.get("source")
        if source is None or not name.startswith("ndr_exporter_"):
            continue
        row = rows.setdefault(source, {"files": []})
        if name == "ndr_exporter_lines_total":
            row[labels["result"]] = value
        elif name == "ndr_exporter_read_errors_total":
            row["errors"] = value
        elif name == "ndr_exporter_last_event_timestamp_seconds":
            row["last"] = value
        elif name == "ndr_exporter_source_position_bytes":
            row["files"].append((labels["path"], value))  # type: ignore[union-attr]
    if not rows:
        return "<p>No source has reported yet.</p>"
    head = ("<tr><th>source</th><th>file &middot; read position</th><th class=\"n\">matched</th>"
            "<th class=\"n\">ignored</th><th class=\"n\">unparsed</th><th class=\"n\">oversized</th>"
            "<th class=\"n\">read errors</th><th>newest event</th></tr>")
    body = []
    for source in sorted(rows):
        row = rows[source]
        files = "<br>".join(f"{html.escape(path)} &middot; byte {offset:,.0f}"
                            for path, offset in sorted(row["files"])) or "&ndash;"  # type: ignore[arg-type]
        numbers = "".join(f'<td class="n">{float(row.get(k, 0)):,.0f}</td>'  # type: ignore[arg-type]
                          for k in ("matched", "ignored", "unparsed", "oversized", "errors"))
        last = row.get("last")
        age = "none yet" if last is None else _age(now - float(last))  # type: ignore[arg-type]
        body.append(f"<tr><td>{html.escape(source)}</td><td>{files}</td>{numbers}<td>{age}</td></tr>")
    return f"<table>{head}\n" + "\n".join(body) + "\n</table>"


def _codes(samples: list[tuple[str, dict[str, str], float]], registry: CollectorRegistry) -> str:
    totals = code_totals(registry, samples)
    if not totals:
        return "<p>None yet: no status line has been read.</p>"
    window = _windows.get(registry)
    covered, before = window.baseline() if window is not None else (0.0, {})
    if window is None:
        recent_head = "recent"
    elif covered >= WINDOW_SECONDS - SNAPSHOT_SECONDS:
        recent_head = f"last {WINDOW_SECONDS // 60} min"
    else:   # the exporter started less than a window ago
        recent_head = f"since start ({_age(covered).removesuffix(' ago')})"
    rows = sorted(totals.items(), key=lambda item: (CLASS_ORDER.get(item[0][1], 3), -sum(item[1].values()),
                                                    item[0][0]))
    head = ("<tr><th>code</th><th>class</th><th>subject</th><th>meaning</th><th>hint</th>"
            f'<th class="n">{recent_head}</th><th class="n">total</th>'
            + "".join(f'<th class="n">{o}</th>' for o in OUTCOMES) + "</tr>")
    body = []
    for (code, cls, subject, meaning), outcomes in rows[:MAX_ROWS]:
        count = sum(outcomes.values())
        recent = "&ndash;" if window is None else f"{count - before.get((code, cls, subject, meaning), 0.0):,.0f}"
        cells = "".join(f'<td class="{css}">{html.escape(v)}</td>' for css, v in
                        (("code", code), ("class", cls), ("subject", subject), ("meaning", meaning),
                         ("hint", hint_for(code, meaning))))
        numbers = f'<td class="n recent">{recent}</td><td class="n total">{count:,.0f}</td>' + "".join(
            f'<td class="n">{outcomes.get(o, 0):,.0f}</td>' for o in OUTCOMES)
        body.append(f'<tr class="{html.escape(cls)}">{cells}{numbers}</tr>')
    more = f"<p>and {len(rows) - MAX_ROWS} more codes in the metrics.</p>" if len(rows) > MAX_ROWS else ""
    return f"<table>{head}\n" + "\n".join(body) + "\n</table>" + more


def render(registry: CollectorRegistry, telemetry_path: str) -> bytes:
    samples = _samples(registry)
    now = time.time()
    return PAGE.format(path=html.escape(telemetry_path), version=__version__,
                       checkpoint=_checkpoint(samples, now), sources=_sources(samples, now),
                       table=_codes(samples, registry)).encode()
