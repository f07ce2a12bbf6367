"""Pack size, unit kind and dose from real market title formats."""

from __future__ import annotations

import pytest

from darkmap.assess.quantity import parse_quantity

CASES = [
    # title, substance, units, unit_kind, dose_mg
    ("100x 30mg Roxy-Oxycodone", "oxycodone", 100, "pill", 30),
    ("Oxycodone 30mg (A 215) x 10", "oxycodone", 10, "pill", 30),
    ("Codeine 15 MG (25 Pills)", "codeine", 25, "pill", 15),
    ("45 Pills Codeine 15 MG", "codeine", 45, "pill", 15),
    ("180mg Klonopin Clonazepam Pills 90x 2mg", "clonazepam", 90, "pill", 2),
    ("50x2mg XANAX (GG249 Bars / Alprazolam) TESTED", "alprazolam", 50, "pill", 2),
    ("250 Valium roche(Diazepam 10mg)--Usa to Usa--", "diazepam", 250, "pill", 10),
    ("OxyCodon HCl 20MG - 10x20mg (Blister) - Sandoz", "oxycodone", 10, "pill", 20),
    ("25 x 220ug Alice LSD(Silver)", "lsd", 25, "blotter", 0.22),
    ("★3x80ug★Minjae Lee Blotter★", "lsd", 3, "blotter", 0.08),
    ("10 tabs 150ug", "lsd", 10, "blotter", 0.15),
    ("20 patch x Fentanyl 100ug *** PROMO ***", "fentanyl", 20, "patch", 0.1),
    ("SALE! 10 X 600mcg Actiq Fent Pops", "fentanyl", 10, "piece", 0.6),
    ("1g Furanylfentanyl uncut", "fentanyl_analogue", 1, "gram", None),
    ("3.5g", "cannabis_flower", 3.5, "gram", None),
    ("1 kilo", "cocaine", 1000, "gram", None),
    ("1kg. Fentanyl HCL", "fentanyl", 1000, "gram", None),
    ("500gr. Carfentanil", "fentanyl_analogue", 500, "gram", None),
    ("QP Blue Dream", "cannabis_flower", 113.398, "gram", None),
    ("1/2 oz Purple Haze", "cannabis_flower", 14.17475, "gram", None),
    ("1OZ (28g) Blue Dream (Indoor) AAA+++", "cannabis_flower", 28, "gram", None),
    ("1 lbs 448g NEW A- Lemon Skunk", "cannabis_flower", 448, "gram", None),
    ("250 Mg- FENTANLYL HCL 98% PURE", "fentanyl", 0.25, "gram", None),
    ("CHANGA 300mg 50% DMT", "dmt", 0.3, "gram", None),
    ("2500 XTC pills, Pink 250mg", "mdma", 2500, "pill", 250),
    ("(5) MDMA Pressed pills Red Levi's 260-270mg", "mdma", 5, "pill", 265),
    ("NORTHERN LIGHTS AUTOMATIC FEMINIZED x 5 seeds", "cannabis_seed", 5, "seed", None),
    ("Natural Cannabis seeds,25 seeds.", "cannabis_seed", 25, "seed", None),
    ("THC Suckers. Cinnamon Fireball 100mg - 15x", "cannabis_edible", 15, "piece", 100),
    ("(3.5)Gram Shatter Wax THC", "cannabis_concentrate", 3.5, "gram", None),
    ("(USA to USA) Deca Durabolin 250mg/ml 10ml", "steroid", 10, "ml", 250),
    ("30mg Adderall IR (Single Pill)", "amphetamine", 1, "pill", 30),
    ("Ten 20mg Adderall IR + Two 1mg Xanax", "amphetamine", 10, "pill", 20),
    ("(QTY 10) REAL Adderall 20 mg IR", "amphetamine", 10, "pill", 20),
    ("10000x Pfizer Xanax Replica&#039;s 3.0 mgs", "alprazolam", 10000, "pill", 3),
    ("XTC - 7500x - GREY - HEISENBERGS - 140MG", "mdma", 7500, "pill", 140),
    ("1,000 x Xanax 2mg", "alprazolam", 1000, "pill", 2),
    ("15 - 2mg Pfizer Xanax X/2 Replica Bars", "alprazolam", 15, "pill", 2),
    ("5 Oc 40mg(Oxycodone)--Usa to Usa--", "oxycodone", 5, "pill", 40),
    ("★5 x 100ug ★Blotters Anonymouse", "lsd", 5, "blotter", 0.1),
    ("115*G* TOP SHELF ***BUD***", "cannabis_flower", 115, "gram", None),
    # packs of the count (found by a documentation audit: 20, $113 a pill for $1.13)
    ("Xanax 1mg Pharma 20 tab 100x BOX", "alprazolam", 2000, "pill", 1),
    ("Valium 10mg 20 tabs x 5 boxes", "diazepam", 100, "pill", 10),
    # ... but the count already the total when no "x" says how many packs
    ("Xanax 1mg Pharma 20 tab BOX", "alprazolam", 20, "pill", 1),
    ("Kern Diazepam 10mg x 150 Tablets (Valium) 5 Boxes", "diazepam", 150, "pill", 10),
]


@pytest.mark.parametrize("title,substance,units,kind,dose", CASES)
def test_real_title_formats(title: str, substance: str, units: float, kind: str,
                            dose: float | None) -> None:
    q = parse_quantity(title, substance)
    assert q.unit_kind == kind, (title, q)
    assert q.units == pytest.approx(units, rel=0.01), (title, q)
    if dose is None:
        assert q.dose_mg is None, (title, q)
    else:
        assert q.dose_mg == pytest.approx(dose, rel=0.01), (title, q)
    assert 0 < q.confidence <= 1


def test_dose_without_count_is_marked_not_guessed() -> None:
    q = parse_quantity("Adderall 30mg", "amphetamine")
    assert q.units is None and q.unit_kind == "unknown" and q.dose_mg == 30
    assert "count not stated" in q.note


def test_nothing_parseable_is_unknown_with_a_reason() -> None:
    for title in ("Custom listing for lucid", "", None, "★★★★"):
        q = parse_quantity(title, "alprazolam")
        assert q.unit_kind == "unknown" and q.units is None and q.confidence == 0.0
        assert q.note


def test_ranges_and_tiers_lower_confidence() -> None:
    tiered = parse_quantity("Amnesia 1g/3.5g/7g", "cannabis_flower")
    assert tiered.units == 1 and "tier" in tiered.note and tiered.confidence <= 0.5
    ranged = parse_quantity("10x 260-270mg MDMA pills", "mdma")
    assert ranged.dose_mg == 265 and "range" in ranged.note


def test_hostile_titles_never_crash() -> None:
    for title in ("9" * 5000, "x" * 10000 + "10g", "\x00\x01 10mg \u202e", "1e999g",
                  "99999999999 pills", "-5g", "0 x 0mg", "1/0 oz"):
        q = parse_quantity(title, "cocaine")
        assert q.unit_kind in ("pill", "blotter", "gram", "ml", "seed", "patch", "piece",
                               "unknown")


@pytest.mark.parametrize("title,units", [
    ("500 Pressed M30 'Blues' - fast & stealth", 500),  # a pill word after the count
    ("Oxycodone 30mg M box 30 x 250", 250),  # the imprint's "30", then the count
    ("500x Xanax 2mg x 10", 500),  # a count opening the title keeps its place
    ("M30s x10 - perc 30 blues", 10),
])
def test_pressed_pill_counts(title: str, units: float) -> None:
    q = parse_quantity(title, "oxycodone")
    assert (q.unit_kind, q.units) == ("pill", units), (title, q)
