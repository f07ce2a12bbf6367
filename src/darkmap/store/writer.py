"""Turn extracted records into store rows, stamped with provenance, in batches.

Row ids are hashes of what identifies the fact plus the capture it came from, and every
insert stores what ``INSERT OR IGNORE`` would: re-reading the same capture writes nothing
new, which is what makes ingestion idempotent. Markets and PGP keys keep a primary key for
that; the append-only evidence tables (:data:`KEYLESS`) and the accounts and listings
(:data:`UNKEYED_ENTITIES`) have none since migration 007, and the writer itself leaves
out repeated and already stored ids. Rows are buffered per table and flushed through Arrow,
so a CSV of 100,000 listings costs a handful of inserts, not 100,000. A
:class:`~darkmap.model.records.ListingBatch` goes in as columns, without a tuple per
row; its rows keep their place in each table's order, so the same rows win every
``INSERT OR IGNORE`` as if they had come one record at a time.

This module is also darkmap's one bulk writer: :func:`insert_arrow` (an Arrow table into a
table), :func:`insert_rows` (tuples into a table) and :func:`query_arrow` (any statement
over an Arrow table, e.g. ``INSERT ... SELECT`` with a condition, or a join that looks rows
up). Every store module that bulk-loads rows uses them; DuckDB's ``executemany`` goes row
by row and is slow. The writes of a stage commit together: :func:`transaction` (or
:func:`begin` / :func:`commit` / :func:`rollback` where a transaction spans many files).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa

from darkmap.model import arrow_compute as ac
from darkmap.model.fingerprints import Fingerprints, text_fingerprints
from darkmap.model.records import (
    AccountRecord,
    CutRecord,
    FeedbackRecord,
    IdentifierRecord,
    ListingBatch,
    ListingRecord,
    MarketRecord,
    PgpKeyRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
    UnitRecord,
    window_days,
)
from darkmap.store.ids import row_id, row_ids

__all__ = ["ARROW_ROWS", "BATCH_TEXT", "BIG_FILE_BUFFER_MB", "INGEST_BUFFER_MB",
           "INGEST_THREADS", "KEYLESS", "UNKEYED_ENTITIES", "Fingerprints", "Provenance",
           "RecordWriter", "account_id", "arrow_views", "begin", "buffer_limit",
           "commit", "commit_to_file", "duckdb_threads", "insert_arrow", "insert_rows",
           "listing_id", "query_arrow",
           "replace_quarantine", "rollback", "row_id", "row_ids", "tables_scannable",
           "threads_set",
           "transaction"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from: capture hash, source, method, default observation time."""

    capture_sha256: str
    source: str
    method: str
    observed_at: datetime | None
    run_id: str = ""


def account_id(market_id: str, handle: str) -> str:
    """The store's id of an account: ``market:handle`` (handle case-folded)."""
    return f"{market_id}:{handle.strip().casefold()}"


def listing_id(market_id: str, listing_ref: str) -> str:
    """The store's id of a listing: ``market:listing_ref``."""
    return f"{market_id}:{listing_ref.strip()}"


_COLUMNS: dict[str, tuple[str, ...]] = {
    "captures": ("sha256", "size", "source", "media_type", "captured_at"),
    "processed": ("sha256", "importer", "run_id", "source", "read_count", "stored_count",
                  "quarantined", "skipped", "market_id", "page_type", "processed_at"),
    "markets": ("market_id", "name", "onion", "capture_sha256", "source", "method", "observed_at"),
    "page_rates": ("rate_id", "market_id", "currency", "usd", "locator", "capture_sha256",
                   "source", "method", "observed_at"),
    "accounts": ("account_id", "market_id", "handle", "role", "capture_sha256", "source",
                 "method", "observed_at"),
    "account_observations": (
        "obs_id", "account_id", "joined_at", "last_seen_at", "rating", "level",
        "feedback_count", "sales_count", "profile_text", "terms_text", "ships_from", "url",
        "locator", "capture_sha256", "source", "method", "observed_at", "rating_scale",
        "rating_norm", "ships_to", "last_seen_earliest", "last_seen_latest", "sales_floor",
        "verified_on"),
    "feedback_counts": (
        "counts_id", "obs_id", "account_id", "market_id", "window_label", "window_days",
        "positive", "neutral", "negative", "locator", "capture_sha256", "source", "method",
        "observed_at"),
    "listings": ("listing_id", "market_id", "listing_ref", "account_id", "capture_sha256",
                 "source", "method", "observed_at"),
    "listing_observations": (
        "obs_id", "listing_id", "account_id", "title", "description", "price", "currency",
        "price_text", "quantity_text", "stock", "ships_from", "ships_to", "category_path",
        "feedback_count", "sales_count", "url", "locator", "capture_sha256", "source",
        "method", "observed_at"),
    "feedback": (
        "feedback_id", "market_id", "account_id", "listing_id", "listing_title",
        "buyer_masked", "rating", "rating_scale", "text", "left_at", "amount", "currency",
        "locator", "capture_sha256", "source", "method", "observed_at"),
    "pgp_keys": ("fingerprint", "key_id", "algorithm", "bits", "created_at", "user_ids",
                 "subkeys", "armored", "capture_sha256", "source", "method", "observed_at"),
    "identifiers": ("ident_id", "kind", "value", "market_id", "account_id", "listing_id",
                    "field", "context", "locator", "capture_sha256", "source", "method",
                    "observed_at"),
    "skipped_pages": ("skip_id", "market_id", "page_type", "reason", "locator",
                      "capture_sha256", "source", "method"),
    "quarantine": ("quarantine_id", "market_id", "locator", "field", "reason", "excerpt",
                   "capture_sha256", "source", "method", "run_id", "limit_name"),
    "field_cuts": ("cut_id", "market_id", "locator", "field", "original_chars", "kept_chars",
                   "value_sha256", "capture_sha256", "source", "method", "run_id"),
}

