"""Rules from the second independent audit of `darkmap assess` (findings 1, 2, 3 and 8):
a test-strip phrase that hid fentanyl, spellings that evaded the fentanyl and counterfeit
flags, "soap bar" hash read as Xanax, syringes read as cannabis. Each rule is checked on
the real listings the audit quoted and on made-up hostile variants of the same writing."""

from __future__ import annotations

import pytest
from conftest import assess_row

from darkmap.assess.listing import assess_listing
from darkmap.evaluate.drugs import SourceListing

DRUGS = ["Drugs"]


def _real(row: SourceListing) -> tuple[str, str, bool, bool]:
    a = assess_row(row)
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


def test_the_real_test_strip_listing_stays_a_test_kit(
        hansa_listings: dict[str, SourceListing]) -> None:
    """hansa:50823 "Fentanyl Test Strip (2x)" sells the strips."""
    assert _real(hansa_listings["50823"])[::3] == ("non_drug", False)


# ---- 2. spellings that evaded the fentanyl and counterfeit flags --------------------

@pytest.mark.parametrize(("title", "substance"), [
    ("F\u0435ntanyl 1g", "fentanyl"),                 # Cyrillic е
    ("\u0424\u0415NTANYL powder 1g".replace("\u0424", "F"), "fentanyl"),  # Cyrillic Е
    ("Fen\u200btanyl 1g", "fentanyl"),                # zero-width space
    ("Fen\u00adta\u2060nyl HCl 1g", "fentanyl"),      # soft hyphen, word joiner
    ("F\u0435nt\u0430nyl\ufeff citrate 500mg", "fentanyl"),
    ("Phentanyl 1g", "fentanyl"), ("Fetty 1g", "fentanyl"),
    ("F e n t a n y l 1g", "fentanyl"),
    ("Etonitazepyne 1g", "nitazene"), ("N-pyrrolidino etonitazene 1g", "nitazene"),
    ("Metonitazepyne 500mg", "nitazene"), ("Protonitazepyne 1g", "nitazene"),
    ("Etonitazepipne 1g", "nitazene"), ("Isotonitazene 1g", "nitazene"),
    ("Metonitazene 1g", "nitazene"), ("Protonitazene 1g", "nitazene"),
])
def test_evasive_spellings_of_fentanyl_and_nitazenes_are_read(title: str, substance: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.drug_class, a.substance, a.fentanyl_risk) == ("opioid", substance, True), a
    assert any(w in a.flag_evidence for w in ("fent", "nitaz", "phent", "fetty")), a.flag_evidence


@pytest.mark.parametrize("title", ["100x blue M30s", "50 M30s pressed", "A215s x 20",
                                   "100 m-30s blues"])
def test_plural_imprints_are_counterfeit_and_fentanyl_risk(title: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.substance, a.counterfeit_pill, a.fentanyl_risk) == ("oxycodone", True, True), a


def test_folded_look_alikes_are_noted_and_the_title_kept() -> None:
    """The folding is a signal for the analyst: the class evidence says so; the stored
    title is the seller's, unchanged."""
    title = "F\u0435ntanyl 1g"
    a = assess_listing(title, None, DRUGS)
    assert "look-alike" in a.flag_evidence, a.flag_evidence
    assert "look-alike" not in assess_listing("Fentanyl 1g", None, DRUGS).flag_evidence
    assert title == "F\u0435ntanyl 1g"


@pytest.mark.parametrize(("title", "substance"), [
    ("Героин 1г", "non_drug"),           # a word wholly in Cyrillic is Russian, not folded
    ("Phentermine 37.5mg 30 pills", "other_stimulant"),
    ("100µg LSD blotter", "lsd"),        # the micro sign is no "m"
    ("Blue Dream 3.5g", "cannabis_flower"),
])
def test_folding_leaves_real_words_alone(title: str, substance: str) -> None:
    a = assess_listing(title, None, ["Drugs"] if substance != "non_drug" else [])
    assert (a.substance, a.fentanyl_risk) == (substance, False), a


# ---- 3. "soap bar" is hash; a bar is Xanax only beside a pill or benzo word -----------

@pytest.mark.parametrize("title", [
    # the six real Dream listings of vendor hammerhome123 (read as alprazolam)
    "1 Gram old school RockySoap Bar", "2 Gram old school Rocky Soap Bar",
    "3.5 Gram old school Rocky Soap Bar", "14 Gram old school Rocky Soap Bar",
    "28 Gram old school Rocky Soap Bar", "56 Gram old school Rocky Soap Bar",
    "Moroccan soapbar 25g", "SOAP BAR hash 100g",
])
def test_soap_bar_is_cannabis_resin(title: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.drug_class, a.substance) == ("cannabis", "cannabis_resin"), a


@pytest.mark.parametrize("title", ["Gold bar 10g", "28 Gram old school bar",
                                   "Silver Bar 1oz"])
def test_a_bar_sold_by_weight_without_pill_words_is_no_xanax(title: str) -> None:
    assert assess_listing(title, None, DRUGS).substance != "alprazolam"


