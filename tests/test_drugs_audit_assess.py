"""Rules from the independent audit of `darkmap assess` (sections 5, 6, 7 and 9): how
sellers write pack sizes, names, negations and placeholder prices. Each rule is checked on
the real titles the audit quoted and on made-up variants of the same writing."""

from __future__ import annotations

import pytest

from darkmap.assess.listing import assess_listing
from darkmap.assess.quantity import parse_quantity

DRUGS = ["Drugs"]


# ---- 1. pack sizes ------------------------------------------------------------------

@pytest.mark.parametrize(("title", "substance", "units", "kind", "dose"), [
    # "2K's" is a pill brand; "1k", "5k+" are thousands of pills, not kilos
    ("5 Green 2K&#039;s 240Mg", "mdma", 5, "pill", 240.0),
    ("100 Green 2K's 240MG", "mdma", 100, "pill", 240.0),
    ("20 Blue 3K’s 200mg", "mdma", 20, "pill", 200.0),
    ("High Quality Alprazolam 2mg Yellow/White Xanax Bars (Bulk Listing 5k+)", "alprazolam",
     5000, "pill", 2.0),
    ("1k Xanax bars 2mg", "alprazolam", 1000, "pill", 2.0),
    ("2k valium tabs", "diazepam", 2000, "pill", None),
    # a count, a pill name, then its dose: pills, not milligrams of powder
    ("DISCOUNT!!!★★★ 250 ORANGE OWLS  240+ MG  ★★★ Best Dutch Quality", "mdma", 250, "pill",
     240.0),
    ("500 THREE WISE MONKEYS  260+ MG", "mdma", 500, "pill", 260.0),
    ("Promo 40 Purple Blue Punisher 220mg", "mdma", 40, "pill", 220.0),
    # a number after a currency sign or before "each"/"per" is a price, never a count
    ("Roxicodone 30 mg.Instant release.Only $25 each pill.", "oxycodone", None, "pill", 30.0),
    ("Xanax 2mg - 3 per bar - 100 bars", "alprazolam", 100, "pill", 2.0),
    # "1st" is an ordinal, not one piece ("st" = Stück)
    ("4GR PURE HEROIN ROCKS! 1ST HAND HQ", "heroin", 4, "gram", None),
    ("CRITICAL KUSH (7g) FREE 1st CLASS DELIVERY", "cannabis_flower", 7, "gram", None),
    ("21st century haze 3.5g", "cannabis_flower", 3.5, "gram", None),
    ("Xanax 2mg 11st", "alprazolam", 11, "pill", 2.0),  # eleven Stück stays a count
    # thousands written with a space or a dot
    ("Xanax 2mg x 1 000", "alprazolam", 1000, "pill", 2.0),
    ("Cocaine 1.000g kilo", "cocaine", 1000, "gram", None),
    ("Speed 2.500g wholesale", "amphetamine", 2.5, "gram", None),  # no kilo: 2.5 g
])
def test_pack_sizes(title: str, substance: str, units: float | None, kind: str,
                    dose: float | None) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind, q.dose_mg) == (units, kind, dose), q


