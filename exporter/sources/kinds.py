"""The source kinds: every module of exporter/sources/ that declares KIND is one.

Part of the source stage. A source module declares, where its source is defined:

    KIND = "journald"                         # the kind's name (SourceConfig.kind)
    def make_source(config, sink, wake, state, watcher) -> Source

so adding a source kind is one module here (and its keys in config.py and flags in cli.py,
which spell what the kind reads: a path, a journal, stdin). The daemon makes every source
through make(). A module of this package that cannot be imported stops the start with an
error naming it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import Any, Callable

PACKAGE = "exporter.sources"


class SourceKindError(Exception):
    """A source module that cannot be loaded, or a kind declared twice."""


@cache
def kinds() -> dict[str, ModuleType]:
    """Kind name -> the module that defines it, by name."""
    import exporter.sources as package

    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{PACKAGE}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as error:
            raise SourceKindError(f"cannot load source module {name}: {type(error).__name__}: {error}") from error
        kind = getattr(module, "KIND", None)
        if kind is None:
            continue
        if kind in found:
            raise SourceKindError(f"source kind {kind!r} is declared by {found[kind].__name__} and {name}")
        found[str(kind)] = module
    return found


def make(config: Any, sink: Any, wake: Callable[[], None], state: dict[str, Any] | None, watcher: Any,
         known: list[dict[str, Any]] | None = None) -> Any:
    """A new source for this config (ValueError names an unknown kind). known: file positions of
    sources that are gone (exporter/daemon.py), passed to the kinds that follow files by identity
    (their make_source takes a `known` argument: the file kind)."""
    module = kinds().get(config.kind)
    if module is None:
        raise ValueError(f"unknown source kind {config.kind!r}; known kinds: {', '.join(kinds())}")
    if getattr(module, "FOLLOWS_FILES", False):
        return module.make_source(config, sink, wake, state, watcher, known=known)
    return module.make_source(config, sink, wake, state, watcher)
