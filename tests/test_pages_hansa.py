"""Hansa Market pages against values read off the pages by hand."""

from datetime import datetime

import pytest
from test_pages_helpers import extract, of


def test_listing_page() -> None:
    res = extract("hansa/listing_80539_.htm")
    (lst,) = of(res, "Listing")
    assert (lst.listing_ref, lst.vendor_handle) == ("80539", "KingOdua")
    assert lst.title.startswith("100x $2900. Roxicodone-Oxy-Oxycodone 30mg.")
    assert (lst.price, lst.currency, lst.stock) == (2902.7, "USD", 2)
    assert lst.ships_from == "United States" and lst.ships_to == ["United States"]
    assert lst.category_path == ["Drugs", "Prescription", "Painkillers"]
    assert lst.observed_at == datetime(2017, 6, 24, 1, 17)


def test_listing_feedback_tab() -> None:
    res = extract("hansa/listing_80539_feedback_.htm")
    (fb,) = of(res, "Feedback")
    assert (fb.text, fb.buyer_masked, fb.rating) == (
        "Great service! Best vendor ive used yet", "B***e", 1)
    assert fb.left_at == datetime(2017, 5, 10, 23, 0) and fb.listing_ref == "80539"
    (lst,) = of(res, "Listing")
    assert lst.description is None  # the feedback tab shows no description


def test_vendor_page() -> None:
    (acct,) = of(extract("hansa/vendor_tramapro_.htm"), "Account")
    assert (acct.handle, acct.level, acct.rating) == ("tramapro", "Level 5", 92.0)
    assert acct.joined_at == datetime(2016, 1, 5) and acct.last_seen_at == datetime(2017, 6, 23)


@pytest.mark.parametrize("vendor", ["bitloxer", "dbworld", "tramapro"])
def test_vendor_pgp_pages_yield_a_pgp_key(vendor: str) -> None:
    pytest.importorskip("darkmap.extract.identifiers")
    res = extract(f"hansa/vendor_{vendor}_pgp_.htm")
    keys = of(res, "PgpKey")
    assert len(keys) == 1 and keys[0].account_handle == vendor
    assert len(keys[0].fingerprint) == 40


def test_category_rows() -> None:
    rows = of(extract("hansa/category_74_.htm"), "Listing")
    assert len(rows) == 33
    assert (rows[0].listing_ref, rows[0].vendor_handle, rows[0].price) == (
        "38999", "Nesquik7", 502.71)


def test_category_rows_ship_from_and_their_vendors() -> None:
    """A category page shows, under each listing, its vendor's feedback badge, level with
    the sales bracket, and where it ships from: each listing keeps its origin, each vendor
    is one account observation per distinct badge (not one per listing)."""
    res = extract("hansa/category_105_.htm")
    rows = of(res, "Listing")
    by_ref = {r.listing_ref: r for r in rows}
    assert by_ref["93210"].vendor_handle == "Counterfeits"
    assert by_ref["93210"].ships_from == "United States"
    assert sum(r.ships_from is not None for r in rows) == 33  # every row of this page
    accts = {a.handle: a for a in of(res, "Account")}
    assert len(accts) == len(of(res, "Account"))  # one observation per vendor shown
    c = accts["Counterfeits"]
    assert (c.level, c.sales_floor, c.sales_count) == ("Level 9 (800+)", 800, None)
    ((fc),) = c.feedback_counts
    assert (fc.window, fc.positive, fc.neutral, fc.negative) == ("all", 628, None, 9)
    k = accts["KingOdua"]
    assert (k.sales_floor, k.feedback_counts[0].positive) == (300, 265)
    assert c.locator.startswith("page#account ") and c.observed_at == datetime(2017, 6, 24, 1, 16)
    # a level without a bracket, and an exact small count, are no floor
    assert accts["DoctorFreedom"].sales_floor is None
    assert accts["SubsRule"].level == "Level 1 (6)" and accts["SubsRule"].sales_floor is None


def test_category_pages_every_origin_shown() -> None:
    """65 rows of the five category pages show "Ships from"; the digital-goods pages none."""
    shown = 0
    for n in (50, 67, 74, 76, 105):
        res = extract(f"hansa/category_{n}_.htm")
        shown += sum(r.ships_from is not None for r in of(res, "Listing"))
        assert all(a.handle for a in of(res, "Account")) and not of(res, "Quarantine")
    assert shown == 65


def test_orders_bracket_is_a_floor_not_a_count() -> None:
    """A profile's "Orders 30+" is at least 30 sales, and a listing's "Level 9 (300+)" at
    least 300; "Orders 0" is a count."""
    (db,) = of(extract("hansa/vendor_dbworld_.htm"), "Account")
    assert (db.sales_count, db.sales_floor) == (None, 30)
    (bl,) = of(extract("hansa/vendor_bitloxer_.htm"), "Account")
    assert (bl.sales_count, bl.sales_floor) == (0, None)
    (ko,) = of(extract("hansa/listing_80539_.htm"), "Account")
    assert (ko.level, ko.sales_floor) == ("Level 9 (300+)", 300)
