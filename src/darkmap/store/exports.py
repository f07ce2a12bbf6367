"""Read-only queries for the exporters (FtM, graph, STIX, MISP, CSV/Parquet).

Nothing here writes. Every query takes an optional selection ``sel``: the account ids an
export is narrowed to (``None``: the whole workspace); rows that belong to no selected
account are left out, and links and relations are kept only when both ends are selected.
:func:`select_accounts` turns ``--persona`` / ``--country`` into such a selection. A
table whose stage has not run reads as empty, and every query returns its rows in a total
order (ties broken by ids), so an export of the same workspace is the same bytes on
every run.

The analytical tables (:data:`TABLES`) are read as Arrow batches (:func:`table_batches`),
each with its provenance columns: the evidence tables carry their own (``capture_sha256``,
``source``, ``method``, ``observed_at``); the derived ones carry the run and method that
made them and, where they derive from one piece of evidence, its capture.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from darkmap.errors import BadInputError, NotFoundError, WorkspaceStateError
from darkmap.store.newest import latest, newest, newest_list
from darkmap.store.workspace import table_exists, table_has_rows

__all__ = ["TABLES", "AccountFacts", "CaptureFacts", "IdentifierFacts", "LinkFacts",
           "ListingFacts", "MarketFacts", "PersonaFacts", "PgpKeyFacts", "SelectorUse", "TableSpec",
           "account_links", "accounts", "captures", "identifiers", "listings", "markets",
           "missing_stages", "personas", "pgp_keys", "select_accounts", "selector_uses",
           "table_batches", "table_names"]

Sel = Sequence[str] | None
"""Selected account ids, or None for every account."""


def _in(column: str, sel: Sel) -> tuple[str, list[Any]]:
    """``AND column IN (selection)`` and its parameter, or nothing when ``sel`` is None."""
    if sel is None:
        return "", []
    return f" AND {column} IN (SELECT unnest(?::VARCHAR[]))", [list(sel)]


# --- selection --------------------------------------------------------------------------------

def _persona_of(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """The persona id of a persona id or member account id, else NotFoundError."""
    row = con.execute(
        "SELECT persona_id FROM personas WHERE persona_id = ? UNION ALL "
        "SELECT persona_id FROM persona_members WHERE account_id = ? LIMIT 1",
        [ref, ref.strip().casefold() if ":" in ref else ref]).fetchone()
    if row is None:
        raise NotFoundError(f"no persona or account {ref!r} in this workspace")
    return str(row[0])


def select_accounts(con: duckdb.DuckDBPyConnection, personas: Sequence[str] = (),
                    countries: Sequence[str] = (), subjects: Sequence[str] = ()
                    ) -> list[str] | None:
    """The account ids an export is narrowed to, or None (no narrowing asked).

    ``personas``: persona ids or member account ids; all members of each. ``countries``:
    ISO codes; the accounts whose persona (or, unlinked, the account itself) the
    jurisdiction estimate places there. ``subjects``: a case's persona and account
    ids, selecting as ``personas`` does. Several values of one option add up; options
    given together keep the accounts every one selects (a case export with
    ``--persona`` holds the case's subjects that are that persona: found by the exports
    audit, finding 6, where it held the case and the persona). NotFoundError when none
    is left.
    """
    if not personas and not countries and not subjects:
        return None
    chosen: set[str] | None = None
    for given in (personas, subjects):
        if not given:
            continue
        held = _members(con, given)
        chosen = held if chosen is None else chosen & held
    if countries:
        if not table_has_rows(con, "jurisdictions"):
            raise WorkspaceStateError("--country needs jurisdictions: run `darkmap assess` "
                                      "first")
        codes = sorted({c.strip().upper() for c in countries})
        members = ("LEFT JOIN persona_members m USING (account_id) "
                   if table_exists(con, "persona_members") else "")
        pid = "m.persona_id" if members else "NULL"
        rows = con.execute(
            f"SELECT a.account_id FROM accounts a {members}"
            f"LEFT JOIN jurisdictions jp ON jp.entity_kind = 'persona' AND jp.entity_id = {pid} "
            "LEFT JOIN jurisdictions ja ON ja.entity_kind = 'account' "
            "AND ja.entity_id = a.account_id "
            "WHERE coalesce(jp.country, ja.country) IN (SELECT unnest(?::VARCHAR[]))",
            [codes]).fetchall()
        by_country = {r[0] for r in rows}
        chosen = by_country if chosen is None else chosen & by_country
    if not chosen:
        asked = ", ".join([*(f"--persona {p}" for p in personas),
                           *(f"--country {c}" for c in countries),
                           *([f"the case's {len(subjects)} subject(s)"] if subjects else [])])
        raise NotFoundError(f"no account of this workspace matches {asked}")
    return sorted(chosen)


def _members(con: duckdb.DuckDBPyConnection, personas: Sequence[str]) -> set[str]:
    """The accounts of the personas ``personas`` name (persona or member account ids)."""
    if not table_has_rows(con, "persona_members"):
        raise WorkspaceStateError("--persona needs personas: run `darkmap link` first")
    pids = sorted({_persona_of(con, p) for p in personas})
    return {r[0] for r in con.execute(
        "SELECT account_id FROM persona_members WHERE persona_id IN "
        "(SELECT unnest(?::VARCHAR[]))", [pids]).fetchall()}


def missing_stages(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What an export of this workspace lacks because a stage has not run, as notes for
    the analyst (empty when nothing is missing): no records at all (`darkmap ingest`),
    no personas (`darkmap link`), no drug assessment (`darkmap assess`)."""
    if not table_has_rows(con, "accounts") and not table_has_rows(con, "listings"):
        return [("the workspace holds no records (no account, no listing): run "
                 "`darkmap ingest` first; the export is empty")]
    notes = []
    if not table_has_rows(con, "personas"):
        notes.append("no personas or account links yet: run `darkmap link` to have them "
                     "in the export")
    if table_has_rows(con, "listings") and not table_has_rows(con, "listing_assessments"):
        notes.append("no drug assessments, harm scores or jurisdictions yet: run "
                     "`darkmap assess` to have them in the export")
    return notes


