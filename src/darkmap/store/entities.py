"""Read-only queries over evidence, personas and wallets for the exporters and the report.

Nothing here writes. The FtM exporter reads each kind of entity (captures, markets,
personas, accounts, listings, PGP keys, advertised wallets, account links); the report's
overview sections read what was collected, from where, and the personas and wallets
behind the accounts. A table whose stage has not run reads as empty. Every query returns
its rows in a total order (ties broken by ids or names), so an export or a report of the
same workspace is the same bytes on every run.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple

import duckdb

from darkmap.store.workspace import table_exists

__all__ = ["AccountLink", "AccountRow", "AdvertisedWallet", "CaptureRow", "ChainCounts",
           "ImporterCounts", "ListingRow", "MarketOverview", "MarketRow", "MultiAccountPersona",
           "PersonaAliases", "PersonaCounts", "PersonaLink", "PgpKeyRow", "PublishedWallet",
           "QuarantineSample", "SkippedPages", "account_links", "accounts", "advertised_wallets",
           "captures", "chain_counts", "cross_market_personas", "importer_counts",
           "market_overview", "markets", "multi_account_personas", "latest_listings",
           "persona_counts", "pgp_keys", "published_wallets", "quarantine_count",
           "quarantine_sample", "skipped_pages", "strongest_links", "top_vendors"]


# --- the FtM exporter -------------------------------------------------------------------------

class CaptureRow(NamedTuple):
    """A raw capture: its hash, size, where it came from and when."""

    sha256: str
    size: int
    source: str
    captured_at: datetime | None


class MarketRow(NamedTuple):
    """A market and the capture it was first seen in."""

    market_id: str
    name: str | None
    onion: str | None
    capture_sha256: str | None


class PersonaAliases(NamedTuple):
    """A persona of several accounts and their handles (sorted)."""

    persona_id: str
    handles: list[str]


class AccountRow(NamedTuple):
    """An account with its market's name and the persona (of 2+ accounts) owning it."""

    account_id: str
    handle: str
    role: str | None
    market_name: str | None
    source: str
    capture_sha256: str | None
    observed_at: datetime | None
    owner: str | None


class ListingRow(NamedTuple):
    """A listing with its latest observation."""

    listing_id: str
    listing_ref: str
    market_id: str
    account_id: str | None
    title: str | None
    price: float | None
    currency: str | None
    ships_from: str | None
    ships_to: list[str] | None
    category_path: list[str] | None
    observed_at: datetime | None
    source: str
    capture_sha256: str | None


class PgpKeyRow(NamedTuple):
    """A PGP key and the accounts that published its fingerprint."""

    fingerprint: str
    key_id: str | None
    algorithm: str | None
    user_ids: list[str] | None
    created_at: datetime | None
    capture_sha256: str | None
    accounts: list[str] | None


class AdvertisedWallet(NamedTuple):
    """A crypto address found in the evidence and the accounts that advertised it."""

    kind: str
    address: str
    capture_sha256: str | None
    accounts: list[str] | None


class AccountLink(NamedTuple):
    """A scored link between two accounts, with its signals."""

    a: str
    b: str
    score: float
    signals: Any


def captures(con: duckdb.DuckDBPyConnection) -> list[CaptureRow]:
    """Every capture, by hash."""
    return [CaptureRow._make(r) for r in con.execute(
        "SELECT sha256, size, source, captured_at FROM captures ORDER BY sha256").fetchall()]


def markets(con: duckdb.DuckDBPyConnection) -> list[MarketRow]:
    """Every market, by id."""
    return [MarketRow._make(r) for r in con.execute(
        "SELECT market_id, name, onion, capture_sha256 FROM markets ORDER BY 1").fetchall()]


def multi_account_personas(con: duckdb.DuckDBPyConnection) -> list[PersonaAliases]:
    """Personas of two or more accounts with their handles, by persona id."""
    if not table_exists(con, "personas"):
        return []
    return [PersonaAliases._make(r) for r in con.execute(
        "SELECT p.persona_id, list(a.handle ORDER BY a.handle) FROM personas p "
        "JOIN persona_members m USING (persona_id) JOIN accounts a USING (account_id) "
        "GROUP BY 1 HAVING count(*) > 1 ORDER BY 1").fetchall()]


def accounts(con: duckdb.DuckDBPyConnection) -> list[AccountRow]:
    """Every account, by id, with its market name and owning multi-account persona."""
    owner_sql = ("(SELECT persona_id FROM persona_members m WHERE m.account_id = a.account_id"
                 " AND (SELECT count(*) FROM persona_members m2 WHERE m2.persona_id ="
                 " m.persona_id) > 1 LIMIT 1)" if table_exists(con, "persona_members")
                 else "NULL")
    sql = (f"SELECT a.account_id, a.handle, a.role, m.name, a.source, a.capture_sha256, "
           f"a.observed_at, {owner_sql} FROM accounts a LEFT JOIN markets m USING (market_id) "
           f"ORDER BY 1")
    return [AccountRow._make(r) for r in con.execute(sql).fetchall()]


