"""The landing page at "/": what the exporter is, a link to the metrics, and the codes counted so far.

Part of the exposition stage (beside exporter/web.py). It reads the same registry /metrics
serves, so the table shows exactly the published counts: ndr_status_codes_total summed
per code and meaning, with its split by outcome, most frequent first. The label values
it shows come from the project's bounded sets; they are HTML-escaped all the same.
"""

from __future__ import annotations

import html
from collections import Counter

from prometheus_client.registry import CollectorRegistry

from exporter import __version__
from exporter.events import OUTCOMES

STATUS_SAMPLE = "ndr_status_codes_total"
MAX_ROWS = 50

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta http-equiv="refresh" content="10"><title>ndr-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}td.n{{text-align:right}}</style></head>
<body>
<h1>ndr-exporter</h1>
<p>Counts SMTP status codes (RFC 3463) found in mail-server logs, for Prometheus.</p>
<p><a href="{path}">Metrics</a> &middot; version {version} &middot; this page refreshes every 10 s</p>
<h2>Status codes counted</h2>
{table}
</body>
</html>
"""


def code_totals(registry: CollectorRegistry) -> list[tuple[tuple[str, str, str, str], Counter]]:
    """(code, class, subject, meaning) -> counts by outcome, most frequent first."""
    totals: dict[tuple[str, str, str, str], Counter] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name != STATUS_SAMPLE:
                continue
            labels = sample.labels
            key = (labels["code"], labels["class"], labels["subject"], labels["meaning"])
            totals.setdefault(key, Counter())[labels["outcome"]] += sample.value
    return sorted(totals.items(), key=lambda item: (-sum(item[1].values()), item[0][0]))


def render(registry: CollectorRegistry, telemetry_path: str) -> bytes:
    rows = code_totals(registry)
    if not rows:
        table = "<p>None yet: no status line has been read.</p>"
    else:
        head = "".join(f"<th>{name}</th>" for name in ("code", "class", "subject", "meaning", "total", *OUTCOMES))
        body = []
        for (code, cls, subject, meaning), outcomes in rows[:MAX_ROWS]:
            cells = "".join(f"<td>{html.escape(v)}</td>" for v in (code, cls, subject, meaning))
            numbers = "".join(f'<td class="n">{n:.0f}</td>' for n in (sum(outcomes.values()),
                                                                     *(outcomes.get(o, 0) for o in OUTCOMES)))
            body.append(f"<tr>{cells}{numbers}</tr>")
        more = f"<p>and {len(rows) - MAX_ROWS} more codes in the metrics.</p>" if len(rows) > MAX_ROWS else ""
        table = f"<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table>" + more
    return PAGE.format(path=html.escape(telemetry_path), version=__version__, table=table).encode()
