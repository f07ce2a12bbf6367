"""Reads of the evidence tables: what the linker and the key statistics need.

The evidence tables (markets, accounts, listings, listing_observations, feedback,
identifiers, pgp_keys, account_observations, quarantine, ...) are written by
:mod:`darkmap.store.writer` only; this module holds the SQL that reads them for the
account profiles of the linker (:mod:`darkmap.resolve.profiles`), account checks and
the ``darkmap keys`` statistics. Per-account readers return plain rows, one per account
(``(account_id, ...)``), in a fixed order so that results never depend on DuckDB's
parallel scans.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import duckdb

__all__ = [
    "AlgorithmCount", "KeyFailure", "KeyStatistics", "SharedKey", "account_exists",
    "account_handles", "account_identifiers", "account_verifications", "activity_spans",
    "destinations", "evidence_windows", "feedback_texts", "identifiers_of", "key_statistics",
    "main_origins", "onion_contexts", "own_texts", "priced_titles", "product_texts", "site_hosts",
]

# --- accounts -----------------------------------------------------------------------


def account_exists(con: duckdb.DuckDBPyConnection, account_id: str) -> bool:
    """True when ``account_id`` is a row of ``accounts``."""
    return con.execute("SELECT 1 FROM accounts WHERE account_id = ?",
                       [account_id]).fetchone() is not None


def account_handles(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None]]:
    """``(account_id, market_id, handle)`` of every account, by account id."""
    return con.execute(
        "SELECT account_id, market_id, handle FROM accounts ORDER BY account_id").fetchall()


# --- texts --------------------------------------------------------------------------

# vendor-written text per account, with and without titles: profile and terms first,
# then the (short) titles, then descriptions, each distinct text once; one scan
_OWN_TEXT_SQL = """
    SELECT account_id, string_agg(t, ' \n ' ORDER BY k, t),
           string_agg(t, ' \n ' ORDER BY k, t) FILTER (WHERE k <> 2) FROM (
      SELECT account_id, t, min(k) AS k FROM (
        SELECT account_id, profile_text AS t, 0 AS k FROM account_observations
        UNION ALL SELECT account_id, terms_text, 1 FROM account_observations
        UNION ALL SELECT account_id, title, 2 FROM listing_observations
        UNION ALL SELECT account_id, description, 3 FROM listing_observations)
      WHERE t IS NOT NULL AND account_id IS NOT NULL GROUP BY account_id, t)
    GROUP BY account_id"""


def own_texts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, str | None]]:
    """``(account_id, text, text without titles)``: each account's vendor-written text
    (profile, terms, titles, descriptions; each distinct text once, in that order)."""
    return con.execute(_OWN_TEXT_SQL).fetchall()


def product_texts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(account_id, titles and categories)``: each distinct title with its category
    path, ``' ; '``-joined in text order."""
    return con.execute("""
        SELECT account_id, string_agg(t, ' ; ' ORDER BY t) FROM (
          SELECT DISTINCT account_id,
                 title || ' ' || coalesce(array_to_string(category_path, ' '), '') AS t
          FROM listing_observations) WHERE t IS NOT NULL AND account_id IS NOT NULL
        GROUP BY account_id""").fetchall()


