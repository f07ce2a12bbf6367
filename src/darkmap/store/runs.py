"""The ingest pipeline's bookkeeping: ``ingest_runs``, and what ``processed`` says is done.

A run's ``ingest_runs`` row commits with its first files (:func:`start_run`) and its
summary with its last (:func:`finish_run`). The ``captures`` and ``processed`` rows of
each file are buffered with its records by :class:`darkmap.store.writer.RecordWriter`, so
they commit in the same transaction; :func:`processed_files` reads them back so a rerun
skips what is done, and :func:`stored_captures` lists the ``captures`` rows for
``darkmap verify``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import duckdb

from darkmap.store.workspace import utcnow

__all__ = ["ProcessedCounts", "StoredCapture", "finish_run", "processed_files", "start_run",
           "stored_captures"]


@dataclass
class ProcessedCounts:
    """The counts a file's ``processed`` row keeps (per importer)."""

    market_id: str | None
    read: int
    stored: int
    quarantined: int
    skipped: int


def processed_files(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], ProcessedCounts]:
    """Every (capture sha256, importer) already processed, with its counts."""
    rows = con.execute(
        "SELECT sha256, importer, market_id, read_count, stored_count, quarantined, skipped "
        "FROM processed").fetchall()
    return {(sha, imp): ProcessedCounts(*rest) for sha, imp, *rest in rows}


class StoredCapture(NamedTuple):
    """One ``captures`` row: what the capture store must hold under ``sha256``."""

    sha256: str
    size: int
    source: str
    media_type: str | None


def stored_captures(con: duckdb.DuckDBPyConnection) -> list[StoredCapture]:
    """Every ``captures`` row, by hash."""
    return [StoredCapture._make(r) for r in con.execute(
        "SELECT sha256, size, source, media_type FROM captures ORDER BY sha256").fetchall()]


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, args: Sequence[str]) -> None:
    """Record that run ``run_id`` started, with the paths it was given."""
    con.execute("INSERT INTO ingest_runs (run_id, started_at, args) VALUES (?, ?, ?)",
                [run_id, utcnow(), json.dumps(list(args))])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, summary: dict[str, Any]) -> None:
    """Record that run ``run_id`` finished, with its summary (JSON)."""
    con.execute("UPDATE ingest_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                [utcnow(), json.dumps(summary), run_id])
