"""Typed records that extractors and importers yield and the store persists.

Every importer, market template and chain reader produces these plain records; the
store (``darkmap.store``) attaches provenance (capture sha256, source, method,
observed_at) and writes them. Keeping the contract here lets extractors stay free of
any database code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeAlias

__all__ = [
    "AccountRecord",
    "CutRecord",
    "FeedbackCounts",
    "FeedbackRecord",
    "IdentifierRecord",
    "ListingBatch",
    "ListingRecord",
    "MarketRecord",
    "PgpKeyRecord",
    "QuarantineRecord",
    "Record",
    "SkipRecord",
    "UnitRecord",
    "finite",
    "non_finite",
    "window_days",
]


@dataclass(slots=True)
class MarketRecord:
    """A market seen in a source (``market_id`` is a lower-case slug, e.g. ``dream``)."""

    market_id: str
    name: str
    onion: str | None = None
    observed_at: datetime | None = None
    page_type: str | None = None  # the template's page type of the page it came from
    # exchange rates the page itself states, USD per unit ({"BTC": 10890.3}); stored per
    # page in ``page_rates``, preferred by the assessment for that page's prices
    usd_rates: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class FeedbackCounts:
    """Feedback counts by polarity that a page shows for one time window.

    ``window`` is ``"all"`` (no window stated) or a span such as ``"1m"``, ``"6m"``,
    ``"12m"``, ``"30d"`` (see :func:`window_days`); each count is ``None`` when the page
    did not show it (never zero for "not shown").
    """

    window: str = "all"
    positive: int | None = None
    neutral: int | None = None
    negative: int | None = None


def window_days(window: str) -> int | None:
    """Days in a :class:`FeedbackCounts` window (``"6m"`` -> 180, ``"12m"`` -> 365,
    ``"2w"`` -> 14, ``"30d"`` -> 30); ``None`` for ``"all"`` or an unknown form."""
    if len(window) < 2 or not window[:-1].isdigit():
        return None
    n, unit = int(window[:-1]), window[-1]
    if unit == "m":
        return 365 if n == 12 else n * 30
    return {"d": n, "w": 7 * n, "y": 365 * n}.get(unit)


@dataclass(slots=True)
class AccountRecord:
    """One observation of an account on a market.

    ``role`` is ``vendor`` or ``buyer``. Counts and dates are what the page showed
    at ``observed_at``; ``None`` means "not shown", never zero. ``rating`` is on the
    scale ``rating_scale`` (100 for a percentage, 5 for stars; ``None``: not stated).
    ``last_seen_within`` is a relative last-seen ("within the last 3 days") in seconds
    before ``observed_at``; ``feedback_counts`` the per-polarity counts shown, by window.
    ``sales_floor`` is a sales counter shown as a bracket ("Orders 30+", "Level 9 (800+)"):
    at least that many sales; ``sales_count`` is an exact counter. ``verified_on`` are
    the market's own lines saying where else it verified the vendor, as shown
    (Cryptonia's "Dream: 34000 deals, 4.82/5", "Hansa: 3549/2/2").
    """

    market_id: str
    handle: str
    role: str = "vendor"
    joined_at: datetime | None = None
    last_seen_at: datetime | None = None
    rating: float | None = None
    level: str | None = None
    feedback_count: int | None = None
    sales_count: int | None = None
    profile_text: str | None = None
    terms_text: str | None = None
    ships_from: str | None = None
    url: str | None = None
    observed_at: datetime | None = None
    locator: str = ""
    rating_scale: float | None = None
    ships_to: list[str] = field(default_factory=list)
    last_seen_within: float | None = None
    feedback_counts: list[FeedbackCounts] = field(default_factory=list)
    sales_floor: int | None = None
    verified_on: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ListingRecord:
    """One observation of a listing (an offer) by a vendor account.

    ``listing_ref`` is the market's own listing id (or URL when no id is shown).
    ``price`` is in ``currency`` as displayed (``USD``, ``EUR``, ``BTC``, ...).
    """

    market_id: str
    listing_ref: str
    vendor_handle: str | None
    title: str
    description: str | None = None
    price: float | None = None
    currency: str | None = None
    price_text: str | None = None
    quantity_text: str | None = None
    stock: int | None = None
    ships_from: str | None = None
    ships_to: list[str] = field(default_factory=list)
    category_path: list[str] = field(default_factory=list)
    feedback_count: int | None = None
    sales_count: int | None = None
    url: str | None = None
    observed_at: datetime | None = None
    locator: str = ""


@dataclass(slots=True)
class ListingBatch:
    """Many listing observations of one market, in columns (a bulk importer's output).

    Stands for one :class:`ListingRecord` per row, in row order (see :meth:`records`),
    so the store writes the same rows either way; it lets a CSV of 100,000 listings
    reach the store without 100,000 record objects. ``columns`` maps ListingRecord
    field names to equal-length sequences (lists, or Arrow arrays with ``to_pylist``);
    a field that is absent takes its ListingRecord default. Datetimes are UTC
    (aware ``datetime`` values, or a naive UTC timestamp array). ``locators`` gives
    each row's locator, so the pipeline counts one unit per row.
    """

    market_id: str
    locators: list[str]
    columns: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.locators)

    def column(self, name: str) -> list[Any]:
        """One field as a Python list (``None`` where the row has no value)."""
        col = self.columns.get(name)
        if col is None:
            return [None] * len(self.locators)
        return col.to_pylist() if hasattr(col, "to_pylist") else list(col)

    def records(self) -> Iterator[ListingRecord]:
        """The equivalent ListingRecords, one per row."""
        names = list(self.columns)
        cols = [self.column(n) for n in names]
        for i, loc in enumerate(self.locators):
            kw: dict[str, Any] = {}
            for n, col in zip(names, cols, strict=True):
                v = col[i]
                if isinstance(v, datetime) and v.tzinfo is None:
                    v = v.replace(tzinfo=UTC)
                elif isinstance(v, list):
                    v = list(v)
                elif v is None and n in ("ships_to", "category_path"):
                    continue  # the record's default: an empty list
                kw[n] = v
            yield ListingRecord(market_id=self.market_id, locator=loc, **kw)


@dataclass(slots=True)
class FeedbackRecord:
    """One feedback (review) left by a buyer about a vendor or a listing."""

    market_id: str
    vendor_handle: str | None
    text: str
    listing_ref: str | None = None
    listing_title: str | None = None
    rating: float | None = None
    rating_scale: float | None = None
    buyer_masked: str | None = None
    left_at: datetime | None = None
    amount: float | None = None
    currency: str | None = None
    observed_at: datetime | None = None
    locator: str = ""


@dataclass(slots=True)
class IdentifierRecord:
    """An identifier that can link people: PGP fingerprint, crypto address, contact.

    ``kind`` is one of ``pgp_fingerprint``, ``btc_address``, ``xmr_address``,
    ``email``, ``wickr``, ``telegram``, ``session``, ``jabber``, ``signal``,
    ``onion``. ``value`` is normalised (see ``darkmap.model.values``).
    ``field`` names where it was seen (``description``, ``profile``, ``pgp``...).
    """

    kind: str
    value: str
    market_id: str | None = None
    account_handle: str | None = None
    listing_ref: str | None = None
    field: str = ""
    context: str = ""
    locator: str = ""


@dataclass(slots=True)
class PgpKeyRecord:
    """A parsed OpenPGP public key (transferable key) and who published it."""

    fingerprint: str
    key_id: str
    algorithm: str
    bits: int | None
    created_at: datetime | None
    user_ids: list[str]
    subkeys: list[dict[str, object]]
    armored: str
    market_id: str | None = None
    account_handle: str | None = None
    field: str = ""
    locator: str = ""


@dataclass(slots=True)
class SkipRecord:
    """A page deliberately not extracted (login, CAPTCHA, anti-DDoS, error...)."""

    page_type: str
    reason: str
    market_id: str | None = None
    locator: str = ""


@dataclass(slots=True)
class UnitRecord:
    """A unit an importer stored in its stage's own tables (e.g. a Bitcoin block).

    Importers that write with ``read_into`` yield one per stored unit so that the
    pipeline's counts still reconcile (read = stored + quarantined + skipped).
    ``already``: an earlier run stored the unit, this one stored nothing new for it (a
    WARC's page that the crawl, or another WARC, stored first); the run counts it as
    stored but not as stored by this run (``stored_new``).
    """

    locator: str
    kind: str = ""
    market_id: str | None = None
    already: bool = False


@dataclass(slots=True)
class QuarantineRecord:
    """A record that could not be read; kept with where and why."""

    locator: str
    reason: str
    field: str | None = None
    excerpt: str = ""
    market_id: str | None = None
    limit: str | None = None
    """The limit the unit broke (``field_chars``, ``file_bytes``, ``nesting_depth``,
    ``seconds``, ``yaml_aliases``...), None when it failed for another reason."""


@dataclass(slots=True)
class CutRecord:
    """A free-text field cut at its cap (issue #18): not a unit, a note on one.

    The stored value keeps ``kept_chars`` of ``original_chars``; ``value_sha256`` is the
    sha256 of the whole value (UTF-8), whose bytes stay in the immutable capture.
    """

    locator: str
    field: str
    original_chars: int
    kept_chars: int
    value_sha256: str | None = None
    market_id: str | None = None


def _pickled_by_position(cls: type) -> None:
    """Pickle ``cls``'s records as ``cls(*values)``, one value per field in order.

    A slotted dataclass otherwise pickles through its generated ``__getstate__`` and
    ``__setstate__``, which look its fields up and set them one by one, for every
    record: with ``darkmap ingest --jobs N`` every record of a page crosses from a
    worker to the pipeline that way, and the pipeline's unpickling is on its serial
    path (the 124 real pages' 2,122 records: 5.7 -> 3.0 ms to unpickle, 6.8 -> 5.5 ms
    to pickle). Every field of these records is an ``__init__`` argument, in field
    order, and none has a ``__post_init__``, so ``cls(*values)`` is the same record.
    """
    names = tuple(f.name for f in fields(cls))
    if len(names) < 2 or any(not f.init for f in fields(cls)) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: not rebuilt by position")  # a guard for new records
    values = attrgetter(*names)

    def reduce(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = reduce  # type: ignore[assignment,method-assign]


for _cls in (MarketRecord, FeedbackCounts, AccountRecord, ListingRecord, ListingBatch,
             FeedbackRecord, IdentifierRecord, PgpKeyRecord, SkipRecord, UnitRecord,
             QuarantineRecord, CutRecord):
    _pickled_by_position(_cls)
del _cls


_NUMBERS: dict[type, tuple[str, tuple[str, ...]]] = {
    AccountRecord: ("accounts", ("rating", "rating_scale", "last_seen_within")),
    ListingRecord: ("listings", ("price",)),
    FeedbackRecord: ("feedback", ("rating", "rating_scale", "amount")),
}
"""Per record type: the table it stands for and its fields holding a float."""


def finite(value: float | None) -> float | None:
    """``value`` when it is a finite number, else ``None``: what an exporter writes of a
    stored number, leaving out an ``inf`` or ``nan`` a workspace written before the
    ingest refused them may hold (an unknown value is left out)."""
    return None if value is None or not math.isfinite(value) else value


def _all_finite(col: Any) -> bool:
    """Whether every float of a batch's column (an Arrow array, or a list) is finite; a
    missing value counts as finite. An Arrow column of floats is tested by Arrow, not
    row by row in Python (a 10-million-row CSV is 200 such batches)."""
    if col is None:
        return True
    if hasattr(col, "type"):  # an Arrow column: tested by Arrow's kernel, not row by row
        from darkmap.model import arrow_compute as ac  # noqa: PLC0415 - records stay light
        return ac.all_finite(col)
    return not any(isinstance(v, float) and not math.isfinite(v) for v in col)


def non_finite(rec: object) -> list[str]:
    """The fields of ``rec`` (an account, listing or feedback record, or a listing
    batch) holding a number that is not finite (``inf``, ``nan``: a 400-digit price
    overflows a float), each as ``table.field`` (``listings.price``); the store holds
    none (exports audit, finding 8: it came out as ``inf`` in GEXF and FtM).

    >>> non_finite(ListingRecord("m", "r", "v", "t", price=float("inf")))
    ['listings.price']
    """
    if isinstance(rec, ListingBatch):
        return [f"listings.{name}" for name in ("price",)
                if not _all_finite(rec.columns.get(name))]
    spec = _NUMBERS.get(type(rec))
    if spec is None:
        return []
    table, names = spec
    out = []
    for name in names:
        v = getattr(rec, name)
        if isinstance(v, float) and not math.isfinite(v):
            out.append(f"{table}.{name}")
    return out


Record: TypeAlias = (
    MarketRecord
    | AccountRecord
    | ListingRecord
    | ListingBatch
    | FeedbackRecord
    | IdentifierRecord
    | PgpKeyRecord
    | SkipRecord
    | UnitRecord
    | QuarantineRecord
    | CutRecord
)
