"""The classifier stage: code text in, classification out (DESIGN.md section 3).

PLACEHOLDER: class and subject only; the knowledge-base issue replaces this with
lookups in the reviewed data table. The function signatures are the contract.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

CLASSES = {"2": "success", "4": "transient", "5": "permanent"}
SUBJECTS = {
    "0": "other", "1": "addressing", "2": "mailbox", "3": "mail_system",
    "4": "network_routing", "5": "protocol", "6": "content", "7": "security_policy",
}


class Classification(NamedTuple):
    code: str            # "5.1.1", or "none" when the line carried no enhanced code
    status_class: str    # success | transient | permanent
    subject: str         # one of SUBJECTS' values
    meaning: str         # short stable phrase, the project's own words
    source: str          # where the meaning comes from: iana, microsoft, google, yahoo, project
    hint: str            # what an operator should check


@lru_cache(maxsize=4096)
def classify(code: str, mta: str | None = None, provider: str | None = None) -> Classification:
    """Classify a validated enhanced status code, preferring the vendor's meaning when hinted."""
    cls, subject, _detail = code.split(".")
    return Classification(code, CLASSES[cls], SUBJECTS.get(subject, "other"),
                          "unregistered status", "project", "")


@lru_cache(maxsize=256)
def classify_without_code(reply: str | None, outcome: str) -> Classification:
    """For an event that logged no enhanced code: class from the reply's first digit, else the outcome."""
    if reply and reply[0] in CLASSES:
        cls = CLASSES[reply[0]]
    else:
        cls = {"delivered": "success", "deferred": "transient"}.get(outcome, "permanent")
    return Classification("none", cls, "other", "no enhanced status code logged", "project", "")
