"""The SQL of the web workbench (issue #14): sign-in credentials, failed sign-ins, API
tokens and sessions (the ``web_`` tables, written only here), and the reads its pages
need beyond the library's (an account, a listing, free-text search over listings and
feedback, the review queue of proposed links, graph neighbours).

Credentials, failures and tokens live where the operational records live: the
workspace's DuckDB (migration 013) or the team server (:data:`PG_WEB_SCHEMA`, installed
by ``darkmap team init``); the functions below take either connection
(:data:`darkmap.store.operations.Con`). Sessions are stored only on the team server
(``web_sessions``), so several workbench processes share them; over a workspace they live
in the one server process (:mod:`darkmap.web.auth`). On the server only the front-end role
``darkmap_ops_service`` may touch the ``web_`` tables: an operational user's own login role
reads no password hash, TOTP secret or session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import duckdb

from darkmap.store.newest import newest
from darkmap.store.operations import READABLE, SERVICE_ROLE, Con, PgOps
from darkmap.store.workspace import Workspace, table_exists

__all__ = [
    "PG_WEB_SCHEMA", "LoginRow", "SessionRow", "account_head", "account_listings",
    "account_observations", "address_evidence", "any_record_links", "clear_failures",
    "count_account_listings", "count_failures",
    "delete_login", "delete_session", "delete_user_sessions", "feedback_of",
    "identifier_holders",
    "identifiers_of_accounts", "ListingHits",
    "insert_failure", "insert_login", "insert_session", "insert_token", "install_server_web",
    "latest_lockout", "listing_head", "listing_observations", "login", "persona_sales",
    "pgp_keys_of", "purge_sessions", "review_queue", "revoke_tokens", "search_feedback",
    "search_listings",
    "session_row", "TOKEN_ID_CHARS", "TokenRow", "tokens_of", "user_sessions",
    "set_totp_step", "thread_cursor", "token_user", "touch_session",
]


PG_WEB_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS web_logins (
    user_id TEXT PRIMARY KEY,
    web_role TEXT NOT NULL CHECK (web_role IN ('analyst', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL, totp_secret TEXT NOT NULL, totp_last_step BIGINT,
    created_by TEXT NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS web_failures (
    user_id TEXT NOT NULL, failed_at TIMESTAMP NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS web_failures_user ON web_failures (user_id, failed_at);
CREATE TABLE IF NOT EXISTS web_tokens (
    token_sha256 TEXT PRIMARY KEY, user_id TEXT NOT NULL, label TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS web_sessions (
    sid_sha256 TEXT PRIMARY KEY, user_id TEXT NOT NULL, web_role TEXT NOT NULL,
    signed_in TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL, csrf TEXT NOT NULL);
REVOKE ALL ON web_logins, web_failures, web_tokens, web_sessions FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON web_logins, web_failures, web_tokens, web_sessions
    TO {SERVICE_ROLE};
"""
"""The workbench's tables on the team server: the workspace's (migration 013) plus the
sessions. Only ``darkmap_ops_service`` (the workbench's own login role) may read or write
them; ``darkmap_ops`` members (analysts' login roles, in ``psql``) may not."""


def install_server_web(pg: Any) -> None:
    """Create (or complete) the workbench's tables on the server (after the operational
    schema, which makes the service role); the caller holds the transaction."""
    pg.execute(PG_WEB_SCHEMA)


class LoginRow(NamedTuple):
    """Sign-in credentials of a user."""

    user_id: str
    web_role: str
    password_hash: str
    totp_secret: str
    totp_last_step: int | None