# --- entities ---------------------------------------------------------------------------------

class MarketFacts(NamedTuple):
    """A market and the capture it was first seen in."""

    market_id: str
    name: str | None
    onion: str | None
    capture_sha256: str
    source: str
    method: str
    observed_at: datetime | None


class AccountFacts(NamedTuple):
    """An account, its latest profile observation, its persona and its activity window."""

    account_id: str
    market_id: str
    market_name: str | None
    handle: str
    role: str
    persona_id: str | None
    persona_size: int
    joined_at: datetime | None
    last_seen_at: datetime | None
    rating: float | None
    level: str | None
    feedback_count: int | None
    sales_count: int | None
    ships_from: str | None
    profile_text: str | None
    url: str | None
    country: str | None
    country_confidence: float | None
    first_seen: datetime | None
    last_seen: datetime | None
    n_observations: int
    n_listings: int
    n_feedback: int
    capture_sha256: str
    source: str
    method: str
    observed_at: datetime | None


class PersonaFacts(NamedTuple):
    """A persona of two or more accounts (a hypothesis: one vendor behind them)."""

    persona_id: str
    label: str | None
    n_accounts: int
    n_markets: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    cohesion: float | None
    country: str | None
    country_confidence: float | None
    run_id: str | None
    accounts: list[str]


class ListingFacts(NamedTuple):
    """A listing, its latest observation and its drug assessment (if assessed)."""

    listing_id: str
    market_id: str
    listing_ref: str
    account_id: str | None
    title: str | None
    description: str | None
    price: float | None
    currency: str | None
    price_text: str | None
    ships_from: str | None
    ships_to: list[str] | None
    category_path: list[str] | None
    url: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    n_observations: int
    drug_class: str | None
    substance: str | None
    class_confidence: float | None
    fentanyl_risk: bool | None
    counterfeit_pill: bool | None
    unit_kind: str | None
    dose_mg: float | None
    unit_price_usd: float | None
    capture_sha256: str
    source: str
    method: str
    observed_at: datetime | None


class PgpKeyFacts(NamedTuple):
    """An OpenPGP key and the accounts that published it."""

    fingerprint: str
    key_id: str
    algorithm: str | None
    bits: int | None
    created_at: datetime | None
    user_ids: list[str] | None
    armored: str | None
    capture_sha256: str
    source: str
    method: str
    observed_at: datetime | None
    accounts: list[str]


class IdentifierFacts(NamedTuple):
    """A selector (address, e-mail, onion, contact handle) and where it was seen."""

    kind: str
    value: str
    accounts: list[str]
    n_evidence: int
    first_seen: datetime | None
    last_seen: datetime | None
    capture_sha256: str
    source: str
    captures: list[str]