_TYPES: dict[str, pa.DataType] = {
    "joined_at": pa.timestamp("us"), "last_seen_at": pa.timestamp("us"),
    "observed_at": pa.timestamp("us"), "created_at": pa.timestamp("us"),
    "left_at": pa.timestamp("us"), "rating": pa.float64(), "rating_scale": pa.float64(),
    "rating_norm": pa.float64(), "last_seen_earliest": pa.timestamp("us"),
    "last_seen_latest": pa.timestamp("us"), "window_days": pa.int32(),
    "positive": pa.int32(), "neutral": pa.int32(), "negative": pa.int32(),
    "price": pa.float64(), "amount": pa.float64(), "usd": pa.float64(),
    "feedback_count": pa.int32(),
    "sales_count": pa.int32(), "sales_floor": pa.int32(), "stock": pa.int32(),
    "bits": pa.int32(),
    "ships_to": pa.list_(pa.string()), "category_path": pa.list_(pa.string()),
    "verified_on": pa.list_(pa.string()),
    "user_ids": pa.list_(pa.string()),
    "size": pa.int64(), "captured_at": pa.timestamp("us"), "processed_at": pa.timestamp("us"),
    "read_count": pa.int32(), "stored_count": pa.int32(), "quarantined": pa.int32(),
    "skipped": pa.int32(), "original_chars": pa.int64(), "kept_chars": pa.int64(),
}


def _naive(ts: datetime | None) -> datetime | None:
    """UTC without a zone, as the store keeps every timestamp."""
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


def _norm(rating: float | None, scale: float | None) -> float | None:
    """``rating`` on a 0..1 scale (``None`` unless both are known and the scale > 0)."""
    if rating is None or not scale or scale <= 0:
        return None
    return max(0.0, min(1.0, rating / scale))


def _within(seconds: float | None, obs: datetime | None) -> tuple[datetime | None,
                                                                  datetime | None]:
    """A relative last-seen (``seconds`` before ``obs``) as (earliest, latest)."""
    if seconds is None or obs is None:
        return None, None
    return obs - timedelta(seconds=seconds), obs


BATCH_TEXT = 8 << 20
"""Characters of free text (profiles, descriptions, feedback, armored keys, identifier
contexts, quarantine excerpts) after which an autoflushing :class:`RecordWriter` writes
its buffer, whatever its row count. A seized dump's row carries about 3.4 KB of such text
(the Dream dump): 50,000 buffered rows held some 55 MB of it, and the Python objects,
Arrow tables and DuckDB copies of one flush made the ingest's first ~470 MB plateau. At
8 Mi characters a dump flushes every ~10,000 rows; a listing CSV's short rows still reach
the 50,000-row batch first."""


