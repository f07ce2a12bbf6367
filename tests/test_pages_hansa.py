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
