"""Checkpoints: where each source stopped reading, and the counter values at that point.

One JSON file, written by the daemon's pipeline thread about every second when
something changed and at every clean stop, then Metrics.commit() publishes: so
/metrics never shows a count that a restart would not resume from (DESIGN
section 5). The write is atomic: a temporary file in the same directory,
fsync, rename over the old file, fsync of the directory.

Layout (version 2):
    {"version": 2, "written_at": <unix seconds>,
     "sources": {"<source name>": {... the source's own state() ...}},
     "files": [<file entries of sources that are gone>],
     "metrics": {"labels": {"status": [<label names>], "lines": ["source", "result"]},
                 ... the rest of Metrics.state(): each row of "status" / "lines" holds the
                 values of those labels in that order, then the count ...}}

A file source's state is {"files": [{"path", "dev", "ino", "offset", "skipping", "fp",
"fp_len", "rotated"}, ...]} (exporter/sources/files.py). Positions belong to files, not to
source names: "files" at the top keeps the entries of file sources that were removed, renamed or
given another path (by SIGHUP, or absent from the configuration at start), so that a source
that follows one of those files again resumes it, whatever its name (optional; added within
version 2, an older file without it reads as []). At most KNOWN_FILES entries are kept.

The label names make the file say what its rows mean: when the exporter's labels change,
Counts.from_state (exporter/metrics.py) maps the saved rows onto the new labels, or drops
them with a log line naming what was dropped and why, instead of misreading them.

Older files are migrated on load (MIGRATIONS): version 1 (before issue 12) had no label
names; its status rows are those of V1_STATUS_LABELS. A file from a newer exporter, or of
a version not known here, is refused with a log line. A missing, corrupt or unwritable file
is logged (logger "ndr_exporter.checkpoint") and the daemon carries on without it;
Writer.write() says whether a write worked, and the daemon turns that into
ndr_exporter_checkpoint_last_success_timestamp_seconds and ndr_exporter_checkpoint_failures_total.
A state folder that is missing or refuses a new file at start is refused by the CLI (exit 2,
config.check_state_file).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import time
from typing import Any, Callable

log = logging.getLogger("ndr_exporter.checkpoint")

VERSION = 2
KNOWN_FILES = 4096   # entries kept in "files" (positions of files no source follows now)
# The labels of ndr_status_codes_total in version 1 checkpoints (exporter 0.x up to issue 12).
V1_STATUS_LABELS = ("mta", "outcome", "code", "class", "subject", "meaning", "provider")
V1_LINE_LABELS = ("source", "result")


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: the same rows, now with the label names they were written with."""
    metrics = dict(data["metrics"])
    metrics["labels"] = {"status": list(V1_STATUS_LABELS), "lines": list(V1_LINE_LABELS)}
    return {**data, "version": 2, "metrics": metrics}


# version found in a file -> the function that turns it into the next version
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_v1}


def load(path: str) -> dict[str, Any] | None:
    """The checkpoint at path, or None (logged) when it is missing, unreadable or corrupt.
    It is opened without blocking and read only when it is a regular file: a FIFO or a device
    put there after the CLI's start check (config.check_state_file) is logged, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                log.error("checkpoint %s is not a regular file: not read, starting fresh, counters from 0", path)
                return None
            data = json.loads(f.read())
    except FileNotFoundError:
        log.info("no checkpoint at %s yet: starting fresh", path)
        return None
    except (OSError, ValueError) as err:
        log.error("cannot read checkpoint %s (%s): starting fresh, counters from 0", path, err)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict) \
            or not isinstance(data.get("metrics"), dict):
        log.error("checkpoint %s is not a checkpoint of this exporter: starting fresh, counters from 0", path)
        return None
    version = data.get("version")
    while version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        log.info("checkpoint %s: upgraded from version %s to %s", path, version, data["version"])
        version = data["version"]
    if version != VERSION:
        log.error("checkpoint %s has version %r, which this exporter (version %d checkpoints) cannot "
                  "read: starting fresh, counters from 0", path, version, VERSION)
        return None
    return data


def save(path: str, sources: dict[str, Any], metrics: dict[str, Any],
         files: list[dict[str, Any]] | None = None) -> None:
    """Write the checkpoint atomically; OSError when it cannot be written."""
    data = {"version": VERSION, "written_at": time.time(), "sources": sources, "metrics": metrics,
            "files": files or []}
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

    def write(self, sources: dict[str, Any], metrics: dict[str, Any],
              files: list[dict[str, Any]] | None = None) -> bool:
        try:
            save(self.path, sources, metrics, files)
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
