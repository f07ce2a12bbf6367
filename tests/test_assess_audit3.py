"""The leftovers of the second assessment audit (/work/audit-assess2.md): pack counts
written "(35) $20 each" and "30mg (100)", a price per gram with no pack, "5 Pills =
1.25MG" totals, street count words for pills, and a few misreads of listed titles.
Each rule is checked on the real listings the audit quoted and on made-up variants."""

from __future__ import annotations

import pytest
from conftest import assess_row, quantity_of

from darkmap.assess.listing import assess_listing
from darkmap.assess.quantity import parse_quantity
from darkmap.evaluate.drugs import SourceListing

# ---- "(N) $P each" and "(N)" after the dose: the pack count ------------------------


def test_a_count_in_brackets_before_a_price_each_is_the_pack(
        hansa_listings: dict[str, SourceListing]) -> None:
    """hansa:37056 "1000mg Vape Cartridge SFV OG (35) $20 each" at USD 700 is 35
    cartridges of 1000 mg at $20 each, not 1 g at $700 a gram."""
    a = assess_row(hansa_listings["37056"])
    assert (a.units, a.unit_kind, a.dose_mg) == (35.0, "piece", 1000.0), a.parse_note
    assert a.unit_price_usd == 20.0


@pytest.mark.parametrize(("lid", "units"), [
    ("37056", 35.0),   # "1000mg Vape Cartridge SFV OG (35) $20 each"
    ("14942", 20.0),   # "20x Platinum Kush Cartridges!!!"
    ("17014", 100.0),  # "100x 500mg CG or GTW Cartridges!! A++ All Nug Run"
    ("10355", 10.0),   # "10x Shatter Pens!! Full Kits!! GTW or CG"
    ("55905", 15.0),   # "15 pack Vape Cartridges ...": labelled 15 pieces
])
def test_counted_cannabis_cartridges_are_pieces_not_pills(
        hansa_listings: dict[str, SourceListing], lid: str, units: float) -> None:
    """A count of cannabis cartridges or pens is pieces (as edibles are): a cartridge is no
    pill, and the sales "pills" measure counts pills."""
    units_got, kind, _, note = quantity_of(hansa_listings[lid])
    assert (units_got, kind) == (units, "piece"), note


def test_cannabis_oil_capsules_stay_pills() -> None:
    q = parse_quantity("THC oil capsules 10 x 25mg", "cannabis_concentrate")
    assert (q.units, q.unit_kind, q.dose_mg) == (10.0, "pill", 25.0), q


@pytest.mark.parametrize(("title", "substance", "units", "dose"), [
    ("Oxycodone 30mg (100)", "oxycodone", 100.0, 30.0),
    ("Adderall IR 20mg (5)", "amphetamine", 5.0, 20.0),  # agora:SncKzEyAl
    ("Xanax 2mg [50] fast shipping", "alprazolam", 50.0, 2.0),
    ("Vape Cartridge 500mg (10) €25 each", "cannabis_concentrate", 10.0, 500.0),
])
def test_a_count_in_brackets_after_the_dose_is_the_pack(
        title: str, substance: str, units: float, dose: float) -> None:
    q = parse_quantity(title, substance)
    kind = "piece" if substance == "cannabis_concentrate" else "pill"
    assert (q.units, q.unit_kind, q.dose_mg) == (units, kind, dose), q


@pytest.mark.parametrize(("title", "substance"), [
    ("Oxycodone 30mg (100%) genuine", "oxycodone"),  # a purity, not a count
    ("MDMA 84% (100) crystals 1g", "mdma"),          # a weight is the pack
])
def test_a_bracketed_number_that_is_no_pack_count(title: str, substance: str) -> None:
    q = parse_quantity(title, substance)
    assert q.units != 100.0 and q.unit_kind != "pill", q


# ---- a price per gram with no pack: one gram ---------------------------------------

@pytest.mark.parametrize(("lid", "per_gram"), [
    ("30218", 52.81),  # "Pretty Good Cocaine 50e/g" at USD 52.81
    ("14216", 12.5),   # "Platinum Girl Scout Cookies - $12.50 per Gram {****1/4 stars}"
    ("18306", 14.0),   # "Gorilla Glue #4 - $14.00 per Gram {*****5 stars!}"
    ("14214", 12.5),   # "True OG - $12.50 per Gram {****1/4 stars}"
])
def test_a_price_per_gram_and_no_pack_is_one_gram(
        hansa_listings: dict[str, SourceListing], lid: str, per_gram: float) -> None:
    a = assess_row(hansa_listings[lid])
    assert (a.units, a.unit_kind, a.dose_mg) == (1.0, "gram", None), a.parse_note
    assert a.price_per_gram_usd == per_gram
    assert "price per gram" in a.parse_note


