"""Rotated copies of a log file, and how a file is recognised again (for the file source).

Part of the source stage. A file is known by (device, inode) and by a fingerprint of
its first bytes. A renamed file keeps its inode; a copy (copytruncate) or a compressed
file (gzip, known by its magic bytes: exporter/framing.py) does not, so those are
recognised by the fingerprint of their content alone.
"""

from __future__ import annotations

import hashlib
import os
import re

from exporter.framing import head as log_head, is_gzip

FP_BYTES = 1024           # the fingerprint covers this much of a file's start (less while it is shorter)


def fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


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
    return [os.path.join(directory, n) for n in sorted(names, key=_age_key)]


def _file_head(path: str, n: int) -> tuple[bytes, tuple[int, int], int]:
    """First n bytes, (dev, ino) and size of a plain file; (b"", (0, 0), -1) when it cannot be read."""
    try:
        with open(path, "rb") as f:
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
