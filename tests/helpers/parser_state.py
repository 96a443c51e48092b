"""Clear what the message parsers remember between lines (exporter/parsers/exim.py: the last
rejection, for syslog_duplication; courier.py: reply lines and "success:" records waiting for
their record). For tests that read the same lines twice in one process on purpose."""

from __future__ import annotations

from exporter.parsers import courier, exim


def forget_parser_state() -> None:
    exim.forget_state()
    courier.forget_state()
