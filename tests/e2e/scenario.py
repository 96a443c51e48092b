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

from tests.e2e.util import smtp_send

# Outcomes, as the exporter names them (exporter/events.py).
DELIVERED, DEFERRED, BOUNCED, EXPIRED, REJECTED = "delivered", "deferred", "bounced", "expired", "rejected"
VERIFIED, VERIFY_FAILED = "verified", "verify_failed"  # address-verification probes (Postfix)
NONE = "none"  # the code label of an event without an enhanced status code

# Where mail goes. Both MTAs call themselves mx.e2e.test and route these domains to loopback ports.
LOCAL_DOMAIN = "mx.e2e.test"
REMOTE_DOMAIN = "resp.test"      # the SMTP responder
DROP_DOMAIN = "drop.test"        # a second responder, so its 421 touches no other case
REFUSED_DOMAIN = "refused.test"  # a loopback port where nothing listens
VERIFY_DOMAIN = "verify.test"    # the responder again, behind reject_unverified_recipient (Postfix)
SENDER = f"sender@{LOCAL_DOMAIN}"  # a local mailbox, so bounce notices are delivered and logged

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



def send_case(port: int, sender: str, index: int, case: Case) -> None:
    """Offer the case's message to the MTA on port; AssertionError if the MTA answers otherwise."""
    code, text = smtp_send(port, sender, case.recipient, f"c{index:02d}",
                           source_address=case.source_address, size_option=case.size_option)
    wanted = case.refused_with or 250
    if code != wanted:
        raise AssertionError(f"{case.name}: the MTA replied {code} {text}, expected {wanted}")
