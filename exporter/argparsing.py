"""The argument parser every `ndr-exporter` command uses: argparse, plus a suggestion for a typo.

Beside the pipeline, at its front door: exporter.cli and each command module (explain,
report, backfill, demo) build their flags with SuggestingParser, so that an unknown flag
is refused with exit status 2 and the nearest known flag
(`unknown flag '--sorce.path'; did you mean '--source.path'?`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence


class SuggestingParser(argparse.ArgumentParser):
    """An ArgumentParser that names the nearest known flag when it meets an unknown one.

    commands: words that are commands of the program (not of this parser); one found among the
    arguments gets "a command goes first" instead of "unrecognized arguments"."""

    def __init__(self, *args: Any, commands: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = tuple(commands)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        # Unknown flags first, before argparse's own checks (a missing required flag would hide a typo).
        unknown = self._unknown_flag(sys.argv[1:] if args is None else list(args))
        if unknown is not None:
            known = [s for s in self._option_string_actions if s.startswith("--")]
            import difflib   # only for a mistyped flag: not loaded by every daemon

            close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.error(f"unknown flag {unknown!r}{hint}")
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            first = extras[0]
            if first in self.commands:
                program = self.prog.split()[0]
                self.error(f"{first!r}: a command goes first, e.g. {program} {first} --help")
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _unknown_flag(self, args: list[str]) -> str | None:
        """The first --flag among args that is neither a known flag nor (argparse's abbreviations)
        the start of exactly one; None if there is none."""
        options = self._option_string_actions
        for arg in args:
            if arg == "--":
                break
            if not arg.startswith("--") or len(arg) == 2 or " " in arg:
                continue
            flag = arg.split("=", 1)[0]
            if flag in options or (self.allow_abbrev and any(o.startswith(flag) for o in options)):
                continue
            return flag
        return None
