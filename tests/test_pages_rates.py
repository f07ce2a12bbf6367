"""The exchange rates market pages state themselves, read off the pages by hand, and the
assessment converting a page's BTC prices at its own rate (audit finding 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pages_helpers import extract, of

import darkmap
from darkmap.assess.listing import assess_listing
from darkmap.store.workspace import Workspace


@pytest.mark.parametrize(("page", "btc_usd"), [
    ("dream/sellers/seller_0.html", 5517.0),             # sidebar, USD the chosen currency
    ("dream/search_result/search_result_0.html", 7930.6),  # sidebar, USD a link
    ("hansa/category_74_.htm", 2711.90),                 # footer "USD/BTC 2711.90"
    ("hansa/listing_80539_feedback_.htm", 2702.76),
    ("apollon/search_results/search_result_0", 9448.69),  # panel "BTC/USD 9448.69"
    ("cryptonia/users/saved_cryptonia_user_profile_3", 9134.92),  # "1 BTC = ... USD"
])
def test_pages_state_their_btc_rate(page: str, btc_usd: float) -> None:
    (mk,) = of(extract(page), "Market")
    assert mk.usd_rates == {"BTC": btc_usd}


def test_a_page_without_a_rate_states_none() -> None:
    (mk,) = of(extract("empire/listings/saved_empire_listing_2"), "Market")
    assert mk.usd_rates == {}


def test_page_rate_wins_over_the_table_and_says_so() -> None:
    a = assess_listing("5g cocaine", price=0.0363, currency="BTC",
                       observed_at=None, page_rates={"BTC": 10890.3})
    assert a.pack_price_usd == pytest.approx(0.0363 * 10890.3)
    assert "page's own rate (USD 10890.3)" in a.parse_note
    b = assess_listing("5g cocaine", price=50.0, currency="USD", page_rates={"BTC": 10890.3})
    assert b.pack_price_usd == 50.0 and "page" not in b.parse_note


def test_dream_btc_prices_at_the_pages_rate(data_dir: Path, tmp_path: Path) -> None:
    """dream:115176.827038 (0.01967 BTC on the search page, whose sidebar says USD 7930.6)
    came out $2,085 at the table's rate of the file's date; the page's rate gives $156."""
    ws = Workspace.init(tmp_path / "dream")
    try:
        darkmap.ingest(ws, [data_dir / "pages" / "dream"])
        darkmap.assess_listings(ws)
        rows = dict(ws.con.execute(
            "SELECT l.listing_ref, a.pack_price_usd FROM listing_assessments a "
            "JOIN listings l USING (listing_id) WHERE l.market_id = 'dream'").fetchall())
        notes = ws.con.execute(
            "SELECT count(*) FILTER (WHERE o.currency = 'BTC'), count(*) FILTER (WHERE "
            "o.currency = 'BTC' AND a.parse_note LIKE '%page''s own rate%') "
            "FROM listing_assessments a JOIN listing_observations o USING (obs_id)").fetchone()
        stored = ws.con.execute("SELECT count(*), count(DISTINCT capture_sha256) "
                                "FROM page_rates WHERE currency = 'BTC'").fetchone()
    finally:
        ws.close()
    assert rows["115176.827038"] == pytest.approx(0.01967 * 7930.6, rel=1e-3)
    assert notes is not None and notes[0] > 100 and notes[0] == notes[1]  # every BTC price
    assert stored == (12, 12)  # one per page showing one (seller_0 is seller_0.html again)
