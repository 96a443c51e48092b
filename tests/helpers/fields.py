"""Lines built field by field for the fast paths' differential tests: a field's well-formed and
odd values, hypothesis draws with at most one odd field, and random one-byte edits."""

from __future__ import annotations

from hypothesis import strategies as st


def choice(good: list, odd: list) -> tuple[list, list]:
    """A field's well-formed values and its odd ones."""
    return good, odd


@st.composite
def fields(draw: st.DrawFn, *specs: tuple[list, list]) -> list:
    """One value per field, all well-formed but at most one, which is odd."""
    values = [draw(st.sampled_from(good)) for good, _odd in specs]
    odd_at = draw(st.integers(min_value=-1, max_value=len(specs) - 1))
    if odd_at >= 0:
        values[odd_at] = draw(st.sampled_from(specs[odd_at][1]))
    return values


def edited(line: str, edits: list[tuple[float, str, str]]) -> str:
    """line with each (where as a share of its length, insert/replace/delete, byte) edit applied."""
    for share, how, char in edits:
        at = min(int(share * len(line)), max(len(line) - 1, 0))
        if how == "insert":
            line = line[:at] + char + line[at:]
        elif how == "replace":
            line = line[:at] + char + line[at + 1:]
        else:
            line = line[:at] + line[at + 1:]
    return line
