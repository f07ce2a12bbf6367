"""The sales estimates' tables: ``feedback_rates`` and ``sales_estimates`` (migration 012),
and the evidence the estimate reads: counters markets display, feedback rows, listing packs.

Every SQL statement of :mod:`darkmap.assess.sales`, :mod:`darkmap.assess.feedback_rate`,
:mod:`darkmap.assess.units` and :mod:`darkmap.assess.customers` is here. Writes replace a
whole table (DELETE + insert), so re-running the stage gives the same rows. The Arrow
writer (numpy, pyarrow) is imported by the functions that write (reads go without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import duckdb

from darkmap.store.workspace import table_exists

__all__ = ["AccountCounters", "EstimateRow", "FeedbackRateRow", "FeedbackRow", "ListingPack",
           "account_bases", "account_counters", "estimates", "feedback_rates", "feedback_rows",
           "has_tables", "listing_packs", "persona_bases", "persona_measures",
           "replace_estimates", "replace_feedback_rates"]

_NO_FEEDBACK_MARK = "no feedback left%"  # Cryptonia lists every order, with this when none


class AccountCounters(NamedTuple):
    """What an account's pages displayed: counters, level text, join date, crawl time."""

    account_id: str
    market_id: str
    sales_shown: int | None
    feedback_shown: int | None
    level: str | None
    joined_at: datetime | None
    observed_at: datetime | None
    sales_floor: int | None = None  # a bracket shown ("Orders 30+", "(800+)"): at least


class FeedbackRow(NamedTuple):
    """One feedback (or order) row as the sales estimate reads it."""

    account_id: str
    market_id: str
    listing_id: str | None
    buyer_masked: str | None
    left_at: datetime | None
    observed_at: datetime | None
    no_feedback: bool  # an order row that says no feedback was left
    amount: float | None
    currency: str | None
    capture_sha256: str
    listing_title: str | None = None  # the item the row names, when no listing is linked


class ListingPack(NamedTuple):
    """A listing's assessed pack, flags, and the sales counter its page showed."""

    listing_id: str
    account_id: str | None
    unit_kind: str
    units: float | None
    substance: str
    counterfeit_pill: bool
    fentanyl_risk: bool
    sales_shown: int | None
    title: str | None = None  # the newest title seen



class FeedbackRateRow(NamedTuple):
    """One ``feedback_rates`` row (columns in order)."""

    market_id: str
    rate: float
    rate_low: float
    rate_high: float
    coverage: float
    source: str
    n_accounts: int
    n_orders: int
    n_feedback: int
    evidence: str
    method: str
    computed_at: datetime


