"""The status code knowledge base: the table, classify, and provider recognition.

The lists of registry, seed and vendor codes below are written out here independently
of exporter/data/status_codes.csv, so a row dropped from the table fails a test.
Registry facts: IANA "SMTP Enhanced Status Codes" registry. Seed: the 23 Exchange codes
in /work/shared/seeds/000_1649e4638020389d.txt.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.classifier import (
    CLASSES, INVALID_MEANING, NO_CODE_MEANING, SOURCES, SUBJECTS, TABLE, TABLE_PATH, Entry,
    TableError, classify, classify_without_code, entries_for, read_table, valid_meaning,
)
from exporter.codes import is_valid_code
from exporter.events import StatusEvent
from exporter.metrics import Metrics
from exporter.parsers.base import count_events
from exporter.providers import PROVIDERS, provider_for_host

# code -> reference, as the IANA registry lists them (X.0.0 through X.7.30).
REGISTRY = {
    "X.0.0": "RFC 3463",
    **{f"X.1.{d}": "RFC 3463" for d in range(0, 9)}, "X.1.9": "RFC 3886", "X.1.10": "RFC 7505",
    **{f"X.2.{d}": "RFC 3463" for d in range(0, 5)},
    **{f"X.3.{d}": "RFC 3463" for d in range(0, 6)}, "X.3.6": "RFC 6710",
    **{f"X.4.{d}": "RFC 3463" for d in range(0, 8)},
    **{f"X.5.{d}": "RFC 3463" for d in range(0, 6)}, "X.5.6": "RFC 4954",
    **{f"X.6.{d}": "RFC 3463" for d in range(0, 6)}, "X.6.6": "RFC 4468",
    **{f"X.6.{d}": "RFC 6531" for d in range(7, 11)},
    **{f"X.7.{d}": "RFC 3463" for d in range(0, 8)},
    "X.7.8": "RFC 4954", "X.7.9": "RFC 4954", "X.7.10": "RFC 5248", "X.7.11": "RFC 4954",
    "X.7.12": "RFC 4954", "X.7.13": "RFC 5248", "X.7.14": "RFC 5248",
    "X.7.15": "RFC 6710", "X.7.16": "RFC 6710",
    "X.7.17": "RFC 7293", "X.7.18": "RFC 7293", "X.7.19": "RFC 7293",
    **{f"X.7.{d}": "RFC 7372" for d in range(20, 27)},
    "X.7.27": "RFC 7505", "X.7.28": "IANA registry", "X.7.29": "RFC 8617", "X.7.30": "RFC 8689",
}

SEED = ["4.3.1", "4.3.2", "4.4.1", "4.4.2", "4.4.6", "4.4.7", "5.0.0", "5.1.0", "5.1.1", "5.1.3",
        "5.1.4", "5.2.1", "5.2.3", "5.3.3", "5.3.5", "5.4.0", "5.4.4", "5.4.6", "5.4.8", "5.5.0",
        "5.5.2", "5.5.3", "5.7.1"]

# Microsoft's own codes and what the exporter calls them with no hint at all.
MICROSOFT_PRIVATE = {
    "4.4.316": "connection refused", "5.4.316": "expired after connection refused",
    "4.4.312": "dns lookup of next hop failed", "5.4.300": "message expired in queue",
    "5.4.310": "recipient domain not in dns", "5.4.14": "routing loop hop limit reached",
    "5.1.90": "sender daily recipient limit reached", "5.2.121": "per-sender hourly receive limit hit",
    "5.2.122": "recipient hourly receive limit hit", "5.6.11": "bare line feeds in message",
    "5.7.57": "client not authenticated for relay", "5.7.64": "tenant attribution relay denied",
    "5.7.124": "sender not on group allow list", "5.7.133": "group rejects external senders",
    "5.7.134": "mailbox rejects external senders", "5.7.135": "public folder rejects external senders",
    "5.7.136": "mail user rejects external senders",
    "5.7.501": "sending account banned for spam", "5.7.502": "banned sender", "5.7.503": "banned sender",
    "5.7.504": "recipient address rejected", "5.7.505": "banned recipient", "5.7.506": "bad helo identity",
    "5.7.507": "ip blocked by recipient organization", "5.7.508": "ipv6 range over rate limit",
    "5.7.509": "sender domain fails dmarc", "5.7.510": "recipient refuses mail over ipv6",
    "5.7.511": "sending ip banned", "5.7.512": "from header not rfc 5322 compliant",
    "5.7.513": "ip on recipient custom block list", "5.7.520": "external forwarding not allowed",
    "5.7.703": "recipient on tenant block list", "5.7.705": "tenant over spam threshold",
    "5.7.708": "low reputation ip traffic refused", "5.7.750": "unregistered sending domain blocked",
    "5.4.8": "message loops back to this server",
}
# Registered numbers Microsoft uses for something else: (no hint, with the Exchange hint).
MICROSOFT_REUSED = {
    "4.3.2": ("system not accepting mail", "queue deleted by admin or store throttled"),
    "5.3.3": ("feature not supported by system", "remote queue out of disk space"),
    "5.1.8": ("sender domain invalid", "sender blocked for outbound spam"),
    "5.1.10": ("recipient domain has null mx", "recipient not found"),
    "5.7.12": ("password transition needed", "external sender rejected by organization"),
    "5.7.13": ("user account disabled", "public folder rejects external senders"),
}
MICROSOFT_RANGES = {
    ("4.7.500", "4.7.699"): "sending temporarily restricted",
    ("4.7.850", "4.7.899"): "ip temporarily restricted",
    ("5.7.606", "5.7.649"): "banned sending ip",
    ("5.7.700", "5.7.749"): "tenant banned for suspicious traffic",
    ("5.7.900", "5.7.999"): "rejected by mail flow rule",
}
# Gmail's usage: (no hint, with a Google remote).
GOOGLE = {
    "4.7.23": ("spf check failed", "sending ip lacks valid ptr"),
    "4.7.24": ("spf check error", "suspicious spf record entries"),
    "4.7.26": ("several authentication checks failed", "unauthenticated or dmarc rejected"),
    "4.7.27": ("sender domain has null mx", "spf did not pass"),
    "4.7.28": ("mail flood detected", "unusual rate of unsolicited mail"),
    "4.7.29": ("arc validation failed", "not sent over tls"),
    "4.7.30": ("requiretls not supported downstream", "dkim did not pass"),
    "4.7.32": ("from header not aligned with spf or dkim", "from header not aligned with spf or dkim"),
    "5.4.5": ("mail system congested", "daily sending limit exceeded"),
    "5.7.25": ("reverse dns check failed", "sending ip lacks valid ptr"),
    "5.7.26": ("several authentication checks failed", "unauthenticated or dmarc rejected"),
    "5.7.27": ("sender domain has null mx", "spf did not pass"),
    "5.7.28": ("mail flood detected", "unusual rate of unsolicited mail"),
    "5.7.29": ("arc validation failed", "not sent over tls"),
    "5.7.30": ("requiretls not supported downstream", "dkim did not pass"),
}
YAHOO = {
    "5.7.9": ("auth mechanism too weak", "unauthenticated or refused by policy"),
    "5.7.2": ("list expansion not allowed", "sending ip permanently deferred"),
    "4.7.0": ("security or policy problem", "deferred for volume or complaints"),
}


def _iana_rows() -> dict[str, Entry]:
    return {e.pattern: e for e in TABLE if e.source == "iana"}


def test_registry_has_81_codes_and_the_table_has_each_with_its_reference() -> None:
    assert len(REGISTRY) == 81
    rows = _iana_rows()
    assert sorted(rows) == sorted(REGISTRY)
    for pattern, reference in REGISTRY.items():
        assert rows[pattern].reference == reference, pattern


def test_only_x_6_10_is_deprecated() -> None:
    assert [e.pattern for e in TABLE if e.deprecated] == ["X.6.10"]


@pytest.mark.parametrize("pattern", sorted(REGISTRY))
def test_registry_code_gets_its_registry_meaning_without_hints(pattern: str) -> None:
    entry = _iana_rows()[pattern]
    _, subject, detail = pattern.split(".")
    for cls in "245":
        c = classify(f"{cls}.{subject}.{detail}")
        assert (c.status_class, c.subject, c.meaning, c.source) == (
            CLASSES[cls], SUBJECTS[subject], entry.meaning, "iana")


@pytest.mark.parametrize("code", SEED)
def test_every_seed_code_has_a_row_and_a_hint(code: str) -> None:
    entries = entries_for(code)
    assert entries and all(e.source != "project" for e in entries)
    c = classify(code, "exchange")
    assert c.source in ("iana", "microsoft") and c.hint


def test_seed_codes_where_exchange_differs_use_microsoft_meanings_for_exchange() -> None:
    assert classify("4.3.2", "exchange").meaning == "queue deleted by admin or store throttled"
    assert classify("5.3.3", "exchange").meaning == "remote queue out of disk space"
    assert classify("5.4.8", "exchange") == classify("5.4.8")
    assert classify("5.4.8") == (
        "5.4.8", "permanent", "network_routing", "message loops back to this server", "microsoft",
        "Exchange would hand the message to itself; check the smarthost and the server FQDN "
        "and the MX records and the accepted domains.")


@pytest.mark.parametrize(("code", "meaning"), sorted(MICROSOFT_PRIVATE.items()))
def test_microsoft_private_code_gets_microsoft_meaning_without_hints(code: str, meaning: str) -> None:
    c = classify(code)
    assert (c.meaning, c.source) == (meaning, "microsoft")


@pytest.mark.parametrize(("code", "meanings"), sorted(MICROSOFT_REUSED.items()))
def test_microsoft_hint_switches_reused_numbers(code: str, meanings: tuple[str, str]) -> None:
    plain, exchange = meanings
    assert (classify(code).meaning, classify(code).source) == (plain, "iana")
    assert (classify(code, "exchange").meaning, classify(code, "exchange").source) == (exchange, "microsoft")
    hinted = classify(code, "postfix", provider_for_host("example-com.mail.protection.outlook.com"))
    assert (hinted.meaning, hinted.source) == (exchange, "microsoft")


def test_5_7_12_has_two_meanings() -> None:
    assert classify("5.7.12").meaning == "password transition needed"
    assert classify("5.7.12", mta="exchange").meaning == "external sender rejected by organization"
    assert classify("5.7.12", mta="postfix", provider="microsoft").meaning == "external sender rejected by organization"
    # An Exchange server relaying a reply from another known provider: that provider's word counts.
    assert classify("5.7.12", mta="exchange", provider="apple").meaning == "password transition needed"
    assert classify("4.7.27", mta="exchange", provider="google").meaning == "spf did not pass"


@pytest.mark.parametrize(("low", "high"), sorted(MICROSOFT_RANGES))
def test_microsoft_ranges_cover_both_ends(low: str, high: str) -> None:
    meaning = MICROSOFT_RANGES[(low, high)]
    lo, hi = int(low.rsplit(".", 1)[1]), int(high.rsplit(".", 1)[1])
    prefix = low.rsplit(".", 1)[0]
    inside = [f"{prefix}.{d}" for d in range(lo, hi + 1) if f"{prefix}.{d}" not in MICROSOFT_PRIVATE]
    assert {classify(code).meaning for code in inside} == {meaning}
    outside = classify(f"{prefix}.{hi + 1}")
    assert outside.source != "microsoft" or outside.meaning != meaning


def test_specific_rows_beat_the_range_they_sit_in() -> None:
    assert classify("5.7.703").meaning == "recipient on tenant block list"
    assert classify("5.7.705").meaning == "tenant over spam threshold"
    assert classify("5.7.708").meaning == "low reputation ip traffic refused"
    assert classify("5.7.704").meaning == "tenant banned for suspicious traffic"
    assert classify("5.7.650") == ("5.7.650", "permanent", "security_policy", "unregistered policy status",
                                   "project", classify("5.7.651").hint)


@pytest.mark.parametrize(("code", "meanings"), sorted(GOOGLE.items()))
def test_gmail_usage_with_a_google_remote(code: str, meanings: tuple[str, str]) -> None:
    plain, google = meanings
    assert classify(code).meaning == plain
    c = classify(code, "postfix", provider_for_host("gmail-smtp-in.l.google.com"))
    assert (c.meaning, c.source) == (google, "google")


@pytest.mark.parametrize(("code", "meanings"), sorted(YAHOO.items()))
def test_yahoo_usage_with_a_yahoo_remote(code: str, meanings: tuple[str, str]) -> None:
    plain, yahoo = meanings
    assert classify(code).meaning == plain
    c = classify(code, "exim", provider_for_host("mta6.am0.yahoodns.net"))
    assert (c.meaning, c.source) == (yahoo, "yahoo")


@pytest.mark.parametrize(("code", "subject", "meaning"), [
    ("5.1.99", "addressing", "unregistered address status"),
    ("4.2.50", "mailbox", "unregistered mailbox status"),
    ("4.3.77", "mail_system", "unregistered mail system status"),
    ("4.4.999", "network_routing", "unregistered network status"),
    ("5.5.12", "protocol", "unregistered protocol status"),
    ("5.6.20", "content", "unregistered content status"),
    ("5.7.31", "security_policy", "unregistered policy status"),
    ("5.0.1", "other", "unregistered other status"),
    ("5.9.1", "other", "unknown subject"),
    ("2.123.45", "other", "unknown subject"),
])
def test_unlisted_codes_keep_class_and_subject(code: str, subject: str, meaning: str) -> None:
    c = classify(code)
    assert (c.code, c.status_class, c.subject, c.meaning, c.source) == (
        code, CLASSES[code[0]], subject, meaning, "project")


@pytest.mark.parametrize("text", ["1.2.3", "5.01.1", "", "5.7", "550 5.1.1", None, ["5.1.1"]])
def test_bad_input_never_raises_and_gives_a_fixed_label(text: object) -> None:
    c = classify(text)  # type: ignore[arg-type]
    assert (c.code, c.subject, c.meaning, c.source) == ("invalid", "other", INVALID_MEANING, "project")


def test_without_code_class_comes_from_reply_then_outcome() -> None:
    assert classify_without_code("550", "bounced")[:4] == ("none", "permanent", "other", NO_CODE_MEANING)
    assert classify_without_code("451", "deferred").status_class == "transient"
    assert classify_without_code(None, "delivered").status_class == "success"
    assert classify_without_code(None, "deferred").status_class == "transient"
    assert classify_without_code(None, "rejected").status_class == "permanent"
    assert classify_without_code("", "deferred").status_class == "transient"
    assert classify_without_code(["550"], ["x"]).status_class == "permanent"  # type: ignore[arg-type]


def _example_codes(entry: Entry) -> list[str]:
    """Concrete codes the row should decide (those no more specific row takes over)."""
    cls, subject, detail = entry.pattern.split(".")
    classes = entry.classes if cls == "X" else (cls,)
    if subject == "*":
        return [f"{c}.9.1" for c in classes]
    if detail == "*":
        free = next(d for d in range(1, 1000) if entries_for(f"5.{subject}.{d}")[0].source == "project")
        return [f"{c}.{subject}.{free}" for c in classes]
    low, _, high = detail.partition("-")
    codes = [f"{c}.{subject}.{d}" for c in classes for d in {int(low), int(high or low)}]
    return [code for code in codes if entry in entries_for(code)]


_HINT = {"iana": {}, "project": {}, "microsoft": {"mta": "exchange"},
         "google": {"provider": "google"}, "yahoo": {"provider": "yahoo"}}


@pytest.mark.parametrize("entry", TABLE, ids=[f"{e.pattern}/{e.source}" for e in TABLE])
def test_every_table_row_round_trips(entry: Entry) -> None:
    codes = _example_codes(entry)
    assert codes
    for code in codes:
        c = classify(code, **_HINT[entry.source])
        assert (c.meaning, c.source, c.hint) == (entry.meaning, entry.source, entry.hint), code
        assert c.status_class == CLASSES[code[0]]


def test_every_meaning_is_a_short_label_value() -> None:
    meanings = {e.meaning for e in TABLE} | {NO_CODE_MEANING, INVALID_MEANING}
    label = re.compile(r"[a-z0-9][a-z0-9 -]*[a-z0-9]\Z")
    for meaning in meanings:
        assert valid_meaning(meaning), meaning
        assert label.match(meaning) and "  " not in meaning and len(meaning) <= 48, meaning
        assert meaning.isascii() and not any(ch in meaning for ch in ',"\'\\=\n{}'), meaning


def test_meaning_labels_stay_few_per_code() -> None:
    # Every code gets at most one meaning per source, so the (code, meaning) pairs are bounded.
    hints = [(None, None)] + [(None, p) for p in PROVIDERS] + [("exchange", p) for p in PROVIDERS]
    for code in ["5.7.12", "4.7.28", "5.7.606", "5.1.1", "5.7.9", "4.7.0", "5.4.5"]:
        seen = {classify(code, mta, provider).meaning for mta, provider in hints}
        assert 1 <= len(seen) <= len(entries_for(code)) <= len(SOURCES) - 1
    assert len({e.meaning for e in TABLE}) < 200


def test_table_file_is_ascii_csv_with_the_documented_columns() -> None:
    text = TABLE_PATH.read_text(encoding="ascii")
    assert text.splitlines()[0] == "code,classes,source,meaning,deprecated,reference,hint"
    assert len(read_table()) == len(TABLE) == len(text.splitlines()) - 1


@pytest.mark.parametrize(("bad_row", "message"), [
    ("X.1.1,4 5,iana,Bad Upper Case,,RFC 3463,hint", "meaning must be a short lowercase label value"),
    ("5.01.1,5,iana,fine meaning,,RFC 3463,hint", "code pattern is not C.S.D, X.S.D, C.S.D1-D2, X.S.* or X.*.*"),
    ("5.1.1,4,iana,fine meaning,,RFC 3463,hint", "a single-class code lists just its class"),
    ("5.1.1,5,vendor,fine meaning,,RFC 3463,hint", "source must be one of iana, microsoft, google, yahoo, project"),
    ("5.7.9-5,5,yahoo,fine meaning,,x,hint", "a range runs from low to high"),
    ("X.0.0,2 4 5,iana,undefined status,,RFC 3463,again", "the same code and source appear twice"),
])
def test_a_broken_table_is_refused_with_the_row_named(tmp_path: Path, bad_row: str, message: str) -> None:
    broken = tmp_path / "status_codes.csv"
    shutil.copy(TABLE_PATH, broken)
    lines = len(TABLE_PATH.read_text(encoding="ascii").splitlines())
    with open(broken, "a", encoding="ascii") as handle:
        handle.write(bad_row + "\n")
    with pytest.raises(TableError) as raised:
        read_table(broken)
    assert str(raised.value) == f"{broken}:{lines + 1}: {bad_row.split(',')[0]}: {message}"


@pytest.mark.parametrize(("host", "provider"), [
    ("gmail-smtp-in.l.google.com", "google"),
    ("alt1.aspmx.l.google.com[142.250.153.26]:25", "google"),
    ("mail-wr1-f54.google.com", "google"),
    ("smtp.googlemail.com", "google"),
    ("example-com.mail.protection.outlook.com", "microsoft"),
    ("hotmail-com.olc.protection.outlook.com.", "microsoft"),
    ("mx1.hotmail.com", "microsoft"),
    ("mta7.am0.yahoodns.net", "yahoo"),
    ("mx-aol.mail.gm0.yahoodns.net", "yahoo"),
    ("mx01.mail.icloud.com", "apple"),
    ("MX02.MAIL.ICLOUD.COM", "apple"),
    ("mx00.gmx.net", "gmx"),
    ("mx-ha03.web.de", "gmx"),
    ("mx.yandex.ru", "yandex"),
    ("mxs.mail.ru", "mailru"),
    ("mx.zoho.com", "zoho"),
    ("mail.protonmail.ch", "proton"),
    ("in1-smtp.messagingengine.com", "fastmail"),
    ("mx.notgmail.com", "other"),
    ("google.com.evil.example", "other"),
    ("192.0.2.1", "other"),
    ("unknown[192.0.2.1]", "other"),
    ("2001:db8::25", "other"),
    ("", "none"),
    (None, "none"),
])
def test_provider_for_host(host: str | None, provider: str) -> None:
    assert provider_for_host(host) == provider
    assert provider in PROVIDERS


def test_provider_set_is_fixed_and_documented() -> None:
    assert PROVIDERS == ("google", "microsoft", "yahoo", "apple", "gmx", "yandex", "mailru", "zoho",
                         "proton", "fastmail", "other", "none")
    assert provider_for_host(12345) == "other"  # type: ignore[arg-type]


_digits = st.one_of(st.just(0), st.integers(min_value=1, max_value=999))


@given(cls=st.sampled_from("245"), subject=_digits, detail=_digits,
       mta=st.sampled_from([None, "postfix", "exchange", "exim", "unknown"]),
       provider=st.sampled_from([None, *PROVIDERS]))
def test_any_valid_code_classifies_to_bounded_labels(cls: str, subject: int, detail: int,
                                                     mta: str | None, provider: str | None) -> None:
    code = f"{cls}.{subject}.{detail}"
    c = classify(code, mta, provider)
    assert c.code == code and c.status_class == CLASSES[cls]
    assert c.subject == SUBJECTS.get(str(subject), "other")
    assert c.source in SOURCES and valid_meaning(c.meaning)
    assert (c.meaning, c.source) in {(e.meaning, e.source) for e in entries_for(code)}


@given(st.text(max_size=20))
def test_any_text_classifies_without_raising(text: str) -> None:
    c = classify(text)
    assert c.code == (text if is_valid_code(text) else "invalid")


def test_metrics_labels_come_from_the_table_and_the_remote() -> None:
    # The counter key metrics builds for one event (mta, outcome, code, class, subject, meaning, provider).
    metrics = Metrics()
    metrics.add("mail.log", count_events([StatusEvent("postfix", "deferred", "4.7.28", "421", "gmail-smtp-in.l.google.com")]))
    metrics.add("mail.log", count_events([StatusEvent("postfix", "deferred", "4.7.28", "421", "mx.example.net")]))
    metrics.add("ex", count_events([StatusEvent("exchange", "bounced", "5.7.12", "550", None)]))
    assert metrics.live.status == {
        ("postfix", "deferred", "4.7.28", "transient", "security_policy", "unusual rate of unsolicited mail", "google"): 1.0,
        ("postfix", "deferred", "4.7.28", "transient", "security_policy", "mail flood detected", "other"): 1.0,
        ("exchange", "bounced", "5.7.12", "permanent", "security_policy", "external sender rejected by organization",
         "none"): 1.0,
    }
