"""Per MTA: what the SMTP responder was told to send, per code, beside the exporter's events.

`python3 -m tests.e2e.figures` (as root, after tools/setup.sh) runs each MTA's end-to-end
scenario once with fresh responders and prints one Markdown table per MTA: for each code, how
many times a responder sent it (at RCPT, at RCPT to an address-verification probe, after
DATA) and the events the exporter counted for it, per outcome. Codes with no peer count are
the MTA's own (local deliveries, smtpd refusals, expiries, bounce notices); "none" is the
label of events whose line has no enhanced code. docs/e2e.md shows a run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from tests.e2e import exim_scenario, postfix_scenario
from tests.e2e.following import follow, read_whole_file, status_counts, unparsed_lines
from tests.e2e.responder import Responder
from tests.e2e.util import free_port

_REPLY = re.compile(r"(\d{3})(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?")


def code_of(reply: str) -> str:
    """The enhanced code of a reply line, or "NNN (no code)"."""
    match = _REPLY.match(reply)
    if match is None:
        return "?"
    return match.group(2) or f"{match.group(1)} (no code)"


def measure(name: str) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]], float]:
    """(peer replies per (code, where), exporter events per (code, outcome), unparsed lines)."""
    scenario, fmt = {"postfix": (postfix_scenario, None), "exim": (exim_scenario, "exim")}[name]
    root = Path(tempfile.mkdtemp(prefix=f"ndr-figures-{name}-"))
    os.chmod(root, 0o755)
    try:
        with Responder() as main, Responder() as drop:
            server = scenario.start(root, main.port, drop.port, free_port(), free_port())
            exporter = None
            try:
                exporter = follow(server.log_path, fmt)
                scenario.run(server)
            finally:
                server.stop()
            try:
                samples = read_whole_file(exporter, server.log_path)
            finally:
                exporter.__exit__(None, None, None)
            peer: Counter[tuple[str, str]] = Counter()
            for rcpt in main.rcpts + drop.rcpts:
                where = "probe RCPT" if rcpt.sender.startswith("double-bounce@") else "RCPT"
                peer[(code_of(rcpt.reply), where)] += 1
            for reply in main.data_replies + drop.data_replies:
                peer[(code_of(reply), "DATA")] += 1
        return peer, status_counts(samples), unparsed_lines(samples, server.log_path.name)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def table(peer: Counter[tuple[str, str]], got: Counter[tuple[str, str]]) -> str:
    codes = sorted({c for c, _ in got} | {c for c, _ in peer}, key=lambda c: (c[0] not in "245" or c[1] != ".", c))
    rows = ["| code | the responder sent it | the exporter counted |", "|---|---|---|"]
    for code in codes:
        sent = ", ".join(f"{n}× {where}" for (c, where), n in sorted(peer.items()) if c == code) or "—"
        counted = ", ".join(f"{outcome} {n}" for (c, outcome), n in sorted(got.items()) if c == code) or "—"
        rows.append(f"| {code} | {sent} | {counted} |")
    return "\n".join(rows)


def main() -> None:
    for name in ("postfix", "exim"):
        peer, got, unparsed = measure(name)
        print(f"\n### {name} (unparsed lines: {int(unparsed)})\n")
        print(table(peer, got))


if __name__ == "__main__":
    main()
