"""Modules a process refuses to import until told otherwise (standard library only).

The command line defers pandas: DuckDB imports it, when it is installed (pyspark needs
it), on the first parameterised query of every process, only to check whether a
parameter is a pandas object; darkmap passes none, and the import costs 0.18 s and
85 MB on every command. Only the Spark engine needs pandas, and
:func:`darkmap.chain.spark.sql_module` allows it before importing pyspark.

:func:`import_numpy_without_blas_threads` is the same kind of start-up policy for a
command that does no linear algebra (``darkmap ingest``): numpy's OpenBLAS starts a
thread per core when numpy is imported, and those threads spin for a while on the other
core, which a shared machine pays for.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["allow_import", "defer_import", "deferred", "import_numpy_without_blas_threads",
           "unimportable"]

_DEFERRED: set[str] = set()
_HERE = threading.local()
"""``names``: what :func:`unimportable` refuses in this thread now."""


class _Finder:
    """A meta-path finder that refuses the modules in :data:`_DEFERRED` (and in this
    thread those :func:`unimportable` names) and their submodules (``pandas`` refuses
    ``pandas.core``; ``pyarrow.dataset`` refuses neither ``pyarrow`` nor
    ``pyarrow.compute``)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        here: frozenset[str] = getattr(_HERE, "names", frozenset())
        if not _DEFERRED and not here:
            return
        head = name
        while head not in _DEFERRED and head not in here:
            head, dot, _ = head.rpartition(".")
            if not dot:
                return
        raise ModuleNotFoundError(
            f"{name} is deferred in this darkmap process (darkmap.deferred_imports)",
            name=name)


_FINDER = _Finder()


def defer_import(*names: str) -> None:
    """Make ``import NAME`` fail as if NAME were not installed, until
    :func:`allow_import`. Modules already imported are not affected."""
    _DEFERRED.update(names)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def allow_import(*names: str) -> None:
    """Lift :func:`defer_import` for ``names``."""
    _DEFERRED.difference_update(names)


def deferred() -> frozenset[str]:
    """The names deferred now."""
    return frozenset(_DEFERRED)


@contextmanager
def unimportable(*names: str) -> Iterator[None]:
    """Refuse to import ``names`` (and their submodules) in this thread inside the block,
    as :func:`defer_import` does; modules already imported are not affected.

    For a statement of a library that imports a module only to ask whether an object is
    one of its classes: no object can be while the module is not loaded. Another
    thread imports as before.
    """
    before: frozenset[str] = getattr(_HERE, "names", frozenset())
    added = frozenset(n for n in names if n not in sys.modules) - before
    if not added:
        yield
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _HERE.names = before | added
    try:
        yield
    finally:
        _HERE.names = before


def import_numpy_without_blas_threads() -> None:
    """Import numpy with OpenBLAS on one thread, for a process that does no linear algebra.

    OpenBLAS reads ``OPENBLAS_NUM_THREADS`` once, when numpy loads it, and otherwise starts
    a thread per core that spins after its start: 0.06-0.1 s of CPU on the other core of a
    two-core machine, and as much wall time when that core is busy (``darkmap ingest`` of
    a 14,773-row CSV: 1.06 -> 0.90 s with another job running). The variable is set only
    for the import (child processes see the environment as it was) and never over one
    the user set; a numpy already imported is left as it is.
    """
    if "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy as np  # noqa: F401, PLC0415 - the point is to import it here, once
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]
