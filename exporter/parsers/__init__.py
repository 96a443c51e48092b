"""The parser stage: one module per log format, one per mail program inside syslog.

Formats (the `format:` of a source in config):
  syslog             any syslog-style stream: RFC 3164/5424, RFC 3339, Postfix maillog_file,
                     journald JSON, Docker json-file, Kubernetes CRI. Each line's program name
                     picks the message parser (postfix, exim, sendmail, qmail, opensmtpd,
                     dovecot, courier) and a generic fallback takes the rest.
  exim               Exim's own mainlog / rejectlog files.
  exchange_tracking  Microsoft Exchange message tracking logs (CSV, #Fields: header).
  exchange_protocol  Microsoft Exchange SMTP send/receive protocol logs.
  iis_smtp           IIS SMTP service W3C logs.
"""

from __future__ import annotations

from typing import Callable

from exporter.parsers.base import ChunkResult, Counted, LabelFields, Parser

FORMATS: tuple[str, ...] = ("syslog", "exim", "exchange_tracking", "exchange_protocol", "iis_smtp")


def make_parser(fmt: str) -> Parser:
    """A fresh parser for a format name; ValueError names the format when it is unknown."""
    factories: dict[str, Callable[[], Parser]] = _factories()
    try:
        factory = factories[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}") from None
    return factory()


def _factories() -> dict[str, Callable[..., Parser]]:
    # Imported here so that one format's module is loaded only when it is used.
    from exporter.parsers import syslog, exim_mainlog, exchange_tracking, exchange_protocol, iis_smtp

    return {
        "syslog": syslog.SyslogParser,
        "exim": exim_mainlog.EximMainlogParser,
        "exchange_tracking": exchange_tracking.ExchangeTrackingParser,
        "exchange_protocol": exchange_protocol.ExchangeProtocolParser,
        "iis_smtp": iis_smtp.IisSmtpParser,
    }


__all__ = ["ChunkResult", "Counted", "FORMATS", "LabelFields", "Parser", "make_parser"]
