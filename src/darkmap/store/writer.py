"""Turn extracted records into store rows, stamped with provenance, in batches.

Row ids are hashes of what identifies the fact plus the capture it came from, and every
insert is ``INSERT OR IGNORE``: re-reading the same capture writes nothing new, which is
what makes ingestion idempotent. Rows are buffered per table and flushed through Arrow,
so a CSV of 100,000 listings costs a handful of inserts, not 100,000.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from darkmap.model.records import (
    AccountRecord,
    FeedbackRecord,
    IdentifierRecord,
    ListingRecord,
    MarketRecord,
    PgpKeyRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
    UnitRecord,
)

__all__ = ["Provenance", "RecordWriter", "account_id", "listing_id", "row_id"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from: capture hash, source, method, default observation time."""

    capture_sha256: str
    source: str
    method: str
    observed_at: datetime | None
    run_id: str = ""


def row_id(*parts: object) -> str:
    """A stable 32-hex id from the parts that identify a row."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


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
    "accounts": ("account_id", "market_id", "handle", "role", "capture_sha256", "source",
                 "method", "observed_at"),
    "account_observations": (
        "obs_id", "account_id", "joined_at", "last_seen_at", "rating", "level",
        "feedback_count", "sales_count", "profile_text", "terms_text", "ships_from", "url",
        "locator", "capture_sha256", "source", "method", "observed_at"),
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
                   "capture_sha256", "source", "method", "run_id"),
}

_TYPES: dict[str, pa.DataType] = {
    "joined_at": pa.timestamp("us"), "last_seen_at": pa.timestamp("us"),
    "observed_at": pa.timestamp("us"), "created_at": pa.timestamp("us"),
    "left_at": pa.timestamp("us"), "rating": pa.float64(), "rating_scale": pa.float64(),
    "price": pa.float64(), "amount": pa.float64(), "feedback_count": pa.int32(),
    "sales_count": pa.int32(), "stock": pa.int32(), "bits": pa.int32(),
    "ships_to": pa.list_(pa.string()), "category_path": pa.list_(pa.string()),
    "user_ids": pa.list_(pa.string()),
    "size": pa.int64(), "captured_at": pa.timestamp("us"), "processed_at": pa.timestamp("us"),
    "read_count": pa.int32(), "stored_count": pa.int32(), "quarantined": pa.int32(),
    "skipped": pa.int32(),
}


def _naive(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is None:
        return ts
    from datetime import timezone
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


class RecordWriter:
    """Buffers rows (of one file or of many small files) and flushes them to DuckDB.

    With ``autoflush`` the buffer is written whenever it holds ``batch`` rows; without
    it the caller decides (the ingest pipeline flushes only between files, so a file
    whose importer fails can be dropped from the buffer with :meth:`rollback_to`).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, batch: int = 50_000,
                 autoflush: bool = True) -> None:
        self.con = con
        self.batch = batch
        self.autoflush = autoflush
        self._rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._pending = 0

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return self._pending

    def add(self, rec: Record, prov: Provenance) -> str:
        """Buffer the rows for ``rec``; return the kind of outcome (``stored``, ...)."""
        handler = _HANDLERS[type(rec)]
        outcome = handler(self, rec, prov)
        if self.autoflush and self._pending >= self.batch:
            self.flush()
        return outcome

    def add_row(self, table: str, row: tuple[Any, ...]) -> None:
        """Buffer one raw row of a bookkeeping table (``captures``, ``processed``)."""
        self._put(table, row)

    def mark(self) -> dict[str, int]:
        """A point in the buffer to return to with :meth:`rollback_to`."""
        return {t: len(rows) for t, rows in self._rows.items()}

    def rollback_to(self, mark: dict[str, int]) -> None:
        """Drop every row buffered since ``mark`` (only valid if no flush happened since)."""
        for table, rows in self._rows.items():
            keep = mark.get(table, 0)
            self._pending -= len(rows) - keep
            del rows[keep:]

    def _put(self, table: str, row: tuple[Any, ...]) -> None:
        self._rows[table].append(row)
        self._pending += 1

    def flush(self) -> None:
        """Write every buffered row (``INSERT OR IGNORE``: duplicates are no-ops)."""
        for table, rows in self._rows.items():
            if not rows:
                continue
            cols = _COLUMNS[table]
            arrays = {c: pa.array([r[i] for r in rows], type=_TYPES.get(c, pa.string()))
                      for i, c in enumerate(cols)}
            tbl = pa.table(arrays)  # noqa: F841 - read by DuckDB's replacement scan
            self.con.execute(
                f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) "
                f"SELECT {', '.join(cols)} FROM tbl"
            )
        self._rows.clear()
        self._pending = 0

    # -- one method per record type -------------------------------------------------

    def _market(self, r: MarketRecord, p: Provenance) -> str:
        self._put("markets", (r.market_id, r.name, r.onion, p.capture_sha256, p.source,
                              p.method, _naive(r.observed_at or p.observed_at)))
        return "stored"

    def _account(self, r: AccountRecord, p: Provenance) -> str:
        aid = account_id(r.market_id, r.handle)
        obs = _naive(r.observed_at or p.observed_at)
        self._put("accounts", (aid, r.market_id, r.handle.strip(), r.role, p.capture_sha256,
                               p.source, p.method, obs))
        oid = row_id("acct", aid, p.capture_sha256, r.locator)
        self._put("account_observations", (
            oid, aid, _naive(r.joined_at), _naive(r.last_seen_at), r.rating, r.level,
            r.feedback_count, r.sales_count, r.profile_text, r.terms_text, r.ships_from,
            r.url, r.locator, p.capture_sha256, p.source, p.method, obs))
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
        self._put("listing_observations", (
            oid, lid, aid, r.title, r.description, r.price, r.currency, r.price_text,
            r.quantity_text, r.stock, r.ships_from, list(r.ships_to), list(r.category_path),
            r.feedback_count, r.sales_count, r.url, r.locator, p.capture_sha256, p.source,
            p.method, obs))
        return "stored"

    def _feedback(self, r: FeedbackRecord, p: Provenance) -> str:
        aid = account_id(r.market_id, r.vendor_handle) if r.vendor_handle else None
        lid = listing_id(r.market_id, r.listing_ref) if r.listing_ref else None
        fid = row_id("fb", r.market_id, aid, lid, r.buyer_masked, r.left_at, r.text,
                     p.capture_sha256, r.locator)
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
        self._put("identifiers", (iid, r.kind, r.value, r.market_id, aid, lid, r.field,
                                  r.context[:500], r.locator, p.capture_sha256, p.source,
                                  p.method, _naive(p.observed_at)))
        return "stored"

    def _pgp(self, r: PgpKeyRecord, p: Provenance) -> str:
        self._put("pgp_keys", (r.fingerprint, r.key_id, r.algorithm, r.bits,
                               _naive(r.created_at), list(r.user_ids),
                               json.dumps(r.subkeys, default=str), r.armored,
                               p.capture_sha256, p.source, p.method, _naive(p.observed_at)))
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
        self._put("quarantine", (qid, r.market_id, r.locator, r.field, r.reason,
                                 r.excerpt[:1000], p.capture_sha256, p.source, p.method,
                                 p.run_id))
        return "quarantined"


def _unit_stored(writer: RecordWriter, rec: UnitRecord, prov: Provenance) -> str:
    return "stored"  # the importer already wrote its own tables


_HANDLERS = {
    UnitRecord: _unit_stored,
    MarketRecord: RecordWriter._market,
    AccountRecord: RecordWriter._account,
    ListingRecord: RecordWriter._listing,
    FeedbackRecord: RecordWriter._feedback,
    IdentifierRecord: RecordWriter._identifier,
    PgpKeyRecord: RecordWriter._pgp,
    SkipRecord: RecordWriter._skip,
    QuarantineRecord: RecordWriter._quarantine,
}
