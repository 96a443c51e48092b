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
  exchange_trace     Exchange Online message-trace CSV downloads (summary, enhanced summary,
                     extended report).
"""

from __future__ import annotations

from typing import Callable

from exporter.parsers.base import ChunkResult, Parser

FORMATS: tuple[str, ...] = ("syslog", "exim", "exchange_tracking", "exchange_protocol", "iis_smtp",
                            "exchange_trace")


def make_parser(fmt: str, counts_only: bool = False, hourly: bool = False) -> Parser:
    """A fresh parser for a format name; ValueError names the format when it is unknown.

    counts_only: the caller only counts (the daemon), so a parser may hand back its events
    added up (ChunkResult.tally) rather than one by one; the syslog parser then uses its
    compiled scanner when it is built (exporter/_fastscan.c). hourly: the same, with the
    UTC hour of the events in each tally key (`report`).
    """
    factories: dict[str, Callable[..., Parser]] = _factories()
    try:
        factory = factories[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}") from None
    return factory(counts_only=counts_only, hourly=hourly) if fmt == "syslog" else factory()


def _factories() -> dict[str, Callable[..., Parser]]:
    # Imported here so that one format's module is loaded only when it is used.
    from exporter.parsers import syslog, exim_mainlog, exchange_tracking, exchange_protocol, iis_smtp
    from exporter.parsers import exchange_trace

    return {
        "syslog": syslog.SyslogParser,
        "exim": exim_mainlog.EximMainlogParser,
        "exchange_tracking": exchange_tracking.ExchangeTrackingParser,
        "exchange_protocol": exchange_protocol.ExchangeProtocolParser,
        "iis_smtp": iis_smtp.IisSmtpParser,
        "exchange_trace": exchange_trace.ExchangeTraceParser,
    }


__all__ = ["ChunkResult", "FORMATS", "Parser", "make_parser"]
