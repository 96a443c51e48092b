"""The parser stage's registries: every log format and every syslog program, each declared once.

Part of the parser stage. Nothing is listed here: every module of exporter/parsers/ is
imported once, and what a module declares says what it is:

  a log format       FORMAT (its name in config), PARSER (a class made with no arguments,
                     keeping the base.py contract), ORDER (where it is listed: --help, errors),
                     and either DETECT_ORDER with detects(sample) -> bool (parsers/detect.py
                     asks the formats in DETECT_ORDER) or FALLBACK = True (the one format
                     detection falls back to: syslog);
  a syslog program   MTA (one of exporter.events.MTAS), PROGRAMS (the exact syslog program
                     names it claims, non-empty), PREFILTERS and parse_message(): the
                     message-parser contract the syslog parser dispatches on;
  anything else      a helper (base, detect, envelope, prefilter, the generic fallback, ...).

So adding a log format is one new module (and its golden files, tests/testdata/parsers/), and
adding a syslog program is one new module or one more name in a module's PROGRAMS. A module
that cannot be imported, a program claimed twice or an MTA outside events.MTAS stops the
start with a RegistryError that names the module: nothing is skipped in silence.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Callable

from exporter.events import MTAS

PACKAGE = "exporter.parsers"


class RegistryError(Exception):
    """A parser module that cannot be loaded, or declares something inconsistent."""


@dataclass(frozen=True)
class Format:
    name: str
    parser: Callable[[], Any]
    module: str
    order: int
    detect_order: int | None               # None: the fallback
    detects: Callable[[Any], bool] | None


@cache
def modules() -> tuple[ModuleType, ...]:
    """Every module of the parser package, imported, by name."""
    import exporter.parsers as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{PACKAGE}.{info.name}"
        try:
            found.append(importlib.import_module(name))
        except Exception as error:
            raise RegistryError(f"cannot load parser module {name}: {type(error).__name__}: {error}") from error
    return tuple(found)


@cache
def formats() -> dict[str, Format]:
    """Format name -> Format, in ORDER."""
    found: list[Format] = []
    for module in modules():
        if not hasattr(module, "FORMAT"):
            continue
        try:
            fallback = bool(getattr(module, "FALLBACK", False))
            detect_order = None if fallback else int(module.DETECT_ORDER)
            detects = None if fallback else module.detects
            found.append(Format(str(module.FORMAT), module.PARSER, module.__name__, int(module.ORDER),
                                detect_order, detects))
        except AttributeError as error:
            raise RegistryError(f"format module {module.__name__} is incomplete: {error}") from error
    names = [f.name for f in found]
    for name in names:
        if names.count(name) > 1:
            raise RegistryError(f"format {name!r} is declared by more than one module")
    if sum(1 for f in found if f.detect_order is None) != 1:
        raise RegistryError("exactly one format must be the detection FALLBACK")
    return {f.name: f for f in sorted(found, key=lambda f: (f.order, f.name))}


def format_names() -> tuple[str, ...]:
    return tuple(formats())


def fallback_format() -> str:
    return next(f.name for f in formats().values() if f.detect_order is None)


@cache
def message_parsers() -> tuple[ModuleType, ...]:
    """The modules that parse a syslog program's messages, by module name."""
    found = []
    claimed: dict[str, str] = {}
    for module in modules():
        programs = getattr(module, "PROGRAMS", None)
        if not programs or not hasattr(module, "parse_message"):
            continue   # not a message parser (the generic fallback claims no program)
        if module.MTA not in MTAS:
            raise RegistryError(f"{module.__name__}: MTA {module.MTA!r} is not one of exporter.events.MTAS")
        for program in programs:
            if program in claimed:
                raise RegistryError(f"syslog program {program!r} is claimed by {claimed[program]} "
                                    f"and {module.__name__}")
            claimed[program] = module.__name__
        found.append(module)
    return tuple(found)


def programs() -> dict[str, str]:
    """Exact syslog program name -> the module that claims it."""
    return {program: module.__name__ for module in message_parsers() for program in module.PROGRAMS}
