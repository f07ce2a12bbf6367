"""The drug assessment's tables: ``listing_assessments``, ``sales_monthly``,
``sales_summary``, ``jurisdictions`` (and the assessment's own ``quarantine`` rows).

This module holds every SQL statement of the assess stage: the evidence it reads (latest
listing observation, feedback, profile totals, shipping evidence), the rows it writes, and
the reads of its results that ``darkmap targets`` and the report need. Rows come back as
named tuples (one field per column, in column order); writes take the same tuples.

Writes replace a whole table (DELETE + insert): re-running the stage gives the same rows.
Call them inside :func:`transaction` to make the rebuild atomic. The Arrow writer (numpy,
pyarrow) is imported by the functions that write: ``darkmap persona show`` and the
workbench read through this module without it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, NamedTuple

import duckdb

from darkmap.errors import WorkspaceStateError
from darkmap.store.workspace import table_exists

__all__ = ["ASSESSMENT_COLUMNS", "DRUG_TABLES", "AccountPlaceEvidence", "AssessedListing",
           "AssessedPrice", "FeedbackText", "FeedbackTotals", "FlaggedListing", "JurisdictionRow",
           "LatestObservation", "ListingPlaceEvidence", "PersonaJurisdiction", "PersonaListing",
           "PersonaSales", "QuarantineRow", "SaleFeedback", "SalesMonthlyRow", "SalesSummaryRow",
           "account_markets", "account_place_evidence", "assessed_listings", "assessed_prices",
           "count_assessments", "count_by_class", "count_flagged", "feedback_texts",
           "feedback_totals", "flagged_listings", "latest_observations", "listing_place_evidence",
           "listings_per_account", "monthly_orders", "one_persona_jurisdiction", "page_rates",
           "one_persona_sales", "persona_jurisdictions", "persona_listings", "persona_sales",
           "replace_assessments", "replace_jurisdictions", "replace_quarantine", "replace_sales",
           "require_drug_tables", "sales_feedback", "stored_assessments", "transaction"]

DRUG_TABLES = ("jurisdictions", "listing_assessments", "sales_monthly", "sales_summary")
ASSESSMENT_COLUMNS = (
    "listing_id", "obs_id", "account_id", "drug_class", "substance", "class_confidence",
    "counterfeit_pill", "fentanyl_risk", "flag_evidence", "units", "unit_kind", "dose_mg",
    "pack_price_usd", "unit_price_usd", "price_per_gram_usd", "parse_confidence",
    "parse_note", "observed_at", "method", "assessed_at")


# --- records ------------------------------------------------------------------------------

class LatestObservation(NamedTuple):
    """The latest ``listing_observations`` row of one listing: what gets assessed."""

    listing_id: str
    obs_id: str
    account_id: str | None
    title: str | None
    description: str | None
    category_path: list[str] | None
    price: float | None
    currency: str | None
    price_text: str | None
    observed_at: datetime | None
    locator: str | None
    capture_sha256: str | None
    source: str | None


class QuarantineRow(NamedTuple):
    """A listing whose assessment failed, stored in ``quarantine`` (columns in order)."""

    quarantine_id: str
    market_id: str
    locator: str
    field: str
    reason: str
    excerpt: str
    capture_sha256: str | None
    source: str | None
    method: str
    run_id: str | None


class AssessedPrice(NamedTuple):
    """An assessed listing's USD pack price and when it was observed."""

    listing_id: str
    account_id: str | None
    pack_price_usd: float | None
    observed_at: datetime | None


class FeedbackTotals(NamedTuple):
    """The largest feedback and sales counts an account's profile pages showed."""

    account_id: str
    feedback_count: int | None
    sales_count: int | None


class SaleFeedback(NamedTuple):
    """One feedback row as the sales estimate reads it."""

    account_id: str
    listing_id: str | None
    buyer_masked: str | None
    left_at: datetime | None
    observed_at: datetime | None
    amount: float | None
    currency: str | None


class SalesMonthlyRow(NamedTuple):
    """One ``sales_monthly`` row (columns in order)."""

    entity_kind: str
    entity_id: str
    month: date
    feedback_count: int
    orders_est: float
    orders_low: float
    orders_high: float
    revenue_usd: float | None
    revenue_usd_low: float | None
    revenue_usd_high: float | None
    buyers_distinct_min: int
    method: str
    computed_at: datetime


