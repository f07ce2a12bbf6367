"""Dream Market pages against values read off the pages by hand."""

from datetime import datetime

from test_pages_helpers import extract, of


def test_listing_pages() -> None:
    (lst,) = of(extract("dream/listings/listing_1.html"), "Listing")
    assert (lst.listing_ref, lst.title, lst.vendor_handle) == (
        "956188.13597", "navicat v10 full", "europe")
    assert (lst.price, lst.currency) == (0.000787, "BTC")
    assert lst.ships_from == "Worldwide"
    res = extract("dream/listings/listing_0.html")
    (lst,) = of(res, "Listing")
    assert (lst.vendor_handle, lst.price, lst.currency) == ("PHARMORA", 50.96, "USD")
    assert lst.ships_to == ["United States", "Worldwide"]
    (acct,) = of(res, "Account")
    assert (acct.sales_count, acct.rating, acct.feedback_count) == (1000, 4.97, 860)


def test_vendor_page_with_ratings() -> None:
    res = extract("dream/sellers/seller_8.html")
    (acct,) = of(res, "Account")
    assert acct.handle == "HighSpeed"
    assert acct.joined_at == datetime(2018, 6, 28)
    assert acct.observed_at == datetime(2018, 11, 19)  # "Last active 19/11/2018 (today)"
    fbs = of(res, "Feedback")
    assert fbs[0].text == "FE for Trust!!!!!! Neurkunde....."
    assert (fbs[0].rating, fbs[0].rating_scale, fbs[0].amount) == (5, 5, 30.0)
    # "3d" before the day the page was seen
    assert fbs[0].left_at == datetime(2018, 11, 16)
    assert any(f.text == "Schnelle Lieferung und sehr gute Qualität" for f in fbs)
    assert of(res, "Listing"), "the vendor's listings are shown on the page"


def test_vendor_page_with_pgp_and_shop() -> None:
    res = extract("dream/sellers/seller_3.html")
    (acct,) = of(res, "Account")
    assert (acct.handle, acct.sales_count, acct.rating) == ("ChefRamsay", 280, 4.96)
    assert of(res, "PgpKey")
    rows = of(res, "Listing")
    assert rows[0].title == "200 GR AFGAN HEROIN EXCELLENT HQ + T&T"
    assert (rows[0].listing_ref, rows[0].price, rows[0].vendor_handle) == (
        "691057.463717", 0.621, "ChefRamsay")


def test_search_rows() -> None:
    rows = of(extract("dream/search_result/search_result_0.html"), "Listing")
    assert len(rows) == 32
    assert (rows[0].title, rows[0].vendor_handle, rows[0].price) == (
        "7 REASONS a CARD is BLOCKED Carders GOLD", "MoneyMakerBoss", 0.000523)
