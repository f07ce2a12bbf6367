"""Modules a process refuses to import until told otherwise (standard library only).

The command line defers pandas: DuckDB imports it, when it is installed (pyspark needs
it), on the first parameterised query of every process, only to check whether a
parameter is a pandas object; darkmap passes none, and the import costs 0.18 s and
85 MB on every command. Only the Spark engine needs pandas, and
:func:`darkmap.chain.spark.sql_module` allows it before importing pyspark.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["allow_import", "defer_import", "deferred"]

_DEFERRED: set[str] = set()


class _Finder:
    """A meta-path finder that refuses the top-level packages in :data:`_DEFERRED`."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in _DEFERRED:
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