def _rows(con: duckdb.DuckDBPyConnection, sql: str,
          params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name."""
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# -- credentials ----------------------------------------------------------------------


def insert_login(con: Con, row: LoginRow, by: str,
                 at: datetime) -> None:
    """Store (or replace) a user's sign-in credentials."""
    con.execute("DELETE FROM web_logins WHERE user_id = ?", [row.user_id])
    con.execute("INSERT INTO web_logins VALUES (?, ?, ?, ?, ?, ?, ?)", [*row, by, at])


def login(con: Con, user_id: str) -> LoginRow | None:
    """A user's credentials, or None."""
    r = con.execute("SELECT user_id, web_role, password_hash, totp_secret, totp_last_step "
                    "FROM web_logins WHERE user_id = ?", [user_id]).fetchone()
    return None if r is None else LoginRow(*r)


def delete_login(con: Con, user_id: str) -> None:
    """Remove a user's sign-in credentials (suspended)."""
    con.execute("DELETE FROM web_logins WHERE user_id = ?", [user_id])


def set_totp_step(con: Con, user_id: str, step: int) -> None:
    """Remember the newest TOTP time step accepted for ``user_id``."""
    con.execute("UPDATE web_logins SET totp_last_step = ? WHERE user_id = ?", [step, user_id])


def insert_failure(con: Con, user_id: str, at: datetime,
                   reason: str) -> None:
    """Record one failed sign-in."""
    con.execute("INSERT INTO web_failures VALUES (?, ?, ?)", [user_id, at, reason])


def count_failures(con: Con, user_id: str,
                   since: datetime) -> tuple[int, datetime | None]:
    """Failed sign-ins of ``user_id`` at or after ``since``: (count, newest)."""
    r = con.execute("SELECT count(*), max(failed_at) FROM web_failures WHERE user_id = ? "
                    "AND failed_at >= ? AND reason <> 'lockout'", [user_id, since]).fetchone()
    return (0, None) if r is None else (int(r[0]), r[1])


def latest_lockout(con: Con, user_id: str) -> datetime | None:
    """When ``user_id`` was last locked out (a ``lockout`` row), or None."""
    r = con.execute("SELECT max(failed_at) FROM web_failures WHERE user_id = ? AND "
                    "reason = 'lockout'", [user_id]).fetchone()
    return None if r is None else r[0]


def clear_failures(con: Con, user_id: str) -> None:
    """Forget the failed sign-ins of ``user_id`` (after a successful one)."""
    con.execute("DELETE FROM web_failures WHERE user_id = ?", [user_id])


def insert_token(con: Con, token_sha256: str, user_id: str,
                 label: str, at: datetime) -> None:
    """Store an API token's hash."""
    con.execute("INSERT INTO web_tokens VALUES (?, ?, ?, ?, NULL)",
                [token_sha256, user_id, label, at])


TOKEN_ID_CHARS = 16
"""Hex digits of a token's SHA-256 that name it on the Access page (not a secret: the
token cannot be had from its hash)."""


def revoke_tokens(con: Con, user_id: str, at: datetime, label: str | None = None,
                  token_id: str | None = None) -> int:
    """Revoke the unrevoked API tokens of ``user_id`` (only those of ``label``, or the one
    whose :data:`TokenRow.token_id` is ``token_id``, when given); how many."""
    where = "user_id = ? AND revoked_at IS NULL"
    args: list[Any] = [user_id]
    if label is not None:
        where += " AND label = ?"
        args.append(label)
    if token_id is not None:
        where += f" AND left(token_sha256, {TOKEN_ID_CHARS}) = ?"
        args.append(token_id)
    r = con.execute(f"SELECT count(*) FROM web_tokens WHERE {where}", args).fetchone()
    con.execute(f"UPDATE web_tokens SET revoked_at = ? WHERE {where}", [at, *args])
    return int(r[0]) if r else 0


class TokenRow(NamedTuple):
    """An API token as its owner and admins see it: named by the first
    :data:`TOKEN_ID_CHARS` hex digits of its hash, never by the token."""

    token_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def tokens_of(con: Con, user_id: str) -> list[TokenRow]:
    """The API tokens of ``user_id``, newest first (revoked ones too)."""
    return [TokenRow(*r) for r in con.execute(
        f"SELECT left(token_sha256, {TOKEN_ID_CHARS}), label, created_at, revoked_at "
        "FROM web_tokens WHERE user_id = ? ORDER BY created_at DESC, label",
        [user_id]).fetchall()]


def token_user(con: Con, token_sha256: str) -> str | None:
    """The user of an unrevoked API token, or None."""
    r = con.execute("SELECT user_id FROM web_tokens WHERE token_sha256 = ? AND "
                    "revoked_at IS NULL", [token_sha256]).fetchone()
    return None if r is None else str(r[0])


# -- sessions (team server) -------------------------------------------------------------


class SessionRow(NamedTuple):
    """A stored session (the cookie value only as its SHA-256)."""

    user_id: str
    web_role: str
    signed_in: datetime
    last_seen: datetime
    csrf: str


def insert_session(con: PgOps, sid_sha256: str, row: SessionRow) -> None:
    """Store a new session."""
    con.execute("INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?, ?)", [sid_sha256, *row])


def session_row(con: PgOps, sid_sha256: str) -> SessionRow | None:
    """A stored session whose user still has a sign-in (its role the sign-in's now), or
    None: a session stored by a sign-in that finished while the user was suspended is
    no session (review of the Access page, M1)."""
    r = con.execute("SELECT s.user_id, l.web_role, s.signed_in, s.last_seen, s.csrf "
                    "FROM web_sessions s JOIN web_logins l ON l.user_id = s.user_id "
                    "WHERE s.sid_sha256 = ?", [sid_sha256]).fetchone()
    return None if r is None else SessionRow(*r)


def touch_session(con: PgOps, sid_sha256: str, at: datetime) -> None:
    """Move a session's last request to ``at`` (never back)."""
    con.execute("UPDATE web_sessions SET last_seen = greatest(last_seen, ?) "
                "WHERE sid_sha256 = ?", [at, sid_sha256])


def purge_sessions(con: PgOps, idle_before: datetime, signed_in_before: datetime) -> None:
    """Forget every session idle since before ``idle_before`` or signed in before
    ``signed_in_before`` (they can no longer be used)."""
    con.execute("DELETE FROM web_sessions WHERE last_seen < ? OR signed_in < ?",
                [idle_before, signed_in_before])


def delete_user_sessions(con: PgOps, user_id: str) -> int:
    """Forget every session of ``user_id`` (their sign-in was replaced or suspended, or
    they were signed out everywhere); how many there were."""
    r = con.execute("SELECT count(*) FROM web_sessions WHERE user_id = ?",
                    [user_id]).fetchone()
    con.execute("DELETE FROM web_sessions WHERE user_id = ?", [user_id])
    return int(r[0]) if r else 0


def user_sessions(con: PgOps, user_id: str) -> list[tuple[str, datetime, datetime]]:
    """The stored sessions of ``user_id``: (cookie's SHA-256, signed in, last request),
    the newest sign-in first."""
    return [(str(r[0]), r[1], r[2]) for r in con.execute(
        "SELECT sid_sha256, signed_in, last_seen FROM web_sessions WHERE user_id = ? "
        "ORDER BY signed_in DESC", [user_id]).fetchall()]


def delete_session(con: PgOps, sid_sha256: str) -> None:
    """Forget a session (signed out, idle or past re-authentication)."""
    con.execute("DELETE FROM web_sessions WHERE sid_sha256 = ?", [sid_sha256])


# -- reads for the pages --------------------------------------------------------------


def thread_cursor(ws: Workspace) -> Workspace:
    """The workspace on a new cursor of its connection: one per server thread, so
    pages read concurrently (DuckDB cursors of one database share its transactions)."""
    return Workspace(ws.path, ws.con.cursor())


def any_record_links(con: Con, refs: list[tuple[str, str]], user_id: str,
                     agency_id: str) -> bool:
    """Whether a record the user ``user_id`` (of ``agency_id``) may read links to one of
    ``refs`` (kind, id), in the workspace or on the team server. Says only whether an
    audited read is worth making; returns no record. Grant-filtered as every read is
    (:data:`~darkmap.store.operations.READABLE`): were it not, whether the read (and its
    audit entry) happens would tell that some other agency's record links there."""
    if not refs or (not isinstance(con, PgOps) and not table_exists(con, "ops_links")):
        return False
    r = con.execute("SELECT EXISTS (SELECT 1 FROM ops_links WHERE (ref_kind, ref_id) IN "
                    "(SELECT unnest(CAST($kinds AS TEXT[])), unnest(CAST($ids AS TEXT[]))) "
                    f"AND record_id IN (SELECT record_id FROM ops_records WHERE {READABLE}))",
                    {"kinds": [k for k, _ in refs], "ids": [v for _, v in refs],
                     "user": user_id, "agency": agency_id}).fetchone()
    return bool(r and r[0])


def account_head(con: duckdb.DuckDBPyConnection, account_id: str) -> dict[str, Any] | None:
    """An account: market, handle, role, first capture and its persona."""
    rows = _rows(con, "SELECT a.account_id, a.market_id, a.handle, a.role, a.capture_sha256, "
                 "a.source, a.method, a.observed_at, m.persona_id FROM accounts a "
                 "LEFT JOIN persona_members m USING (account_id) WHERE a.account_id = ?",
                 [account_id])
    return rows[0] if rows else None


def account_observations(con: duckdb.DuckDBPyConnection, account_id: str,
                         limit: int = 20) -> list[dict[str, Any]]:
    """What the captures showed of an account, newest first."""
    return _rows(con, "SELECT joined_at, last_seen_at, rating, level, feedback_count, "
                 "sales_count, profile_text, ships_from, url, capture_sha256, source, "
                 "observed_at FROM account_observations WHERE account_id = ? "
                 "ORDER BY observed_at DESC NULLS LAST, obs_id LIMIT ?", [account_id, limit])


def count_account_listings(con: duckdb.DuckDBPyConnection, account_ids: list[str]) -> int:
    """How many listings the accounts sell (what :func:`account_listings` pages over)."""
    if not account_ids:
        return 0
    r = con.execute("SELECT count(*) FROM listings WHERE account_id IN (SELECT unnest(?))",
                    [account_ids]).fetchone()
    return int(r[0]) if r else 0


def account_listings(con: duckdb.DuckDBPyConnection, account_ids: list[str],
                     limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    """The listings of the accounts with their latest title and assessment, by listing
    id, ``limit`` of them from ``offset``."""
    if not account_ids:
        return []
    assessed = table_exists(con, "listing_assessments")
    cols = ("a.drug_class, a.substance, a.dose_mg, a.fentanyl_risk, a.counterfeit_pill"
            if assessed else "NULL AS drug_class, NULL AS substance, NULL AS dose_mg, "
            "NULL AS fentanyl_risk, NULL AS counterfeit_pill")
    join = "LEFT JOIN listing_assessments a USING (listing_id)" if assessed else ""
    return _rows(con, "SELECT l.listing_id, l.market_id, l.account_id, o.title, o.price, "
                 f"o.currency, o.ships_from, {cols} FROM listings l "
                 f"LEFT JOIN (SELECT listing_id, {newest('title')} AS title, "
                 f"{newest('price')} AS price, "
                 f"{newest('currency', 'price IS NOT NULL')} AS currency, "
                 f"{newest('ships_from')} AS ships_from FROM "
                 "listing_observations GROUP BY listing_id) o USING (listing_id) "
                 f"{join} WHERE l.account_id IN (SELECT unnest(?)) "
                 "ORDER BY l.listing_id LIMIT ? OFFSET ?", [account_ids, limit, offset])


def listing_head(con: duckdb.DuckDBPyConnection, listing_id: str) -> dict[str, Any] | None:
    """A listing: market, vendor account, first capture, assessment if any."""
    rows = _rows(con, "SELECT listing_id, market_id, listing_ref, account_id, capture_sha256, "
                 "source, method, observed_at FROM listings WHERE listing_id = ?",
                 [listing_id])
    if not rows:
        return None
    head = rows[0]
    if table_exists(con, "listing_assessments"):
        a = _rows(con, "SELECT drug_class, substance, dose_mg, units, unit_kind, "
                  "fentanyl_risk, counterfeit_pill FROM listing_assessments "
                  "WHERE listing_id = ?", [listing_id])
        head["assessment"] = a[0] if a else None
    return head


def listing_observations(con: duckdb.DuckDBPyConnection, listing_id: str,
                         limit: int = 20) -> list[dict[str, Any]]:
    """What the captures showed of a listing, newest first, each with its capture."""
    return _rows(con, "SELECT title, description, price, currency, price_text, "
                 "quantity_text, ships_from, ships_to, category_path, feedback_count, "
                 "capture_sha256, source, method, observed_at FROM listing_observations "
                 "WHERE listing_id = ? ORDER BY observed_at DESC NULLS LAST, obs_id LIMIT ?",
                 [listing_id, limit])


def feedback_of(con: duckdb.DuckDBPyConnection, column: str, ref: str,
                limit: int = 50) -> list[dict[str, Any]]:
    """Feedback about an account (``column='account_id'``) or a listing (``listing_id``)."""
    if column not in ("account_id", "listing_id"):
        raise ValueError(column)
    return _rows(con, "SELECT listing_id, listing_title, buyer_masked, rating, rating_scale, "
                 "text, left_at, amount, currency, capture_sha256 FROM feedback "
                 f"WHERE {column} = ? ORDER BY left_at DESC NULLS LAST, feedback_id LIMIT ?",
                 [ref, limit])


def identifiers_of_accounts(con: duckdb.DuckDBPyConnection,
                            account_ids: list[str]) -> list[dict[str, Any]]:
    """Distinct identifiers (kind, value) the accounts published, with the account."""
    if not account_ids:
        return []
    return _rows(con, "SELECT DISTINCT account_id, kind, value FROM identifiers WHERE "
                 "account_id IN (SELECT unnest(?)) ORDER BY kind, value, account_id",
                 [account_ids])


def pgp_keys_of(con: duckdb.DuckDBPyConnection,
                account_ids: list[str]) -> list[dict[str, Any]]:
    """The PGP keys the accounts published: fingerprint, algorithm, bits, user ids."""
    if not account_ids:
        return []
    return _rows(con, "SELECT DISTINCT k.fingerprint, k.algorithm, k.bits, k.created_at, "
                 "k.user_ids FROM pgp_keys k JOIN identifiers i ON i.kind = "
                 "'pgp_fingerprint' AND i.value = k.fingerprint WHERE i.account_id IN "
                 "(SELECT unnest(?)) ORDER BY k.fingerprint", [account_ids])


def identifier_holders(con: duckdb.DuckDBPyConnection, kind: str, value: str,
                       limit: int = 100) -> list[str]:
    """The accounts that published an identifier."""
    return [str(r[0]) for r in con.execute(
        "SELECT DISTINCT account_id FROM identifiers WHERE kind = ? AND value = ? AND "
        "account_id IS NOT NULL ORDER BY 1 LIMIT ?", [kind, value, limit]).fetchall()]


class ListingHits(NamedTuple):
    """One page of a free-text search over listings."""

    rows: list[dict[str, Any]]
    """The hits of the page, by listing id, each with its newest title."""
    total: int
    """Hits of the text and the facets chosen, on every page."""
    facets: dict[str, dict[str, int]]
    """Hits by ``market`` (within the drug class chosen) and by ``drug_class`` (within
    the market chosen): what following a facet's link finds."""


def search_listings(con: duckdb.DuckDBPyConnection, text: str, market: str | None,
                    drug_class: str | None, limit: int = 50,
                    offset: int = 0) -> ListingHits:
    """Listings whose title or description contains ``text`` (both lowered by the
    database, so they fold alike; literal text, no wildcard), optionally of
    one market and drug class: ``limit`` hits from ``offset``, how many in all, facets."""
    assessed = table_exists(con, "listing_assessments")
    cls = "a.drug_class" if assessed else "NULL"
    join = "LEFT JOIN listing_assessments a USING (listing_id)" if assessed else ""
    base = ("WITH hits AS (SELECT DISTINCT o.listing_id FROM listing_observations o WHERE "
            "contains(lower(coalesce(o.title, '')), lower($q)) OR "
            "contains(lower(coalesce(o.description, '')), lower($q))) "
            f"SELECT l.listing_id, l.market_id, l.account_id, {cls} AS drug_class "
            f"FROM hits JOIN listings l USING (listing_id) {join} ORDER BY l.listing_id")
    params = {"q": text}
    everything = _rows(con, base, params)
    for r in everything:
        r["drug_class"] = r["drug_class"] or "unassessed"
    in_market = [r for r in everything if market is None or r["market_id"] == market]
    in_class = [r for r in everything if drug_class is None or r["drug_class"] == drug_class]
    facets = {"market": _counts(r["market_id"] for r in in_class),
              "drug_class": _counts(r["drug_class"] for r in in_market)}
    keep = [r for r in in_market if drug_class is None or r["drug_class"] == drug_class]
    page = keep[offset:offset + limit]
    ids = [r["listing_id"] for r in page]
    titles = dict(con.execute(
        f"SELECT listing_id, {newest('title')} FROM listing_observations "
        "WHERE listing_id IN (SELECT unnest(?)) GROUP BY listing_id", [ids]).fetchall())
    for r in page:
        r["title"] = titles.get(r["listing_id"])
    return ListingHits(page, len(keep), facets)


def _counts(values: Any) -> dict[str, int]:
    """How often each value occurs, most often first (then by value)."""
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def search_feedback(con: duckdb.DuckDBPyConnection, text: str,
                    limit: int = 30) -> list[dict[str, Any]]:
    """Feedback whose text contains ``text`` (both lowered by the database: they fold
    alike)."""
    return _rows(con, "SELECT feedback_id, market_id, account_id, listing_id, text, left_at "
                 "FROM feedback WHERE contains(lower(coalesce(text, '')), lower(?)) "
                 "ORDER BY left_at DESC NULLS LAST, feedback_id LIMIT ?", [text, limit])


def review_queue(con: duckdb.DuckDBPyConnection, low: float, high: float,
                 limit: int = 50) -> list[dict[str, Any]]:
    """Proposed links an analyst should look at: scored pairs with ``low <= score <
    high`` and no standing judgement, the most uncertain first."""
    if not table_exists(con, "account_links"):
        return []
    return _rows(con, "SELECT l.a, l.b, l.score, l.signals, l.method, l.merged FROM "
                 "account_links l WHERE l.score >= ? AND l.score < ? AND NOT EXISTS ("
                 "SELECT 1 FROM judgements j WHERE j.a = l.a AND j.b = l.b AND "
                 "j.withdrawn_at IS NULL) ORDER BY abs(l.score - 0.5), l.a, l.b LIMIT ?",
                 [low, high, limit])


def persona_sales(con: duckdb.DuckDBPyConnection, persona_id: str) -> list[dict[str, Any]]:
    """Estimated orders and revenue per month of a persona (empty before assessment)."""
    if not table_exists(con, "sales_monthly"):
        return []
    return _rows(con, "SELECT month, feedback_count, orders_est, orders_low, orders_high, "
                 "revenue_usd FROM sales_monthly WHERE entity_kind = 'persona' AND "
                 "entity_id = ? ORDER BY month", [persona_id])


def address_evidence(con: duckdb.DuckDBPyConnection, address: str) -> dict[str, Any]:
    """What the workspace holds on one Bitcoin address (its normal form) outside any
    wallet cluster: its tags (evidence and TagPack), the accounts that published it and
    their personas, and whether the loaded chain data hold it at all. For the wallet page
    of an address a vendor published that no loaded block pays or spends."""
    tags = _rows(con, "SELECT address, label, category, confidence, source, actor, origin, "
                 "account_id, tagpack_title AS tagpack FROM btc_tags WHERE address = ? "
                 "ORDER BY origin, label, rowid", [address]
                 ) if table_exists(con, "btc_tags") else []
    published = identifier_holders(con, "btc_address", address)
    accounts = sorted({*published, *(t["account_id"] for t in tags if t["account_id"])})
    personas = _rows(con, "SELECT DISTINCT m.persona_id, p.label FROM persona_members m "
                     "JOIN personas p USING (persona_id) WHERE m.account_id IN "
                     "(SELECT unnest(?)) ORDER BY 1", [accounts]
                     ) if accounts and table_exists(con, "persona_members") else []
    in_chain = table_exists(con, "btc_address") and con.execute(
        "SELECT EXISTS (SELECT 1 FROM btc_address WHERE address = ?)", [address]
    ).fetchone() == (True,)
    return {"tags": tags, "linked_accounts": accounts, "linked_personas": personas,
            "in_chain": in_chain}
