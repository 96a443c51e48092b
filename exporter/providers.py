"""Recognise the remote side's mailbox provider from its host name (a bounded label set).

Place in the pipeline: Metrics.add calls provider_for_host(fields.remote) once per distinct
LabelFields; the result is the `provider` label and a hint for the classifier (a Gmail server's
4.7.27 means "SPF did not pass", not the registry's "sender domain has null MX").

The host is matched by its DNS suffix on a label boundary ("x.gmail.com" is google,
"x.notgmail.com" is not). Only names are recognised: an address alone gives "other".

Providers and the suffixes that identify them (MX names and their outbound relays):
  google     google.com, googlemail.com, gmail.com, 1e100.net
  microsoft  outlook.com (protection.outlook.com included), hotmail.com, office365.com,
             messaging.microsoft.com
  yahoo      yahoodns.net (Yahoo and AOL MX), yahoo.com, yahoo.net, aol.com
  apple      icloud.com, me.com, mac.com
  gmx        gmx.net, gmx.de, gmx.com, web.de, mail.com (United Internet)
  yandex     yandex.ru, yandex.net, yandex.com
  mailru     mail.ru
  zoho       zoho.com, zoho.eu, zohomail.com
  proton     protonmail.ch, protonmail.com, proton.me
  fastmail   messagingengine.com, fastmail.com
  other      any other host (including bare IP addresses and "unknown")
  none       no host logged
"""

from __future__ import annotations

from functools import lru_cache

PROVIDERS: tuple[str, ...] = (
    "google", "microsoft", "yahoo", "apple", "gmx", "yandex", "mailru", "zoho", "proton",
    "fastmail", "other", "none",
)

SUFFIXES: dict[str, str] = {
    "google.com": "google", "googlemail.com": "google", "gmail.com": "google", "1e100.net": "google",
    "outlook.com": "microsoft", "hotmail.com": "microsoft", "office365.com": "microsoft",
    "messaging.microsoft.com": "microsoft",
    "yahoodns.net": "yahoo", "yahoo.com": "yahoo", "yahoo.net": "yahoo", "aol.com": "yahoo",
    "icloud.com": "apple", "me.com": "apple", "mac.com": "apple",
    "gmx.net": "gmx", "gmx.de": "gmx", "gmx.com": "gmx", "web.de": "gmx", "mail.com": "gmx",
    "yandex.ru": "yandex", "yandex.net": "yandex", "yandex.com": "yandex",
    "mail.ru": "mailru",
    "zoho.com": "zoho", "zoho.eu": "zoho", "zohomail.com": "zoho",
    "protonmail.ch": "proton", "protonmail.com": "proton", "proton.me": "proton",
    "messagingengine.com": "fastmail", "fastmail.com": "fastmail",
}


def provider_for_host(host: str | None) -> str:
    """google, microsoft, ... for a known provider's host; other for any other host; none for no host.

    Accepts what logs write: "mx.example.com", "MX.Example.COM.", "host[192.0.2.1]",
    "host[192.0.2.1]:25", "host:25". Never raises.
    """
    if not host:
        return "none"
    if not isinstance(host, str):
        return "other"
    return _provider(host)


@lru_cache(maxsize=8192)
def _provider(host: str) -> str:
    name = host.strip().lower()
    name = name.split("[", 1)[0]
    if name.count(":") == 1:  # "host:25"; an IPv6 address has several colons
        name = name.split(":", 1)[0]
    name = name.rstrip(".")
    if not name:
        return "other"
    while True:
        provider = SUFFIXES.get(name)
        if provider:
            return provider
        dot = name.find(".")
        if dot < 0:
            return "other"
        name = name[dot + 1:]