def feedback_texts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(account_id, feedback)``: the distinct feedback texts an account received,
    in text order."""
    return con.execute("""
        SELECT account_id, string_agg(text, ' \n ' ORDER BY text) FROM (
          SELECT DISTINCT account_id, text FROM feedback)
        WHERE text IS NOT NULL AND account_id IS NOT NULL GROUP BY account_id""").fetchall()


# --- time ---------------------------------------------------------------------------


def evidence_windows(con: duckdb.DuckDBPyConnection
                     ) -> list[tuple[str, datetime | None, datetime | None]]:
    """``(account_id, first, last)`` time of any evidence of the account (joined, last
    seen, listing observed, feedback left), plausible dates (2005-2040) only."""
    return con.execute("""
      SELECT account_id, min(t), max(t) FROM (
        SELECT account_id, joined_at AS t FROM account_observations
        UNION ALL SELECT account_id, last_seen_at FROM account_observations
        UNION ALL SELECT account_id, observed_at FROM listing_observations
        UNION ALL SELECT account_id, left_at FROM feedback
      ) WHERE t IS NOT NULL AND account_id IS NOT NULL
        AND t BETWEEN TIMESTAMP '2005-01-01' AND TIMESTAMP '2040-01-01'
      GROUP BY account_id""").fetchall()


def activity_spans(con: duckdb.DuckDBPyConnection
                   ) -> list[tuple[str, datetime | None, datetime | None]]:
    """``(account_id, first, last)`` activity proper: first of joined date and feedback,
    last feedback (capture and ingest times ignored), plausible dates only.

    An account in a dataset that states no observation time (a seized dump) was active
    up to the dump, and a dump is at least as late as the newest join date it holds:
    that date is the account's last activity too (else a vendor who joined two years
    before the seizure reads as gone since he joined)."""
    return con.execute("""
      WITH dumps AS (
        SELECT capture_sha256, max(joined_at) AS dumped FROM account_observations
        WHERE observed_at IS NULL
          AND joined_at BETWEEN TIMESTAMP '2005-01-01' AND TIMESTAMP '2040-01-01'
        GROUP BY capture_sha256)
      SELECT account_id, min(t), max(f) FROM (
        SELECT account_id, joined_at AS t, NULL::TIMESTAMP AS f FROM account_observations
        UNION ALL SELECT account_id, left_at, left_at FROM feedback
        UNION ALL SELECT o.account_id, NULL, d.dumped FROM account_observations o
          JOIN dumps d ON d.capture_sha256 = o.capture_sha256 WHERE o.observed_at IS NULL
      ) WHERE account_id IS NOT NULL
        AND (t IS NULL OR t BETWEEN TIMESTAMP '2005-01-01' AND TIMESTAMP '2040-01-01')
        AND (f IS NULL OR f BETWEEN TIMESTAMP '2005-01-01' AND TIMESTAMP '2040-01-01')
      GROUP BY account_id""").fetchall()


# --- shipping, identifiers, prices --------------------------------------------------


def main_origins(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(account_id, ships_from)``: each account's most frequent origin as written
    (ties broken by name, not by chance), by account id."""
    return con.execute("""
      SELECT account_id, s FROM (
        SELECT account_id, s, count(*) AS c FROM (
          SELECT account_id, ships_from AS s FROM account_observations
          UNION ALL SELECT account_id, ships_from FROM listing_observations)
        WHERE s IS NOT NULL AND trim(s) <> '' AND account_id IS NOT NULL
        GROUP BY account_id, s)
      QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY c DESC, s) = 1
      ORDER BY account_id""").fetchall()