def latest_listings(con: duckdb.DuckDBPyConnection) -> list[ListingRow]:
    """Every listing with its latest observation, by listing id."""
    return [ListingRow._make(r) for r in con.execute(
        "SELECT l.listing_id, l.listing_ref, l.market_id, l.account_id, o.title, o.price, "
        "o.currency, o.ships_from, o.ships_to, o.category_path, o.observed_at, o.source, "
        "o.capture_sha256 FROM listings l JOIN (SELECT * FROM listing_observations "
        "QUALIFY row_number() OVER (PARTITION BY listing_id ORDER BY observed_at DESC "
        "NULLS LAST, obs_id) = 1) o USING (listing_id) ORDER BY 1").fetchall()]


def pgp_keys(con: duckdb.DuckDBPyConnection) -> list[PgpKeyRow]:
    """Every PGP key, by fingerprint, with the accounts that published it."""
    return [PgpKeyRow._make(r) for r in con.execute(
        "SELECT k.fingerprint, k.key_id, k.algorithm, k.user_ids, k.created_at, "
        "k.capture_sha256, list(DISTINCT i.account_id ORDER BY i.account_id) "
        "FILTER (WHERE i.account_id IS NOT NULL)"
        " FROM pgp_keys k LEFT JOIN identifiers i ON i.kind = 'pgp_fingerprint' AND "
        "i.value = k.fingerprint GROUP BY ALL ORDER BY 1").fetchall()]


def advertised_wallets(con: duckdb.DuckDBPyConnection) -> list[AdvertisedWallet]:
    """Every BTC or XMR address found in the evidence, by address, with its accounts."""
    return [AdvertisedWallet._make(r) for r in con.execute(
        "SELECT kind, value, min(capture_sha256), list(DISTINCT account_id ORDER BY account_id)"
        " FILTER (WHERE account_id IS NOT NULL) FROM identifiers WHERE kind IN ('btc_address', "
        "'xmr_address') GROUP BY 1, 2 ORDER BY 2").fetchall()]


def account_links(con: duckdb.DuckDBPyConnection) -> list[AccountLink]:
    """Every scored account link, by (a, b)."""
    if not table_exists(con, "account_links"):
        return []
    return [AccountLink._make(r) for r in con.execute(
        "SELECT a, b, score, signals FROM account_links ORDER BY 1, 2").fetchall()]


# --- the report: collection and markets -------------------------------------------------------

class ImporterCounts(NamedTuple):
    """Files and units per importer: read = stored + quarantined + skipped."""

    importer: str
    files: int
    read: int
    stored: int
    quarantined: int
    skipped: int


class SkippedPages(NamedTuple):
    """Pages skipped on purpose, by market, page type and reason."""

    market_id: str
    page_type: str | None
    reason: str | None
    pages: int


class QuarantineSample(NamedTuple):
    """A quarantined record: where it came from, which field, why."""

    source: str | None
    locator: str | None
    field: str
    reason: str | None


class MarketOverview(NamedTuple):
    """A market's counts and when its listings were observed."""

    market_id: str
    name: str | None
    accounts: int
    listings: int
    feedback: int
    first_observed: date | None
    last_observed: date | None


def importer_counts(con: duckdb.DuckDBPyConnection) -> list[ImporterCounts]:
    """Per importer: files processed and units read, stored, quarantined, skipped."""
    return [ImporterCounts._make(r) for r in con.execute(
        "SELECT importer, count(*), sum(read_count), sum(stored_count), sum(quarantined), "
        "sum(skipped) FROM processed GROUP BY 1 ORDER BY 1").fetchall()]


def skipped_pages(con: duckdb.DuckDBPyConnection, limit: int = 30) -> list[SkippedPages]:
    """The most frequent (market, page type, reason) of skipped pages (ties by name)."""
    return [SkippedPages._make(r) for r in con.execute(
        "SELECT coalesce(market_id, '?'), page_type, reason, count(*) FROM skipped_pages "
        f"GROUP BY ALL ORDER BY 4 DESC, 1, 2, 3 LIMIT {int(limit)}").fetchall()]


