"""Rotated copies of a log file, and how a file is recognised again (for the file source).

Part of the source stage. A file is known by (device, inode) and by a fingerprint of
its first bytes (SHA-256 of the first FP_BYTES, or of the whole file while it is shorter),
as Filebeat's and Vector's fingerprint identities know a file by its first bytes rather
than by where it is stored. The rule (same_file) is:
  - the fingerprint of the file's first fp_len bytes must be the one recorded, and
  - either the fingerprint is a full one (FP_BYTES: content alone is enough, so a file seen
    under another device number after a remount, or under another name, is the same file),
    or the inode is the same (a short fingerprint says little; the device may still differ).
A renamed file keeps its inode; a copy (copytruncate) or a compressed file (gzip, known by
its magic bytes: exporter/framing.py) does not, so those are recognised by the fingerprint
of their content alone. Anything that is not a regular file (a FIFO named mail.log.pipe) is
never a rotated copy, and is never opened: opening a FIFO would block.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat

from exporter.framing import file_kind, head as log_head, is_gzip, open_regular

log = logging.getLogger("ndr_exporter.sources.rotated")

FP_BYTES = 1024           # the fingerprint covers this much of a file's start (less while it is shorter)


def fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def same_file(fp: str, fp_len: int, ino: int, head: bytes, file_ino: int) -> bool:
    """True when a file whose first bytes are head (at least fp_len of them) and whose inode
    is file_ino is the file recorded with fingerprint fp of fp_len bytes and inode ino."""
    if len(head) < fp_len or fingerprint(head[:fp_len]) != fp:
        return False
    return fp_len >= FP_BYTES or file_ino == ino


NUMBERED = re.compile(r"\.(\d+)(?:\.gz)?$")   # mail.log.3, mail.log.3.gz: logrotate without dateext


def _age_key(name: str) -> tuple[int, int, str]:
    """Sort key, oldest first: mail.log.3 before mail.log.2 before mail.log.1; else by name (dateext)."""
    m = NUMBERED.search(name)
    if m:
        return (0, -int(m.group(1)), name)
    return (1, 0, name)


def siblings(path: str) -> list[str]:
    """Rotated copies of path in its directory (mail.log.1, mail.log.2.gz, mail.log-20240101), oldest first."""
    directory, base = os.path.split(path)
    try:
        names = [n for n in os.listdir(directory) if n.startswith(base) and n != base]
    except OSError:
        return []
    found = []
    for name in sorted(names, key=_age_key):
        candidate = os.path.join(directory, name)
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            log.info("skipping %s: not a regular file (%s)", candidate, file_kind(mode))
            continue
        found.append(candidate)
    return found


def _file_head(path: str, n: int) -> tuple[bytes, tuple[int, int], int]:
    """First n bytes, (dev, ino) and size of a plain file; (b"", (0, 0), -1) when it cannot be read."""
    try:
        with open_regular(path) as f:
            st = os.fstat(f.fileno())
            return f.read(n), (st.st_dev, st.st_ino), st.st_size
    except OSError:
        return b"", (0, 0), -1


def find_rotated(path: str, ident: tuple[int, int] | None, fp: str, fp_len: int,
                 exclude: set[tuple[int, int]]) -> str | None:
    """The sibling of path that holds the file known by (dev, ino) and fingerprint.

    A renamed file keeps its inode; a copy (copytruncate) or a compressed file
    (.gz) does not, so those are known by their first fp_len bytes alone.
    """
    by_fp = None
    for candidate in reversed(siblings(path)):  # newest first
        if is_gzip(candidate):
            head, cand_id = log_head(candidate, fp_len), (0, 0)
        else:
            head, cand_id, _ = _file_head(candidate, fp_len)
            if cand_id in exclude:
                continue
        same_content = fp_len > 0 and len(head) == fp_len and fingerprint(head) == fp
        if cand_id == ident and (same_content or fp_len == 0):
            return candidate
        if same_content and by_fp is None:
            by_fp = candidate
    return by_fp
