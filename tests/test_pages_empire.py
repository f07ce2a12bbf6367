"""Empire Market pages against values read off the pages by hand."""

from datetime import datetime

from test_pages_helpers import extract, of


def test_listing_page() -> None:
    res = extract("empire/listings/saved_empire_listing_1")
    assert (res.market_id, res.page_type) == ("empire", "listing")
    (lst,) = of(res, "Listing")
    assert lst.listing_ref == "35599"
    assert lst.title == "1oz PAMP Veriscan Counterfeit Gold Bar"
    assert lst.vendor_handle == "biggertreesinc"
    assert (lst.price, lst.currency) == (54.0, "USD")
    assert lst.ships_from == "Latvia" and lst.ships_to == ["World Wide"]
    assert lst.stock == 8 and lst.sales_count == 32
    assert lst.category_path == ["Jewels & Gold", "Gold"]
    (acct,) = of(res, "Account")
    assert acct.handle == "biggertreesinc" and acct.joined_at == datetime(2019, 4, 20)


def test_another_listing_page() -> None:
    (lst,) = of(extract("empire/listings/saved_empire_listing_14"), "Listing")
    assert (lst.listing_ref, lst.vendor_handle) == ("39702", "CardPass")
    assert lst.title == "50 selfies + ID both sides + utility bill"
    assert (lst.price, lst.currency) == (1106.71, "USD")


def test_vendor_profile_page() -> None:
    res = extract("empire/users/saved_empire_user_3")
    assert res.page_type == "vendor"
    (acct,) = of(res, "Account")
    assert acct.handle == "Naturalminds"
    assert acct.sales_count == 514 and acct.rating == 97.16
    assert acct.last_seen_at == datetime(2019, 11, 7)
    assert "NMdeals@protonmail.com" in acct.profile_text


def test_feedback_page() -> None:
    res = extract("empire/feedback/saved_empire_feedback_1")
    assert res.page_type == "feedback"
    fbs = of(res, "Feedback")
    assert len(fbs) == 30
    first = fbs[0]
    assert (first.text, first.buyer_masked, first.amount, first.currency) == (
        "A+", "G***h", 72.51, "USD")
    assert first.left_at == datetime(2019, 11, 17, 21, 24)
    assert first.listing_ref == "122210" and first.vendor_handle == "EverythingDank"
    assert fbs[3].amount == 24.01  # "T***3 USD 24.01": the buyer mask is not the price
    assert [f.locator for f in fbs[:2]] == ["page#feedback 1", "page#feedback 2"]


def test_search_page_rows() -> None:
    rows = of(extract("empire/search_results/saved_empire_search_result_0"), "Listing")
    assert len(rows) == 15
    r = rows[0]
    assert (r.listing_ref, r.title, r.vendor_handle, r.price) == (
        "35791", "2g. Pure Peruvian Cocaine Flake", "TheCircuit", 75.0)
    assert r.category_path == ["Stimulants", "Cocaine"] and r.locator == "page#row 1"


def test_pgp_page_yields_the_key() -> None:
    res = extract("empire/pgp/saved_empire_pgp_0")
    assert res.page_type == "pgp"
    keys = of(res, "PgpKey")
    assert keys and keys[0].account_handle == "ChillTimes"
