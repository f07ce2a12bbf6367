"""The SQL of the crawler's state: ``crawl_jobs``, ``crawl_frontier``, ``crawl_fetches``.

Only this module writes them. The crawler (:mod:`darkmap.collect.crawl`) keeps what one
group of pages changed in a :class:`CrawlBatch` and hands it to :func:`apply_batch` inside
the transaction that also stores those pages' captures and records, so the frontier never
says "done" for a page whose records are not stored, nor loses a URL a stored page linked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import duckdb

__all__ = ["CrawlBatch", "FrontierRow", "Job", "apply_batch", "fetch_counts", "frontier",
           "frontier_counts", "get_job", "latest_job", "max_seq", "save_job", "stored_pages"]


class Job(NamedTuple):
    """One crawl job (one pass over one market)."""

    crawl_id: str
    market_id: str
    start_url: str
    plan: str
    status: str
    reason: str | None


class FrontierRow(NamedTuple):
    """One URL of a job's frontier."""

    url: str
    kind: str
    depth: int
    seq: int
    state: str
    attempts: int
    sha256: str | None


@dataclass
class CrawlBatch:
    """What a group of fetched pages changes: new URLs, finished URLs, the fetch log."""

    new: list[tuple[Any, ...]] = field(default_factory=list)
    """(crawl_id, url, kind, depth, seq, 'queued', 0, None, None, None, None)"""
    finished: list[tuple[Any, ...]] = field(default_factory=list)
    """(state, attempts, http_status, sha256, fetched_at, error, crawl_id, url)"""
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    """(attempts, crawl_id, url): URLs still queued after a failed try"""
    fetches: list[tuple[Any, ...]] = field(default_factory=list)
    """rows of ``crawl_fetches``"""
    requeued: list[tuple[Any, ...]] = field(default_factory=list)
    """(crawl_id, url): failed URLs queued again, their tries from 0"""

    def __len__(self) -> int:
        return (len(self.new) + len(self.finished) + len(self.attempts) + len(self.fetches)
                + len(self.requeued))


def save_job(con: duckdb.DuckDBPyConnection, job: Job, now: datetime,
             finished: bool = False) -> None:
    """Insert or update a job's row (status, reason, times)."""
    con.execute(
        "INSERT INTO crawl_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (crawl_id) "
        "DO UPDATE SET status = excluded.status, reason = excluded.reason, "
        "updated_at = excluded.updated_at, finished_at = excluded.finished_at",
        [job.crawl_id, job.market_id, job.start_url, job.plan, job.status, job.reason, now,
         now, now if finished else None])


def latest_job(con: duckdb.DuckDBPyConnection, market_id: str) -> Job | None:
    """The market's most recent job, ``None`` before its first crawl."""
    row = con.execute(
        "SELECT crawl_id, market_id, start_url, plan, status, reason FROM crawl_jobs "
        "WHERE market_id = ? ORDER BY started_at DESC, crawl_id DESC LIMIT 1",
        [market_id]).fetchone()
    return Job(*row) if row else None


def get_job(con: duckdb.DuckDBPyConnection, crawl_id: str) -> Job | None:
    """The job ``crawl_id``."""
    row = con.execute(
        "SELECT crawl_id, market_id, start_url, plan, status, reason FROM crawl_jobs "
        "WHERE crawl_id = ?", [crawl_id]).fetchone()
    return Job(*row) if row else None


def frontier(con: duckdb.DuckDBPyConnection, crawl_id: str,
             state: str | None = None) -> list[FrontierRow]:
    """The job's frontier in discovery order (only URLs in ``state`` if given)."""
    sql = ("SELECT url, kind, depth, seq, state, attempts, sha256 FROM crawl_frontier "
           "WHERE crawl_id = ?")
    params: list[Any] = [crawl_id]
    if state is not None:
        sql += " AND state = ?"
        params.append(state)
    rows = con.execute(sql + " ORDER BY seq", params).fetchall()
    return [FrontierRow(*r) for r in rows]


def max_seq(con: duckdb.DuckDBPyConnection, crawl_id: str) -> int:
    """The highest discovery number of the job (0 when its frontier is empty)."""
    row = con.execute("SELECT coalesce(max(seq), 0) FROM crawl_frontier WHERE crawl_id = ?",
                      [crawl_id]).fetchone()
    return int(row[0]) if row else 0


def apply_batch(con: duckdb.DuckDBPyConnection, batch: CrawlBatch) -> None:
    """Write a batch (the caller holds the transaction that stores its pages)."""
    if batch.new:
        con.executemany("INSERT OR IGNORE INTO crawl_frontier VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch.new)
    if batch.requeued:  # before their new tries and ends in the same batch
        con.executemany("UPDATE crawl_frontier SET state = 'queued', attempts = 0, "
                        "error = NULL WHERE crawl_id = ? AND url = ?", batch.requeued)
    if batch.attempts:  # before the URLs finished in the same batch
        con.executemany("UPDATE crawl_frontier SET attempts = ? WHERE crawl_id = ? AND url = ?",
                        batch.attempts)
    if batch.finished:
        con.executemany("UPDATE crawl_frontier SET state = ?, attempts = ?, http_status = ?, "
                        "sha256 = ?, fetched_at = ?, error = ? WHERE crawl_id = ? AND url = ?",
                        batch.finished)
    if batch.fetches:
        con.executemany("INSERT INTO crawl_fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        batch.fetches)


def stored_pages(con: duckdb.DuckDBPyConnection, crawl_id: str) -> int:
    """URLs of the job whose page was stored (a capture)."""
    row = con.execute("SELECT count(*) FROM crawl_frontier WHERE crawl_id = ? AND "
                      "sha256 IS NOT NULL", [crawl_id]).fetchone()
    return int(row[0]) if row else 0


def frontier_counts(con: duckdb.DuckDBPyConnection, crawl_id: str) -> dict[str, int]:
    """URLs of the job by state."""
    rows = con.execute("SELECT state, count(*) FROM crawl_frontier WHERE crawl_id = ? "
                       "GROUP BY state ORDER BY state", [crawl_id]).fetchall()
    return {str(s): int(n) for s, n in rows}


def fetch_counts(con: duckdb.DuckDBPyConnection, crawl_id: str) -> dict[str, int]:
    """Requests of the job by outcome."""
    rows = con.execute("SELECT outcome, count(*) FROM crawl_fetches WHERE crawl_id = ? "
                       "GROUP BY outcome ORDER BY outcome", [crawl_id]).fetchall()
    return {str(s): int(n) for s, n in rows}
