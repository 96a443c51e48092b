"""Recognise the remote side's mailbox provider from its host name (a bounded label set).

PLACEHOLDER until the knowledge-base issue fills in the host patterns.
"""

from __future__ import annotations

PROVIDERS: tuple[str, ...] = ("google", "microsoft", "yahoo", "apple", "other", "none")


def provider_for_host(host: str | None) -> str:
    """google, microsoft, ... for a known provider's host; other for any other host; none for no host."""
    if not host:
        return "none"
    return "other"
