"""Hash every table of a workspace (volatile columns left out) to compare two stores.

Usage: python scripts/table_hashes.py WORKSPACE [> hashes.json]

Two workspaces that hold the same evidence and analysis print the same JSON; used to
check that a refactor leaves the store unchanged (see docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import duckdb

VOLATILE = {"run_id", "processed_at", "captured_at", "started_at", "finished_at",
            "summary", "args", "applied_at", "created_at", "computed_at", "seconds",
            "assessed_at", "imported_at", "linked_at", "clustered_at"}
SKIP = {"ingest_runs", "schema_migrations"}


SCHEMA_CATALOG = {
    "tables": "SELECT table_name, sql FROM duckdb_tables() ORDER BY ALL",
    "columns": "SELECT table_name, column_index, column_name, data_type, column_default, "
               "is_nullable, numeric_precision, numeric_scale FROM duckdb_columns() ORDER BY ALL",
    "constraints": "SELECT table_name, constraint_index, constraint_type, constraint_text, "
                   "expression, constraint_column_names FROM duckdb_constraints() ORDER BY ALL",
    "indexes": "SELECT table_name, index_name, is_unique, sql FROM duckdb_indexes() "
               "ORDER BY ALL",
    "views": "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL",
    "sequences": "SELECT sequence_name, start_value, increment_by FROM duckdb_sequences() "
                 "ORDER BY ALL",
    "migrations": "SELECT version, name FROM schema_migrations ORDER BY ALL",
}
"""What two workspaces' schemas are compared by: tables, columns, constraints, indexes,
views, sequences and the migrations applied."""


def schema_catalog(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """The schema of the open workspace ``con`` (:data:`SCHEMA_CATALOG`), row by row."""
    return {k: con.execute(q).fetchall() for k, q in SCHEMA_CATALOG.items()}


def table_hashes(db: Path) -> dict[str, dict[str, object]]:
    """Per table: row count and sha256 of its sorted rows (values as text)."""
    con = duckdb.connect(str(db), read_only=True)
    out: dict[str, dict[str, object]] = {}
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "ORDER BY table_name").fetchall()]
    for t in names:
        if t in SKIP:
            continue
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [t]).fetchall() if r[0] not in VOLATILE]
        h = hashlib.sha256()
        n = 0
        if cols:
            sel = ", ".join(f'"{c}"::VARCHAR' for c in cols)
            cur = con.execute(f'SELECT {sel} FROM "{t}" ORDER BY ALL')
            while rows := cur.fetchmany(10000):
                for r in rows:
                    h.update(repr(r).encode())
                    n += 1
        out[t] = {"rows": n, "sha256": h.hexdigest()}
    con.close()
    return out


if __name__ == "__main__":
    ws = Path(sys.argv[1])
    db = ws / "darkmap.duckdb" if ws.is_dir() else ws
    print(json.dumps(table_hashes(db), indent=1, sort_keys=True))
