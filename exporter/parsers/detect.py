"""Format detection: which parser reads a source, from the first bytes of its file.

Part of the parser stage, called by the daemon when a source's format is "auto" (config can
name the format instead). It reads only the header lines and the first records:

  exchange_tracking  "#Software: Microsoft Exchange Server" and "#Log-type: Message Tracking Log"
  exchange_protocol  "#Software: Microsoft Exchange Server" and "#Log-type: SMTP Send Protocol Log"
                     or "#Log-type: SMTP Receive Protocol Log"
  iis_smtp           "#Software: Microsoft Internet Information Services"
  exchange_trace     a first line that is an Exchange Online message-trace CSV header (it names
                     Received, Status and RecipientAddress, or origin_timestamp_utc and
                     recipient_status, or date_time_utc, event_id and recipient_status)
  exim               the first record, or most of the first records, start "YYYY-MM-DD HH:MM:SS"
                     (Exim's mainlog and rejectlog; optional ".mmm" and "+hhmm" as
                     log_timezone and millisec in log_selector add them). A rejectlog holds
                     the rejected message's header lines between its records, hence "the
                     first"; no syslog envelope starts with a date and a space.
  syslog             everything else, including an empty sample: the syslog parser reads every
                     syslog-style envelope and ignores what it does not know
"""

from __future__ import annotations

import re

SAMPLE_LINES = 20  # records looked at for the exim test

_EXIM_STAMP = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?(?: [+-][0-9]{4})? ")
_BOM = b"\xef\xbb\xbf"


def detect_format(sample: bytes) -> str:
    """The format name (an exporter.parsers.FORMATS entry) for a file that starts with sample."""
    if sample.startswith(_BOM):
        sample = sample[len(_BOM):]
    software = log_type = b""
    records: list[bytes] = []
    for line in sample.split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"#"):
            if line.startswith(b"#Software:") and not software:
                software = line[len(b"#Software:"):].strip()
            elif line.startswith(b"#Log-type:") and not log_type:
                log_type = line[len(b"#Log-type:"):].strip()
        elif line.strip():
            records.append(line)
            if len(records) >= SAMPLE_LINES:
                break
    if software.startswith(b"Microsoft Exchange Server"):
        if log_type == b"Message Tracking Log":
            return "exchange_tracking"
        if log_type in (b"SMTP Send Protocol Log", b"SMTP Receive Protocol Log"):
            return "exchange_protocol"
    if software.startswith(b"Microsoft Internet Information Services"):
        return "iis_smtp"
    if records and _is_trace_header(records[0]):
        return "exchange_trace"
    exim_like = sum(1 for record in records if _EXIM_STAMP.match(record))
    if records and (_EXIM_STAMP.match(records[0]) or exim_like * 2 > len(records)):
        return "exim"
    return "syslog"


def _is_trace_header(line: bytes) -> bool:
    names = {name.strip().strip(b'"').lower().replace(b"_", b"") for name in line.split(b",")}
    return ({b"received", b"status", b"recipientaddress"} <= names
            or {b"origintimestamputc", b"recipientstatus"} <= names
            or {b"datetimeutc", b"eventid", b"recipientstatus"} <= names)