@pytest.mark.parametrize(("title", "substance", "units", "kind", "note"), [
    # a count next to the weight is a count of packs; elsewhere it counts something else
    ("Cocaine 10 x 1g", "cocaine", 10, "gram", "summed"),
    ("Cocaine 1g x 10", "cocaine", 10, "gram", "summed"),
    ("50Grams Uncut Amphetamine speed 94% pure 35$ a gram x50", "amphetamine", 50, "gram",
     "weight taken"),
    ("5g famous PINK COCAINE WASHED 10G Chloroform, 3x Acetone Washed", "cocaine", 5, "gram",
     "weight taken"),
    ("(2)Gram Shatter Wax THC", "cannabis_concentrate", 2, "gram", "weight taken"),
    # pills of one product and a weight of another: not one pack
    ("★MASTERCOMBO★ 1000x Red Defqon.1 &amp; 10gr Pure Cocaine Flakes", "cocaine", None,
     "unknown", "different products"),
    ("COMBO 100x Tesla and 5g speed", "mdma", None, "unknown", "different products"),
    # weights joined by "+" are one bundle; a free extra is not part of the price
    ("††[Xmas Promo 3]†† 1G jelly + 2G Moon + 10G primero", "cannabis_resin", 13, "gram",
     "summed"),
    ("✪ 5G PURE&UNCUT COCAINE +90% ✪ +GET 0.5G FOR FREE!", "cocaine", 5, "gram", ""),
    # a minimum order is not the pack: the price is per unit of it
    ("★OG KUSH★ (Indoor) (Free Tracking!!) (Top Shelf A++) [Min 4oz]", "cannabis_flower",
     28.3495, "gram", "minimum order"),
    ("GELATO Light Deprivation | AAA+ | Fresh | 4 OZ Minimum", "cannabis_flower", 28.3495,
     "gram", "minimum order"),
    ("Amnesia haze, minimum order 10g", "cannabis_flower", 1, "gram", "minimum order"),
    ("Amnesia haze 1oz (min. 4oz for wholesale)", "cannabis_flower", 28.3495, "gram", ""),
])
def test_counts_weights_and_minimums(title: str, substance: str, units: float | None,
                                     kind: str, note: str) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind) == (units, kind), q
    assert note in q.note


@pytest.mark.parametrize(("title", "substance", "dose"), [
    # a THC content is a dose, not grams of flower
    ("High Tea (Chai) by Evergreen Herbal 10mg THC", "cannabis_flower", 10.0),
    ("KOROVA MINT DIP - 250MG THC UNRIVALED POTENCY", "cannabis_flower", 250.0),
    ("Stixx AM - Watermelon - 50mg CBD", "cannabis_flower", 50.0),
    # "100% REAL" is a sales claim, not a purity: Adderall stays a tablet strength
    ("Adderall XR 5 get 1 FREE x 30mg SHIRE BRAND100% REAL", "amphetamine", 30.0),
])
def test_doses_that_are_not_powder(title: str, substance: str, dose: float) -> None:
    q = parse_quantity(title, substance)
    assert (q.units, q.unit_kind != "gram", q.dose_mg) == (None, True, dose), q


@pytest.mark.parametrize("title", [
    "COMBO PACK OF TRAMADOL 100MG AND RITALIN 10 MG",  # two products' strengths
    "WANGA .500mg 60% DMT (free express shipping)",  # no powder sold by the fraction of a mg
])
def test_no_pack_rather_than_a_wrong_one(title: str) -> None:
    sub = "mixed" if "COMBO" in title else "dmt"
    q = parse_quantity(title, sub)
    assert (q.units, q.unit_kind, q.dose_mg) == (None, "unknown", None), q


def test_a_number_after_a_pill_word_is_not_a_count() -> None:
    assert parse_quantity("CHILL PILL 4 EVERYONE 500MG lamotrigine", "other_medicine").units \
        is None


def test_korova_bar_number_is_a_name() -> None:
    q = parse_quantity("Korova 5150 Bar 500mg Unrivaled Potency", "cannabis_edible")
    assert (q.units, q.dose_mg) == (None, 500.0)
    assert parse_quantity("Xanax 2mg 100 bars", "alprazolam").units == 100


# ---- hostile text: every new rule stays linear ------------------------------------

_FLOODS = ["1 ", "1st ", "min ", "min 1", "1.000g ", "kilo 1.000g ", "x 1 000 ", "1 aa bb ",
           "2k's ", "5k+ ", "$1 each pill ", "1g + ", "1g+", "1g & 1x ", "10mg thc ",
           "99mg 99 ", "1 " + " " * 50, "fent-free ", "f3nt4nyl ", "not sell fakes ",
           "bar chocolate ", "+ crack ", "seeds tobacco ", "w0uld n0t "]


