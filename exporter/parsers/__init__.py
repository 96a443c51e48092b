"""The parser stage: one module per log format, one per mail program inside syslog.

Each module declares what it is (exporter/parsers/registry.py); nothing lists them here.

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

from exporter.parsers import registry
from exporter.parsers.base import ChunkResult, Counted, LabelFields, Parser

# Every format, as its module declares it (FORMAT, PARSER, ORDER; see registry.py).
FORMATS: tuple[str, ...] = registry.format_names()


def make_parser(fmt: str) -> Parser:
    """A fresh parser for a format name; ValueError names the format when it is unknown."""
    try:
        found = registry.formats()[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}") from None
    parser: Parser = found.parser()
    return parser


__all__ = ["ChunkResult", "Counted", "FORMATS", "LabelFields", "Parser", "make_parser"]
