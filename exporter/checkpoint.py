"""Checkpoints: where each source stopped reading, and the counter values at that point.

One JSON file, written by the daemon's pipeline thread about every second when
something changed and at every clean stop, then Metrics.commit() publishes: so
/metrics never shows a count that a restart would not resume from (DESIGN
section 5). The write is atomic: a temporary file in the same directory,
fsync, rename over the old file, fsync of the directory.

Layout (version 1):
    {"version": 1, "written_at": <unix seconds>,
     "sources": {"<source name>": {... the source's own state() ...}},
     "metrics": {... Metrics.state() ...}}

A missing, corrupt or unwritable file is logged (logger "ndr_exporter.checkpoint")
and the daemon carries on without it; Writer.write() says whether a write worked, and the
daemon turns that into ndr_exporter_checkpoint_last_success_timestamp_seconds and
ndr_exporter_checkpoint_failures_total. A state folder that is missing or refuses a new
file at start is refused by the CLI (exit 2, config.check_state_file).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from typing import Any

log = logging.getLogger("ndr_exporter.checkpoint")

VERSION = 1


def load(path: str) -> dict[str, Any] | None:
    """The checkpoint at path, or None (logged) when it is missing, unreadable or corrupt."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        log.info("no checkpoint at %s yet: starting fresh", path)
        return None
    except (OSError, ValueError) as err:
        log.error("cannot read checkpoint %s (%s): starting fresh, counters from 0", path, err)
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION \
            or not isinstance(data.get("sources"), dict) or not isinstance(data.get("metrics"), dict):
        log.error("checkpoint %s is not a version %d checkpoint: starting fresh, counters from 0",
                  path, VERSION)
        return None
    return data


def save(path: str, sources: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write the checkpoint atomically; OSError when it cannot be written."""
    data = {"version": VERSION, "written_at": time.time(), "sources": sources, "metrics": metrics}
    body = json.dumps(data, separators=(",", ":")).encode()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ndr-checkpoint-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Writer:
    """Saves checkpoints to one path and logs a failure once, and the recovery after it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.failing = False

    def write(self, sources: dict[str, Any], metrics: dict[str, Any]) -> bool:
        try:
            save(self.path, sources, metrics)
        except (OSError, ValueError, TypeError) as err:
            if not self.failing:
                log.error("cannot write checkpoint %s (%s): carrying on; a restart will recount "
                          "from the last checkpoint written", self.path, err)
            self.failing = True
            return False
        if self.failing:
            log.info("checkpoint %s written again", self.path)
            self.failing = False
        return True