def destinations(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(account_id, ships_to entry)``: every distinct destination of an account's
    listings as written, sorted."""
    return con.execute("""
        SELECT DISTINCT account_id, unnest(ships_to) FROM listing_observations
        WHERE account_id IS NOT NULL AND ships_to IS NOT NULL ORDER BY ALL""").fetchall()


def account_identifiers(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """``(account_id, kind, value)``: every distinct identifier of an account, its own
    or on one of its listings, sorted."""
    return con.execute("""
      SELECT DISTINCT coalesce(i.account_id, l.account_id) AS aid, i.kind, i.value
      FROM identifiers i LEFT JOIN listings l ON i.listing_id = l.listing_id
      WHERE coalesce(i.account_id, l.account_id) IS NOT NULL AND i.value IS NOT NULL
      ORDER BY ALL""").fetchall()


def account_verifications(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(account_id, line)``: each distinct line a market showed of where else it
    verified the account ("Dream: 34000 deals, 4.82/5"), sorted."""
    return con.execute("""
      SELECT DISTINCT account_id, v FROM (
        SELECT account_id, unnest(verified_on) AS v FROM account_observations
        WHERE verified_on IS NOT NULL)
      WHERE v IS NOT NULL ORDER BY ALL""").fetchall()


def onion_contexts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(onion host, context)``: the text around each onion address found, the host
    lower-cased, sorted."""
    return con.execute("""
      SELECT DISTINCT lower(value), context FROM identifiers
      WHERE kind = 'onion' AND value IS NOT NULL AND context IS NOT NULL
      ORDER BY ALL""").fetchall()


def site_hosts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The onion hosts of the markets themselves: each market's stated onion and the
    host of every page URL an account or listing was read from, lower-cased, sorted."""
    rows = con.execute(r"""
      SELECT DISTINCT lower(h) FROM (
        SELECT onion AS h FROM markets
        UNION ALL SELECT regexp_extract(url, '^[a-zA-Z]+://([^/:?#]+)', 1)
          FROM account_observations
        UNION ALL SELECT regexp_extract(url, '^[a-zA-Z]+://([^/:?#]+)', 1)
          FROM listing_observations)
      WHERE h IS NOT NULL AND h <> '' ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def identifiers_of(con: duckdb.DuckDBPyConnection,
                   account_ids: list[str]) -> list[tuple[str, str, str | None]]:
    """``(account_id, kind, value)``: the distinct identifiers of ``account_ids`` (their
    own or on their listings), by kind and value."""
    return con.execute("""
        SELECT DISTINCT coalesce(i.account_id, l.account_id) aid, i.kind, i.value
        FROM identifiers i LEFT JOIN listings l ON i.listing_id = l.listing_id
        WHERE coalesce(i.account_id, l.account_id) IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY kind, value""", [account_ids]).fetchall()


def priced_titles(con: duckdb.DuckDBPyConnection
                  ) -> list[tuple[str, str, float, str | None]]:
    """``(account_id, title, price, currency)``: every distinct priced listing title,
    sorted."""
    return con.execute("""
        SELECT DISTINCT account_id, title, price, currency FROM listing_observations
        WHERE account_id IS NOT NULL AND price IS NOT NULL AND title IS NOT NULL
        ORDER BY ALL""").fetchall()


# --- PGP keys -----------------------------------------------------------------------


class AlgorithmCount(TypedDict):
    """Parsed keys of one algorithm and size."""

    algorithm: str | None
    bits: int | None
    keys: int


class SharedKey(TypedDict):
    """A fingerprint published by more than one account."""

    fingerprint: str
    accounts: list[str]


class KeyFailure(TypedDict):
    """A quarantined key block."""

    source: str
    locator: str | None
    field: str | None
    reason: str


class KeyStatistics(TypedDict):
    """What ``darkmap keys`` prints (see :func:`key_statistics`)."""

    key_occurrences: int
    distinct_fingerprints: int
    accounts_with_keys: int
    algorithms: list[AlgorithmCount]
    shared_fingerprints: int
    accounts_sharing_a_key: int
    shared: list[SharedKey]
    failed: int
    failed_by_reason: dict[str, int]
    failures: list[KeyFailure]


_FAILED_WHERE = "(reason LIKE '%PGP key block%' OR reason LIKE '%PGP column%')"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def key_statistics(con: duckdb.DuckDBPyConnection, limit: int = 50) -> KeyStatistics:
    """Key counts from a workspace connection.

    ``key_occurrences``: published key blocks parsed (one per block and key, from the
    ``pgp_fingerprint`` identifiers); ``distinct_fingerprints``: rows of ``pgp_keys``;
    ``shared``: fingerprints published by more than one account, with the accounts;
    ``failed``: key blocks quarantined with their reasons (the first ``limit`` listed): a
    block of a dump's PGP column or of a page's field (``page#pgp N``) that could not be
    read, or a PGP column without a block.
    """
    occ = con.execute(
        "SELECT count(*), count(DISTINCT value), count(DISTINCT account_id) FROM identifiers "
        "WHERE kind = 'pgp_fingerprint'").fetchone()
    algos = con.execute(
        "SELECT algorithm, bits, count(*) FROM pgp_keys GROUP BY ALL ORDER BY 3 DESC, 1, 2"
    ).fetchall()
    shared = con.execute(
        "SELECT value, list(DISTINCT account_id ORDER BY account_id), "
        "count(DISTINCT account_id) AS n FROM identifiers "
        "WHERE kind = 'pgp_fingerprint' AND account_id IS NOT NULL "
        "GROUP BY value HAVING n > 1 ORDER BY n DESC, value").fetchall()
    failed = con.execute(
        f"SELECT source, locator, field, reason FROM quarantine WHERE {_FAILED_WHERE} "
        "ORDER BY source, locator LIMIT ?", [limit]).fetchall()
    by_reason = con.execute(
        "SELECT regexp_replace(reason, "
        "'^.*?PGP key block \\d+ in (column|field) ''[^'']*'': ', '')"
        f" AS r, count(*) FROM quarantine WHERE {_FAILED_WHERE} GROUP BY r ORDER BY 2 DESC"
    ).fetchall()
    return {
        "key_occurrences": occ[0] if occ else 0,
        "distinct_fingerprints": _count(con, "SELECT count(*) FROM pgp_keys"),
        "accounts_with_keys": occ[2] if occ else 0,
        "algorithms": [{"algorithm": a, "bits": b, "keys": n} for a, b, n in algos],
        "shared_fingerprints": len(shared),
        "accounts_sharing_a_key": len({a for _, accts, _ in shared for a in accts}),
        "shared": [{"fingerprint": f, "accounts": list(accts)} for f, accts, _ in shared],
        "failed": _count(con, f"SELECT count(*) FROM quarantine WHERE {_FAILED_WHERE}"),
        "failed_by_reason": dict(by_reason),
        "failures": [{"source": s, "locator": loc, "field": f, "reason": r}
                     for s, loc, f, r in failed],
    }