class EstimateRow(NamedTuple):
    """One ``sales_estimates`` row (columns in order)."""

    entity_kind: str
    entity_id: str
    measure: str
    period: str
    estimate: float
    low: float
    high: float
    lower_bound: float | None
    coverage: float
    basis: str | None
    evidence: str | None
    method: str
    computed_at: datetime


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the workspace has the tables of migration 012."""
    return table_exists(con, "sales_estimates") and table_exists(con, "feedback_rates")


def account_counters(con: duckdb.DuckDBPyConnection) -> list[AccountCounters]:
    """Per account: the largest sales and feedback counters shown, a level text that holds
    a number in brackets (Apollon "Seller Level 4 (767)"), first join date, last crawl,
    and the largest sales bracket shown ("Orders 30+": at least 30).

    The feedback total is the largest of the totals shown as one number and the
    all-time per-polarity counts added up (Hansa's "[+628|-9]" is 637; a window such as
    Empire's 12 months is not a total); per-polarity counts without a positive or a
    negative count are not a total."""
    return [AccountCounters._make(r) for r in con.execute("""
        SELECT a.account_id, a.market_id, max(o.sales_count),
               greatest(max(o.feedback_count), max(t.total)),
               max(o.level) FILTER (WHERE o.level LIKE '%(%)%'), min(o.joined_at),
               max(o.observed_at), max(o.sales_floor)
        FROM accounts a LEFT JOIN account_observations o USING (account_id)
        LEFT JOIN (SELECT obs_id, positive + coalesce(neutral, 0) + negative AS total
                   FROM feedback_counts WHERE window_label = 'all') t USING (obs_id)
        GROUP BY a.account_id, a.market_id ORDER BY a.account_id""").fetchall()]


def feedback_rows(con: duckdb.DuckDBPyConnection) -> list[FeedbackRow]:
    """Every feedback row that names its account (order rows marked "no feedback" too), in
    a fixed order: rows that tie on (account, time, buyer, capture), such as one buyer's
    feedbacks of a day on one page, by ``feedback_id``; in the order they were stored, their
    amounts were summed in another order and the revenue changed in its last digits."""
    return [FeedbackRow._make(r) for r in con.execute("""
        SELECT account_id, market_id, listing_id, buyer_masked, left_at, observed_at,
               coalesce(lower(ltrim(text)) LIKE ?, false), amount, currency, capture_sha256,
               listing_title
        FROM feedback WHERE account_id IS NOT NULL
        ORDER BY account_id, left_at, buyer_masked, capture_sha256, feedback_id""",
        [_NO_FEEDBACK_MARK]).fetchall()]


def listing_packs(con: duckdb.DuckDBPyConnection) -> list[ListingPack]:
    """Every assessed listing's pack and flags, with the largest sales counter shown and
    the newest title (of two observations as new, that of the smaller ``obs_id``, as
    :func:`~darkmap.store.assessment.latest_observations` picks: ``arg_max`` took the one
    it met first, which depends on the stored order and DuckDB's threads)."""
    return [ListingPack._make(r) for r in con.execute("""
        SELECT a.listing_id, a.account_id, a.unit_kind, a.units, a.substance,
               a.counterfeit_pill, a.fentanyl_risk, s.sold, s.title
        FROM listing_assessments a LEFT JOIN (
            SELECT listing_id, max(sales_count) AS sold,
                   first(title ORDER BY observed_at DESC, obs_id)
                       FILTER (WHERE title IS NOT NULL AND observed_at IS NOT NULL) AS title
            FROM listing_observations GROUP BY listing_id) s USING (listing_id)
        ORDER BY a.listing_id""").fetchall()]


def replace_feedback_rates(con: duckdb.DuckDBPyConnection,
                           rows: Sequence[FeedbackRateRow]) -> None:
    """Replace ``feedback_rates`` with ``rows``."""
    from darkmap.store.writer import insert_rows  # noqa: PLC0415

    con.execute("DELETE FROM feedback_rates")
    insert_rows(con, "feedback_rates", FeedbackRateRow._fields, rows)


def replace_estimates(con: duckdb.DuckDBPyConnection, rows: Sequence[EstimateRow]) -> None:
    """Replace ``sales_estimates`` with ``rows``."""
    from darkmap.store.writer import insert_rows  # noqa: PLC0415

    con.execute("DELETE FROM sales_estimates")
    insert_rows(con, "sales_estimates", EstimateRow._fields, rows)


def feedback_rates(con: duckdb.DuckDBPyConnection) -> list[FeedbackRateRow]:
    """Every market's feedback rate, by market."""
    if not has_tables(con):
        return []
    return [FeedbackRateRow._make(r) for r in con.execute(
        "SELECT * FROM feedback_rates ORDER BY market_id").fetchall()]


def estimates(con: duckdb.DuckDBPyConnection, entity_kind: str | None = None,
              period: str = "all") -> list[EstimateRow]:
    """Estimates of one period ('all' or 'YYYY-MM', '*' for every period), by entity."""
    if not has_tables(con):
        return []
    sql = "SELECT * FROM sales_estimates WHERE (? IS NULL OR entity_kind = ?)"
    args: list[object] = [entity_kind, entity_kind]
    if period != "*":
        sql += " AND period = ?"
        args.append(period)
    return [EstimateRow._make(r) for r in con.execute(
        sql + " ORDER BY entity_kind, entity_id, measure, period", args).fetchall()]


def persona_measures(con: duckdb.DuckDBPyConnection, measures: Sequence[str],
                     ) -> dict[str, dict[str, tuple[float, float, float]]]:
    """persona_id -> measure -> (estimate, low, high) over the whole period."""
    if not has_tables(con) or not measures:
        return {}
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for pid, m, est, lo, hi in con.execute(
            "SELECT entity_id, measure, estimate, low, high FROM sales_estimates "
            "WHERE entity_kind = 'persona' AND period = 'all' AND list_contains(?, measure)",
            [list(measures)]).fetchall():
        out.setdefault(pid, {})[m] = (float(est), float(lo), float(hi))
    return out


def account_bases(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """account_id -> the basis of its orders estimate (counter, feedback ..., not captured)."""
    if not has_tables(con):
        return {}
    return {aid: basis or "" for aid, basis in con.execute(
        "SELECT entity_id, basis FROM sales_estimates WHERE entity_kind = 'account' "
        "AND measure = 'orders' AND period = 'all'").fetchall()}


def persona_bases(con: duckdb.DuckDBPyConnection,
                  persona_id: str | None = None) -> dict[str, str]:
    """persona_id -> the basis of its orders estimate (counter, feedback ..., mixed), of
    every persona or of ``persona_id`` alone."""
    if not has_tables(con):
        return {}
    one = "" if persona_id is None else " AND entity_id = ?"
    return {pid: basis or "" for pid, basis in con.execute(
        "SELECT entity_id, basis FROM sales_estimates WHERE entity_kind = 'persona' "
        "AND measure = 'orders' AND period = 'all'" + one,
        [] if persona_id is None else [persona_id]).fetchall()}
