"""The classifier stage: code text in, classification out (DESIGN.md section 3).

Place in the pipeline: Metrics.add (and the one-shot report) call classify once
per event with the event's code, the MTA that logged it and the remote's provider.
Everything it knows comes from one reviewed table, exporter/data/status_codes.csv,
read once at import and turned into a dictionary keyed by the concrete code, so a
lookup is a couple of dictionary reads (and lru_cache makes repeats cheaper still).

The table has one row per code pattern and source:
  code      "X.1.1" (any class), "5.4.8" (one class), "5.7.606-649" (a detail range),
            "X.1.*" (any unlisted detail under a subject), "X.*.*" (an unknown subject)
  classes   the classes the code is normally used with, e.g. "4 5"
  source    iana | microsoft | google | yahoo | project
  meaning   short stable phrase in the project's own words; it becomes a label value
  deprecated  "yes" when the registry marks the code deprecated
  reference where the meaning comes from (an RFC, a vendor's list)
  hint      what an operator should check
A single-class row beats an "X" row, and a single code beats a range, for the same source.

Which meaning wins (classify):
  1. the remote's provider's own meaning (provider google/microsoft/yahoo), if it has one;
  2. Microsoft's meaning when the MTA is Exchange, unless the remote is another known
     provider (then the code most likely came from that provider);
  3. the IANA registry meaning for a registered code;
  4. a vendor's meaning for its private code (microsoft, google, yahoo in that order);
  5. the project's "unregistered ... status" phrase for the subject, or "unknown subject".
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from exporter.codes import is_valid_code
from exporter.providers import provider_for_host

CLASSES = {"2": "success", "4": "transient", "5": "permanent"}
SUBJECTS = {
    "0": "other", "1": "addressing", "2": "mailbox", "3": "mail_system",
    "4": "network_routing", "5": "protocol", "6": "content", "7": "security_policy",
}
# Where a meaning comes from; the order is the fallback order for private codes.
SOURCES: tuple[str, ...] = ("iana", "microsoft", "google", "yahoo", "project")
# Providers (providers.PROVIDERS) whose own meanings the table carries.
VENDOR_PROVIDERS: frozenset[str] = frozenset({"microsoft", "google", "yahoo"})
# Provider values that say nothing about who wrote the code.
_NO_PROVIDER: frozenset[str | None] = frozenset({None, "", "none", "other", "microsoft"})

TABLE_PATH = Path(__file__).parent / "data" / "status_codes.csv"
TABLE_COLUMNS = ("code", "classes", "source", "meaning", "deprecated", "reference", "hint")

NO_CODE_MEANING = "no enhanced status code logged"
INVALID_CODE = "invalid"
INVALID_MEANING = "not a valid enhanced status code"
# A meaning is a label value: lowercase ASCII words, digits and hyphens, single spaces.
MEANING_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]| (?! ))*[a-z0-9]\Z")
MEANING_MAX = 48

_PATTERN_RE = re.compile(
    r"(?P<cls>[245X])\.(?P<subject>\*|0|[1-9][0-9]{0,2})\."
    r"(?P<detail>\*|(?:0|[1-9][0-9]{0,2})(?:-[1-9][0-9]{0,2})?)\Z"
)


class Classification(NamedTuple):
    code: str            # "5.1.1", or "none" when the line carried no enhanced code
    status_class: str    # success | transient | permanent
    subject: str         # one of SUBJECTS' values
    meaning: str         # short stable phrase, the project's own words
    source: str          # where the meaning comes from: iana, microsoft, google, yahoo, project
    hint: str            # what an operator should check


class Entry(NamedTuple):
    """One row of the status code table."""

    pattern: str               # as written in the table: "X.1.1", "5.4.8", "5.7.606-649", "X.1.*"
    classes: tuple[str, ...]   # classes the code is normally used with: ("4", "5")
    source: str
    meaning: str
    deprecated: bool
    reference: str
    hint: str


class TableError(ValueError):
    """The status code table does not follow its own rules."""


def read_table(path: Path = TABLE_PATH) -> list[Entry]:
    """Every row of the table, checked; TableError names the first bad row."""
    entries: list[Entry] = []
    seen: set[tuple[str, str]] = set()
    with open(path, newline="", encoding="ascii") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != TABLE_COLUMNS:
            raise TableError(f"{path}: columns must be {','.join(TABLE_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            entry = Entry(
                pattern=row["code"], classes=tuple(row["classes"].split()), source=row["source"],
                meaning=row["meaning"], deprecated=row["deprecated"] == "yes",
                reference=row["reference"], hint=row["hint"],
            )
            problem = _check_entry(entry, row["deprecated"])
            if not problem and (entry.pattern, entry.source) in seen:
                problem = "the same code and source appear twice"
            if problem:
                raise TableError(f"{path}:{line}: {entry.pattern}: {problem}")
            seen.add((entry.pattern, entry.source))
            entries.append(entry)
    return entries


def _check_entry(entry: Entry, deprecated: str) -> str | None:
    match = _PATTERN_RE.match(entry.pattern)
    if not match:
        return "code pattern is not C.S.D, X.S.D, C.S.D1-D2, X.S.* or X.*.*"
    if entry.source not in SOURCES:
        return f"source must be one of {', '.join(SOURCES)}"
    if not entry.classes or any(c not in CLASSES for c in entry.classes):
        return "classes must list 2, 4 or 5"
    if match["cls"] != "X" and entry.classes != (match["cls"],):
        return "a single-class code lists just its class"
    if not valid_meaning(entry.meaning):
        return "meaning must be a short lowercase label value"
    if deprecated not in ("", "yes"):
        return "deprecated is empty or yes"
    if not entry.hint or not entry.reference:
        return "reference and hint must be filled in"
    detail = match["detail"]
    if "-" in detail:
        low, high = (int(n) for n in detail.split("-"))
        if low >= high:
            return "a range runs from low to high"
    return None


def valid_meaning(meaning: str) -> bool:
    """True when a meaning can be a label value: short, lowercase ASCII, no punctuation."""
    return len(meaning) <= MEANING_MAX and MEANING_RE.match(meaning) is not None


def _specificity(entry: Entry) -> int:
    """Lower first: a later (more specific) row overwrites an earlier one of the same source."""
    single_class = not entry.pattern.startswith("X")
    single_code = "-" not in entry.pattern
    return 2 * single_class + single_code


def _build_index(entries: list[Entry]) -> tuple[dict[str, dict[str, Entry]], dict[str, Entry], Entry]:
    """Concrete code -> {source: entry}; subject -> fallback entry; the unknown-subject entry."""
    by_code: dict[str, dict[str, Entry]] = {}
    by_subject: dict[str, Entry] = {}
    unknown: Entry | None = None
    for entry in sorted(entries, key=_specificity):
        cls, subject, detail = entry.pattern.split(".")
        if subject == "*":
            unknown = entry
            continue
        if detail == "*":
            by_subject[subject] = entry
            continue
        low, _, high = detail.partition("-")
        classes = tuple(CLASSES) if cls == "X" else (cls,)
        for c in classes:
            for d in range(int(low), int(high or low) + 1):
                by_code.setdefault(f"{c}.{subject}.{d}", {})[entry.source] = entry
    if unknown is None:
        raise TableError("the table needs an X.*.* row for unknown subjects")
    return by_code, by_subject, unknown


TABLE: list[Entry] = read_table()
_BY_CODE, _BY_SUBJECT, _UNKNOWN = _build_index(TABLE)


def entries_for(code: str) -> list[Entry]:
    """Every meaning the table gives a valid code, registry first; the project fallback if none."""
    found = _BY_CODE.get(code)
    if found:
        return [found[source] for source in SOURCES if source in found]
    return [_BY_SUBJECT.get(code.split(".")[1], _UNKNOWN)]


def preferred_sources(mta: str | None, provider: str | None) -> tuple[str, ...]:
    """The vendor sources whose meaning wins for this MTA and remote provider, best first."""
    preferred: list[str] = []
    if provider in VENDOR_PROVIDERS:
        preferred.append(provider)  # type: ignore[arg-type]
    if mta == "exchange" and provider in _NO_PROVIDER and "microsoft" not in preferred:
        preferred.append("microsoft")
    return tuple(preferred)


def _choose(code: str, mta: str | None, provider: str | None) -> Entry:
    found = _BY_CODE.get(code)
    if not found:
        return _BY_SUBJECT.get(code.split(".")[1], _UNKNOWN)
    for source in preferred_sources(mta, provider):
        if source in found:
            return found[source]
    for source in SOURCES:
        if source in found:
            return found[source]
    raise AssertionError("unreachable: every indexed code has at least one source")


def classify(code: str, mta: str | None = None, provider: str | None = None) -> Classification:
    """Classify a validated enhanced status code, preferring the vendor's meaning when hinted.

    Never raises: text that is not a code gives code "invalid" with a fixed meaning.
    """
    try:
        return _classify(code, mta, provider)
    except TypeError:  # an unhashable argument: not something a parser should pass
        return _invalid(None)


@lru_cache(maxsize=4096)
def _classify(code: str, mta: str | None, provider: str | None) -> Classification:
    if not isinstance(code, str) or not is_valid_code(code):
        return _invalid(code)
    cls, subject, _detail = code.split(".")
    entry = _choose(code, mta, provider)
    return Classification(code, CLASSES[cls], SUBJECTS.get(subject, "other"),
                          entry.meaning, entry.source, entry.hint)


def _invalid(code: object) -> Classification:
    first = code[:1] if isinstance(code, str) else ""
    return Classification(INVALID_CODE, CLASSES.get(first, "permanent"), "other", INVALID_MEANING,
                          "project", "The parser passed text that is not an RFC 3463 code; report the log line.")


def classify_without_code(reply: str | None, outcome: str) -> Classification:
    """For an event that logged no enhanced code: class from the reply's first digit, else the outcome.

    Never raises: a reply or outcome of the wrong type counts as absent.
    """
    try:
        return _classify_without_code(reply, outcome)
    except TypeError:
        return _classify_without_code(None, "")


@lru_cache(maxsize=256)
def _classify_without_code(reply: str | None, outcome: str) -> Classification:
    if isinstance(reply, str) and reply[:1] in CLASSES:
        cls = CLASSES[reply[0]]
    else:
        cls = {"delivered": "success", "verified": "success", "deferred": "transient"}.get(outcome, "permanent")
    return Classification("none", cls, "other", NO_CODE_MEANING, "project",
                          "The line carried no enhanced status code; the class comes from the reply or the outcome.")


def classify_event(mta: str, outcome: str, code: str | None, reply: str | None,
                   remote: str | None) -> tuple[Classification, str]:
    """An event's classification and its remote's provider, as the metrics and the report label it."""
    provider = provider_for_host(remote)
    if code is None:
        return classify_without_code(reply, outcome), provider
    return classify(code, mta, provider), provider
