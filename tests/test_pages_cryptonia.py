"""Cryptonia Market pages against values read off the pages by hand."""

from datetime import datetime

from test_pages_helpers import extract, of


def test_listing_page() -> None:
    res = extract("cryptonia/listings/saved_cryptonia_listing_1")
    (lst,) = of(res, "Listing")
    assert lst.listing_ref == "22210933"
    assert lst.title == "Ephedrine Hcl 20mg x 500 tablets (Weight Loss)"
    assert lst.vendor_handle == "monoko"
    assert (lst.price, lst.currency) == (87.21, "USD")
    assert lst.ships_from == "United Kingdom" and lst.ships_to == ["Worldwide"]
    assert lst.stock == 99 and lst.category_path == ["Other Pharma"]
    assert lst.observed_at == datetime(2019, 10, 27, 13, 32)  # "Server Time" on the page
    fbs = of(res, "Feedback")
    assert fbs and fbs[0].text == "Arrived on time and as described."
    assert (fbs[0].amount, fbs[0].currency, fbs[0].buyer_masked) == (0.009, "BTC", "n***r")
    assert fbs[0].left_at == datetime(2019, 10, 26)


def test_vendor_profile_page() -> None:
    res = extract("cryptonia/users/saved_cryptonia_user_profile_2")
    assert res.page_type == "vendor"
    (acct,) = of(res, "Account")
    assert (acct.handle, acct.sales_count, acct.level) == ("GreenSupreme", 683, "LEVEL 2")
    assert acct.ships_from == "Germany" and acct.rating == 100.0
    assert acct.joined_at == datetime(2019, 4, 22, 10, 20, 33)
    assert of(res, "PgpKey"), "the PGP tab must yield a key"
    fbs = of(res, "Feedback")
    assert (fbs[0].listing_title, fbs[0].text, fbs[0].buyer_masked) == (
        "Kokain / Koks / Cocaine * 1 g *", "No feedback left.", "j***e")


def test_feedback_tab_of_profile() -> None:
    res = extract("cryptonia/feedback/saved_feedback_0")
    (acct,) = of(res, "Account")
    assert acct.handle == "terrysukstock" and acct.sales_count == 1509
    fbs = of(res, "Feedback")
    assert fbs[0].listing_title == "Dihydrocodeine 30mg 28 tab UK grade BOX"
    assert fbs[0].vendor_handle == "terrysukstock"


def test_search_rows() -> None:
    rows = of(extract("cryptonia/search_results/saved_cryptonia_search_result_in_category_0"),
              "Listing")
    r = rows[0]
    assert (r.listing_ref, r.title, r.vendor_handle) == (
        "19928603", "448g Purple Tangie GREENHOUSE", "CaliTerps")
    assert (r.price, r.currency, r.ships_from, r.ships_to) == (1795.0, "USD", "US", ["US"])


def test_empty_category_is_skipped_with_reason() -> None:
    res = extract("cryptonia/search_results/saved_cryptonia_search_result_in_category_6")
    assert res.page_type == "index"
    assert [s.reason for s in of(res, "Skip")] == ["page shows no records"]