class SalesSummaryRow(NamedTuple):
    """One ``sales_summary`` row (columns in order)."""

    entity_kind: str
    entity_id: str
    n_accounts: int
    n_markets: int
    n_listings: int
    feedback_count: int
    orders_est: float
    orders_low: float
    orders_high: float
    orders_reported: int | None
    revenue_usd: float | None
    revenue_usd_low: float | None
    revenue_usd_high: float | None
    buyers_distinct_min: int
    buyers_note: str
    first_active: datetime | None
    last_active: datetime | None
    active_days: int | None
    evidence: str
    method: str
    computed_at: datetime


class ListingPlaceEvidence(NamedTuple):
    """What a listing observation says about where its vendor ships from."""

    account_id: str
    ships_from: str | None
    title: str | None
    description: str | None
    currency: str | None


class AccountPlaceEvidence(NamedTuple):
    """What an account observation says about where the vendor ships from."""

    account_id: str
    ships_from: str | None
    profile_text: str | None
    terms_text: str | None


class FeedbackText(NamedTuple):
    """A feedback text left for an account."""

    account_id: str
    text: str | None


class JurisdictionRow(NamedTuple):
    """One ``jurisdictions`` row (columns in order)."""

    entity_kind: str
    entity_id: str
    country: str | None
    confidence: float
    evidence: str
    method: str
    computed_at: datetime


class AssessedListing(NamedTuple):
    """An assessed listing with its title, as the harm ranking reads it."""

    account_id: str
    listing_id: str
    drug_class: str
    substance: str
    counterfeit_pill: bool
    fentanyl_risk: bool
    title: str | None
    flag_evidence: str | None


class PersonaSales(NamedTuple):
    """A persona's ``sales_summary`` figures used by the harm ranking."""

    orders_est: float
    orders_low: float
    orders_high: float
    revenue_usd: float | None
    revenue_usd_low: float | None
    revenue_usd_high: float | None
    buyers_distinct_min: int | None
    n_markets: int | None
    active_days: int | None
    first_active: datetime | None
    last_active: datetime | None
    feedback_count: int


class PersonaJurisdiction(NamedTuple):
    """A persona's country, its confidence and the evidence (JSON text)."""

    country: str | None
    confidence: float
    evidence: str | None


class PersonaListing(NamedTuple):
    """A listing of one persona's accounts as `darkmap persona show` lists it."""

    listing_id: str
    title: str | None
    substance: str
    fentanyl_risk: bool
    counterfeit_pill: bool
    units: float | None
    unit_kind: str
    dose_mg: float | None
    pack_price_usd: float | None
    unit_price_usd: float | None


class FlaggedListing(NamedTuple):
    """A fentanyl-risk or counterfeit-pill listing as the report lists it."""

    listing_id: str
    title: str | None
    substance: str
    counterfeit_pill: bool
    fentanyl_risk: bool
    units: float | None
    unit_kind: str
    dose_mg: float | None
    unit_price_usd: float | None
    flag_evidence: str | None


# --- transaction and checks ---------------------------------------------------------------

