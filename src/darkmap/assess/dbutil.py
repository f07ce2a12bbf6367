"""Bulk inserts through Arrow (DuckDB's executemany is row by row and slow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

__all__ = ["insert_rows"]


def insert_rows(con: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; returns the count."""
    if not rows:
        return 0
    arrays = {}
    for i, c in enumerate(columns):
        vals = [r[i] for r in rows]
        try:
            arrays[c] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c] = pa.array([None if v is None else str(v) for v in vals], type=pa.string())
    name = f"_batch_{table}"
    con.register(name, pa.table(arrays))
    try:
        cols = ", ".join(columns)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {name}")
    finally:
        con.unregister(name)
    return len(rows)
