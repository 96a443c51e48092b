"""Finding candidate lines in a chunk fast: the first step of the syslog parser (DESIGN.md section 6).

Part of the parser stage. Each message parser lists PREFILTERS: small bytes patterns, at
least one of which every line it can use matches. Searching a chunk with one OR of all of
them is slow in Python's regex engine, which tries every alternative at every byte; a
pattern that begins with a fixed byte, on the other hand, is searched at memory speed. So
each pattern is searched over the whole chunk on its own, and the starts of the lines hit
are merged: the same lines the OR would find.

Each search is a pass over the chunk, so the number of passes is what counts. Patterns
that start with the same plain byte are searched together as one ("status=" and "stat="
become "s(?:tatus=|tat=)"), and a plain string that starts another pattern makes that
pattern's own search unneeded ("status=" finds every line "status=[245]\\." finds).

Writing PREFILTERS: one alternative per pattern (no top-level "|"), each starting with a
few fixed bytes ("status=", " rejected"); a pattern that starts with a class or an anchor
still works, only slower.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(rb"[\\.^$*+?{}\[\]()|]")
_QUANTIFIER = (b"*", b"+", b"?", b"{")
_NUMBERED_OR_NAMED = re.compile(rb"\\[1-9]|\(\?P[<=]")


def _plain(pattern: bytes) -> bool:
    return _SPECIAL.search(pattern) is None


def drop_covered(patterns: list[bytes]) -> list[bytes]:
    """Leave out a pattern that a plain string in the list starts: that string finds its lines."""
    return [p for p in patterns
            if not any(other != p and _plain(other) and p.startswith(other) for other in patterns)]


def _groupable(pattern: bytes) -> bool:
    """True when pattern starts with one plain byte that can be taken out in front of a group."""
    return (len(pattern) > 1 and _SPECIAL.match(pattern) is None
            and pattern[1:2] not in _QUANTIFIER              # "a*b": the "a" belongs to the "*"
            and _NUMBERED_OR_NAMED.search(pattern) is None)  # group numbers and names would clash


def group_by_first_byte(patterns: list[bytes]) -> list[bytes]:
    """Patterns that start with the same plain byte, as one: [b"ab", b"ac", b"d"] -> [b"a(?:b|c)", b"d"]."""
    groups: dict[bytes, list[bytes]] = {}
    searches: list[bytes] = []
    for pattern in patterns:
        if _groupable(pattern):
            groups.setdefault(pattern[:1], []).append(pattern)
        else:
            searches.append(pattern)
    for first, members in groups.items():
        if len(members) == 1:
            searches.append(members[0])
        else:
            searches.append(re.escape(first) + b"(?:" + b"|".join(member[1:] for member in members) + b")")
    return searches


class CandidateFinder:
    """Line starts of the lines that any of the patterns matches."""

    def __init__(self, patterns: list[bytes]) -> None:
        unique = list(dict.fromkeys(patterns))
        self.patterns = [re.compile(p, re.MULTILINE) for p in group_by_first_byte(drop_covered(unique))]
        # For one short line at a time the OR is fine, and one call is cheaper than many.
        self.any = re.compile(b"|".join(b"(?:" + p + b")" for p in unique), re.MULTILINE)

    def line_starts(self, chunk: bytes) -> list[int]:
        """Sorted offsets of the starts of the lines of chunk that hold a candidate."""
        starts: set[int] = set()
        add = starts.add
        find = chunk.find
        rfind = chunk.rfind
        for pattern in self.patterns:
            search = pattern.search
            pos = 0
            while True:
                found = search(chunk, pos)
                if found is None:
                    break
                at = found.start()
                add(rfind(b"\n", 0, at) + 1)
                pos = find(b"\n", at) + 1  # one hit per line is enough: go on from the next line
                if pos == 0:
                    break
        return sorted(starts)
