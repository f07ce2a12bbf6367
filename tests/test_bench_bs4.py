"""The BeautifulSoup baseline of ``bench/bs4_pages.py`` reads what darkmap reads (#21).

Issue #21 compares darkmap's page speed with a BeautifulSoup scraper of the same pages
reading the same fields; the comparison only means something while it does. Timing is
the bench's business, not a test's: this checks, on the real saved pages, that the
baseline finds the market and page type darkmap's engine finds and the same listing and
account values. A template that soupsieve cannot read (lexbor-only syntax) fails here.

Measured (2026-12-04): 124 of 124 pages agree on market and page type; the baseline finds
4,791 of darkmap's 4,791 non-empty listing and account values, and 7,818 of its 8,021
feedback row values (Python's html.parser reads the rest of three Cryptonia pages as
text after a numeric character reference without its ";", ``&#10084FREE``). The bounds
below leave a margin for a template change the baseline follows a little differently.
"""

from __future__ import annotations

from typing import Any

import pytest
from bench_loader import load_bench
from conftest import DATA


def _bench() -> Any:
    mod = load_bench("bs4_pages")
    mod.PAGES = DATA / "pages"
    return mod


@pytest.fixture(scope="module")
def check() -> dict[str, Any]:
    if not (DATA / "pages").is_dir():
        raise RuntimeError(f"real data folder {DATA} is missing; set DARKMAP_DATA")
    return _bench().compare()


def test_baseline_detects_markets_and_page_types_like_darkmap(check: dict[str, Any]) -> None:
    assert check["pages"] >= 100
    assert check["market_agree_share"] >= 0.95, check["mismatches"]
    assert check["page_type_agree_share"] >= 0.9, check["mismatches"]


def test_baseline_finds_darkmaps_listing_and_account_values(check: dict[str, Any]) -> None:
    assert check["darkmap_values"] > 1000
    assert check["coverage"] >= 0.95, check["missed"]
    for section in ("listing", "account", "listings"):
        assert check["coverage_per_section"][section]["share"] >= 0.9, check["missed"]
    assert check["feedback_coverage"] >= 0.9, check["missed"]
