"""Classification, slang, non-drug items, flags and their evidence."""

from __future__ import annotations

import json

import pytest

from darkmap.assess.classify import classify
from darkmap.assess.flags import assess_flags
from darkmap.assess.listing import assess_listing
from darkmap.assess.taxonomy import SUBSTANCE_CLASS

SLANG = [
    ("100x M30 blues", "oxycodone"), ("china white 1g", "fentanyl"),
    ("1g ice shards", "methamphetamine"),
    ("tina 3.5g", "methamphetamine"), ("molly 1g", "mdma"), ("10 XTC pills", "mdma"),
    ("2mg bars x 10", "alprazolam"), ("charlie 1g", "cocaine"), ("5g koks", "cocaine"),
    ("speed 10g", "amphetamine"), ("pep 5g", "amphetamine"), ("hasch 10g", "cannabis_resin"),
    ("OG Kush 7g", "cannabis_flower"), ("Gorilla Glue #4 14g", "cannabis_flower"),
    ("Amnesia Haze 10g", "cannabis_flower"), ("cocaína 1g", "cocaine"), ("10 Teile XTC", "mdma"),
    ("Wiet 5g", "cannabis_flower"), ("1g Kristall", "methamphetamine"),
    ("50gr. FUB-AKB", "synthetic_cannabinoid"), ("5gr. 4F-PHP", "cathinone"),
    ("Subutex 8mg x 5", "buprenorphine"), ("2C-B 10 pills", "2c"),
    ("4-AcO-DMT 1g", "other_psychedelic"),
    ("Isotonitazene 1g", "nitazene"), ("1g Carfentanil", "fentanyl_analogue"),
    ("Golden Teacher shrooms 28g", "psilocybin"), ("S-isomer Ketamine 10 gram", "ketamine"),
    ("GBL 500ml", "ghb"), ("Zolpidem 10mg x 30", "zdrug"), ("Etizolam pellets 1mg", "etizolam"),
    ("Winstrol 20mg x 100", "steroid"), ("Kamagra oral jelly", "erectile"),
    ("Modalert 200", "modafinil"),
]


@pytest.mark.parametrize("title,substance", SLANG)
def test_market_slang(title: str, substance: str) -> None:
    c = classify(title)
    assert c.substance == substance, (title, c)
    assert c.drug_class == SUBSTANCE_CLASS[substance]
    assert c.words, "a decision must keep the words that raised it"


@pytest.mark.parametrize("title,category", [
    ("Uncle Fester's Secrets of Meth Manufacture LATEST 2016 Edition", "Guides & Tutorials"),
    ("The Great BIG Narcotics Cookbook", "Digital Goods"),
    ("Rolex - Submariner Yellow Gold [Replica]", "Counterfeits"),
    ("Netflix premium account lifetime", None), ("iPhone 7 128GB unlocked", None),
    ("Fentanyl Test Strip (2x)", "Drugs"), ("Hermes earrings Replica-h22", "Jewellery"),
    ("(CRACK) ProxyFire: get your SOCKS/Proxies", "Digital Goods"),
])
def test_non_drug_items(title: str, category: str | None) -> None:
    a = assess_listing(title, None, [category] if category else [])
    assert a.drug_class == "non_drug" and a.substance == "non_drug"
    assert not a.counterfeit_pill and not a.fentanyl_risk


def test_free_extras_do_not_decide_the_substance() -> None:
    assert classify("Adderall XR 5 x 30mg + 5 FREE XANAX").substance == "amphetamine"
    assert classify("1g U-47700 uncut (Similar to heroin)").substance == "other_opioid"


def test_mix_listings_take_the_most_harmful_class() -> None:
    c = classify("COMBO PACK OF TRAMADOL 100MG AND RITALIN 10 MG")
    assert c.substance == "mixed" and c.drug_class == "opioid"


def test_counterfeit_pill_flag_and_evidence() -> None:
    for title in ("100x Pfizer Xanax Replica's 3.0 mgs", "Oxycodone 30mg (A 215) x 10",
                  "green hulks 4mg xanax 250 bars", "100 x 3mg XANAX 2 Pfizer Press",
                  "M30 blues x 100"):
        a = assess_listing(title, None, ["Drugs"])
        ev = json.loads(a.flag_evidence)
        assert a.counterfeit_pill and ev["counterfeit_pill"], title
    for title in ("4x 180 MG, MDMA ,ROLEX LOGO, HARD PRESSED",
                  "Xanax 2mg bars by(Pfizer) 200 pills",
                  "DON'T BUY FAKE CRAP! 5x US PHARMA 10mg IR D-AMPHETAMINE",
                  "3.5G OF HIGH QUALITY PRESSED HASH", "100mg Alprazolam Powder - 99.3% Purity"):
        assert not assess_listing(title, None, ["Drugs"]).counterfeit_pill, title


def test_fentanyl_risk_flag() -> None:
    for title in ("Furanyl-Fentanyl 100g", "1x Fentanyl Dermal Patch 100ug/h",
                  "5000 mg Acetyle Fentanyl", "Oxycodone 30mg (A 215) x 50", "1g Isotonitazene"):
        a = assess_listing(title, None, ["Drugs"])
        assert a.fentanyl_risk and json.loads(a.flag_evidence)["fentanyl_risk"], title
    for title in ("Fentanyl test strips x10", "#4 heroin fentanyl free 1g", "U-47700 5g",
                  "Oxycontin 40mg Mundipharma x 10"):
        assert not assess_listing(title, None, ["Drugs"]).fentanyl_risk, title
    assert not assess_flags("Fentanyl", None, "non_drug").fentanyl_risk


def test_hostile_text_never_crashes() -> None:
    for title in (None, "", "\x00" * 50, "💊" * 2000, "&#x0;&amp;&lt;script&gt;", "a" * 100_000,
                  12345):
        a = assess_listing(title, "\ud800 broken" if title else None, [None, "", "Drugs"])
        assert a.drug_class in {"opioid", "stimulant", "empathogen", "cannabis", "psychedelic",
                                "dissociative", "sedative", "other_medicine", "non_drug"}
