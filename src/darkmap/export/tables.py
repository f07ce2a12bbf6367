"""The analytical tables as CSV (spreadsheets) or Parquet (pandas, R, DuckDB, Spark).

``--table T`` (repeatable) or ``--all``: each table is read in Arrow batches with its
provenance columns (:data:`darkmap.store.exports.TABLES`), narrowed to a persona or
country selection where the table can be (tables that cannot — captures, quarantine,
skipped pages, field cuts, address clusters — are left out of a narrowed ``--all`` and
refused by name). One table and an ``out`` ending in ``.csv`` / ``.parquet``: that file;
else ``out`` is a folder holding ``<table>.csv`` / ``<table>.parquet``.

CSV: UTF-8, a header row, RFC 4180 quoting. Market text is written by the people under
investigation, so every text cell goes through
:func:`darkmap.model.display.csv_cell`: a cell starting with ``=``, ``+``, ``-``, ``@``,
tab or carriage return (or their full-width forms) gets a leading ``'`` so a spreadsheet
shows it as text instead of running it as a formula, control and bidi characters are
shown as escapes, and a cell is cut at 32,000 characters (a spreadsheet holds 32,767).
Lists and JSON are written as JSON text, times as ISO 8601 in UTC (``...Z``). Parquet
keeps every value and type exactly as stored (no cell is changed or cut), its times
marked UTC (the store keeps UTC times without a zone).

Written whole or not at all (:mod:`darkmap.model.outputs`): a file under a partial name,
renamed when complete; a folder of tables is written into a partial folder with its
:data:`MANIFEST` last, then renamed into place (a new or empty folder) or its files moved
into the folder given (the old manifest removed first, the new one moved in last).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from darkmap.capture.content_store import sha256_file
from darkmap.errors import BadInputError
from darkmap.export.options import ExportOptions
from darkmap.model.display import csv_cell
from darkmap.model.outputs import (
    atomic_file,
    atomic_folder,
    fsync_folder,
    partial_folder,
    sync_file,
)
from darkmap.model.records import finite
from darkmap.store import exports as store
from darkmap.store.workspace import Workspace

__all__ = ["MANIFEST", "CsvExporter", "ParquetExporter", "csv_value"]

MANIFEST = "manifest.json"
"""Written last into a folder of tables: the format, each table's file, rows, bytes and
sha256, and the tables a narrowed ``--all`` left out. A folder without it (or whose files
do not match it) is not a complete export."""


def csv_value(value: Any) -> Any:
    """One CSV cell: text neutralised (:func:`csv_cell`), lists and dicts as JSON, times
    as ISO 8601, booleans as ``true``/``false``, None (and a number that is not finite)
    as an empty cell."""
    if value is None or (isinstance(value, float) and finite(value) is None):
        return ""  # inf/nan (a workspace from before the ingest refused them): unknown
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return csv_cell(value)


def _utc_text(value: datetime) -> str:
    """A stored time (UTC: naive in the store) as ISO 8601 marked UTC, ``...Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _utc_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every time without a zone marked UTC (the store keeps UTC times
    naive; Parquet then says so, and pandas, R and Spark read them as UTC)."""
    fields = [f.with_type(pa.timestamp(f.type.unit, "UTC"))
              if pa.types.is_timestamp(f.type) and f.type.tz is None else f for f in schema]
    return pa.schema(fields).with_metadata(schema.metadata or {})


def _tables(ws: Workspace, options: ExportOptions, fmt: str) -> tuple[list[str], list[str]]:
    """(tables to write, tables left out of a narrowed --all)."""
    have = store.table_names(ws.con)
    if options.all_tables and options.tables:
        raise BadInputError(f"{fmt}: give --table or --all, not both")
    if options.all_tables:
        if not options.narrowed:
            return have, []
        return ([t for t in have if store.TABLES[t].narrow is not None],
                [t for t in have if store.TABLES[t].narrow is None])
    if not options.tables:
        raise BadInputError(f"{fmt} needs --table T (repeatable) or --all; tables: "
                            f"{', '.join(have)}")
    unknown = [t for t in options.tables if t not in store.TABLES]
    if unknown:
        raise BadInputError(f"{fmt}: no exportable table {unknown[0]!r}; have: "
                            f"{', '.join(have)}")
    return list(dict.fromkeys(options.tables)), []



def _manifest(folder: Path, fmt: str, rows: dict[str, int], suffix: str,
              left_out: list[str]) -> dict[str, Any]:
    """What :data:`MANIFEST` says of the tables written into ``folder``."""
    files = {t: {"file": f"{t}{suffix}", "rows": n,
                 "bytes": (folder / f"{t}{suffix}").stat().st_size,
                 "sha256": sha256_file(folder / f"{t}{suffix}")} for t, n in rows.items()}
    return {"darkmap_export": fmt, "complete": True, "tables": files,
            "tables_left_out": left_out}


def _move_in(part: Path, out: Path, names: list[str]) -> None:
    """Move the finished files of ``part`` into the folder ``out`` that holds other files:
    its old manifest first out (its set is no longer whole), each table renamed over its
    earlier version, the new manifest last."""
    (out / MANIFEST).unlink(missing_ok=True)
    fsync_folder(out)
    for name in names:
        os.replace(part / name, out / name)
    fsync_folder(out)
    os.replace(part / MANIFEST, out / MANIFEST)
    fsync_folder(out)


def _reader(workspace: object, name: str, options: ExportOptions) -> tuple[Workspace, Any]:
    if not isinstance(workspace, Workspace):
        raise BadInputError(f"the {name} exporter needs a Workspace, not "
                            f"{type(workspace).__name__}")
    sel = store.select_accounts(workspace.con, options.personas, options.countries,
                                options.subjects)
    return workspace, sel


def _write_csv(batches: pa.RecordBatchReader, path: Path) -> int:
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_value(n) for n in batches.schema.names])
        for batch in batches:
            columns = [[csv_value(v) for v in col.to_pylist()] for col in batch.columns]
            writer.writerows(zip(*columns, strict=True))
            rows += batch.num_rows
    return rows


def _write_parquet(batches: pa.RecordBatchReader, path: Path) -> int:
    # Imported here, measured: ~25 ms, and every ingest loads every exporter.
    import pyarrow.parquet as pq  # noqa: PLC0415 - see above

    rows = 0
    schema = _utc_schema(batches.schema)
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            # the same values (microseconds since the epoch, UTC), the zone now stated
            writer.write_batch(batch.cast(schema) if schema != batch.schema else batch)
            rows += batch.num_rows
    return rows


class _TableExporter:
    """Writes the chosen analytical tables, one file each."""

    name = ""
    suffix = ""
    format_options = frozenset({"tables"})

    def _write(self, batches: pa.RecordBatchReader, path: Path) -> int:
        raise NotImplementedError

    def export(self, workspace: object, out: Path,
               options: ExportOptions | None = None) -> dict[str, int]:
        """Write each chosen table; return rows per table (and ``tables_left_out``: how
        many tables a narrowed ``--all`` could not narrow)."""
        options = options or ExportOptions()
        ws, sel = _reader(workspace, self.name, options)
        tables, left_out = _tables(ws, options, self.name)
        counts: dict[str, int] = {}
        if len(tables) == 1 and out.suffix.lower() == self.suffix:
            with atomic_file(out) as part:
                counts[tables[0]] = self._write(
                    store.table_batches(ws.con, tables[0], sel), part)
        else:
            counts = self._write_folder(ws, sel, out, tables, left_out)
        if left_out:
            counts["tables_left_out"] = len(left_out)
        return counts

    def _write_folder(self, ws: Workspace, sel: Any, out: Path, tables: list[str],
                      left_out: list[str]) -> dict[str, int]:
        """Write ``tables`` and their :data:`MANIFEST` into a partial folder next to
        ``out``, then make it ``out`` (a new or empty folder: one rename) or move its
        files into ``out`` (a folder holding other files), the manifest last."""
        if out.exists() and not out.is_dir():
            raise BadInputError(f"{out} is a file; several tables need a folder for --out")
        if not (out.is_dir() and any(out.iterdir())):
            with atomic_folder(out) as part:
                return self._fill(ws, sel, part, tables, left_out)
        part = partial_folder(out, clean=True)
        try:
            counts = self._fill(ws, sel, part, tables, left_out)
            for f in part.iterdir():
                sync_file(f)
            _move_in(part, out, [f"{t}{self.suffix}" for t in tables])
        finally:
            shutil.rmtree(part, ignore_errors=True)
        return counts

    def _fill(self, ws: Workspace, sel: Any, part: Path, tables: list[str],
              left_out: list[str]) -> dict[str, int]:
        """Write ``tables`` into the folder ``part``, then their :data:`MANIFEST`."""
        counts: dict[str, int] = {}
        for table in tables:
            counts[table] = self._write(store.table_batches(ws.con, table, sel),
                                        part / f"{table}{self.suffix}")
        manifest = _manifest(part, self.name, counts, self.suffix, left_out)
        (part / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                     encoding="utf-8")
        return counts


class CsvExporter(_TableExporter):
    """Analytical tables as CSV, cells neutralised against spreadsheet formulas."""

    name = "csv"
    suffix = ".csv"

    def _write(self, batches: pa.RecordBatchReader, path: Path) -> int:
        return _write_csv(batches, path)


class ParquetExporter(_TableExporter):
    """Analytical tables as Parquet (types and values exactly as stored)."""

    name = "parquet"
    suffix = ".parquet"

    def _write(self, batches: pa.RecordBatchReader, path: Path) -> int:
        return _write_parquet(batches, path)