@pytest.mark.parametrize("title", [
    "Custom listing for lucidstep 400 bars", "10x bars 2mg", "Yellow bars x 100",
    "Bars 2mg pfizer 50 pills", "100 green bars", "2mg bars", "Bars - 20 tabs",
])
def test_a_bar_with_a_count_dose_or_pill_word_stays_xanax(title: str) -> None:
    assert assess_listing(title, None, DRUGS).substance == "alprazolam"


# ---- 8. syringes, spores, µg tabs, Persian opium, CBD soap ---------------------------

@pytest.mark.parametrize(("lid", "drug_class", "substance"), [
    ("9685", "non_drug", "non_drug"),       # "Syringe Sterile 2ML with Needle (1 piece)"
    ("9687", "non_drug", "non_drug"),
    ("29009", "non_drug", "non_drug"),      # "BD syringe 10 count"
    ("15203", "psychedelic", "psilocybin"),  # "Golden Teacher 10ml Spore Syringe"
    ("15198", "psychedelic", "psilocybin"),  # "B+ 10ml Spore Syringe"
    ("25655", "psychedelic", "psilocybin"),  # "Tampanensis Atlantis truffle spore vial 10ml"
    ("54347", "psychedelic", "lsd"),         # "Rick and Morty 10 x 120ug tabs"
    ("53006", "psychedelic", "lsd"),         # "3x 111ug Swiss BLiss JoR # 2 - SALE"
    ("55963", "opioid", "other_opioid"),     # "Persian Opium ... for morphine exctraction 2g"
    ("53731", "opioid", "other_opioid"),
    ("39416", "non_drug", "non_drug"),       # "50g of ORGANIC THC &amp; CBD Washing Soap"
    ("38746", "non_drug", "non_drug"),
    # kept: cannabis syringes of a named concentrate, LSD named, NBOMe blotters
    ("34459", "cannabis", "cannabis_concentrate"),  # "Nectar Stick Syringe Tangerine Kush"
    ("20189", "psychedelic", "lsd"),
    ("40237", "psychedelic", "other_psychedelic"),
    ("51629", "psychedelic", "other_psychedelic"),  # "50 Tabs of Bromo DragonFly 250Ug"
    ("2380", "other_medicine", "steroid"),          # "Clenbuterol - 50 tb/ 20 mcg"
])
def test_real_classification_slips(hansa_listings: dict[str, SourceListing], lid: str,
                                   drug_class: str, substance: str) -> None:
    assert _real(hansa_listings[lid])[:2] == (drug_class, substance), hansa_listings[lid]["title"]


@pytest.mark.parametrize(("title", "substance"), [
    ("Penis Envy 10cc spore syringe", "psilocybin"), ("Sterile syringes 1ml x 10", "non_drug"),
    ("RSO syringe 1g", "cannabis_concentrate"), ("THC syringe 1ml", "cannabis_concentrate"),
    ("Smiley 25x 150ug", "lsd"), ("Mystery tabs 200 µg x 10", "lsd"),
    ("Opium for morphine extraction 5g", "other_opioid"), ("Morphine 30mg x 10", "morphine"),
    ("CBD soap 100g", "non_drug"),
])
def test_made_up_variants(title: str, substance: str) -> None:
    assert assess_listing(title, None, DRUGS).substance == substance


@pytest.mark.parametrize(("title", "substance"), [
    # agora:Xbxkyehqv and agora:YVrgiDMux (category Edibles)
    ("ENDOCANN high CBD Cannabidiol capsules 25 mg CBD / < 15 mg THC each (5 capsules)",
     "cannabis_edible"),
    ("ENDOCANN balanced CBD Cannabidiol capsules 12.5 mg CBD / 12.5 mg THC each (5 capsules)",
     "cannabis_edible"),
    ("THC capsules 10mg x 20", "cannabis_edible"),
    ("Blue Dream VapeCart 1g", "cannabis_concentrate"),
])
def test_cannabis_forms_capsules_and_glued_cartridges(title: str, substance: str) -> None:
    assert assess_listing(title, None, DRUGS).substance == substance


def test_a_glued_vape_cartridge_is_a_concentrate(hansa_listings: dict[str, SourceListing]) -> None:
    """hansa:52457 "SUPER SILVER HAZE---- WOW VAPECartridge - SPACE DREAM QUEEN 600mg"."""
    assert _real(hansa_listings["52457"])[:2] == ("cannabis", "cannabis_concentrate")


def test_the_format_characters_folded_are_exactly_unicodes_cf() -> None:
    # the look-alike folding removes Unicode's format characters by one precompiled class
    # (faster than a category test per character): it must be exactly category Cf
    import unicodedata

    from darkmap.assess.lexicon import _FORMAT_CHARS
    cf = {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
    matched = {chr(c) for c in range(0x110000) if _FORMAT_CHARS.fullmatch(chr(c))}
    assert matched == cf
