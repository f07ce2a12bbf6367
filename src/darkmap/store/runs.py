"""The ingest pipeline's bookkeeping: ``ingest_runs``, and what ``processed`` says is done.

A run's ``ingest_runs`` row commits with its first files (:func:`start_run`) and its
summary with its last (:func:`finish_run`). The ``captures`` and ``processed`` rows of
each file are buffered with its records by :class:`darkmap.store.writer.RecordWriter`, so
they commit in the same transaction; :func:`processed_files` reads them back so a rerun
skips what is done, and :func:`stored_captures` lists the ``captures`` rows for
``darkmap verify``.

A run killed after its first commit (SIGKILL, the out-of-memory killer, a crash), or
stopped by Ctrl-C after one, leaves its row without ``finished_at``:
:func:`unfinished_run` finds it for ``darkmap status``. Another process cannot be running
it while status reads the workspace: an ingest holds the workspace open for writing from
start to end, and DuckDB's file lock refuses any other process, even a read-only one
(:meth:`~darkmap.store.workspace.Workspace.open`), until it ends. A run this process is
running (a caller of the Python API) is :func:`running_here` and is not unfinished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import duckdb

from darkmap.store.workspace import table_exists, utcnow

__all__ = ["ProcessedCounts", "StoredCapture", "UnfinishedRun", "end_run", "finish_run",
           "processed_files", "running_here", "skip_reasons", "start_run", "stored_captures",
           "unfinished_run"]

_RUNNING: set[str] = set()
"""The runs this process has started and not ended (:func:`start_run`, :func:`end_run`)."""


@dataclass
class ProcessedCounts:
    """The counts a file's ``processed`` row keeps (per importer)."""

    market_id: str | None
    read: int
    stored: int
    quarantined: int
    skipped: int
    skip_reasons: dict[str, int] | None = None
    """The skipped units by ``"page type: reason"`` when this run processed the file
    (None: an earlier run did; see :func:`skip_reasons`)."""


def processed_files(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], ProcessedCounts]:
    """Every (capture sha256, importer) already processed, with its counts."""
    rows = con.execute(
        "SELECT sha256, importer, market_id, read_count, stored_count, quarantined, skipped "
        "FROM processed").fetchall()
    return {(sha, imp): ProcessedCounts(*rest) for sha, imp, *rest in rows}


def skip_reasons(con: duckdb.DuckDBPyConnection, sha256: str) -> dict[str, int]:
    """The skipped units an earlier run stored for capture ``sha256``, by ``"page type:
    reason"`` (its ``skipped_pages`` rows)."""
    return {f"{page_type}: {reason}": int(n) for page_type, reason, n in con.execute(
        "SELECT page_type, reason, count(*) FROM skipped_pages WHERE capture_sha256 = ?"
        " GROUP BY page_type, reason ORDER BY page_type, reason", [sha256]).fetchall()}


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
    """Record that run ``run_id`` started, with the paths it was given (the row commits
    with the run's first files); until :func:`end_run`, this process is running it."""
    _RUNNING.add(run_id)
    con.execute("INSERT INTO ingest_runs (run_id, started_at, args) VALUES (?, ?, ?)",
                [run_id, utcnow(), json.dumps(list(args))])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, summary: dict[str, Any]) -> None:
    """Record that run ``run_id`` finished, with its summary (JSON)."""
    con.execute("UPDATE ingest_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                [utcnow(), json.dumps(summary), run_id])


def end_run(run_id: str) -> None:
    """This process no longer runs ``run_id`` (finished, failed or interrupted)."""
    _RUNNING.discard(run_id)


def running_here(run_id: str) -> bool:
    """Whether this process started run ``run_id`` and has not ended it yet."""
    return run_id in _RUNNING


class UnfinishedRun(NamedTuple):
    """An ingest run that did not finish: its row has no ``finished_at``."""

    run_id: str
    started_at: datetime
    files: int
    """Files it committed (``processed`` rows of the run)."""
    args: list[str] | None
    """The paths it was given, as stored (``--captured-at=...`` first when stated);
    None when the row holds none that can be read."""
    runs: int
    """Unfinished runs not repeated since, this one included."""


def unfinished_run(con: duckdb.DuckDBPyConnection) -> UnfinishedRun | None:
    """The latest ingest run that did not finish and that no run finishing after it
    repeated (the same ``args``): killed or stopped half-way, what it committed stays and
    the rest was never read. Runs this process is still running are left out. None: none
    (or a workspace without the table: opened read-only, not migrated)."""
    if not table_exists(con, "ingest_runs"):
        return None
    rows = con.execute(
        "SELECT r.run_id, r.started_at, r.args, (SELECT count(*) FROM processed p"
        " WHERE p.run_id = r.run_id) FROM ingest_runs r WHERE r.finished_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM ingest_runs f WHERE f.finished_at IS NOT NULL"
        " AND f.started_at >= r.started_at AND f.args IS NOT DISTINCT FROM r.args)"
        " ORDER BY r.started_at DESC, r.run_id").fetchall()
    rows = [r for r in rows if not running_here(r[0])]
    if not rows:
        return None
    run_id, started_at, args, files = rows[0]
    return UnfinishedRun(run_id, started_at, int(files), _args(args), len(rows))


def _args(text: str | None) -> list[str] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return value
    return None

