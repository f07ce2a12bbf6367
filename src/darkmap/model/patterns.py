"""Regular expressions compiled on first use, for modules that hold many and need them
only for some files.

Choosing a file's importer loads every importer (:mod:`darkmap.plugins`), and ``re``
compiles a module's patterns when the module is imported: the SQL dump reader's 25 took
about 6 ms of every ``darkmap ingest``, a CSV's included, which never uses one.
:func:`lazy_compile` returns a stand-in that compiles the pattern the first time one of
its attributes is read, then keeps the compiled pattern's methods and attributes as its
own: a later ``PATTERN.match`` is one attribute look-up, as on a compiled pattern.

The stand-in is not an ``re.Pattern`` (``isinstance`` says no, and ``re.match(stand_in,
...)`` refuses it): use its methods.
"""

from __future__ import annotations

import re
from typing import Any, cast

__all__ = ["lazy_compile"]

_KEPT = ("match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split",
         "scanner", "pattern", "flags", "groups", "groupindex")
"""What the stand-in takes over from the compiled pattern on first use."""


class _LazyPattern:
    """A pattern compiled when first used (see the module docstring)."""

    def __init__(self, pattern: str, flags: int) -> None:
        self._source = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern (compiled now if not yet)."""
        if self._compiled is None:
            rx = re.compile(*self._source)
            for name in _KEPT:  # instance attributes: later look-ups never reach __getattr__
                setattr(self, name, getattr(rx, name))
            self._compiled = rx
        return self._compiled

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle... ask for dunders: never compile
        return getattr(self.compiled(), name)

    def __repr__(self) -> str:
        return f"lazy_compile({self._source[0]!r}, {self._source[1]!r})"


def lazy_compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``, done when the result is first used."""
    return cast("re.Pattern[str]", _LazyPattern(pattern, flags))