class RecordWriter:
    """Buffers rows (of one file or of many small files) and flushes them to DuckDB.

    With ``autoflush`` the buffer is written whenever it holds ``batch`` rows or
    ``batch_text`` characters of free text (:data:`BATCH_TEXT`: a seized dump's rows carry
    kilobytes of profile and PGP text each, and 50,000 of them made a flush of hundreds of
    megabytes); without it the caller decides (the ingest pipeline flushes only between
    files, so a file whose importer fails can be dropped from the buffer with
    :meth:`rollback_to`).
    """

    remember_stored = True
    """Leave out stored ids and keys from what this writer remembers (one scan of an
    entity table per writer, none per flush); False asks the store at every flush (the
    reference the tests compare with)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, batch: int = 50_000,
                 autoflush: bool = True, batch_text: int = BATCH_TEXT) -> None:
        self.con = con
        self.batch = batch
        self.batch_text = batch_text
        self.autoflush = autoflush
        # characters of free text buffered (see BATCH_TEXT); decides when an autoflush
        # comes, never what is stored
        self._text = 0
        self._rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        # Arrow tables of a table's earlier rows (batches, and the tuples before them)
        self._chunks: dict[str, list[pa.Table]] = defaultdict(list)
        self._pending = 0
        #: Captures the caller vouches no stored row carries yet (see :meth:`flush`);
        #: emptied by every flush, since the flushed rows are stored from then on.
        self.fresh: set[str] = set()
        # captures whose stored evidence rows were all written by this writer, which
        # remembers their ids (:attr:`_ids`): a later flush of the same capture (a big
        # file in parts) leaves out stored ids without asking the store
        self._tracked: set[str] = set()
        self._untracked: set[str] = set()  # captures not to follow (see _insert_keyless)
        self._ids: dict[str, Fingerprints] = defaultdict(Fingerprints)
        # every key stored in an unkeyed entity table, loaded once (see _insert_unkeyed_entity)
        self._keys: dict[str, Fingerprints] = {}
        # key columns this writer inserted into a table with no key stored before, not yet
        # in _keys: hashed when a later flush of the table needs them (a file of one
        # flush never does)
        self._unhashed: dict[str, list[pa.Table]] = defaultdict(list)
        # the fingerprints of the pgp_keys rows in the buffer (see _pgp)
        self._pgp_buffered: set[str] = set()

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return self._pending

    def add(self, rec: Record, prov: Provenance) -> str:
        """Buffer the rows for ``rec``; return the kind of outcome (``stored``, ...)."""
        outcome = _HANDLERS[type(rec)](self, rec, prov)
        if self.autoflush and (self._pending >= self.batch or self._text >= self.batch_text):
            self.flush()
        return outcome

    def add_row(self, table: str, row: tuple[Any, ...]) -> None:
        """Buffer one raw row of a bookkeeping table (``captures``, ``processed``)."""
        self._put(table, row)

    def mark(self) -> dict[str, tuple[int, int]]:
        """A point in the buffer to return to with :meth:`rollback_to`."""
        tables = set(self._rows) | set(self._chunks)
        return {t: (len(self._chunks.get(t, ())), len(self._rows.get(t, ()))) for t in tables}

    def rollback_to(self, mark: dict[str, tuple[int, int]]) -> None:
        """Drop every row buffered since ``mark`` (only valid if no flush happened since)."""
        for table in set(self._rows) | set(self._chunks):
            n_chunks, n_rows = mark.get(table, (0, 0))
            chunks, rows = self._chunks[table], self._rows[table]
            self._pending -= sum(c.num_rows for c in chunks) + len(rows)
            if len(chunks) > n_chunks:
                # the rows buffered at the mark were turned into chunk n_chunks since
                first = chunks[n_chunks].slice(0, n_rows)
                del chunks[n_chunks:]
                if n_rows:
                    chunks.append(first)
                rows.clear()
            else:
                del rows[n_rows:]
            self._pending += sum(c.num_rows for c in chunks) + len(rows)
        self._pgp_buffered = {r[0] for r in self._rows.get("pgp_keys", ())}

    def _put(self, table: str, row: tuple[Any, ...]) -> None:
        self._rows[table].append(row)
        self._pending += 1

    def _put_columns(self, table: str, columns: dict[str, Any]) -> None:
        """Buffer many rows of ``table`` at once, after the rows already buffered."""
        rows = self._rows.get(table)
        if rows:
            self._chunks[table].append(_rows_table(table, rows))
            rows.clear()
        tbl = _columns_table(table, columns)
        self._chunks[table].append(tbl)
        self._pending += tbl.num_rows

    def flush(self) -> None:
        """Write every buffered row (``INSERT OR IGNORE``: duplicates are no-ops).

        A table's rows go in with a plain ``INSERT`` (about half the cost with a
        primary key) when that provably stores the same rows: their keys are distinct
        and none can be stored already (see :meth:`_no_conflict`).
        """
        tables = list(self._chunks) + [t for t in self._rows if t not in self._chunks]
        for table in tables:
            parts = list(self._chunks.get(table, ()))
            rows = self._rows.get(table)
            if rows:
                parts.append(_rows_table(table, rows))
            if not parts:
                continue
            cols = _COLUMNS[table]
            tbl = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
            if table in KEYLESS:
                self._insert_keyless(table, tbl)
                continue
            if table in UNKEYED_ENTITIES:
                self._insert_unkeyed_entity(table, tbl)
                continue
            where = ""
            if self._no_conflict(table, tbl):
                verb = "INSERT"
            elif table in _ENTITY and self._stored_rows(table) <= _SCAN_RATIO * len(tbl):
                # a small stored table: leaving out its keys by one scan costs less than
                # INSERT OR IGNORE's conflict handling (same rows: the first of each key
                # in the batch, none already stored)
                tbl = _first_of_each(tbl, cols[0])
                verb = "INSERT"
                where = f" WHERE {cols[0]} NOT IN (SELECT {cols[0]} FROM {table})"
            else:
                verb = "INSERT OR IGNORE"
                if len(parts) > 1:
                    # one Arrow chunk is scanned in order, several maybe in parallel, and
                    # the first row of a key must be the one INSERT OR IGNORE keeps
                    tbl = tbl.combine_chunks()
            insert_arrow(self.con, table, tbl, cols, or_ignore=verb != "INSERT", where=where)
        self._rows.clear()
        self._chunks.clear()
        self._pgp_buffered.clear()
        self._pending = 0
        self._text = 0
        self._tracked |= self.fresh - self._untracked
        self.fresh.clear()

    def forget_stored(self) -> None:
        """Forget what this writer knows of the store (after a rollback undid flushes):
        later flushes ask the store again."""
        self._tracked.clear()
        self._untracked.clear()
        self._ids.clear()
        self._keys.clear()
        self._unhashed.clear()
        self.fresh.clear()

    def _insert_keyless(self, table: str, tbl: pa.Table) -> None:
        """Store ``tbl`` in a table without a primary key as ``INSERT OR IGNORE`` would.

        Its id hashes the row's capture, so only rows of the same captures can repeat
        one: a repeated id within ``tbl`` keeps its first row, and unless
        :meth:`_no_conflict` vouches that none of the captures has stored rows, the ids
        already stored for those captures are left out.
        """
        key, cap = _COLUMNS[table][0], _CAPTURE_COLUMN[table]
        tbl = _first_of_each(tbl, key)
        cols = _COLUMNS[table]
        caps = ac.unique(tbl.column(cap)).to_pylist()
        if self._remembered(table, tbl, caps):
            pass  # stored from memory of this writer's own rows
        elif self._no_conflict(table, tbl):
            insert_arrow(self.con, table, tbl, cols)
        else:
            caps = ac.unique(tbl.column(cap)).to_pylist()
            insert_arrow(self.con, table, tbl, cols,
                         where=f" WHERE {key} NOT IN (SELECT {key} FROM {table} "
                               f"WHERE list_contains(?, {cap}))", params=[caps])

    def _remembered(self, table: str, tbl: pa.Table, caps: list[Any]) -> bool:
        """Insert the rows of ``tbl`` (first of each id) whose ids are not stored, when
        every stored row of its captures came from this writer (so their ids are known,
        :attr:`_ids`); False (nothing done) otherwise.

        A flush that mixes followed captures with others goes to the store, and those
        captures are not followed from then on (their ids there are not remembered).
        """
        if not self.remember_stored:
            return False
        known_caps = self.fresh | self._tracked
        if not known_caps.issuperset(caps) or not self._untracked.isdisjoint(caps):
            if not known_caps.isdisjoint(caps):
                self._untracked.update(caps)
                self._tracked.difference_update(caps)
            return False
        key = _COLUMNS[table][0]
        hi, lo = _id_halves(tbl.column(key).to_pylist())
        known = self._ids[table]
        stored = known.contains(hi, lo)
        if stored.any():
            tbl = ac.filter_by(tbl, ac.from_numpy(~stored))
            hi, lo = hi[~stored], lo[~stored]
        insert_arrow(self.con, table, tbl, _COLUMNS[table])
        known.add(hi, lo)
        return True

    def _insert_unkeyed_entity(self, table: str, tbl: pa.Table) -> None:
        """Store ``tbl`` in an entity table without a key as ``INSERT OR IGNORE`` would:
        the first row of each key in ``tbl``, none whose key is stored already.

        The stored keys are found by joining ``tbl`` with the table (DuckDB builds its
        hash table on the smaller side, so a flush costs one scan of the key column and
        memory for the flush only). With :attr:`remember_stored`, they are this writer's
        fingerprints of the keys (:func:`_key_halves`); while a table holds no key (a new
        workspace), its rows go in as they are and their keys are hashed when a later
        flush of the table asks (a file written in one flush never does).
        """
        key = _COLUMNS[table][0]
        tbl = _first_of_each(tbl, key)
        if not self.remember_stored:  # the reference path: one join with the table
            if self._stored_rows(table):
                hits = query_arrow(self.con, f"SELECT v.{key} FROM {ARROW_ROWS} v JOIN {table} "
                                             f"t ON t.{key} = v.{key}", tbl)
                if hits:
                    old = pa.array([h[0] for h in hits], pa.string())
                    tbl = ac.filter_by(tbl, ac.invert(ac.is_in(tbl.column(key), old)))
            if tbl.num_rows:
                insert_arrow(self.con, table, tbl, _COLUMNS[table])
            return
        known = self._keys.get(table)
        if known is None:  # the keys stored before this writer's first flush, once
            known = self._keys[table] = Fingerprints()
            if self._stored_rows(table):
                known.add(*_key_halves(self.con, f"SELECT {{f}} FROM {table}", key))
        for keys in self._unhashed.pop(table, ()):
            known.add(*_key_halves(self.con, f"SELECT {{f}} FROM {ARROW_ROWS}", key, keys))
        if not len(known):  # no key stored: every row goes in, its key hashed when needed
            if tbl.num_rows:
                insert_arrow(self.con, table, tbl, _COLUMNS[table])
                self._unhashed[table].append(tbl.select([key]))
            return
        hi, lo = _key_halves(self.con, f"SELECT {{f}} FROM {ARROW_ROWS}", key, tbl)
        stored = known.contains(hi, lo)
        if stored.any():
            tbl = ac.filter_by(tbl, ac.from_numpy(~stored))
            hi, lo = hi[~stored], lo[~stored]
        if tbl.num_rows:
            insert_arrow(self.con, table, tbl, _COLUMNS[table])
            known.add(hi, lo)

    def _stored_rows(self, table: str) -> int:
        """Rows ``table`` holds (DuckDB counts them from its metadata, no scan)."""
        row = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def _no_conflict(self, table: str, tbl: pa.Table) -> bool:
        """True when no row of ``tbl`` can meet another's key (of ``tbl`` or stored).

        Then a plain ``INSERT`` stores exactly what ``INSERT OR IGNORE`` would. Rows
        must have distinct keys, and no stored row may share one. Ids of capture-keyed
        tables hash the capture they come from, so only stored rows of the same
        captures can share an id with ``tbl``'s rows. None can when every capture of
        ``tbl`` is in :attr:`fresh` (the ingest pipeline vouches for captures that have
        no ``processed`` row under any importer: a capture's rows commit with its
        ``processed`` row), else a query decides for a big flush.
        """
        n = tbl.num_rows
        cap = _CAPTURE_COLUMN.get(table)
        if cap is None:
            return False
        if self.fresh:
            caps = ac.unique(tbl.column(cap)).to_pylist()
            if self.fresh.issuperset(caps):
                return _distinct(tbl, _COLUMNS[table][0])
        if n < _PLAIN_INSERT_ROWS or table not in _CHECKED:
            return False
        key = _COLUMNS[table][0]
        if not _distinct(tbl, key):
            return False
        caps = ac.unique(tbl.column(cap)).to_pylist()
        found = query_arrow(self.con,
                            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE list_contains(?, "
                            f"{cap}) AND {key} IN (SELECT {key} FROM {ARROW_ROWS}) LIMIT 1)",
                            tbl, [caps])
        return bool(found[0][0] == 0)

    # -- one method per record type -------------------------------------------------

    def _market(self, r: MarketRecord, p: Provenance) -> str:
        obs = _naive(r.observed_at or p.observed_at)
        self._put("markets", (r.market_id, r.name, r.onion, p.capture_sha256, p.source,
                              p.method, obs))
        for ccy, usd in r.usd_rates.items():
            self._put("page_rates", (row_id("rate", p.capture_sha256, "page#market", ccy),
                                     r.market_id, ccy, usd, "page#market", p.capture_sha256,
                                     p.source, p.method, obs))
        return "stored"

    def _account(self, r: AccountRecord, p: Provenance) -> str:
        aid = account_id(r.market_id, r.handle)
        obs = _naive(r.observed_at or p.observed_at)
        self._put("accounts", (aid, r.market_id, r.handle.strip(), r.role, p.capture_sha256,
                               p.source, p.method, obs))
        oid = row_id("acct", aid, p.capture_sha256, r.locator)
        self._text += len(r.profile_text or "") + len(r.terms_text or "")
        earliest, latest = _within(r.last_seen_within, obs)
        self._put("account_observations", (
            oid, aid, _naive(r.joined_at), _naive(r.last_seen_at), r.rating, r.level,
            r.feedback_count, r.sales_count, r.profile_text, r.terms_text, r.ships_from,
            r.url, r.locator, p.capture_sha256, p.source, p.method, obs, r.rating_scale,
            _norm(r.rating, r.rating_scale), list(r.ships_to) or None, earliest, latest,
            r.sales_floor, list(r.verified_on) or None))
        for fc in r.feedback_counts:
            self._put("feedback_counts", (
                row_id("fbc", oid, fc.window), oid, aid, r.market_id, fc.window,
                window_days(fc.window), fc.positive, fc.neutral, fc.negative, r.locator,
                p.capture_sha256, p.source, p.method, obs))
        return "stored"

    def _listing(self, r: ListingRecord, p: Provenance) -> str:
        lid = listing_id(r.market_id, r.listing_ref)
        aid = account_id(r.market_id, r.vendor_handle) if r.vendor_handle else None
        obs = _naive(r.observed_at or p.observed_at)
        if aid:
            self._put("accounts", (aid, r.market_id, r.vendor_handle.strip(), "vendor",  # type: ignore[union-attr]
                                   p.capture_sha256, p.source, p.method, obs))
        self._put("listings", (lid, r.market_id, r.listing_ref.strip(), aid, p.capture_sha256,
                               p.source, p.method, obs))
        oid = row_id("lst", lid, p.capture_sha256, r.locator)
        self._text += len(r.title or "") + len(r.description or "")
        self._put("listing_observations", (
            oid, lid, aid, r.title, r.description, r.price, r.currency, r.price_text,
            r.quantity_text, r.stock, r.ships_from, list(r.ships_to), list(r.category_path),
            r.feedback_count, r.sales_count, r.url, r.locator, p.capture_sha256, p.source,
            p.method, obs))
        return "stored"

    def _listing_batch(self, b: ListingBatch, p: Provenance) -> str:
        """The rows of ``_listing`` for every row of ``b``, as columns.

        A batch's repeats of one account or listing are left out before the insert:
        ``INSERT OR IGNORE`` keeps only the first row of a key anyway.
        """
        n = len(b)
        if not n:
            return "stored"
        m = b.market_id
        refs = [r.strip() for r in b.column("listing_ref")]
        handles = b.column("vendor_handle")
        lids = [f"{m}:{r}" for r in refs]
        aids = [f"{m}:{h.strip().casefold()}" if h else None for h in handles]
        obs = _observed(b.columns.get("observed_at"), n, p)
        prov = {"capture_sha256": p.capture_sha256, "source": p.source, "method": p.method}
        aid_arr = pa.array(aids, pa.string())
        first = _first_rows(aids)
        if len(first):
            pick = ac.from_numpy(first, pa.int64())
            self._put_columns("accounts", {
                "account_id": ac.take(aid_arr, pick), "market_id": m,
                "handle": [handles[i].strip() for i in first.tolist()],
                "role": "vendor", **prov, "observed_at": ac.take(obs, pick)})
        lid_arr = pa.array(lids, pa.string())
        first = _first_rows(lids)
        lpick = ac.from_numpy(first, pa.int64()) if len(first) < n else None
        self._put_columns("listings", {
            "listing_id": lid_arr if lpick is None else ac.take(lid_arr, lpick),
            "market_id": m,
            "listing_ref": refs if lpick is None else [refs[i] for i in first.tolist()],
            "account_id": aid_arr if lpick is None else ac.take(aid_arr, lpick), **prov,
            "observed_at": obs if lpick is None else ac.take(obs, lpick)})
        cols: dict[str, Any] = {
            "obs_id": row_ids("lst", lids, p.capture_sha256, b.locators),
            "listing_id": lid_arr, "account_id": aid_arr, "locator": b.locators, **prov,
            "observed_at": obs}
        for name in _BATCH_FIELDS:
            col = b.columns.get(name)
            if name in ("ships_to", "category_path"):
                col = _lists(col, n)
            cols[name] = col
        self._put_columns("listing_observations", cols)
        return "stored"

    def _feedback(self, r: FeedbackRecord, p: Provenance) -> str:
        aid = account_id(r.market_id, r.vendor_handle) if r.vendor_handle else None
        lid = listing_id(r.market_id, r.listing_ref) if r.listing_ref else None
        fid = row_id("fb", r.market_id, aid, lid, r.buyer_masked, r.left_at, r.text,
                     p.capture_sha256, r.locator)
        self._text += len(r.text or "")
        self._put("feedback", (
            fid, r.market_id, aid, lid, r.listing_title, r.buyer_masked, r.rating,
            r.rating_scale, r.text, _naive(r.left_at), r.amount, r.currency, r.locator,
            p.capture_sha256, p.source, p.method, _naive(r.observed_at or p.observed_at)))
        return "stored"

    def _identifier(self, r: IdentifierRecord, p: Provenance) -> str:
        aid = (account_id(r.market_id, r.account_handle)
               if r.market_id and r.account_handle else None)
        lid = listing_id(r.market_id, r.listing_ref) if r.market_id and r.listing_ref else None
        iid = row_id("id", r.kind, r.value, aid, lid, r.field, p.capture_sha256, r.locator)
        self._text += min(len(r.context), 500)
        self._put("identifiers", (iid, r.kind, r.value, r.market_id, aid, lid, r.field,
                                  r.context[:500], r.locator, p.capture_sha256, p.source,
                                  p.method, _naive(p.observed_at)))
        return "stored"

    def _pgp(self, r: PgpKeyRecord, p: Provenance) -> str:
        # a key the buffer holds already gets no second row: the flush keeps the first
        # row of each fingerprint (INSERT OR IGNORE), and a dump's key repeated on every
        # row of its vendor would cost a JSON dump and its armored text each time
        if r.fingerprint not in self._pgp_buffered:
            self._pgp_buffered.add(r.fingerprint)
            self._text += len(r.armored or "")
            self._put("pgp_keys", (r.fingerprint, r.key_id, r.algorithm, r.bits,
                                   _naive(r.created_at), list(r.user_ids),
                                   json.dumps(r.subkeys, default=str), r.armored,
                                   p.capture_sha256, p.source, p.method,
                                   _naive(p.observed_at)))
        ident = IdentifierRecord(kind="pgp_fingerprint", value=r.fingerprint,
                                 market_id=r.market_id, account_handle=r.account_handle,
                                 field=r.field or "pgp", context=" / ".join(r.user_ids)[:200],
                                 locator=r.locator)
        self._identifier(ident, p)
        return "stored"

    def _skip(self, r: SkipRecord, p: Provenance) -> str:
        self._put("skipped_pages", (row_id("skip", p.capture_sha256, r.locator), r.market_id,
                                    r.page_type, r.reason, r.locator, p.capture_sha256,
                                    p.source, p.method))
        return "skipped"

    def _quarantine(self, r: QuarantineRecord, p: Provenance) -> str:
        qid = row_id("q", p.capture_sha256, p.method, r.locator, r.field, r.reason)
        self._text += min(len(r.excerpt), 1000)
        self._put("quarantine", (qid, r.market_id, r.locator, r.field, r.reason,
                                 r.excerpt[:1000], p.capture_sha256, p.source, p.method,
                                 p.run_id, r.limit))
        return "quarantined"

    def _cut(self, r: CutRecord, p: Provenance) -> str:
        cid = row_id("cut", p.capture_sha256, r.locator, r.field)
        self._put("field_cuts", (cid, r.market_id, r.locator, r.field, r.original_chars,
                                 r.kept_chars, r.value_sha256, p.capture_sha256, p.source,
                                 p.method, p.run_id))
        return "cut"


# -- the one bulk writer ---------------------------------------------------------

ARROW_ROWS = "_darkmap_writer_rows"
"""The name by which SQL given to :func:`query_arrow` refers to its Arrow table."""


def query_arrow(con: duckdb.DuckDBPyConnection, sql: str, rows: pa.Table,
                params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Execute ``sql``, in which :data:`ARROW_ROWS` names ``rows``; its result rows.

    DuckDB finds the Arrow table among the locals of the frame that calls ``execute``
    (a replacement scan): about 0.5 ms less per statement than registering and
    unregistering a view. Where that lookup is off or cannot see this frame (a
    connection wrapped by the caller), the table is registered as a view instead.

    A statement that names the rows once (every insert) is given them as an Arrow C
    stream (:func:`_one_scan`), which DuckDB reads without ``pyarrow.dataset``: handed
    a table, DuckDB wraps it in a dataset and a scanner, and a process that only ingests
    a CSV imported ``pyarrow.dataset`` (and with it Parquet, the file systems and
    ``pyarrow.compute``) for that alone. A statement that names them more than once is
    given the table (see :func:`tables_scannable`).
    """
    once = sql.count(ARROW_ROWS) == 1
    if not once:
        tables_scannable()
    _darkmap_writer_rows: Any = _one_scan(rows) if once else rows
    args = (sql, list(params)) if params is not None else (sql,)
    try:
        return con.execute(*args).fetchall()
    except duckdb.CatalogException:
        with arrow_views(con, {ARROW_ROWS: rows}):
            return con.execute(*args).fetchall()  # fetched before unregister replaces it