@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def require_drug_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Raise :class:`WorkspaceStateError` when a table of migration 004 is missing."""
    missing = [t for t in DRUG_TABLES if not table_exists(con, t)]
    if missing:
        raise WorkspaceStateError(
            f"workspace lacks the drug tables ({', '.join(missing)}): it was migrated "
            "past version 4 before migration 004_drugs.sql existed; re-create the workspace "
            "(darkmap init + ingest) to get them")


# --- assessments ----------------------------------------------------------------------------

def latest_observations(con: duckdb.DuckDBPyConnection) -> list[LatestObservation]:
    """The latest observation of every listing (ties broken by ``obs_id``), by listing id:
    a window's rows come in the order they were stored, or another on several threads
    (the order ``darkmap assess`` lists its classes and stores its assessments in)."""
    rows = con.execute("""
        SELECT listing_id, obs_id, account_id, title, description, category_path, price,
               currency, price_text, observed_at, locator, capture_sha256, source
        FROM listing_observations
        QUALIFY row_number() OVER (PARTITION BY listing_id
                                   ORDER BY observed_at DESC NULLS LAST, obs_id) = 1
        ORDER BY listing_id
    """).fetchall()
    return [LatestObservation._make(r) for r in rows]


def page_rates(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, float]]:
    """The exchange rates each captured page states (``page_rates``), by capture:
    ``{capture_sha256: {"BTC": usd_per_btc}}``; empty before migration 021."""
    if not table_exists(con, "page_rates"):
        return {}
    out: dict[str, dict[str, float]] = {}
    for sha, ccy, usd in con.execute(
            "SELECT capture_sha256, currency, max(usd) FROM page_rates "
            "GROUP BY capture_sha256, currency ORDER BY capture_sha256, currency").fetchall():
        out.setdefault(sha, {})[ccy] = float(usd)
    return out


def replace_assessments(con: duckdb.DuckDBPyConnection,
                        columns: Mapping[str, Sequence[Any]]) -> int:
    """Replace ``listing_assessments`` with ``columns`` (one list per column of
    :data:`ASSESSMENT_COLUMNS`, all of one length); returns the row count.

    Inserted as one Arrow table through the store's bulk writer.
    """
    import pyarrow as pa  # noqa: PLC0415

    from darkmap.store.writer import insert_arrow  # noqa: PLC0415

    con.execute("DELETE FROM listing_assessments")
    if not len(columns[ASSESSMENT_COLUMNS[0]]):
        return 0
    table = pa.table({c: pa.array(columns[c]) for c in ASSESSMENT_COLUMNS})
    return insert_arrow(con, "listing_assessments", table, ASSESSMENT_COLUMNS)


def replace_quarantine(con: duckdb.DuckDBPyConnection, method: str,
                       rows: Sequence[QuarantineRow]) -> int:
    """Replace the ``quarantine`` rows written by ``method`` with ``rows`` (through the
    writer, which owns the quarantine table)."""
    from darkmap.store import writer  # noqa: PLC0415

    return writer.replace_quarantine(con, method, QuarantineRow._fields, rows)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The value of a ``SELECT count(*) ...`` query."""
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def count_assessments(con: duckdb.DuckDBPyConnection) -> int:
    """How many listings are assessed."""
    return _count(con, "SELECT count(*) FROM listing_assessments")


# --- sales ------------------------------------------------------------------------------------

def assessed_prices(con: duckdb.DuckDBPyConnection) -> list[AssessedPrice]:
    """Every assessed listing's USD pack price, account and observation time."""
    return [AssessedPrice._make(r) for r in con.execute(
        "SELECT listing_id, account_id, pack_price_usd, observed_at FROM listing_assessments"
    ).fetchall()]


def feedback_totals(con: duckdb.DuckDBPyConnection) -> list[FeedbackTotals]:
    """Per account, the largest feedback and sales counts shown on its pages."""
    return [FeedbackTotals._make(r) for r in con.execute(
        "SELECT account_id, max(feedback_count), max(sales_count) FROM account_observations"
        " GROUP BY account_id").fetchall()]


