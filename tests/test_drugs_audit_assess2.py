"""Rules from the second independent audit of `darkmap assess` (findings 1, 2, 3 and 8):
a test-strip phrase that hid fentanyl, spellings that evaded the fentanyl and counterfeit
flags, "soap bar" hash read as Xanax, syringes read as cannabis. Each rule is checked on
the real listings the audit quoted and on made-up hostile variants of the same writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmap.assess.listing import assess_listing
from darkmap.evaluate.drugs import SourceListing, read_listings

DRUGS = ["Drugs"]


@pytest.fixture(scope="module")
def hansa(data_dir: Path) -> dict[str, SourceListing]:
    """The real Hansa listings, keyed by listing id."""
    return read_listings(data_dir / "listings" / "hansa-2016-12.csv")


def _real(row: SourceListing) -> tuple[str, str, bool, bool]:
    a = assess_listing(row["title"], None, row["category_path"], None, None,
                       row["price_text"], row["observed_at"])
    return a.drug_class, a.substance, a.counterfeit_pill, a.fentanyl_risk


# ---- 1. a test-strip phrase negates only itself ------------------------------------

@pytest.mark.parametrize(("title", "substance"), [
    ("Fentanyl 1g + fentanyl test strips included", "fentanyl"),
    ("China White Fentanyl 1g - comes with free fentanyl test strip", "fentanyl"),
    ("Heroin #4 1g (tested for fentanyl, contains fentanyl)", "heroin"),
    ("fentanyl test strips x10 + 1g fentanyl hcl", "fentanyl"),
])
def test_a_test_strip_phrase_does_not_hide_fentanyl_named_elsewhere(
        title: str, substance: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.drug_class, a.substance, a.fentanyl_risk) == ("opioid", substance, True), a


@pytest.mark.parametrize("title", [
    "Fentanyl Test Strips x10", "Fentanyl test strip (2x)", "10x fentanyl testing strips",
    "Test strips for fentanyl - 25 pcs", "Fentanyl test kit - detects fentanyl in any drug",
])
def test_test_strips_alone_stay_non_drug(title: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.drug_class, a.fentanyl_risk) == ("non_drug", False), a


@pytest.mark.parametrize("title", [
    "#4 heroin fentanyl free 1g", "Heroin Zero Fent 1g", "Heroin 1g - tested for fentanyl",
    "Heroin no fent 1g", "Heroin 1g (fent tested, none found)", "Heroin 0% fentanyl",
])
def test_a_negated_fentanyl_word_stays_negated(title: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.substance, a.fentanyl_risk) == ("heroin", False), a


def test_the_real_test_strip_listing_stays_a_test_kit(hansa: dict[str, SourceListing]) -> None:
    """hansa:50823 "Fentanyl Test Strip (2x)" sells the strips."""
    assert _real(hansa["50823"])[::3] == ("non_drug", False)
