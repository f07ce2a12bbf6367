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
from typing import Any

__all__ = ["allow_import", "defer_import", "deferred", "import_numpy_without_blas_threads"]

_DEFERRED: set[str] = set()


class _Finder:
    """A meta-path finder that refuses the modules in :data:`_DEFERRED` and their
    submodules (``pandas`` refuses ``pandas.core``; a dotted name refuses neither its
    parent nor its siblings)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if not _DEFERRED:
            return
        head = name
        while head not in _DEFERRED:
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