@pytest.mark.parametrize("unit", _FLOODS)
def test_long_hostile_titles_are_read_whole(unit: str) -> None:
    """A title of 20,000 characters built from what each new rule looks for is read to
    the end, with an answer a listing can have (no error, no absurd pack). How the time
    grows with the length (linear, not quadratic) is measured by
    ``bench/drugs_hostile.py``: timing never decides a test."""
    text = (unit * (20_000 // len(unit) + 1))[:20_000]
    for sub in ("mdma", "cannabis_edible", "mixed", "cocaine"):
        q = parse_quantity(text + " 10mg", sub)
        assert q.units is None or 0 < q.units < 1e12, (unit, sub, q)
    a = assess_listing(text, text, DRUGS, price_text="USD 0.01")
    assert a.pack_price_usd is None or a.pack_price_usd >= 0


# ---- 2. classification ---------------------------------------------------------------

DISCO = ("1G OF NEW BATCH 96% PURITY TESTED, THE BEST COCAINE WE AND YOU HAVE SEEN SINCE 80s' "
         "DISCO SHIT")


@pytest.mark.parametrize(("title", "category", "substance"), [
    # a gold bar in a precious-metals category is no Xanax bar
    ("1oz PAMP Veriscan Counterfeit Gold Bar", ["Jewels & Gold", "Gold"], "non_drug"),
    ("1 troy oz silver bullion bar", ["Precious Metals"], "non_drug"),
    # "bar" beside a cannabis word, or at a strength no alprazolam tablet has
    ("Korova 5150 Bar 500mg Unrivaled Potency", DRUGS, "cannabis_edible"),
    ("300mg THC Colorado BAR!!!", DRUGS, "cannabis_edible"),
    ("Dark chocolate THC bar 100mg", DRUGS, "cannabis_edible"),
    ("5 SILVER BARS DUTCH PILLS 200-220 MG", DRUGS, "mdma"),
    ("10 Xanax bars 2mg", DRUGS, "alprazolam"),  # still a Xanax bar
    ("Green hulk bars 4mg x 20", DRUGS, "alprazolam"),
    # a software crack: "Product + Crack", no drug named beside it
    ("Cinema 4D + Crack", [], "non_drug"),
    ("Avira Phantom VPN Pro 2.2.3 + Crack", [], "non_drug"),
    ("Photoshop CS6 with crack and keygen", [], "non_drug"),
    ("Crack rocks 1g", DRUGS, "crack"),  # the drug
    ("Cocaine + Crack combo 2g", DRUGS, "mixed"),
    # "shit" is weak hash slang; a named drug wins
    (DISCO, DRUGS, "cocaine"),
    ("Moroccan shit 10g", DRUGS, "cannabis_resin"),
    # ecstasy pills sold by a multiplied count and a 60-350 mg dose, without a category
    ("500X MYSTERBIRD Â€800 220mg", [], "mdma"),
    ('20 x "EVIL EYE" 265mg', [], "mdma"),
    ("1g Incredible Bulk", [], "cannabis_flower"),
    # seeds are the named plant's seeds
    ("1g Cebil/Yopo Seeds", DRUGS, "dmt"),
    ("10000 seeds tobacco havana very rare", DRUGS, "non_drug"),
    ("Kush seeds feminized x5", DRUGS, "cannabis_seed"),
    ("10 seeds", ["Drugs", "Cannabis", "Seeds"], "cannabis_seed"),
])
def test_classes_on_real_and_made_up_titles(title: str, category: list[str],
                                            substance: str) -> None:
    assert assess_listing(title, None, category).substance == substance, title


def test_a_joined_free_means_without() -> None:
    a = assess_listing("Fent-free Heroin 1g", None, DRUGS)
    assert (a.substance, a.fentanyl_risk) == ("heroin", False)
    assert assess_listing("Heroin #4, fentanyl-free", None, DRUGS).substance == "heroin"
    # "free" after a comma or a double dash is free shipping, not "without"
    assert assess_listing("7G K6 MARROC HASH,  free uk shipping", None, DRUGS).substance \
        == "cannabis_resin"
    assert assess_listing("10 gram Standard Meph--Free Uk to Uk Postage--", None,
                          DRUGS).substance == "cathinone"


@pytest.mark.parametrize(("title", "substance"), [
    ("F3ntanyl 1g", "fentanyl"), ("fent4nyl powder 5g", "fentanyl"),
    ("X4n4x bars 2mg x10", "alprazolam"), ("c0caine 1g", "cocaine"),
    ("0xycodone 30mg x 10", "oxycodone")])
def test_leetspeak_is_read(title: str, substance: str) -> None:
    assert assess_listing(title, None, DRUGS).substance == substance


# ---- 3. flags --------------------------------------------------------------------------

GENUINE = "These are genuine pharma we would not sell fakes. Shipped from the UK."


@pytest.mark.parametrize("description", [
    GENUINE, "We never sell pressed pills, only pharmacy stock.",
    "we don't do replicas", "Our vendor would not ever sell counterfeits"])
def test_a_negated_press_word_is_a_claim_of_genuineness(description: str) -> None:
    a = assess_listing("10 x 3mg Pharma Etizolam [Etinax-3 CR] UK NDD", description, DRUGS)
    assert (a.substance, a.counterfeit_pill) == ("etizolam", False)


def test_press_words_without_negation_still_flag() -> None:
    assert assess_listing("10 x 3mg Etizolam", "these are pressed, not pharma", DRUGS) \
        .counterfeit_pill
    assert assess_listing("Xanax 2mg bars x 10", "fake bars but strong", DRUGS).counterfeit_pill


@pytest.mark.parametrize(("title", "cf", "fent"), [
    ("Blue M box 30 pressed x50", True, True),  # the documented imprint
    ("M box 30 x 100", True, True),
    ("F3ntanyl 1g", False, True),
    ("Fent-free Heroin 1g", False, False),
    ("Fentanyl-free #4 heroin 1g", False, False),
])
def test_fentanyl_and_imprint_spellings(title: str, cf: bool, fent: bool) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.counterfeit_pill, a.fentanyl_risk) == (cf, fent), a


# ---- 4. placeholder prices ------------------------------------------------------------

@pytest.mark.parametrize(("title", "price"), [
    ("HUGE FLASH SALE ENDS 01/10 5 - 100 LSD BLOTTERS REAL 200ug", "USD 0.01"),
    ("***NEW*** 0.5G -7G Bolivian Cocaine Flakes FREE Shipping", "USD 0.01"),
    ("MDMA - Champagne - 88%", "USD 0.00"),
    ("Cocaine 28g", "USD 2.00"),  # $0.07 a gram
    ("Xanax 2mg x 1000", "USD 10"),  # a cent a pill
])
def test_a_price_below_the_floor_is_no_price(title: str, price: str) -> None:
    a = assess_listing(title, None, DRUGS, price_text=price)
    assert (a.pack_price_usd, a.unit_price_usd, a.price_per_gram_usd) == (None, None, None)
    assert "floor" in a.parse_note


@pytest.mark.parametrize(("title", "price", "usd"), [
    ("Xanax 0.25mg x 1", "USD 0.60", 0.6),  # one cheap pill is a real price
    ("600-700 Morning Glory Seeds - LSA", "USD 12", 12.0),
    ("Shake 1oz", "USD 20", 20.0),
    ("Netflix account", "USD 0.01", 0.01),  # not a drug: no drug floor
])
def test_cheap_real_prices_are_kept(title: str, price: str, usd: float) -> None:
    assert assess_listing(title, None, DRUGS, price_text=price).pack_price_usd == usd