def account_markets(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """account_id -> market_id of every account."""
    return dict(con.execute("SELECT account_id, market_id FROM accounts").fetchall())


def listings_per_account(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """account_id -> number of its listings."""
    return {aid: int(n) for aid, n in con.execute(
        "SELECT account_id, count(*) FROM listings WHERE account_id IS NOT NULL"
        " GROUP BY account_id").fetchall()}


def sales_feedback(con: duckdb.DuckDBPyConnection) -> list[SaleFeedback]:
    """Every feedback row that names its account."""
    return [SaleFeedback._make(r) for r in con.execute(
        "SELECT account_id, listing_id, buyer_masked, left_at, observed_at, amount, currency"
        " FROM feedback WHERE account_id IS NOT NULL").fetchall()]


def replace_sales(con: duckdb.DuckDBPyConnection, monthly: Sequence[SalesMonthlyRow],
                  summary: Sequence[SalesSummaryRow]) -> None:
    """Replace ``sales_monthly`` and ``sales_summary`` with the given rows."""
    from darkmap.store.writer import insert_rows  # noqa: PLC0415

    con.execute("DELETE FROM sales_monthly")
    con.execute("DELETE FROM sales_summary")
    insert_rows(con, "sales_monthly", SalesMonthlyRow._fields, monthly)
    insert_rows(con, "sales_summary", SalesSummaryRow._fields, summary)


# --- jurisdictions ------------------------------------------------------------------------------

# The evidence of a vendor's place is read in a fixed order, earliest observation first:
# a plain scan returns rows in the order they were stored (which depends on the order
# files were ingested in), and the first of equal evidence gives a country's example and
# wins a tie between countries.
_PLACE_ORDER = "observed_at NULLS LAST"

def listing_place_evidence(con: duckdb.DuckDBPyConnection) -> list[ListingPlaceEvidence]:
    """Shipping field, texts and currency of every listing observation with an account,
    earliest first (then by listing): the order in which a vendor's evidence is listed,
    its examples taken and a tie between countries broken (:data:`_PLACE_ORDER`)."""
    return [ListingPlaceEvidence._make(r) for r in con.execute(f"""
            SELECT account_id, ships_from, title, description, currency
            FROM listing_observations WHERE account_id IS NOT NULL
            ORDER BY account_id, {_PLACE_ORDER}, listing_id, obs_id""").fetchall()]


def account_place_evidence(con: duckdb.DuckDBPyConnection) -> list[AccountPlaceEvidence]:
    """Shipping field, profile and terms of every account observation, earliest first."""
    return [AccountPlaceEvidence._make(r) for r in con.execute(f"""
            SELECT account_id, ships_from, profile_text, terms_text FROM account_observations
            ORDER BY account_id, {_PLACE_ORDER}, obs_id""").fetchall()]


def feedback_texts(con: duckdb.DuckDBPyConnection) -> list[FeedbackText]:
    """Every feedback text that names its account, earliest first."""
    return [FeedbackText._make(r) for r in con.execute(
        "SELECT account_id, text FROM feedback WHERE account_id IS NOT NULL "
        f"ORDER BY account_id, {_PLACE_ORDER}, feedback_id").fetchall()]


def replace_jurisdictions(con: duckdb.DuckDBPyConnection,
                          rows: Sequence[JurisdictionRow]) -> int:
    """Replace ``jurisdictions`` with ``rows``; returns their count."""
    from darkmap.store.writer import insert_rows  # noqa: PLC0415

    con.execute("DELETE FROM jurisdictions")
    return insert_rows(con, "jurisdictions", JurisdictionRow._fields, rows)


# --- results: targets and report --------------------------------------------------------------

def assessed_listings(con: duckdb.DuckDBPyConnection) -> list[AssessedListing]:
    """Every assessed listing that has an account, with its title, in listing id order
    (a persona's first flagged listings and its substances listed as often are taken in
    this order; a join's rows come in another order in each run on a big store)."""
    return [AssessedListing._make(r) for r in con.execute("""
            SELECT a.account_id, a.listing_id, a.drug_class, a.substance, a.counterfeit_pill,
                   a.fentanyl_risk, o.title, a.flag_evidence
            FROM listing_assessments a LEFT JOIN listing_observations o USING (obs_id)
            WHERE a.account_id IS NOT NULL ORDER BY a.listing_id""").fetchall()]


def persona_sales(con: duckdb.DuckDBPyConnection) -> dict[str, PersonaSales]:
    """persona_id -> its sales summary."""
    return {r[0]: PersonaSales._make(r[1:]) for r in con.execute(
        "SELECT entity_id, orders_est, orders_low, orders_high, revenue_usd, revenue_usd_low,"
        " revenue_usd_high, buyers_distinct_min, n_markets, active_days, first_active,"
        " last_active, feedback_count FROM sales_summary WHERE entity_kind='persona'").fetchall()}


def persona_jurisdictions(con: duckdb.DuckDBPyConnection) -> dict[str, PersonaJurisdiction]:
    """persona_id -> its jurisdiction."""
    return {r[0]: PersonaJurisdiction._make(r[1:]) for r in con.execute(
        "SELECT entity_id, country, confidence, evidence FROM jurisdictions"
        " WHERE entity_kind='persona'").fetchall()}


def count_by_class(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """(drug_class, listings), most listings first (equal counts by class)."""
    return [(c, int(n)) for c, n in con.execute(
        "SELECT drug_class, count(*) FROM listing_assessments "
        "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()]


def count_flagged(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(fentanyl-risk listings, counterfeit-pill listings)."""
    return (_count(con, "SELECT count(*) FROM listing_assessments WHERE fentanyl_risk"),
            _count(con, "SELECT count(*) FROM listing_assessments WHERE counterfeit_pill"))


def flagged_listings(con: duckdb.DuckDBPyConnection, limit: int = 40) -> list[FlaggedListing]:
    """Fentanyl-risk listings first, then counterfeit pills, by listing id."""
    return [FlaggedListing._make(r) for r in con.execute(f"""
        SELECT a.listing_id, o.title, a.substance, a.counterfeit_pill, a.fentanyl_risk,
               a.units, a.unit_kind, a.dose_mg, a.unit_price_usd, a.flag_evidence
        FROM listing_assessments a LEFT JOIN listing_observations o USING (obs_id)
        WHERE a.fentanyl_risk OR a.counterfeit_pill
        ORDER BY a.fentanyl_risk DESC, a.listing_id LIMIT {int(limit)}""").fetchall()]


def persona_listings(con: duckdb.DuckDBPyConnection, account_ids: Sequence[str],
                     limit: int | None) -> tuple[int, list[PersonaListing]]:
    """(how many assessed listings the accounts have, the first ``limit`` of them, all
    when ``limit`` is None):
    fentanyl-risk first, then counterfeit pills, then other drugs, then the rest, each by
    listing id. Nothing before ``darkmap assess``."""
    if not account_ids or not table_exists(con, "listing_assessments"):
        return 0, []
    where = "WHERE a.account_id IN (SELECT unnest(?))"
    n = con.execute(f"SELECT count(*) FROM listing_assessments a {where}",
                    [list(account_ids)]).fetchone()
    rows = con.execute(f"""
        SELECT a.listing_id, o.title, a.substance, a.fentanyl_risk, a.counterfeit_pill,
               a.units, a.unit_kind, a.dose_mg, a.pack_price_usd, a.unit_price_usd
        FROM listing_assessments a LEFT JOIN listing_observations o USING (obs_id) {where}
        ORDER BY a.fentanyl_risk DESC, a.counterfeit_pill DESC,
                 a.drug_class = 'non_drug', a.listing_id LIMIT ?""",
                       [list(account_ids), n[0] if limit is None and n else limit]).fetchall()
    return int(n[0]) if n else 0, [PersonaListing._make(r) for r in rows]


def one_persona_sales(con: duckdb.DuckDBPyConnection, persona_id: str) -> PersonaSales | None:
    """One persona's sales summary (None before ``darkmap assess`` or without one)."""
    if not table_exists(con, "sales_summary"):
        return None
    r = con.execute(
        "SELECT orders_est, orders_low, orders_high, revenue_usd, revenue_usd_low,"
        " revenue_usd_high, buyers_distinct_min, n_markets, active_days, first_active,"
        " last_active, feedback_count FROM sales_summary WHERE entity_kind='persona'"
        " AND entity_id = ?", [persona_id]).fetchone()
    return PersonaSales._make(r) if r else None


def one_persona_jurisdiction(con: duckdb.DuckDBPyConnection,
                             persona_id: str) -> PersonaJurisdiction | None:
    """One persona's jurisdiction (None before ``darkmap assess`` or without one)."""
    if not table_exists(con, "jurisdictions"):
        return None
    r = con.execute("SELECT country, confidence, evidence FROM jurisdictions"
                    " WHERE entity_kind='persona' AND entity_id = ?", [persona_id]).fetchone()
    return PersonaJurisdiction._make(r) if r else None


def monthly_orders(con: duckdb.DuckDBPyConnection, entity_id: str,
                   entity_kind: str = "persona") -> list[tuple[str, float]]:
    """('YYYY-MM', estimated orders) of one persona (or account), by month."""
    return [(m, float(v)) for m, v in con.execute(
        "SELECT strftime(month, '%Y-%m'), orders_est FROM sales_monthly "
        "WHERE entity_kind = ? AND entity_id = ? ORDER BY month",
        [entity_kind, entity_id]).fetchall()]


def stored_assessments(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Any, ...]]:
    """The stored ``listing_assessments`` rows by listing id (empty when none are stored),
    each as (drug_class, substance, class_confidence, counterfeit_pill, fentanyl_risk,
    flag_evidence, units, unit_kind, dose_mg, pack_price_usd, unit_price_usd,
    price_per_gram_usd, parse_confidence, parse_note, method)."""
    if not table_exists(con, "listing_assessments"):
        return {}
    return {r[0]: tuple(r[1:]) for r in con.execute(
        "SELECT listing_id, drug_class, substance, class_confidence, counterfeit_pill, "
        "fentanyl_risk, flag_evidence, units, unit_kind, dose_mg, pack_price_usd, "
        "unit_price_usd, price_per_gram_usd, parse_confidence, parse_note, method "
        "FROM listing_assessments").fetchall()}
