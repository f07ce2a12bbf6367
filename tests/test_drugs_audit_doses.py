"""Doses and counts the user-level audit of `darkmap assess` found still misread (items 5c
and 5i, 7): a tablet strength written in grams, a count range, the street names of pressed
oxycodone 30s. Each rule is checked on the real listing the audit quoted and on made-up
variants, including those that must keep their old reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmap.assess.listing import assess_listing
from darkmap.assess.quantity import parse_quantity
from darkmap.evaluate.drugs import SourceListing, read_listings


@pytest.fixture(scope="module")
def hansa(data_dir: Path) -> dict[str, SourceListing]:
    """The real Hansa listings, keyed by listing id."""
    return read_listings(data_dir / "listings" / "hansa-2016-12.csv")


def _assess(row: SourceListing) -> tuple[float | None, str, float | None, str]:
    a = assess_listing(row["title"], None, row["category_path"], None, None,
                       row["price_text"], row["observed_at"])
    return a.units, a.unit_kind, a.dose_mg, a.parse_note


# ---- 1. a tablet strength written in grams ----------------------------------------

def test_lorazepam_grams_per_tablet_are_milligrams(hansa: dict[str, SourceListing]) -> None:
    """hansa:29356 "LORAZEPAM (tavor) 2,5 gr x 10": ten Tavor 2.5 mg tablets, not 25 g."""
    units, kind, dose, note = _assess(hansa["29356"])
    assert (units, kind, dose) == (10, "pill", 2.5)
    assert "2.5 g" in note and "mg" in note


@pytest.mark.parametrize(("title", "substance", "units", "kind", "dose"), [
    # a weight per unit that no tablet of the substance has, a strength it has in mg
    ("Lorazepam 2.5g x 10", "other_benzodiazepine", 10, "pill", 2.5),
    ("Valium 10 gr x 20", "diazepam", 20, "pill", 10.0),
    ("20 x 2g Xanax", "alprazolam", 20, "pill", 2.0),
    ("Oxycodone 80g x 5", "oxycodone", 5, "pill", 80.0),
    # a weight per unit that is a tablet's strength in grams
    ("Tramadol 0,2 g x 10", "tramadol", 10, "pill", 200.0),
    # sold by weight: the weights are summed as before
    ("Cocaine 2,5 gr x 10", "cocaine", 25, "gram", None),
    ("Speed 2g x 10", "amphetamine", 20, "gram", None),
    ("Fentanyl HCL 1g x 10", "fentanyl", 10, "gram", None),
    # a powder of a tablet substance stays a powder
    ("Alprazolam powder 1g x 10", "alprazolam", 10, "gram", None),
    ("Etizolam 1g x 5 99% pure", "etizolam", 5, "gram", None),
    # no strength of the substance: stays grams
    ("Oxycodone 500g x 2", "oxycodone", 1000, "gram", None),
    ("Diazepam 50g x 2", "diazepam", 100, "gram", None),
    # a lone weight, no count: powder sold by the gram (hansa:49199 "10gr. Oxycodone")
    ("10gr. Oxycodone", "oxycodone", 10, "gram", None),
    ("Etizolam 1g", "etizolam", 1, "gram", None),
])
def test_a_weight_per_tablet_is_read_by_the_substance(
        title: str, substance: str, units: float, kind: str, dose: float | None) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind, q.dose_mg) == (units, kind, dose), q


# ---- 2. a count range is a tier list: the lowest tier ------------------------------

@pytest.mark.parametrize(("title", "substance", "units", "kind", "dose", "stated"), [
    ("10-100 pills MDMA", "mdma", 10, "pill", None, "10-100"),
    # empire:30825, a flash-sale listing of 5 to 100 blotters
    ("HUGE FLASH SALE ENDS 01/10 🚀 🇬🇧 5 - 100 LSD BLOTTERS REAL 200ug GHANDI", "lsd", 5,
     "blotter", 0.2, "5-100"),
    ("MDMA pills 20 to 500 tabs 220mg", "mdma", 20, "pill", 220.0, "20-500"),
    ("Xanax 2mg 50–1000x", "alprazolam", 50, "pill", 2.0, "50-1000"),
])
def test_a_count_range_takes_its_lowest_tier(title: str, substance: str, units: float,
                                             kind: str, dose: float | None,
                                             stated: str) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind, q.dose_mg) == (units, kind, dose), q
    assert f"count range {stated}" in q.note and q.confidence <= 0.5, q


@pytest.mark.parametrize(("title", "substance", "units", "dose"), [
    # hansa:14735 "Zapam 10" is the brand's strength restated, then the count
    ("Zapam 10 - 100 x 10mg", "other_benzodiazepine", 100, 10.0),
    ("Xanax 2mg - 100 pills", "alprazolam", 100, 2.0),
    ("100 pills MDMA", "mdma", 100, None),
])
def test_a_number_before_a_dash_that_is_no_range_keeps_the_count(
        title: str, substance: str, units: float, dose: float | None) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.dose_mg) == (units, dose) and "count range" not in q.note, q
    assert q.confidence > 0.5, q