def quarantine_sample(con: duckdb.DuckDBPyConnection, limit: int = 30) -> list[QuarantineSample]:
    """The first quarantined records by source and locator, a locator's number in
    numeric order (row 1185 before row 10639)."""
    return [QuarantineSample._make(r) for r in con.execute(
        "SELECT source, locator, coalesce(field, ''), reason FROM quarantine "
        "ORDER BY source, regexp_extract(locator, '^[^0-9]*'), "
        "length(regexp_extract(locator, '[0-9]+')), regexp_extract(locator, '[0-9]+'), "
        f"locator, 3, reason LIMIT {int(limit)}").fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row of an aggregate query."""
    row = con.execute(sql).fetchone()
    if row is None:  # an aggregate without GROUP BY always has a row
        raise RuntimeError(f"no row from {sql!r}")
    return row


def quarantine_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many records are quarantined."""
    return int(_one(con, "SELECT count(*) FROM quarantine")[0])


def market_overview(con: duckdb.DuckDBPyConnection) -> list[MarketOverview]:
    """Every market with its counts, most listings first."""
    return [MarketOverview._make(r) for r in con.execute("""
        SELECT m.market_id, m.name,
               (SELECT count(*) FROM accounts a WHERE a.market_id = m.market_id),
               (SELECT count(*) FROM listings l WHERE l.market_id = m.market_id),
               (SELECT count(*) FROM feedback f WHERE f.market_id = m.market_id),
               (SELECT min(o.observed_at)::DATE FROM listing_observations o
                  JOIN listings l USING (listing_id) WHERE l.market_id = m.market_id),
               (SELECT max(o.observed_at)::DATE FROM listing_observations o
                  JOIN listings l USING (listing_id) WHERE l.market_id = m.market_id)
        FROM markets m ORDER BY 4 DESC, 1""").fetchall()]


def top_vendors(con: duckdb.DuckDBPyConnection, limit: int = 15) -> list[tuple[str, int]]:
    """('market:handle', listings) of the vendors with the most listings."""
    return [(v, int(n)) for v, n in con.execute(f"""
        SELECT a.market_id || ':' || a.handle, count(DISTINCT l.listing_id)
        FROM listings l JOIN accounts a USING (account_id)
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}""").fetchall()]


# --- the report: personas ---------------------------------------------------------------------

class PersonaCounts(NamedTuple):
    """How many personas, how many of several accounts, how many across markets."""

    personas: int
    multi_account: int
    cross_market: int


class MultiAccountPersona(NamedTuple):
    """A persona of several accounts, with its members."""

    persona_id: str
    label: str | None
    n_accounts: int
    n_markets: int
    cohesion: float | None
    members: str


class PersonaLink(NamedTuple):
    """A link inside a persona."""

    persona_id: str
    a: str
    b: str
    score: float
    signals: Any


def persona_counts(con: duckdb.DuckDBPyConnection) -> PersonaCounts:
    """Counts of personas, of those with several accounts and of those across markets."""
    return PersonaCounts._make(_one(
        con, "SELECT count(*), count(*) FILTER (WHERE n_accounts > 1), "
             "count(*) FILTER (WHERE n_markets > 1) FROM personas"))


def cross_market_personas(con: duckdb.DuckDBPyConnection,
                          limit: int = 15) -> list[MultiAccountPersona]:
    """Personas of several accounts, most markets then most accounts first."""
    return [MultiAccountPersona._make(r) for r in con.execute(f"""
        SELECT p.persona_id, p.label, p.n_accounts, p.n_markets, p.cohesion,
               string_agg(m.account_id, ', ' ORDER BY m.account_id)
        FROM personas p JOIN persona_members m USING (persona_id)
        WHERE p.n_accounts > 1 GROUP BY ALL
        ORDER BY p.n_markets DESC, p.n_accounts DESC, p.cohesion DESC, 1 LIMIT {int(limit)}"""
    ).fetchall()]


def strongest_links(con: duckdb.DuckDBPyConnection, persona_ids: list[str],
                    per_persona: int = 3) -> list[PersonaLink]:
    """The ``per_persona`` highest-scored links inside each of ``persona_ids`` (equal
    scores by account ids, so the choice and order are the same on every run)."""
    return [PersonaLink._make(r) for r in con.execute(f"""
        SELECT m.persona_id, l.a, l.b, l.score, l.signals FROM account_links l
        JOIN persona_members m ON m.account_id = l.a
        JOIN persona_members m2 ON m2.account_id = l.b AND m2.persona_id = m.persona_id
        WHERE m.persona_id IN (SELECT unnest(?::VARCHAR[]))
        QUALIFY row_number() OVER (PARTITION BY m.persona_id
                                   ORDER BY l.score DESC, l.a, l.b) <= {int(per_persona)}
        ORDER BY m.persona_id, l.score DESC, l.a, l.b""", [persona_ids]).fetchall()]


# --- the report: wallets ----------------------------------------------------------------------

class ChainCounts(NamedTuple):
    """Transactions, addresses and wallets (clusters) in the store."""

    transactions: int
    addresses: int
    clusters: int


class PublishedWallet(NamedTuple):
    """A wallet (cluster) holding addresses a persona published in the evidence."""

    actor: str
    cluster_id: int
    addresses: int
    account_id: str | None


def chain_counts(con: duckdb.DuckDBPyConnection) -> ChainCounts:
    """How many transactions, addresses and clusters the store holds."""
    return ChainCounts._make(_one(
        con, "SELECT (SELECT count(*) FROM btc_tx), (SELECT count(*) FROM btc_address), "
             "(SELECT count(DISTINCT cluster_id) FROM btc_clusters)"))


def published_wallets(con: duckdb.DuckDBPyConnection) -> list[PublishedWallet]:
    """Per (persona, cluster): addresses the persona published in the evidence."""
    return [PublishedWallet._make(r) for r in con.execute("""
        SELECT t.actor, c.cluster_id, count(DISTINCT t.address), min(t.account_id)
        FROM btc_tags t JOIN btc_address a ON a.address = t.address
        JOIN btc_clusters c ON c.address_id = a.address_id
        WHERE t.origin = 'evidence' AND t.actor IS NOT NULL GROUP BY 1, 2""").fetchall()]
