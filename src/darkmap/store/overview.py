"""Where a workspace stands (``darkmap status``): what was ingested, whether it is linked,
assessed and chain-clustered, its operational records, and the command to run next.

Read-only: row counts and the times of the last ingest and link runs and of the
judgements.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import duckdb

from darkmap.store.workspace import table_exists

__all__ = ["WorkspaceStage", "workspace_stage"]


class WorkspaceStage(TypedDict):
    """A workspace's stage and the next command (``next``, with ``why``)."""

    files: int
    ingest_runs: int
    accounts: int
    listings: int
    feedback: int
    transactions: int
    linked: bool
    personas: int
    multi_account_personas: int
    link_run: str | None
    linked_at: datetime | None
    judgements: int
    judgements_since_link: int
    ingested_since_link: bool
    assessed: int
    chain_clustered: bool
    wallets: int
    operational_records: int
    next: str
    why: str


def _one(con: duckdb.DuckDBPyConnection, table: str, sql: str,
         params: list[object] | None = None) -> int:
    """The count ``sql`` selects (0 when ``table`` does not exist: a workspace opened
    read-only is not migrated)."""
    if not table_exists(con, table):
        return 0
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return _one(con, table, f'SELECT count(*) FROM "{table}"')


def workspace_stage(con: duckdb.DuckDBPyConnection) -> WorkspaceStage:
    """What the workspace holds and has been through, and the next command to run."""
    link_row = (con.execute(
        "SELECT run_id, started_at, finished_at FROM link_runs WHERE finished_at IS NOT NULL"
        " ORDER BY started_at DESC, run_id LIMIT 1").fetchone()
        if table_exists(con, "link_runs") else None)
    started = link_row[1] if link_row else None
    since = 0
    ingested_since = False
    if started is not None:
        since = _one(con, "judgements", "SELECT count(*) FROM judgements WHERE"
                     " created_at >= ? OR withdrawn_at >= ?", [started, started])
        ingested_since = bool(_one(con, "ingest_runs", "SELECT count(*) FROM ingest_runs"
                                   " WHERE finished_at >= ?", [started]))
    st: WorkspaceStage = {
        "files": _count(con, "processed"), "ingest_runs": _count(con, "ingest_runs"),
        "accounts": _count(con, "accounts"), "listings": _count(con, "listings"),
        "feedback": _count(con, "feedback"), "transactions": _count(con, "btc_tx"),
        "linked": _count(con, "personas") > 0, "personas": _count(con, "personas"),
        "multi_account_personas": _one(
            con, "personas", "SELECT count(*) FROM personas WHERE n_accounts > 1"),
        "link_run": link_row[0] if link_row else None,
        "linked_at": link_row[2] if link_row else None,
        "judgements": _one(con, "judgements", "SELECT count(*) FROM judgements"
                           " WHERE withdrawn_at IS NULL"),
        "judgements_since_link": since, "ingested_since_link": ingested_since,
        "assessed": _count(con, "listing_assessments"),
        "chain_clustered": _count(con, "btc_cluster_runs") > 0,
        "wallets": _count(con, "btc_clusters"),
        "operational_records": _count(con, "ops_records"),
        "next": "", "why": ""}
    st["next"], st["why"] = _next(st)
    return st


def _next(st: WorkspaceStage) -> tuple[str, str]:
    """The command to run next and why: collect, link, assess, cluster the chain, then
    rank and report."""
    if not st["files"]:
        return ("darkmap ingest PATH...",
                "nothing ingested yet: saved pages, listing CSVs, seized dumps, chain data")
    if st["accounts"] and not st["linked"]:
        return "darkmap link", "the accounts are not linked into personas yet"
    if st["accounts"] and st["ingested_since_link"]:
        return "darkmap link", "evidence was ingested after the last link run"
    if st["accounts"] and st["judgements_since_link"]:
        n = st["judgements_since_link"]
        return "darkmap link", f"{n:,} judgement(s) made or withdrawn since the last link run"
    if st["listings"] > st["assessed"]:
        n = st["listings"] - st["assessed"]
        return "darkmap assess", f"{n:,} listing(s) not assessed yet: drugs, doses, prices, sales"
    if st["transactions"] and not st["chain_clustered"]:
        return "darkmap chain cluster", "chain data is loaded but not clustered into wallets"
    if st["listings"]:
        return "darkmap targets", "every stage has run: rank the personas by harm"
    return "darkmap report -o report.html", "every stage has run"
