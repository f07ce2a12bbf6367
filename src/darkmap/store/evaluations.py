"""The ``evaluations`` table (scores of the stages against ground truth) and the reads the
evaluations need: persona membership, address clusters and the latest listing texts.

Only this module writes ``evaluations``: one row per key (``linking``, ``chain``,
``drugs``), replaced when the evaluation runs again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import duckdb

from darkmap.store.workspace import utcnow

__all__ = ["LabelledListing", "StoredEvaluation", "address_clusters", "latest_listing_texts",
           "persona_assignment", "save_evaluation", "stored_evaluations"]


class StoredEvaluation(NamedTuple):
    """One stored evaluation: its key, its result and what it was scored against."""

    key: str
    result: dict[str, Any]
    truth_source: str | None
    created_at: datetime


class LabelledListing(NamedTuple):
    """The latest observation of a listing, as the drug evaluation assesses it."""

    listing_id: str
    title: str | None
    description: str | None
    category_path: list[str] | None
    price: float | None
    currency: str | None
    price_text: str | None
    observed_at: datetime | None


def save_evaluation(con: duckdb.DuckDBPyConnection, key: str, result: Mapping[str, Any],
                    truth_source: str | None, created_at: datetime | None = None) -> None:
    """Store (or replace) the evaluation ``key``; ``result`` is kept as JSON."""
    con.execute("INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?)",
                [key, json.dumps(result, default=str), truth_source, created_at or utcnow()])


def stored_evaluations(con: duckdb.DuckDBPyConnection) -> list[StoredEvaluation]:
    """Every stored evaluation, by key."""
    rows = con.execute("SELECT key, result, truth_source, created_at FROM evaluations "
                       "ORDER BY key").fetchall()
    return [StoredEvaluation(key, json.loads(result), source, created)
            for key, result, source, created in rows]


def persona_assignment(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """account_id -> persona_id of every account in a persona."""
    return dict(con.execute("SELECT account_id, persona_id FROM persona_members").fetchall())


def address_clusters(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """address -> its cluster id (its own address id when it is in no cluster)."""
    rows = con.execute(
        "SELECT a.address, coalesce(c.cluster_id, a.address_id) FROM btc_address a "
        "LEFT JOIN btc_clusters c USING (address_id)").fetchall()
    return {addr: int(cid) for addr, cid in rows}


def latest_listing_texts(con: duckdb.DuckDBPyConnection) -> list[LabelledListing]:
    """The latest observation of every listing (ties broken by ``obs_id``)."""
    rows = con.execute("""
        SELECT listing_id, title, description, category_path, price, currency, price_text,
               observed_at
        FROM listing_observations
        QUALIFY row_number() OVER (PARTITION BY listing_id ORDER BY observed_at DESC NULLS LAST,
                                   obs_id) = 1""").fetchall()
    return [LabelledListing._make(r) for r in rows]
