"""Checkpoints: where each source stopped reading, and the counter values at that point.

Written by the daemon's pipeline thread before every publish (about twice a second
while lines arrive) and at every clean stop; only then does Metrics.commit() publish, so
/metrics never shows a count that a restart would not resume from (DESIGN section 5).

Two kinds of write, so that a trickle does not pay for a new file and two fsyncs a second
(issue 14: the rename's new inode and the fsyncs were most of a wake-up's CPU):

  - durable: the JSON goes to a temporary file in the same directory, fsync, rename over
    `path`, fsync of the directory. At start, at every clean stop, and at most every
    SYNC_INTERVAL seconds while counting;
  - recent (every other publish): the same JSON, behind a header (magic, length, sequence
    number, CRC-32), written in place at offset 0 of one of two slot files beside `path`
    (`<path>.recent-0` and `.recent-1`, taken in turn), without fsync. One pwrite into a
    file that already exists: no new inode, no rename, no flush.

Every checkpoint carries "seq", one more than the last written; load() takes the newest of
the three that is whole (the JSON parses; a slot's length and CRC match). So:

  - a process crash (kill -9, OOM) at any moment resumes from the last checkpoint written,
    i.e. from what /metrics last showed or newer: a write that was cut short leaves its slot
    torn, and the other slot or the durable file holds the one before. No counter goes back;
  - a machine crash (power, kernel) may lose what was not yet on disk: the slots may come
    back old or torn (the CRC tells), the durable file is whole and at most SYNC_INTERVAL
    old. The positions and the counts are saved together, so the lines after it are read
    again from the log and counted once: no loss, no double count (as long as the log's own
    lines survived the crash), only counters that restart a little lower (Prometheus reads it
    as a counter reset, as after any restart without a checkpoint).

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
import struct
import tempfile
import time
import zlib
from typing import Any, Callable

log = logging.getLogger("ndr_exporter.checkpoint")

VERSION = 2
KNOWN_FILES = 4096   # entries kept in "files" (positions of files no source follows now)
SYNC_INTERVAL = 30.0   # seconds: the most a durable (fsync'd) checkpoint lags while counting
SLOTS = (".recent-0", ".recent-1")   # suffixes of the two slot files beside the state file
# A slot's header: magic, length of the JSON after it, its "seq", CRC-32 of the JSON.
SLOT_HEADER = struct.Struct("<8sIQI")
SLOT_MAGIC = b"NDRCKPT1"
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
    """The newest whole checkpoint among the state file at path and its two slots, or None
    (logged) when there is none. Its "seq" (0 in files written before slots existed) says
    which is newest; on a tie the state file wins, so that an edit of it after a stop counts.
    Without a state file the slots are not read: removing it starts afresh, as it always did
    (a running daemon always has one: its first checkpoint is durable)."""
    found = _load_file(path)
    if found is None and not os.path.lexists(path):
        return None   # no state file (never written, or removed to start afresh): the slots are not used
    newest = found
    for suffix in SLOTS:
        recent = _load_slot(path + suffix)
        if recent is not None and (newest is None or recent["seq"] > newest.get("seq", 0)):
            newest = recent
    if newest is not None and newest is not found:
        log.info("checkpoint %s: resuming from its newer slot (checkpoint %d)", path, newest["seq"])
    return newest


def _open_regular(path: str) -> Any:
    """path opened for reading without blocking, or None (logged) when it is not a regular file.
    A FIFO or a device put there after the CLI's start check (config.check_state_file) is
    logged, never waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        log.error("checkpoint %s is not a regular file: not read, starting fresh, counters from 0", path)
        return None
    return f


def _load_file(path: str) -> dict[str, Any] | None:
    try:
        f = _open_regular(path)
        if f is None:
            return None
        with f:
            data = json.loads(f.read())
    except FileNotFoundError:
        log.info("no checkpoint at %s yet: starting fresh", path)
        return None
    except (OSError, ValueError) as err:
        log.error("cannot read checkpoint %s (%s): starting fresh, counters from 0", path, err)
        return None
    return _checked(path, data)


def _load_slot(path: str) -> dict[str, Any] | None:
    """The checkpoint in a slot file, or None when there is none or it is torn (a write cut short
    by a crash: its length or CRC does not match; not an error, the other files hold an older one)."""
    try:
        f = _open_regular(path)
        if f is None:
            return None
        with f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("cannot read checkpoint slot %s (%s): not used", path, err)
        return None
    if len(raw) < SLOT_HEADER.size:
        return None   # emptied at a durable write, or never written
    magic, length, seq, crc = SLOT_HEADER.unpack_from(raw)
    body = raw[SLOT_HEADER.size:SLOT_HEADER.size + length]
    if magic != SLOT_MAGIC or len(body) != length or zlib.crc32(body) != crc:
        log.info("checkpoint slot %s is torn (a write was cut short): not used", path)
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("seq") != seq:
        return None
    return _checked(path, data)