class LinkFacts(NamedTuple):
    """A scored candidate pair of accounts (a < b) and its signals (JSON text)."""

    a: str
    b: str
    score: float
    merged: bool | None
    signals: str
    method: str


class CaptureFacts(NamedTuple):
    """A raw capture: its hash, size, media type, where it came from and when."""

    sha256: str
    size: int
    source: str
    media_type: str | None
    captured_at: datetime | None


def markets(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[MarketFacts]:
    """The markets (of the selected accounts), by id."""
    where, params = _in("market_id", None)
    if sel is not None:
        where = (" AND market_id IN (SELECT market_id FROM accounts WHERE account_id "
                 "IN (SELECT unnest(?::VARCHAR[])))")
        params = [list(sel)]
    return [MarketFacts._make(r) for r in con.execute(
        "SELECT market_id, name, onion, capture_sha256, source, method, observed_at "
        f"FROM markets WHERE true{where} ORDER BY 1", params).fetchall()]


def _persona_sql(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The persona join and columns for accounts (NULLs before `darkmap link`)."""
    if not table_exists(con, "persona_members"):
        return "", "NULL, 0"
    return (("LEFT JOIN persona_members pm USING (account_id) "
             "LEFT JOIN personas p ON p.persona_id = pm.persona_id "),
            "pm.persona_id, coalesce(p.n_accounts, 0)")


def _jurisdiction_sql(con: duckdb.DuckDBPyConnection, kind: str, key: str) -> tuple[str, str]:
    """The jurisdiction join and columns for ``kind`` rows keyed by ``key``."""
    if not table_exists(con, "jurisdictions"):
        return "", "NULL, NULL"
    return (f"LEFT JOIN jurisdictions j ON j.entity_kind = '{kind}' AND j.entity_id = {key} ",
            "j.country, j.confidence")


_ACCOUNT_NEWEST = ", ".join(
    f"{newest(c)} AS {c}" for c in ("joined_at", "last_seen_at", "rating", "level",
                                    "feedback_count", "sales_count", "ships_from",
                                    "profile_text", "url"))
"""An account's exported fields, each its newest known value (a saved page's newer
observation without profile text keeps a seized dump's)."""

_LISTING_NEWEST = ", ".join([
    *(f"{newest(c)} AS {c}" for c in ("account_id", "title", "description", "price",
                                      "price_text", "ships_from", "url")),
    f"{newest('currency', 'price IS NOT NULL')} AS currency",
    *(f"{newest_list(c)} AS {c}" for c in ("ships_to", "category_path")),
    *(f"{latest(c)} AS {c}" for c in ("capture_sha256", "source", "method", "observed_at"))])
"""A listing's exported fields, each its newest known value (a search result row's newer
observation without description keeps the listing page's); the price with its own
currency; the provenance that of the newest observation."""


def accounts(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[AccountFacts]:
    """Every (selected) account with, per field, the newest value its observations show
    (:mod:`darkmap.store.newest`), its persona and counts, by id."""
    pjoin, pcols = _persona_sql(con)
    jjoin, jcols = _jurisdiction_sql(con, "account", "a.account_id")
    where, params = _in("a.account_id", sel)
    sql = f"""
        WITH obs AS (
            SELECT account_id, count(*) AS n_obs, min(observed_at) AS first_obs,
                   max(observed_at) AS last_obs, {_ACCOUNT_NEWEST}
            FROM account_observations GROUP BY account_id),
        lst AS (SELECT o.account_id, count(DISTINCT o.listing_id) AS n,
                       min(o.observed_at) AS first_obs, max(o.observed_at) AS last_obs
                FROM listing_observations o WHERE o.account_id IS NOT NULL GROUP BY 1),
        fb AS (SELECT account_id, count(*) AS n, min(coalesce(left_at, observed_at)) AS first_obs,
                      max(coalesce(left_at, observed_at)) AS last_obs
               FROM feedback WHERE account_id IS NOT NULL GROUP BY 1)
        SELECT a.account_id, a.market_id, mk.name, a.handle, a.role, {pcols},
               obs.joined_at, obs.last_seen_at, obs.rating, obs.level, obs.feedback_count,
               obs.sales_count, obs.ships_from, obs.profile_text, obs.url, {jcols},
               least(a.observed_at, obs.first_obs, lst.first_obs, fb.first_obs,
                     obs.joined_at),
               greatest(a.observed_at, obs.last_obs, lst.last_obs, fb.last_obs,
                        obs.last_seen_at),
               coalesce(obs.n_obs, 0), coalesce(lst.n, 0), coalesce(fb.n, 0),
               a.capture_sha256, a.source, a.method, a.observed_at
        FROM accounts a LEFT JOIN markets mk USING (market_id)
        LEFT JOIN obs USING (account_id) LEFT JOIN lst USING (account_id)
        LEFT JOIN fb USING (account_id) {pjoin}{jjoin}
        WHERE true{where} ORDER BY 1"""
    return [AccountFacts._make(r) for r in con.execute(sql, params).fetchall()]


def personas(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[PersonaFacts]:
    """The personas of two or more accounts (with a selected member), by id.

    Their ``accounts`` are the selected members only (all members without a selection).
    """
    if not table_exists(con, "personas"):
        return []
    jjoin, jcols = _jurisdiction_sql(con, "persona", "p.persona_id")
    where, params = _in("m.account_id", sel)
    return [PersonaFacts._make(r) for r in con.execute(
        f"SELECT p.persona_id, p.label, p.n_accounts, p.n_markets, p.first_seen, p.last_seen, "
        f"p.cohesion, {jcols}, p.run_id, list(m.account_id ORDER BY m.account_id) "
        f"FROM personas p JOIN persona_members m USING (persona_id) {jjoin}"
        f"WHERE p.n_accounts > 1{where} GROUP BY ALL ORDER BY 1", params).fetchall()]


def listings(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[ListingFacts]:
    """Every (selected vendors') listing with, per field, the newest value its observations
    show (:mod:`darkmap.store.newest`) and its assessment."""
    has_assess = table_exists(con, "listing_assessments")
    acols = ("la.drug_class, la.substance, la.class_confidence, la.fentanyl_risk, "
             "la.counterfeit_pill, la.unit_kind, la.dose_mg, la.unit_price_usd"
             if has_assess else ", ".join(["NULL"] * 8))
    ajoin = "LEFT JOIN listing_assessments la USING (listing_id) " if has_assess else ""
    where, params = _in("coalesce(l.account_id, o.account_id)", sel)
    return [ListingFacts._make(r) for r in con.execute(f"""
        WITH o AS (
            SELECT listing_id, count(*) AS n_obs, min(observed_at) AS first_obs,
                   max(observed_at) AS last_obs, {_LISTING_NEWEST}
            FROM listing_observations GROUP BY listing_id)
        SELECT l.listing_id, l.market_id, l.listing_ref, coalesce(l.account_id, o.account_id),
               o.title, o.description, o.price, o.currency, o.price_text, o.ships_from,
               o.ships_to, o.category_path, o.url, o.first_obs, o.last_obs,
               coalesce(o.n_obs, 0), {acols},
               coalesce(o.capture_sha256, l.capture_sha256), coalesce(o.source, l.source),
               coalesce(o.method, l.method), coalesce(o.observed_at, l.observed_at)
        FROM listings l LEFT JOIN o USING (listing_id) {ajoin}
        WHERE true{where} ORDER BY 1""", params).fetchall()]


def pgp_keys(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[PgpKeyFacts]:
    """Every PGP key (published by a selected account), by fingerprint, with its accounts."""
    where, params = _in("i.account_id", sel)
    having = "" if sel is None else " HAVING count(i.account_id) > 0"
    return [PgpKeyFacts._make(r) for r in con.execute(
        "SELECT k.fingerprint, k.key_id, k.algorithm, k.bits, k.created_at, k.user_ids, "
        "k.armored, k.capture_sha256, k.source, k.method, k.observed_at, "
        "coalesce(list(DISTINCT i.account_id ORDER BY i.account_id) "
        "FILTER (WHERE i.account_id IS NOT NULL), []) "
        "FROM pgp_keys k LEFT JOIN identifiers i ON i.kind = 'pgp_fingerprint' "
        f"AND i.value = k.fingerprint{where} GROUP BY ALL{having} ORDER BY 1",
        params).fetchall()]


def identifiers(con: duckdb.DuckDBPyConnection, sel: Sel = None,
                kinds: Sequence[str] | None = None) -> list[IdentifierFacts]:
    """Every selector (of ``kinds``; PGP fingerprints are keys, not listed) by kind and
    value, with the accounts that showed it and how often it was seen.

    With a selection, only selectors a selected account showed, and only those accounts.
    """
    where, params = _in("account_id", sel)
    if sel is not None:
        where = " AND account_id IS NOT NULL" + where
    if kinds is not None:
        where += " AND kind IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(kinds))
    return [IdentifierFacts._make(r) for r in con.execute(
        "SELECT kind, value, coalesce(list(DISTINCT account_id ORDER BY account_id) "
        "FILTER (WHERE account_id IS NOT NULL), []), count(*), min(observed_at), "
        "max(observed_at), min(capture_sha256), arg_min(source, capture_sha256), "
        "list(DISTINCT capture_sha256 ORDER BY capture_sha256) "
        f"FROM identifiers WHERE kind <> 'pgp_fingerprint'{where} GROUP BY 1, 2 ORDER BY 1, 2",
        params).fetchall()]


class SelectorUse(NamedTuple):
    """One account's use of a selector: how often and when it showed it."""

    kind: str
    value: str
    account_id: str
    n_evidence: int
    first_seen: datetime | None
    last_seen: datetime | None


def selector_uses(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[SelectorUse]:
    """Per (selector, account): the evidence rows and their time span (PGP keys too)."""
    where, params = _in("account_id", sel)
    return [SelectorUse._make(r) for r in con.execute(
        "SELECT kind, value, account_id, count(*), min(observed_at), max(observed_at) "
        f"FROM identifiers WHERE account_id IS NOT NULL{where} GROUP BY 1, 2, 3 "
        "ORDER BY 1, 2, 3", params).fetchall()]


def account_links(con: duckdb.DuckDBPyConnection, sel: Sel = None) -> list[LinkFacts]:
    """Every scored account pair (both ends selected), by (a, b)."""
    if not table_exists(con, "account_links"):
        return []
    wa, pa_ = _in("a", sel)
    wb, pb = _in("b", sel)
    return [LinkFacts._make(r) for r in con.execute(
        "SELECT a, b, score, merged, signals::VARCHAR, method FROM account_links "
        f"WHERE true{wa}{wb} ORDER BY 1, 2", pa_ + pb).fetchall()]


def captures(con: duckdb.DuckDBPyConnection,
             shas: Sequence[str] | None = None) -> list[CaptureFacts]:
    """The captures (with a hash in ``shas``; all when None), by hash."""
    where, params = _in("sha256", shas)
    return [CaptureFacts._make(r) for r in con.execute(
        "SELECT sha256, size, source, media_type, captured_at FROM captures "
        # paths ingest refused (links, FIFOs...) have a row but no bytes: not documents
        "WHERE coalesce(media_type, '') <> 'x-darkmap/not-read'"
        f"{where} ORDER BY 1", params).fetchall()]


# --- analytical tables ------------------------------------------------------------------------

class TableSpec(NamedTuple):
    """An exported table: the query that reads it with its provenance columns, the order
    of its rows and how a selection narrows it (a SQL condition over the selected account
    ids ``sel`` and their persona ids ``sel_p``; None: it cannot be narrowed)."""

    query: str
    order: str
    narrow: str | None


_ACCOUNT = "account_id IN (SELECT id FROM sel)"
_ENTITY = "entity_id IN (SELECT id FROM sel UNION ALL SELECT id FROM sel_p)"
TABLES: dict[str, TableSpec] = {
    "markets": TableSpec("SELECT * FROM markets", "market_id",
                         "market_id IN (SELECT market_id FROM accounts WHERE " + _ACCOUNT + ")"),
    "accounts": TableSpec("SELECT * FROM accounts", "account_id", _ACCOUNT),
    "account_observations": TableSpec("SELECT * FROM account_observations", "obs_id", _ACCOUNT),
    "listings": TableSpec("SELECT * FROM listings", "listing_id", _ACCOUNT),
    "listing_observations": TableSpec("SELECT * FROM listing_observations", "obs_id",
                                      _ACCOUNT),
    "feedback": TableSpec("SELECT * FROM feedback", "feedback_id", _ACCOUNT),
    "identifiers": TableSpec("SELECT * FROM identifiers", "ident_id", _ACCOUNT),
    "pgp_keys": TableSpec(
        "SELECT * FROM pgp_keys", "fingerprint",
        "fingerprint IN (SELECT value FROM identifiers WHERE kind = 'pgp_fingerprint' AND "
        + _ACCOUNT + ")"),
    "captures": TableSpec("SELECT * FROM captures", "sha256", None),
    "quarantine": TableSpec("SELECT * FROM quarantine", "quarantine_id", None),
    "skipped_pages": TableSpec("SELECT * FROM skipped_pages", "skip_id", None),
    "field_cuts": TableSpec("SELECT * FROM field_cuts", "cut_id", None),
    "personas": TableSpec(
        "SELECT p.*, (SELECT min(l.method) FROM account_links l WHERE l.run_id = p.run_id) "
        "AS method FROM personas p", "persona_id", "persona_id IN (SELECT id FROM sel_p)"),
    "persona_members": TableSpec(
        "SELECT m.*, p.run_id, p.created_at, a.capture_sha256, a.source, "
        "a.method AS evidence_method, a.observed_at FROM persona_members m "
        "LEFT JOIN personas p USING (persona_id) LEFT JOIN accounts a USING (account_id)",
        "persona_id, account_id", _ACCOUNT),
    "account_links": TableSpec(
        "SELECT * FROM account_links", "a, b",
        "a IN (SELECT id FROM sel) AND b IN (SELECT id FROM sel)"),
    "judgements": TableSpec("SELECT *, 'analyst judgement by ' || author AS method "
                            "FROM judgements", "judgement_id",
                            "a IN (SELECT id FROM sel) AND b IN (SELECT id FROM sel)"),
    "listing_assessments": TableSpec(
        "SELECT la.*, o.capture_sha256, o.source, o.method AS evidence_method "
        "FROM listing_assessments la LEFT JOIN listing_observations o USING (obs_id)",
        "listing_id", _ACCOUNT),
    "sales_monthly": TableSpec("SELECT * FROM sales_monthly", "entity_kind, entity_id, month",
                               _ENTITY),
    "sales_summary": TableSpec("SELECT * FROM sales_summary", "entity_kind, entity_id",
                               _ENTITY),
    "jurisdictions": TableSpec("SELECT * FROM jurisdictions", "entity_kind, entity_id",
                               _ENTITY),
    "btc_tags": TableSpec("SELECT *, origin || coalesce(': ' || tagpack_title, '') AS method "
                          "FROM btc_tags", "tag_id", _ACCOUNT),
    "btc_clusters": TableSpec(
        "SELECT c.cluster_id, a.address, a.script_type, r.run_id, r.created_at, "
        "array_to_string(r.heuristics, ',') AS method FROM btc_clusters c "
        "JOIN btc_address a USING (address_id) "
        "CROSS JOIN (SELECT * FROM btc_cluster_runs ORDER BY created_at DESC LIMIT 1) r",
        "cluster_id, address", None),
}
"""The analytical tables, by export name."""


def table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The exportable tables this workspace has (its stages' migrations ran)."""
    return [n for n in TABLES if table_exists(con, n)]


def table_batches(con: duckdb.DuckDBPyConnection, name: str,
                  sel: Sel = None, batch_rows: int = 50_000) -> pa.RecordBatchReader:
    """The rows of table ``name`` (narrowed to ``sel``) as Arrow record batches.

    BadInputError for a name not in :data:`TABLES` or a table that cannot be narrowed to
    a selection; WorkspaceStateError when its stage never ran in this workspace.
    """
    spec = TABLES.get(name)
    if spec is None:
        raise BadInputError(f"no exportable table {name!r}; have: {', '.join(TABLES)}")
    if not table_exists(con, name):
        raise WorkspaceStateError(f"table {name!r} does not exist yet in this workspace "
                                  "(its stage has not run)")
    params: list[Any] = []
    sql = f"SELECT * FROM ({spec.query}) t ORDER BY {spec.order}"
    if sel is not None:
        if spec.narrow is None:
            raise BadInputError(f"table {name!r} cannot be narrowed to personas or countries")
        pids: list[str] = []
        if table_exists(con, "persona_members"):
            pids = [r[0] for r in con.execute(
                "SELECT DISTINCT persona_id FROM persona_members WHERE account_id IN "
                "(SELECT unnest(?::VARCHAR[])) ORDER BY 1", [list(sel)]).fetchall()]
        sql = (f"WITH sel AS (SELECT unnest(?::VARCHAR[]) AS id), "
               f"sel_p AS (SELECT unnest(?::VARCHAR[]) AS id) "
               f"SELECT * FROM ({spec.query}) t WHERE {spec.narrow} ORDER BY {spec.order}")
        params = [list(sel), pids]
    reader: pa.RecordBatchReader = con.execute(sql, params).fetch_record_batch(batch_rows)
    return reader
