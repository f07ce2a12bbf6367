"""How often each stored field was found, per market and page type (``darkmap status
--fields``).

A field a template never fills on a kind of page shows as 0 of N here, so a missing
field is visible without a test. Rows are grouped by the market and the page type the
capture was processed as (``processed.page_type``; ``?`` when not recorded, as for
captures ingested before migration 011). Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from darkmap.store.workspace import table_exists

__all__ = ["FieldCount", "field_report"]

# the fields counted per table (a list column counts when it holds at least one item)
_FIELDS: dict[str, tuple[str, ...]] = {
    "listing_observations": (
        "account_id", "title", "description", "price", "currency", "quantity_text", "stock",
        "ships_from", "ships_to", "category_path", "feedback_count", "sales_count", "url"),
    "account_observations": (
        "joined_at", "last_seen_at", "last_seen_earliest", "rating", "rating_scale", "level",
        "feedback_count", "sales_count", "sales_floor", "profile_text", "terms_text",
        "ships_from", "ships_to", "url", "verified_on"),
    "feedback": ("listing_id", "listing_title", "buyer_masked", "rating", "rating_scale",
                 "text", "left_at", "amount"),
}
_LISTS = {"ships_to", "category_path", "verified_on"}
_KEY = {"listing_observations": "obs_id", "account_observations": "obs_id",
        "feedback": "feedback_id"}


@dataclass(frozen=True, slots=True)
class FieldCount:
    """``found`` of ``rows`` rows of ``table`` from ``market``'s ``page_type`` pages had
    ``field`` (``feedback_counts`` counts account observations with per-polarity counts)."""

    market: str
    page_type: str
    table: str
    field: str
    found: int
    rows: int


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
        [table]).fetchall()}


def _expr(col: str, present: set[str]) -> str:
    if col not in present:
        return "0"
    if col in _LISTS:
        return f"count(*) FILTER (WHERE len(t.{col}) > 0)"
    if col in ("title", "description", "text", "profile_text", "terms_text", "level"):
        return f"count(*) FILTER (WHERE t.{col} IS NOT NULL AND t.{col} <> '')"
    return f"count(t.{col})"


def field_report(con: duckdb.DuckDBPyConnection) -> list[FieldCount]:
    """One :class:`FieldCount` per (market, page type, table, field) with stored rows,
    ordered by market, page type, table and field order."""
    out: list[FieldCount] = []
    pages = ("(SELECT sha256, max(market_id) AS market_id, max(page_type) AS page_type "
             "FROM processed GROUP BY sha256)")
    counts = table_exists(con, "feedback_counts")
    for table, cols in _FIELDS.items():
        present = _columns(con, table)
        exprs = [_expr(c, present) for c in cols]
        extra = ""
        if table == "account_observations" and counts:
            exprs.append("count(*) FILTER (WHERE t.obs_id IN (SELECT obs_id FROM "
                         "feedback_counts))")
            extra = "feedback_counts"
        market = "t.market_id" if "market_id" in present else "p.market_id"
        sql = (f"SELECT coalesce({market}, p.market_id, '?'), coalesce(p.page_type, '?'), "
               f"count(*), {', '.join(exprs)} FROM {table} t LEFT JOIN {pages} p "
               f"ON p.sha256 = t.capture_sha256 GROUP BY 1, 2 ORDER BY 1, 2")
        names = [*cols, extra] if extra else list(cols)
        for row in con.execute(sql).fetchall():
            mkt, ptype, n = str(row[0]), str(row[1]), int(row[2])
            for name, found in zip(names, row[3:], strict=True):
                out.append(FieldCount(mkt, ptype, table, name, int(found), n))
    return out