def _checked(path: str, data: Any) -> dict[str, Any] | None:
    """data migrated to VERSION, or None (logged) when it is not a checkpoint this exporter reads."""
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
    if not isinstance(data.get("seq", 0), int):
        data["seq"] = 0
    return data


def encode(sources: dict[str, Any], metrics: dict[str, Any], files: list[dict[str, Any]] | None,
           seq: int) -> bytes:
    """The JSON of one checkpoint."""
    data = {"version": VERSION, "seq": seq, "written_at": time.time(), "sources": sources, "metrics": metrics,
            "files": files or []}
    return json.dumps(data, separators=(",", ":")).encode()


def save(path: str, sources: dict[str, Any], metrics: dict[str, Any],
         files: list[dict[str, Any]] | None = None, seq: int = 0) -> None:
    """Write the checkpoint durably (see the module's docstring); OSError when it cannot be written."""
    write_durable(path, encode(sources, metrics, files, seq))


def write_durable(path: str, body: bytes) -> None:
    """body to a temporary file, fsync, rename over path, fsync of the directory."""
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
    """Writes the checkpoints of one state file: durable at most every sync_interval seconds
    (and whenever asked), in the two slots in turn between; logs a failure once, and the
    recovery after it."""

    def __init__(self, path: str, sync_interval: float = SYNC_INTERVAL) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self.failing = False
        self.seq = 0                  # of the last checkpoint written or loaded
        self._synced_at: float | None = None   # monotonic time of the last durable write
        self._slots: list[int] = [-1, -1]      # open descriptors of the slot files (opened at first use)
        self._unsynced = False        # the newest checkpoint is in a slot only

    def sync_deadline(self) -> float | None:
        """When (monotonic) a durable write is owed: the newest checkpoint is in a slot only, and
        it must be on disk within sync_interval even when nothing more is written after it."""
        if not self._unsynced or self._synced_at is None:
            return None
        return self._synced_at + self.sync_interval

    def load(self) -> dict[str, Any] | None:
        """The newest checkpoint (see load()); the next one written gets a higher "seq"."""
        data = load(self.path)
        if data is not None:
            self.seq = max(self.seq, int(data.get("seq", 0)))
        return data

    def write(self, sources: dict[str, Any], metrics: dict[str, Any],
              files: list[dict[str, Any]] | None = None, durable: bool = False) -> bool:
        """Write the next checkpoint; durable=True (start, stop) or a durable write older than
        sync_interval writes the state file itself. False (logged once) when it failed."""
        seq = self.seq + 1
        now = time.monotonic()
        sync = durable or self._synced_at is None or now - self._synced_at >= self.sync_interval
        try:
            body = encode(sources, metrics, files, seq)
            if sync:
                self._synced_at = now   # the attempt: one that failed is retried a sync_interval later
                write_durable(self.path, body)
                self._unsynced = False
                self._empty_slots()
            else:
                self._write_slot(seq % 2, seq, body)
                self._unsynced = True
        except (OSError, ValueError, TypeError) as err:
            if not self.failing:
                log.error("cannot write checkpoint %s (%s): carrying on; a restart will recount "
                          "from the last checkpoint written", self.path, err)
            self.failing = True
            return False
        self.seq = seq
        if self.failing:
            log.info("checkpoint %s written again", self.path)
            self.failing = False
        return True

    def close(self) -> None:
        for i, fd in enumerate(self._slots):
            if fd >= 0:
                os.close(fd)
            self._slots[i] = -1

    def _write_slot(self, i: int, seq: int, body: bytes) -> None:
        record = SLOT_HEADER.pack(SLOT_MAGIC, len(body), seq, zlib.crc32(body)) + body
        fd = self._slots[i]
        if fd < 0:
            fd = os.open(self.path + SLOTS[i], os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(f"{self.path + SLOTS[i]} is not a regular file")
            self._slots[i] = fd
        try:
            if os.pwrite(fd, record, 0) != len(record):
                raise OSError(f"short write to {self.path + SLOTS[i]}")
        except OSError:
            os.close(fd)   # opened afresh next time (the file may have been replaced or removed)
            self._slots[i] = -1
            raise

    def _empty_slots(self) -> None:
        """After a durable write the slots hold only older checkpoints: empty them, so that the
        state file alone says where a restart resumes (an edit of it after a stop counts)."""
        for i, suffix in enumerate(SLOTS):
            fd = self._slots[i]
            try:
                if fd >= 0:
                    os.ftruncate(fd, 0)
                elif os.path.exists(self.path + suffix):
                    os.truncate(self.path + suffix, 0)
            except OSError as err:   # harmless: an older slot loses to the state file's higher seq
                log.debug("cannot empty checkpoint slot %s: %s", self.path + suffix, err)