@pytest.mark.parametrize(("title", "substance", "units", "kind"), [
    ("Orange Bud 25g [10,00€/g] (Free Shipping)", "cannabis_flower", 25.0, "gram"),
    ("Speed paste 12 EUR per gram, min 5g", "amphetamine", 1.0, "gram"),  # the minimum rule
    ("Xanax $3 per pill", "alprazolam", None, "unknown"),
    ("Cocaine 80 USD a gram", "cocaine", 1.0, "gram"),
])
def test_a_price_per_gram_beside_a_pack_changes_nothing(
        title: str, substance: str, units: float | None, kind: str) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind) == (units, kind), q


# ---- "N Pills = TOTAL mg": the total of the pack, not a pill's dose ----------------

@pytest.mark.parametrize(("lid", "units"), [
    ("9449", 5.0),    # "Halcion [Triazolam] 5 Pills = 1.25MG"
    ("7279", 10.0),   # "... 10 Pills = 2.5MG | 1 Blister Pack"
    ("7280", 20.0),
    ("52122", 30.0),
    ("7281", 40.0),   # "... 40 Pills = 10MG | 4 Blister Pack"
    ("52123", 50.0),
])
def test_pills_equal_to_a_total_dose_are_pills_of_its_share(
        hansa_listings: dict[str, SourceListing], lid: str, units: float) -> None:
    a = assess_row(hansa_listings[lid])
    assert (a.units, a.unit_kind, a.dose_mg) == (units, "pill", 0.25), a.parse_note
    assert "the pack's total" in a.parse_note


@pytest.mark.parametrize(("title", "units", "dose"), [
    ("Xanax 10 tabs = 20mg", 10.0, 2.0),
    ("Xanax 2mg 10 tabs", 10.0, 2.0),         # no "=": the dose is a pill's
    ("Xanax 10 tabs 2mg = 20mg total", 10.0, 2.0),  # the pill's dose stated first
])
def test_only_a_dose_right_after_pills_equal_is_a_total(
        title: str, units: float, dose: float) -> None:
    q = parse_quantity(title, "alprazolam")
    assert (q.units, q.unit_kind, q.dose_mg) == (units, "pill", dose), q


# ---- street count words for pills: "beans", "school buses" ------------------------

@pytest.mark.parametrize(("title", "substance", "units", "dose"), [
    ("100 beans", "mdma", 100.0, None),
    ("Molly 50 beans 120mg", "mdma", 50.0, 120.0),
    ("Xanax bars 10 school buses", "alprazolam", 10.0, None),
    ("25 yellow busses 2mg", "alprazolam", 25.0, 2.0),
])
def test_street_words_for_pills_count_pills(
        title: str, substance: str, units: float, dose: float | None) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind, q.dose_mg) == (units, "pill", dose), q


def test_a_strain_named_beans_is_no_pill_count() -> None:
    """"Magic Beans" is a cannabis strain: its seeds stay seeds."""
    q = parse_quantity("10 Magic Beans seeds feminized", "cannabis_seed")
    assert (q.units, q.unit_kind) == (10.0, "seed"), q


# ---- a cartridge of a named non-cannabis drug is that drug ---------------------------

@pytest.mark.parametrize(("title", "substance"), [
    ("1ml Opium Vape Cart", "other_opioid"),        # cryptonia:16320763
    ("Ketamine vape cartridge 1ml", "ketamine"),
    ("DMT vape cart 1ml", "dmt"),
    # a cannabis word or strain beside the cart: cannabis
    ("1ml THC Vape Cart Opium flavour", "cannabis_concentrate"),
    ("Girl Scout Cookies Vape Cartridge 1g", "cannabis_concentrate"),
    ("1000mg Vape Cartridge SFV OG (35) $20 each", "cannabis_concentrate"),
])
def test_a_cart_word_does_not_beat_a_named_drug(title: str, substance: str) -> None:
    a = assess_listing(title, None, None, None, None)
    assert a.substance == substance, a.evidence


def test_a_cart_beside_hardware_stays_cannabis() -> None:
    """Only a drug named beside the cart takes it: an item word (a battery) does not."""
    a = assess_listing("Vape Cartridge 1g + free vape pen battery", None, None, None, None)
    assert a.substance == "cannabis_concentrate", a.evidence


# ---- fentanyl patches: the content a rate stands for, as an estimate ---------------

