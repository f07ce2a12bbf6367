"""Write ``src/darkmap/store/schema.sql``: the schema the migrations build, as one script.

Usage: python scripts/schema_sql.py [--check]

A new workspace is created from this script (one transaction, 66 ``CREATE TABLE``
statements and the indexes the migrations create) instead of by running every migration
in turn, which created, copied, dropped and renamed tables that a new workspace never
needs (migration 007 rebuilds eight). The script is generated, never edited: this
program runs every shipped migration in an in-memory DuckDB and writes each table as
DuckDB's catalog describes it (columns, types, constraints in their order), in creation
order, then each index as DuckDB writes it, under a header naming the migrations it
stands for. ``Workspace.migrate`` uses the script only for a database with no table in
it and only when the header names exactly the migrations shipped, and
``tests/test_schema_script.py`` checks that a workspace made from it has the same
catalog (tables, columns, constraints, indexes, views, sequences) and the same migration
bookkeeping as one made by the migrations. Run it after adding a migration; ``--check``
exits 1 when the script is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from darkmap.store.workspace import SCHEMA_SCRIPT, migrations, schema_script_text

OUT = Path(__file__).resolve().parents[1] / "src" / "darkmap" / "store" / SCHEMA_SCRIPT


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create(con: duckdb.DuckDBPyConnection, oid: int, table: str) -> str:
    """The ``CREATE TABLE`` of one table that gives back its catalog entry exactly.

    DuckDB's own ``duckdb_tables().sql`` leaves out a ``NOT NULL`` written on a primary
    key's column (the key implies it), and the table made from it lists one constraint
    fewer, in another place. So the statement is written from the catalog instead:
    each column with its type and, in the catalog's order, the constraints on it alone
    (``NOT NULL``, ``CHECK``, a one-column key), then the table's other constraints. A
    ``NOT NULL`` that DuckDB added itself for a key's column (last in the list) is left
    to DuckDB to add again.
    """
    cols = con.execute("SELECT column_name, data_type, column_default FROM duckdb_columns() "
                       "WHERE table_oid = ? ORDER BY column_index", [oid]).fetchall()
    cons = con.execute("SELECT constraint_type, constraint_text, constraint_column_names "
                       "FROM duckdb_constraints() WHERE table_oid = ? "
                       "ORDER BY constraint_index", [oid]).fetchall()
    where = {name: i for i, (name, _, _) in enumerate(cols)}
    keyed = {c for kind, _, names in cons if kind == "PRIMARY KEY" for c in names}
    inline: list[list[str]] = [[] for _ in cols]
    tail: list[str] = []
    at = 0  # constraints inline so far are on columns up to this one
    for kind, text, names in cons:
        col = where[names[0]] if len(names) == 1 else None
        if not tail and col is not None and col >= at and kind in _INLINE:
            inline[col].append(text if kind == "CHECK" else _INLINE[kind])
            at = col
        elif kind == "NOT NULL" and names[0] in keyed:
            continue  # DuckDB's own, for a key column declared without it
        elif kind == "NOT NULL":
            raise SystemExit(f"{table}: cannot place NOT NULL on {names[0]}")
        else:
            tail.append(text)
    parts = []
    for (name, typ, default), extra in zip(cols, inline, strict=True):
        if default is not None:
            raise SystemExit(f"{table}.{name}: teach {__file__} to write a DEFAULT")
        parts.append(" ".join([_quote(name), typ, *extra]))
    return f"CREATE TABLE {_quote(table)}({', '.join([*parts, *tail])});"


_INLINE = {"NOT NULL": "NOT NULL", "PRIMARY KEY": "PRIMARY KEY", "UNIQUE": "UNIQUE",
           "CHECK": ""}


def build() -> str:
    """The script's text for the migrations shipped now."""
    con = duckdb.connect()
    con.execute("CREATE TABLE schema_migrations"
                " (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    shipped = migrations()
    for _, name, sql in shipped:
        try:
            con.execute(sql)
        except duckdb.Error as exc:
            raise SystemExit(f"{name}: {exc}") from exc
    kinds = {"views": "SELECT count(*) FROM duckdb_views() WHERE NOT internal",
             "sequences": "SELECT count(*) FROM duckdb_sequences()",
             "macros": "SELECT count(*) FROM duckdb_functions() WHERE NOT internal"}
    for kind, sql in kinds.items():
        row = con.execute(sql).fetchone()
        if row and row[0]:  # the script holds tables only: say so rather than drop them
            raise SystemExit(f"the migrations create {kind}: teach {__file__} to write them")
    tables = con.execute("SELECT table_oid, table_name FROM duckdb_tables() "
                         "WHERE NOT temporary ORDER BY table_oid").fetchall()
    indexes = [str(r[0]) for r in con.execute(   # after the tables, as DuckDB writes them
        "SELECT sql FROM duckdb_indexes() ORDER BY index_oid").fetchall()]
    return schema_script_text([v for v, _, _ in shipped],
                              [*(_create(con, oid, name) for oid, name in tables), *indexes])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the script is out of date")
    args = ap.parse_args()
    text = build()
    if args.check:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python scripts/schema_sql.py", file=sys.stderr)
            raise SystemExit(1)
        return
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
