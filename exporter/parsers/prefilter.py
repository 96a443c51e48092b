"""Finding candidate lines in a chunk fast: the first step of the syslog parser (DESIGN.md section 6).

Part of the parser stage. Each message parser gives a PREFILTER, a bytes regex that every
line it can use matches. Searching a chunk with one OR of all of them is slow in Python's
regex engine: at every byte it tries every alternative. A pattern that begins with a fixed
string, on the other hand, is searched at memory speed. So the OR is taken apart into its
top-level alternatives (a leading group "(?:a|b)rest" becomes "arest" and "brest"), each is
compiled on its own and searched over the whole chunk, and the starts of the lines they hit
are merged. The result is the same set of lines the OR would hit.

Each search is a pass over the whole chunk, at about one byte per CPU cycle whatever the
pattern, so the number of passes is what counts. Alternatives that start with the same byte
are searched together, as one pattern "first byte, then any of the rests" (" 2\\.", " 4\\."
and " rejected" become " (?:2\\.|4\\.|rejected)"): the engine still skips ahead to that byte
at the same speed, and one pass replaces several. On a Postfix log this cut the 23 passes
the PREFILTERs gave to 11, and the time of the candidate search by about a third.

Writing a PREFILTER: start each alternative with a few fixed bytes ("status=", " rejected ");
an alternative that starts with a class or an anchor still works, only slower.
"""

from __future__ import annotations

import re


def split_alternatives(pattern: bytes) -> list[bytes]:
    """The top-level alternatives of a regex: b"a|(?:b|c)d|e" -> [b"a", b"(?:b|c)d", b"e"]."""
    parts: list[bytes] = []
    depth = 0
    start = 0
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index:index + 1]
        if char == b"\\":
            index += 2
            continue
        if in_class:
            if char == b"]":
                in_class = False
        elif char == b"[":
            in_class = True
            if pattern[index + 1:index + 2] == b"^":
                index += 1
            if pattern[index + 1:index + 2] == b"]":
                index += 1  # "[]...]": a leading "]" is a member, not the end
        elif char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
        elif char == b"|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    parts.append(pattern[start:])
    return parts


def _closing_paren(pattern: bytes, open_at: int) -> int:
    """Index of the ")" closing the group opened at open_at, or -1."""
    depth = 0
    index = open_at
    in_class = False
    while index < len(pattern):
        char = pattern[index:index + 1]
        if char == b"\\":
            index += 2
            continue
        if in_class:
            if char == b"]":
                in_class = False
        elif char == b"[":
            in_class = True
            if pattern[index + 1:index + 2] == b"^":
                index += 1
            if pattern[index + 1:index + 2] == b"]":
                index += 1
        elif char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def expand_leading_group(alternative: bytes, limit: int = 16) -> list[bytes]:
    """b"(?:a|b)rest" -> [b"arest", b"brest"] so each starts with fixed bytes; else [alternative]."""
    if not alternative.startswith(b"(?:"):
        return [alternative]
    close = _closing_paren(alternative, 0)
    if close < 0:
        return [alternative]
    rest = alternative[close + 1:]
    if rest[:1] in (b"?", b"*", b"+", b"{"):
        return [alternative]  # the group is optional or repeated: cannot be taken apart
    branches = split_alternatives(alternative[3:close])
    expanded: list[bytes] = []
    for branch in branches:
        expanded.extend(expand_leading_group(branch + rest, limit))
    return expanded if len(expanded) <= limit else [alternative]


_SPECIAL = re.compile(rb"[\\.^$*+?{}\[\]()|]")


def _covered(alternative: bytes, alternatives: list[bytes]) -> bool:
    """True when a plain fixed string in alternatives starts alternative: it finds every line
    alternative finds ("status=" covers "status=[245]\\."), so one search is enough."""
    for other in alternatives:
        if other != alternative and alternative.startswith(other) and _SPECIAL.search(other) is None:
            return True
    return False


_QUANTIFIER = (b"*", b"+", b"?", b"{")
_NUMBERED_OR_NAMED = re.compile(rb"\\[1-9]|\(\?P[<=]")


def _groupable(alternative: bytes) -> bool:
    """True when alternative starts with one plain byte that can be taken out in front of a group."""
    return (len(alternative) > 1 and _SPECIAL.match(alternative) is None
            and alternative[1:2] not in _QUANTIFIER            # "a*b": the "a" belongs to the "*"
            and _NUMBERED_OR_NAMED.search(alternative) is None)  # group numbers and names would clash


def group_by_first_byte(alternatives: list[bytes]) -> list[bytes]:
    """Alternatives that start with the same plain byte, as one pattern: [b"ab", b"ac", b"d"] -> [b"a(?:b|c)", b"d"]."""
    groups: dict[bytes, list[bytes]] = {}
    patterns: list[bytes] = []
    for alternative in alternatives:
        if _groupable(alternative):
            groups.setdefault(alternative[:1], []).append(alternative)
        else:
            patterns.append(alternative)
    for first, members in groups.items():
        if len(members) == 1:
            patterns.append(members[0])
        else:
            patterns.append(re.escape(first) + b"(?:" + b"|".join(member[1:] for member in members) + b")")
    return patterns


class CandidateFinder:
    """Line starts of the lines that any of the fragments matches."""

    def __init__(self, fragments: list[bytes]) -> None:
        alternatives: list[bytes] = []
        for fragment in fragments:
            for alternative in split_alternatives(fragment):
                for simple in expand_leading_group(alternative):
                    if simple and simple not in alternatives:
                        alternatives.append(simple)
        alternatives = [alternative for alternative in alternatives if not _covered(alternative, alternatives)]
        self.patterns = [re.compile(pattern, re.MULTILINE) for pattern in group_by_first_byte(alternatives)]
        # For one short line at a time the OR is fine, and one call is cheaper than many.
        self.any = re.compile(b"|".join(b"(?:" + fragment + b")" for fragment in fragments), re.MULTILINE)

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
