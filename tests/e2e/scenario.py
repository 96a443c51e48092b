"""What the suite sends, and what each MTA must log for it: the cases and the expected counts.

A Case is one message offered over SMTP to one recipient. `events` lists every status the MTA
logs for it over the whole run, as (code, outcome), where code is "none" for a line that
carries no enhanced code. A deferral that is retried once and then expires is therefore
(code, deferred) twice and one expired event, and a bounce or an expiry adds the delivery
of the bounce notice to the local sender. The expected metric values are the sums
over all cases, and the test compares them with the exporter's counters exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

# Outcomes, as the exporter names them (exporter/events.py).
DELIVERED, DEFERRED, BOUNCED, EXPIRED, REJECTED = "delivered", "deferred", "bounced", "expired", "rejected"
NONE = "none"  # the code label of an event without an enhanced status code

Event = tuple[str, str]  # (code, outcome)


@dataclass(frozen=True)
class Case:
    name: str                         # what it shows, for messages and docs
    recipient: str                    # the RCPT TO address
    events: tuple[Event, ...]         # every status the MTA logs for this message, over the run
    log_marks: tuple[str, ...] = ()   # text the MTA's log must hold for it (checks the harness)
    refused_with: int | None = None   # the SMTP reply the MTA gives the sender, when it refuses
    source_address: str | None = None # connect from this loopback address (not in mynetworks)
    size_option: int | None = None    # declare SIZE= on MAIL FROM
    expires: bool = False             # stays queued until the expiry pass


def expected_counts(cases: list[Case]) -> Counter[Event]:
    """The exact ndr_status_codes_total the exporter must show, summed per (code, outcome)."""
    counts: Counter[Event] = Counter()
    for case in cases:
        counts.update(case.events)
    return counts

