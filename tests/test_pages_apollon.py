"""Apollon Market pages against values read off the pages by hand."""

from datetime import datetime

from test_pages_helpers import extract, of


def test_listing_page() -> None:
    res = extract("apollon/listings/listing_3")
    (lst,) = of(res, "Listing")
    assert (lst.listing_ref, lst.vendor_handle) == ("37650", "CaptainCandy")
    assert lst.title.startswith("✪ 10x LSD 300 μg PURPLE AUM")
    assert (lst.price, lst.currency, lst.ships_from) == (39.0, "USD", "United States")
    (acct,) = of(res, "Account")
    assert acct.joined_at == datetime(2019, 10, 8) and acct.last_seen_at == datetime(2020, 2, 3)


def test_vendor_and_feedback_pages() -> None:
    res = extract("apollon/sellers/seller_0")
    (acct,) = of(res, "Account")
    assert (acct.handle, acct.sales_count, acct.rating) == ("dutch-skills", 93, 100.0)
    res = extract("apollon/feedbacks/negative_feedback_0")
    fbs = of(res, "Feedback")
    assert len(fbs) == 11
    f = fbs[0]
    assert (f.rating, f.buyer_masked, f.amount, f.listing_ref) == (0, "s...t", 1108.0, "23322")
    assert f.left_at == datetime(2020, 1, 29, 2, 1) and f.vendor_handle == "UKNEXTDAY"


def test_index_rows() -> None:
    rows = of(extract("apollon/category_indexes/category_index_0"), "Listing")
    assert len(rows) == 15
    r = rows[0]
    assert r.listing_ref == "37178" and r.vendor_handle == "kim0ra"
    assert (r.price, r.currency) == (17.0, "USD")
    assert r.category_path == ["Fraud", "CVV & Cards"]
