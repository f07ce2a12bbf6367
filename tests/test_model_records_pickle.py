"""Records cross from ``darkmap ingest --jobs N``'s workers to the pipeline pickled
(#21): each record type pickles as its class called with its field values in order,
and comes back equal, of the same type, with every field value the same."""

from __future__ import annotations

import copy
import pickle  # noqa: TID251 - only the records pickled by the test itself
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, get_args

import pyarrow as pa
import pytest

from darkmap.model import records as recs

WHEN = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)


def _samples() -> list[Any]:
    counts = recs.FeedbackCounts("6m", 10, 1, 0)
    return [
        recs.MarketRecord("dream", "Dream Market", "x.onion", WHEN, "listing"),
        counts,
        recs.AccountRecord("dream", "Vendor Ü", "vendor", WHEN, WHEN, 4.5, "3", 10, 20,
                        "profile\ntext", "terms", "DE", "http://x.onion/u", WHEN, "page#1",
                        5.0, ["DE", "FR"], 3600.0, [counts]),
        recs.ListingRecord("dream", "123", "vendor", "title", "desc", 1.5, "USD", "$1.50",
                        "1 g", 7, "DE", ["EU"], ["Drugs", "Weed"], 3, 4, "http://x",
                        WHEN, "page#listing"),
        recs.ListingBatch("hansa", ["row1", "row2"],
                       {"listing_ref": ["1", "2"], "price": pa.array([1.0, None])}),
        recs.FeedbackRecord("dream", "vendor", "great", "123", "title", 5.0, 5.0, "b***r",
                         WHEN, 12.5, "USD", WHEN, "page#feedback[0]"),
        recs.IdentifierRecord("email", "a@b.c", "dream", "vendor", "123", "description",
                           "mail a@b.c", "page#1"),
        recs.PgpKeyRecord("F" * 40, "F" * 16, "rsa", 4096, WHEN, ["A <a@b.c>"],
                       [{"key_id": "1", "bits": 2048}], "-----BEGIN...", "dream", "vendor",
                       "pgp", "page#pgp"),
        recs.SkipRecord("login", "login form", "dream", "page"),
        recs.UnitRecord("block#1", "block", "bitcoin"),
        recs.QuarantineRecord("page", "bad", "price", "<td>", "dream", "field_chars"),
        recs.CutRecord("page#1", "description", 100_000, 50_000, "ab" * 32, "dream"),
    ]


def test_every_record_type_is_sampled() -> None:
    sampled = {type(r) for r in _samples()}
    assert sampled == {*get_args(recs.Record), recs.FeedbackCounts}


@pytest.mark.parametrize("rec", _samples(), ids=lambda r: type(r).__name__)
def test_a_record_pickles_as_its_class_called_with_its_values(rec: Any) -> None:
    values = tuple(getattr(rec, f.name) for f in fields(rec))
    assert rec.__reduce__() == (type(rec), values)  # the old pickles went field by field
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(rec, protocol=protocol))  # noqa: S301 - made here
        assert type(back) is type(rec)
        if isinstance(rec, recs.ListingBatch):  # Arrow arrays compare by content, not ==
            assert back.market_id == rec.market_id and back.locators == rec.locators
            assert {k: back.column(k) for k in back.columns} == {
                k: rec.column(k) for k in rec.columns}
            continue
        assert back == rec
        assert [type(getattr(back, f.name)) for f in fields(rec)] == [
            type(v) for v in values]
    if not isinstance(rec, recs.ListingBatch):
        assert copy.copy(rec) == rec and copy.deepcopy(rec) == rec


def test_shared_values_stay_shared_through_a_pickle() -> None:
    ships = ["DE", "FR"]
    a = recs.ListingRecord("m", "1", "v", "t", ships_to=ships)
    b = recs.AccountRecord("m", "v", ships_to=ships)
    a2, b2 = pickle.loads(pickle.dumps([a, b]))  # noqa: S301 - made here
    assert a2.ships_to is b2.ships_to and a2.ships_to == ships


def test_a_record_that_cannot_be_rebuilt_by_position_is_refused() -> None:
    @dataclass(slots=True)
    class Later:
        a: int
        b: int = field(init=False, default=0)

    @dataclass(slots=True)
    class Checked:
        a: int
        b: int

        def __post_init__(self) -> None:
            self.b = abs(self.b)

    for cls in (Later, Checked):
        with pytest.raises(TypeError, match="not rebuilt by position"):
            recs._pickled_by_position(cls)