_SCAN_BATCH = 131_072
"""Rows per record batch of the stream :func:`_one_scan` gives DuckDB: a dataset
scanner's batch size, which DuckDB's scans of a table were cut into (DuckDB scans the
batches of one stream on several threads)."""


def tables_scannable() -> None:
    """Load ``pyarrow.dataset`` now, before DuckDB is given an Arrow table (a view, a
    replacement scan) rather than a stream (:func:`_one_scan`).

    DuckDB scans a table through ``pyarrow.dataset`` and imports it itself if it is not
    loaded: inside the statement, on the main thread, half a second of module code (the
    dataset, file system and Parquet modules). A Ctrl-C or SIGTERM in that time raised
    inside DuckDB's import (darkmap's SIGTERM handler raises, as ^C does), and DuckDB
    1.5 went on scanning the table's columns in the wrong places: a null read, the
    process killed by SIGSEGV with no message (an audit of interrupts saw it in 2 of 56
    trials; ``scripts/interrupt_trials.py``). Imported here, the interrupt comes out of
    darkmap's own code as any other does. Loaded once per process; a no-op after.
    """
    import pyarrow.dataset  # noqa: F401, PLC0415 - only where a table is scanned


def _one_scan(rows: pa.Table) -> object:
    """``rows`` as an Arrow C stream capsule, for a statement that scans them once.

    The capsule is read once (a second scan of it fails: "already released"), in the
    table's row order, cut into batches of at most :data:`_SCAN_BATCH` rows as a
    scanner would cut them. DuckDB reads it without importing ``pyarrow.dataset``.
    """
    reader: Any = rows.to_reader(max_chunksize=_SCAN_BATCH)  # its stubs leave this untyped
    return reader.__arrow_c_stream__()


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table,
                 columns: Sequence[str] | None = None, *, or_ignore: bool = False,
                 where: str = "", params: Sequence[Any] | None = None) -> int:
    """Insert the Arrow table ``rows`` into ``table``; return the number of rows stored.

    ``columns`` (default: every column of ``rows``) are matched by name. ``or_ignore``
    leaves out rows whose primary key is stored (``INSERT OR IGNORE``); ``where`` is a SQL
    condition on the rows (``" WHERE id NOT IN (...)"``), with ``params`` for its ``?``.
    """
    if not rows.num_rows:
        return 0
    cols = ", ".join(columns if columns is not None else rows.column_names)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    res = query_arrow(con, f"{verb} INTO {table} ({cols}) SELECT {cols} FROM {ARROW_ROWS}"
                           f"{where}", rows, params)
    return int(res[0][0]) if res else 0


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str],
                rows: Sequence[Sequence[Any]], *, or_ignore: bool = False) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; return the count.

    Each column's Arrow type is inferred from its values; a column whose values Arrow
    cannot hold in one type (mixed numbers and text) goes in as text.
    """
    if not rows:
        return 0
    arrays = {}
    for i, c in enumerate(columns):
        vals = [r[i] for r in rows]
        try:
            arrays[c] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c] = pa.array([None if v is None else str(v) for v in vals], type=pa.string())
    insert_arrow(con, table, pa.table(arrays), columns, or_ignore=or_ignore)
    return len(rows)


def replace_quarantine(con: duckdb.DuckDBPyConnection, method: str, columns: Sequence[str],
                       rows: Sequence[Sequence[Any]]) -> int:
    """Replace the ``quarantine`` rows stored under ``method`` with ``rows`` (tuples in
    ``columns`` order); return how many were stored.

    For a stage after ingest that quarantines what it cannot process (the drug assessment
    quarantines a listing it cannot assess): each run replaces its own rows.
    """
    con.execute("DELETE FROM quarantine WHERE method = ?", [method])
    return insert_rows(con, "quarantine", columns, rows)


def begin(con: duckdb.DuckDBPyConnection) -> None:
    """Open a transaction on ``con``."""
    con.execute("BEGIN TRANSACTION")


def commit(con: duckdb.DuckDBPyConnection) -> None:
    """Commit the open transaction."""
    con.execute("COMMIT")


def commit_to_file(con: duckdb.DuckDBPyConnection) -> None:
    """Commit the open transaction straight into the database file: DuckDB checkpoints
    as part of the ``COMMIT``, and leaves a transaction of more than about 100 kB
    (``auto_checkpoint_skip_wal_threshold``) out of the write-ahead log.

    For a writer that closes the workspace next (``darkmap ingest``): closing
    checkpoints anyway (:meth:`~darkmap.store.workspace.Workspace.close`), so the
    changes were written twice, into the log at the commit and into the file at the
    close; now once, and the close finds nothing left to do. Durability is the same:
    the ``COMMIT`` returns once the checkpoint is on disk, and a crash during it leaves
    the file as it was before the transaction (DuckDB writes the new blocks, then the
    header that points to them), which the log's replay completes for a small one. A
    checkpoint that fails with the transaction out of the log fails the ``COMMIT``, as
    a failed log write does. The checkpoint threshold (which darkmap never sets
    otherwise) is set back to DuckDB's default afterwards.
    """
    con.execute("SET checkpoint_threshold = '0B'")
    try:
        con.execute("COMMIT")
    finally:
        with suppress(duckdb.Error):  # never hide the commit's error on its way out
            con.execute("RESET checkpoint_threshold")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Drop everything written since :func:`begin`.

    A transaction DuckDB already ended (a ``COMMIT`` that failed on a full disk ends it)
    has nothing left to drop: that is not an error, and raising one here would hide the
    error being handled (``No space left on device`` behind ``cannot rollback - no
    transaction is active``).
    """
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block in one transaction: committed at the end, rolled back on an error."""
    begin(con)
    try:
        yield
    except BaseException:
        rollback(con)
        raise
    commit(con)


INGEST_BUFFER_MB = 512
"""DuckDB's buffer pool while files are ingested (MiB). DuckDB keeps the blocks it writes
cached up to its limit (80% of the machine's memory by default), so a big file's ingest
grew by about 100 MB per million rows without needing them; see :func:`buffer_limit`."""

BIG_FILE_BUFFER_MB = 128
"""DuckDB's buffer pool while one big file's records are written and committed (MiB).

A big file is one transaction, and DuckDB keeps a transaction's appended rows in memory
until whole row groups (122,880 rows) fill: the rows of a seized dump (180,000 long rows
at 1 GB) never do, so the transaction grew with the file (~1 GB of memory at 1 GB of
dump). Under this cap DuckDB writes them out to its temporary folder instead, and the
commit moves them into the database file; memory stays flat in the file's size. See
docs/data-formats.md, "Where the dump's memory went"."""

_SIZE_RE = re.compile(r"([\d.]+) ?([KMGT]?i?B)")
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KiB": 2**10,
               "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


@contextmanager
def buffer_limit(con: duckdb.DuckDBPyConnection, mib: int) -> Iterator[None]:
    """Hold DuckDB's buffer pool to ``mib`` MiB inside the block, then restore the limit.

    A lower limit already set (the workspace sets one under an address-space cap) is
    kept. DuckDB evicts cached blocks, or spills to its temporary folder, to stay under.
    """
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    before = str(row[0]) if row else ""
    m = _SIZE_RE.fullmatch(before.strip())
    current = float(m.group(1)) * _SIZE_UNITS[m.group(2)] if m else None
    if current is not None and current <= mib * 2**20:
        yield
        return
    con.execute(f"SET memory_limit = '{int(mib)}MiB'")
    restore = (f"SET memory_limit = '{m.group(1)}{m.group(2)}'" if m
               else "RESET memory_limit")
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):  # never hide the error on its way out
            con.execute(restore)
        raise
    con.execute(restore)


INGEST_THREADS = 1
"""DuckDB threads while records are written (the writer's many modest statements). A
second thread made them slower, not faster: the 1-million-row Hansa CSV took 15-17 s of
CPU with one thread and 19.5-27 s with two, and more wall time too (docs/data-formats.md,
"A big file read in a process of its own, the writer on one DuckDB thread"). The commit
and importers that write their own tables with set statements keep the workspace's
setting."""


def duckdb_threads(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's ``threads`` setting on ``con``."""
    row = con.execute("SELECT current_setting('threads')").fetchone()
    return int(row[0]) if row else 1


@contextmanager
def threads_set(con: duckdb.DuckDBPyConnection, threads: int) -> Iterator[None]:
    """DuckDB's ``threads`` set to ``threads`` inside the block, then as it was."""
    before = duckdb_threads(con)
    if before == threads:
        yield
        return
    con.execute(f"SET threads = {int(threads)}")
    try:
        yield
    finally:
        with suppress(duckdb.Error):  # never hide an error on its way out
            con.execute(f"SET threads = {before}")


@contextmanager
def arrow_views(con: duckdb.DuckDBPyConnection,
                tables: Mapping[str, pa.Table]) -> Iterator[None]:
    """Name several Arrow tables for the statements run inside (a set-based load that
    joins them); the names are dropped on the way out, also after an error. DuckDB scans
    them as tables (:func:`tables_scannable`)."""
    tables_scannable()
    for name, tbl in tables.items():
        con.register(name, tbl)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


# tables whose keys hash (or are) the capture a row comes from, and the column naming
# that capture: see RecordWriter._no_conflict
_CAPTURE_COLUMN = {
    "captures": "sha256", "processed": "sha256", "account_observations": "capture_sha256",
    "listing_observations": "capture_sha256", "feedback": "capture_sha256",
    "feedback_counts": "capture_sha256", "page_rates": "capture_sha256",
    "identifiers": "capture_sha256", "skipped_pages": "capture_sha256",
    "quarantine": "capture_sha256", "field_cuts": "capture_sha256"}
#: append-only evidence tables without a primary key (migration 007): each row comes
#: from one capture and its id hashes that capture; see RecordWriter._insert_keyless
KEYLESS = frozenset({"account_observations", "listing_observations", "feedback",
                     "feedback_counts", "page_rates", "identifiers", "skipped_pages",
                     "quarantine", "field_cuts"})
#: entity tables without a primary key (migration 007), kept unique by the writer; see
#: RecordWriter._insert_unkeyed_entity
UNKEYED_ENTITIES = frozenset({"accounts", "listings"})
# capture-keyed tables a big flush asks the store about (the others check every id)
_CHECKED = {"listing_observations"}
_PLAIN_INSERT_ROWS = 1000
_SCAN_RATIO = 20  # scan stored keys only while the table holds < 20 rows per new row


# entity tables with a primary key (first seen wins; a handful of rows each)
_ENTITY = {"markets", "pgp_keys"}


def _first_of_each(tbl: pa.Table, key: str) -> pa.Table:
    """``tbl`` with only the first row of each ``key`` value, in row order."""
    if _distinct(tbl, key):
        return tbl
    first: pa.Table = ac.take(tbl, ac.from_numpy(_first_rows(tbl.column(key).to_pylist()),
                                                 pa.int64()))
    return first


def _distinct(tbl: pa.Table, key: str) -> bool:
    return tbl.num_rows < 2 or ac.count_distinct(tbl.column(key)) == tbl.num_rows

_BATCH_FIELDS = ("title", "description", "price", "currency", "price_text", "quantity_text",
                 "stock", "ships_from", "ships_to", "category_path", "feedback_count",
                 "sales_count", "url")


# Arrow's stubs type arrays by value type; these helpers build columns of any type
_Column = Any


def _array(col: str, values: Any, n: int) -> _Column:
    """``values`` (a list, an Arrow array, one value for all rows, or None) as ``col``."""
    typ = _TYPES.get(col, pa.string())
    if values is None or isinstance(values, (str, int, float, datetime)):
        return pa.repeat(cast(Any, pa.scalar(values, type=typ)), n)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values if values.type == typ else ac.cast(values, typ)
    return pa.array(values, type=typ)


def _columns_table(table: str, columns: dict[str, Any]) -> pa.Table:
    n = next(len(v) for v in columns.values()
             if isinstance(v, (list, pa.Array, pa.ChunkedArray)))
    return pa.table({c: _array(c, columns.get(c), n) for c in _COLUMNS[table]})


def _rows_table(table: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    """Buffered rows of ``table`` (tuples in its column order) as an Arrow table: the
    rows turned into columns by one ``zip``, not a list built per column."""
    names = _COLUMNS[table]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return pa.table({c: pa.array(columns[i], type=_TYPES.get(c, pa.string()))
                     for i, c in enumerate(names)})


def _first_rows(keys: Sequence[str | None]) -> np.ndarray:
    """Positions of the first row of each distinct non-null key, in row order."""
    n = len(keys)
    # built from the last row back, a dict keeps each key's first position
    first = dict(zip(reversed(keys), range(n - 1, -1, -1), strict=True))
    first.pop(None, None)
    return np.sort(np.fromiter(first.values(), dtype=np.int64, count=len(first)))


def _lists(col: Any, n: int) -> _Column:
    """A list column with absent values as empty lists (what a ListingRecord holds)."""
    typ = pa.list_(pa.string())
    if col is None:  # n empty lists: all offsets zero (pa.repeat of [] is much slower)
        return pa.ListArray.from_arrays(cast(Any, ac.from_numpy(np.zeros(n + 1, dtype=np.int32))),
                                        pa.array([], pa.string()))
    arr = col if isinstance(col, (pa.Array, pa.ChunkedArray)) else pa.array(col, typ)
    if arr.null_count:
        arr = ac.if_else(ac.is_null(arr), pa.scalar([], typ), arr)
    return arr


def _observed(col: Any, n: int, p: Provenance) -> _Column:
    """``_naive(observed_at or p.observed_at)`` for a column of UTC datetimes."""
    default = _naive(p.observed_at)
    if col is None:
        return pa.array([default] * n, type=pa.timestamp("us"))
    arr: _Column
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        arr = ac.cast(col, pa.timestamp("us"))
    else:
        arr = pa.array([_naive(v) for v in col], type=pa.timestamp("us"))
    if default is not None and arr.null_count:
        arr = ac.coalesce_with(arr, pa.scalar(default, pa.timestamp("us")))
    return arr


def _id_halves(ids: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit halves of 32-hex row ids (of a BLAKE2b-128 of any other id)."""
    try:
        data = bytes.fromhex("".join(ids))
        if len(data) != 16 * len(ids):
            raise ValueError("not 32-hex ids")
    except ValueError:
        return text_fingerprints(map(str, ids))
    raw = np.frombuffer(data, dtype=">u8").astype(np.uint64)
    return raw[0::2].copy(), raw[1::2].copy()


def _md5_halves(key: str) -> str:
    """SQL for the two uint64 halves of the MD5 of column ``key``: what DuckDB's
    ``md5_number_upper`` and ``md5_number_lower`` return (tested), cut from one
    ``md5_number``, four times faster (DuckDB 1.5: 1 million keys 0.99 -> 0.22 s)."""
    number = f"md5_number({key})"
    return f"({number} & {_LOW_64})::UBIGINT, ({number} >> 64)::UBIGINT"


_LOW_64 = "18446744073709551615::UHUGEINT"


def _key_halves(con: duckdb.DuckDBPyConnection, sql: str, key: str,
                rows: pa.Table | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MD5 of column ``key`` (two uint64 halves, :func:`_md5_halves`) of ``sql``'s rows,
    computed by DuckDB; ``sql`` has ``{f}`` where the select list goes (and names
    :data:`ARROW_ROWS` when ``rows`` are given)."""
    if rows is None:
        q = sql.format(f=_md5_halves(key))
        res = con.execute(q).fetchnumpy()
        hi, lo = (np.asarray(v, dtype=np.uint64) for v in res.values())
        return hi, lo
    # a parallel scan may return rows in any order: each comes back with its position
    q = sql.format(f=f"_darkmap_pos, {_md5_halves(key)}")
    keyed = rows.select([key]).append_column(
        "_darkmap_pos", ac.from_numpy(np.arange(rows.num_rows, dtype=np.int64)))
    # a stream, not the table: DuckDB imported pyarrow.dataset inside the statement to
    # scan a table, and a ^C then crashed it (see tables_scannable)
    _darkmap_writer_rows = _one_scan(keyed)
    try:
        res = con.execute(q).fetchnumpy()
    except duckdb.CatalogException:
        with arrow_views(con, {ARROW_ROWS: keyed}):
            res = con.execute(q).fetchnumpy()
    pos, up, down = (np.asarray(v) for v in res.values())
    hi = np.empty(rows.num_rows, dtype=np.uint64)
    lo = np.empty(rows.num_rows, dtype=np.uint64)
    hi[pos] = up.astype(np.uint64)
    lo[pos] = down.astype(np.uint64)
    return hi, lo


def _unit_stored(writer: RecordWriter, rec: UnitRecord, prov: Provenance) -> str:
    return "stored"  # the importer already wrote its own tables


# one method per record type; each takes that type (Any: a dict cannot say so per key)
_HANDLERS: dict[type, Callable[[RecordWriter, Any, Provenance], str]] = {
    UnitRecord: _unit_stored,
    MarketRecord: RecordWriter._market,
    AccountRecord: RecordWriter._account,
    ListingRecord: RecordWriter._listing,
    ListingBatch: RecordWriter._listing_batch,
    FeedbackRecord: RecordWriter._feedback,
    IdentifierRecord: RecordWriter._identifier,
    PgpKeyRecord: RecordWriter._pgp,
    SkipRecord: RecordWriter._skip,
    QuarantineRecord: RecordWriter._quarantine,
    CutRecord: RecordWriter._cut,
}