def test_a_fentanyl_patch_note_gives_its_estimated_content(
        hansa_listings: dict[str, SourceListing]) -> None:
    """hansa:46641 "100 patch x Fentanyl 100ug": 100 patches of 100 µg/h. dose_mg stays
    the rate (0.1); the note gives the content a Durogesic DTrans patch of that rate
    holds (16.8 mg) and the pack's (1,680 mg), not the 10 mg units x rate would say."""
    units, kind, dose, note = quantity_of(hansa_listings["46641"])
    assert (units, kind, dose) == (100.0, "patch", 0.1), note
    assert "about 16.8 mg of fentanyl a patch" in note
    assert "about 1680 mg in the pack" in note and "an estimate" in note


@pytest.mark.parametrize(("title", "substance", "content"), [
    ("Fentanyl 12mcg/hr patches 10 pcs", "fentanyl", "about 2.1 mg of fentanyl a patch"),
    ("XMAS SALE! 50mcu Durogesic Fentanyl Patch 45$", "fentanyl",
     "about 8.4 mg of fentanyl a patch"),
    ("Fentanyl 37.5ug/h patch x2", "fentanyl", None),   # no such Durogesic strength
    ("4 X 10mg/hr Norspan (Butrans) Patches for 200$", "buprenorphine", None),
])
def test_only_a_fentanyl_patch_of_a_listed_strength_gets_a_content(
        title: str, substance: str, content: str | None) -> None:
    q = parse_quantity(title, substance)
    assert q.unit_kind == "patch" and "delivery rate" in q.note, q
    if content is None:
        assert "of fentanyl a patch" not in q.note
    else:
        assert content in q.note


# ---- a weight restated in mg, and a dose that is another drug's equivalent -----------

def test_a_weight_restated_in_mg_is_no_dose(hansa_listings: dict[str, SourceListing]) -> None:
    """hansa:54330 "(1x) 1/2g (500mg) CO2 Extract 65-9% THC" is 0.5 g of extract, not a
    500 mg pill."""
    units, kind, dose, note = quantity_of(hansa_listings["54330"])
    assert (units, kind, dose) == (0.5, "gram", None), note


@pytest.mark.parametrize(("title", "substance", "units", "kind", "dose"), [
    ("Cocaine 1g (1000mg) uncut", "cocaine", 1.0, "gram", None),
    ("2 x 1g (1000mg) MDMA crystals", "mdma", 2.0, "gram", None),
    ("Xanax 2mg x 10 (0.5g of pills)", "alprazolam", 10.0, "pill", 2.0),  # no restatement
])
def test_only_an_mg_figure_equal_to_a_weight_restates_it(
        title: str, substance: str, units: float, kind: str, dose: float | None) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind, q.dose_mg) == (units, kind, dose), q


@pytest.mark.parametrize(("title", "units", "dose"), [
    # agora:EaSJnEBF: 90 mg is the Adderall the seller says it equals, 15 mg the Desoxyn
    (("x20 Speed Tablets $7/e - 1.5x Strength ~ Eq. 90mg Adderall or 15mg Desoxyn- FE for 5 "
      "Extra Tablets"), 20.0, None),
    ("Ethylphenidate 50mg tabs x10 (equivalent to 20mg Ritalin)", 10.0, 50.0),
    ("Modafinil 200mg x 30 equiv. 400mg armodafinil", 30.0, 200.0),
])
def test_a_dose_after_an_equivalence_word_is_no_dose(
        title: str, units: float, dose: float | None) -> None:
    q = parse_quantity(title, "amphetamine")
    assert (q.units, q.unit_kind, q.dose_mg) == (units, "pill", dose), q


# ---- hostile text: each new rule reads a 100 kB title whole -------------------------

NEW_FLOODS = ["(1) ", "1mg (1) ", "1mg [1]", "(1) $1 each ", "$1 per gram ", "1e/g ",
              "1 pills = 1mg ", "1 pills = ", "= 1mg ", "1 beans ", "1 school buses ",
              "opium vape cart ", "1g (1000mg) ", "eq 1mg ", "1mg eq ",
              "fentanyl patch 100ug/h ", "1mg" + " " * 50 + "(1)", "(" + " " * 50]


@pytest.mark.parametrize("unit", NEW_FLOODS)
def test_a_long_title_of_the_new_forms_is_read_whole(unit: str) -> None:
    """100,000 characters of what each new rule looks for: read to the end with an answer
    a listing can have. How the time grows is ``bench/drugs_hostile.py``'s to measure."""
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    for sub in ("fentanyl", "cannabis_concentrate", "alprazolam", "cocaine"):
        q = parse_quantity(text + " 10mg", sub)
        assert q.units is None or 0 < q.units < 1e12, (unit, sub, q)
        assert q.dose_mg is None or 0 <= q.dose_mg < 1e12, (unit, sub, q)
    a = assess_listing(text, None, ["Drugs"], price_text="USD 10")
    assert a.pack_price_usd == 10.0
