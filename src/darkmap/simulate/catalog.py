"""The simulated product catalogue: drug classes, substances, units, doses, prices, titles.

Each :class:`ProductLine` is one kind of offer a vendor can list (e.g. counterfeit "M30"
pills pressed with fentanyl). Titles are written in market slang from several templates
per line, so a classifier has to read the text, not match one phrase. The ground truth a
line carries (class, substance, counterfeit, fentanyl risk) is what goes into truth.json.

Classes and substances come from darkmap's controlled vocabulary
(``darkmap.assess.taxonomy``); the substance is what the listing is sold as, so a
counterfeit "M30" is ``oxycodone`` with ``counterfeit_pill`` and ``fentanyl_risk`` set
(its real content, fentanyl, is what the risk flag stands for).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "DRUG_CLASSES",
    "LINES",
    "LINES_BY_CLASS",
    "ProductLine",
    "STRAINS",
    "class_weights",
    "render_title",
]

DRUG_CLASSES = ("opioid", "stimulant", "empathogen", "cannabis", "psychedelic",
                "dissociative", "sedative", "other_medicine", "non_drug")

STRAINS = ("Gorilla Glue #4", "OG Kush", "Girl Scout Cookies", "Amnesia Haze", "Blue Dream",
           "Wedding Cake", "Gelato #33", "Zkittlez", "Sour Diesel", "Purple Haze", "AK-47",
           "White Widow", "Runtz", "Jack Herer", "Northern Lights", "Bruce Banner #3")
_PILL_BRANDS = ("Tesla", "Philipp Plein", "Red Bull", "Blue Punisher", "Domino", "Rolex",
                "Supreme", "Tomorrowland", "Heineken", "Pink Instagram")
_ORIGINS = ("colombian", "peruvian", "bolivian")
_BLOTTER_ART = ("Hofmann", "Buddha", "Alex Grey", "Mandala", "Simpsons", "Gold Foil")


@dataclass(frozen=True, slots=True)
class ProductLine:
    """One kind of offer: its ground truth, unit, tiers and title templates."""

    key: str
    drug_class: str
    substance: str | None
    unit_kind: str  # pill, gram, tab, blotter, ml, seed, strip, item
    tiers: tuple[float, ...]  # quantities offered, in unit_kind
    doses: tuple[float, ...]  # dose per unit in mg (empty: not dosed)
    unit_usd: float  # retail price of one unit at the smallest tier
    titles: tuple[str, ...]
    subcategory: str
    counterfeit_pill: bool = False
    fentanyl_risk: float = 0.0  # probability a listing of this line carries fentanyl risk
    weight: float = 1.0  # relative frequency within its class


def _l(*args: object, **kw: object) -> ProductLine:
    return ProductLine(*args, **kw)  # type: ignore[arg-type]


LINES: tuple[ProductLine, ...] = (
    _l("m30", "opioid", "oxycodone", "pill", (10, 25, 50, 100, 250, 500), (30.0,), 14.0,
       ("{n}x M30 blues 30mg", "{n} x Blue M30 Oxy 30mg (pressed)", "M30s x{n} - perc 30 blues",
        "{n} Pressed M30 'Blues' - fast & stealth", "Oxycodone 30mg M box 30 x {n}",
        "{n}x blues M30 - fetty pressed"), "Oxycodone", True, 1.0, 2.0),
    _l("oxy", "opioid", "oxycodone", "pill", (10, 20, 50, 100), (10.0, 20.0, 40.0, 80.0), 22.0,
       ("{n}x Oxycodone {dose}mg (real pharma)", "OxyContin OC {dose}mg x {n}",
        "{n} x Roxicodone {dose}mg - Mallinckrodt", "Oxy {dose}mg pharma grade x{n}"),
       "Oxycodone", False, 0.0, 1.0),
    _l("heroin", "opioid", "heroin", "gram", (0.5, 1, 3.5, 7, 14, 28), (), 90.0,
       ("{n}g #4 heroin - afghan white", "{n} Gram Black Tar Heroin", "{n}g brown heroin afghan",
        "H {n} grams china white", "{n}G HEROIN #3 brown sugar"),
       "Heroin", False, 0.5, 1.5),
    _l("fentanyl", "opioid", "fentanyl", "gram", (0.1, 0.5, 1, 5, 10), (), 350.0,
       ("{n}g Fentanyl HCl 98%", "Fent powder {n}g - pure", "{n}g fetty china white (fent)",
        "FENTANYL {n} gram - lab tested"), "Fentanyl", False, 1.0, 0.8),
    _l("tramadol", "opioid", "tramadol", "pill", (30, 60, 100, 200), (50.0, 100.0, 225.0), 1.5,
       ("{n}x Tramadol {dose}mg", "Tramal {dose}mg x {n} pills", "{n} Tramadol {dose}mg tabs"),
       "Tramadol", False, 0.0, 0.8),
    _l("bupe", "opioid", "buprenorphine", "strip", (5, 10, 20, 50), (8.0,), 18.0,
       ("Suboxone 8mg strips x {n}", "{n}x Subutex 8mg", "{n} x bupe strips 8/2"),
       "Buprenorphine", False, 0.0, 0.5),
    _l("cocaine", "stimulant", "cocaine", "gram", (1, 2, 3.5, 7, 14, 28, 56), (), 85.0,
       ("{n}g {purity}% pure {origin} flake", "{n} Gram Cocaine - fishscale",
        "{n}g {origin} cocaine uncut", "COKE {n}G {purity}% - best quality",
        "{n}g Cocaine HCl {purity}% (lab tested)"), "Cocaine", False, 0.05, 3.0),
    _l("meth", "stimulant", "methamphetamine", "gram", (1, 3.5, 7, 14, 28, 56, 112), (), 40.0,
       ("{n}g Crystal Meth shards", "{n} grams ICE - glass", "Tina {n}g - high quality crystal",
        "{n}g methamphetamine 99% shards"), "Meth", False, 0.02, 2.0),
    _l("speed", "stimulant", "amphetamine", "gram", (5, 10, 25, 50, 100), (), 9.0,
       ("{n}g Speed paste", "Amphetamine sulphate {n}g", "{n}g pep / speed 80%"),
       "Speed", False, 0.0, 1.5),
    _l("adderall", "stimulant", "amphetamine", "pill", (10, 30, 60, 100), (20.0, 30.0), 7.0,
       ("{n}x Adderall {dose}mg IR", "Adderall XR {dose}mg x{n}", "{n} x Addy {dose}mg orange"),
       "Prescription", False, 0.0, 1.0),
    _l("mdma", "empathogen", "mdma", "gram", (1, 5, 10, 25, 50, 100), (), 35.0,
       ("{n}g MDMA crystal 84%", "{n} grams Champagne MDMA", "Molly {n}g - dutch rocks",
        "{n}g MDMA crystals - very strong"), "MDMA", False, 0.0, 1.5),
    _l("xtc", "empathogen", "mdma", "pill", (10, 25, 50, 100, 500), (150.0, 200.0, 250.0, 300.0),
       7.0, ("{n}x {brand} {dose}mg XTC", "{n} pills - {brand} ecstasy {dose}mg MDMA",
             "{brand} pills x{n} ({dose}mg)"), "Ecstasy", False, 0.0, 1.5),
    _l("flower", "cannabis", "cannabis_flower", "gram", (3.5, 7, 14, 28, 112, 224, 448), (), 10.0,
       ("{n}g {strain} (indoor)", "{n}g {strain} AAA+ buds", "{strain} - {n} grams top shelf"),
       "Weed", False, 0.0, 3.0),
    _l("hash", "cannabis", "cannabis_resin", "gram", (5, 10, 25, 50, 100), (), 9.0,
       ("{n}g Moroccan hash", "{n}g dry sift hash - {strain}", "Charas {n}g",
        "{n}g Afghan hash"), "Hash", False, 0.0, 1.0),
    _l("wax", "cannabis", "cannabis_concentrate", "gram", (1, 3.5, 7, 28), (), 30.0,
       ("{n}g {strain} shatter", "{n}g live resin - {strain}", "{strain} wax {n}g"),
       "Concentrates", False, 0.0, 0.7),
    _l("carts", "cannabis", "cannabis_concentrate", "ml", (5, 10, 25, 50), (), 25.0,
       ("{n}x {strain} THC vape carts 1ml", "THC carts 1ml x{n} - {strain}"),
       "Concentrates", False, 0.0, 0.7),
    _l("seeds", "cannabis", "cannabis_seed", "seed", (3, 5, 10, 25), (), 8.0,
       ("{n} feminized seeds - {strain}", "{strain} auto-flower seeds x{n}"),
       "Seeds", False, 0.0, 0.5),
    _l("lsd", "psychedelic", "lsd", "blotter", (5, 10, 25, 50, 100, 500), (0.1, 0.15, 0.2, 0.25),
       8.0, ("{n}x LSD {ug}ug blotters - {art}", "{n} tabs {ug}ug {art}",
             "LSD {ug}µg x{n} blotter"), "LSD", False, 0.0, 1.5),
    _l("shrooms", "psychedelic", "psilocybin", "gram", (3.5, 7, 14, 28, 112), (), 9.0,
       ("{n}g Golden Teacher mushrooms", "{n}g magic mushrooms - B+ cubensis",
        "Psilocybe cubensis {n}g dried"), "Mushrooms", False, 0.0, 1.2),
    _l("dmt", "psychedelic", "dmt", "gram", (0.5, 1, 2, 5), (), 90.0,
       ("{n}g DMT freebase crystal", "N,N-DMT {n} gram"), "DMT", False, 0.0, 0.5),
    _l("2cb", "psychedelic", "2c", "pill", (5, 10, 25, 50), (15.0, 20.0, 25.0), 9.0,
       ("{n}x 2C-B {dose}mg pills", "2cb {dose}mg x {n}"), "2C-B", False, 0.0, 0.4),
    _l("ketamine", "dissociative", "ketamine", "gram", (1, 5, 10, 25, 50, 100), (), 30.0,
       ("{n}g Ketamine shards S-iso", "K {n}g needles", "{n}g ketamine crystal - no rocks",
        "KETAMINE {n}G mirror shards"), "Ketamine", False, 0.0, 1.0),
    _l("pcp", "dissociative", "pcp", "gram", (1, 3.5, 7), (), 60.0,
       ("{n}g PCP angel dust", "{n}g phencyclidine powder"), "PCP", False, 0.0, 0.2),
    _l("bars", "sedative", "alprazolam", "pill", (10, 50, 100, 500, 1000), (2.0,), 3.0,
       ("{n}x Xanax bars 2mg (pressed)", "{n} x Yellow Xanax bars R039", "Green hulk bars 2mg x{n}",
        "{n} White xanax bars S90 3", "{n}x 2mg bars - best press"), "Benzos", True, 0.15, 2.0),
    _l("xanax", "sedative", "alprazolam", "pill", (10, 30, 60, 100), (0.5, 1.0, 2.0), 4.0,
       ("{n}x Alprazolam {dose}mg - Pfizer (blister)", "Xanax {dose}mg pharma x{n}"),
       "Benzos", False, 0.0, 1.0),
    _l("valium", "sedative", "diazepam", "pill", (20, 50, 100, 500), (5.0, 10.0), 1.2,
       ("{n}x Diazepam {dose}mg (Valium)", "Valium Roche {dose}mg x {n}",
        "{n} x blue valium {dose}mg"), "Benzos", False, 0.0, 1.0),
    _l("clonazepam", "sedative", "clonazepam", "pill", (20, 50, 100), (2.0,), 2.0,
       ("{n}x Rivotril 2mg", "Clonazepam 2mg x{n} - roche"), "Benzos", False, 0.0, 0.6),
    _l("ghb", "sedative", "ghb", "ml", (100, 250, 500, 1000), (), 0.4,
       ("GHB {n}ml", "{n}ml G / GHB liquid"), "GHB", False, 0.0, 0.3),
    _l("modafinil", "other_medicine", "modafinil", "pill", (10, 30, 100), (200.0,), 1.5,
       ("{n}x Modafinil 200mg (Modalert)", "Modvigil 200mg x {n}"), "Nootropics", False, 0.0, 1.0),
    _l("viagra", "other_medicine", "erectile", "pill", (10, 20, 50), (100.0,), 2.0,
       ("{n}x Viagra 100mg", "Sildenafil 100mg x{n} (Kamagra)"), "Erectile", False, 0.0, 0.8),
    _l("testo", "other_medicine", "steroid", "ml", (10, 30, 50), (250.0,), 4.0,
       ("Testosterone Enanthate 250mg/ml {n}ml", "Test E 250 - {n}ml"), "Steroids", False,
       0.0, 1.0),
    _l("lyrica", "other_medicine", "other_medicine", "pill", (14, 56, 100), (300.0,), 1.5,
       ("{n}x Lyrica 300mg", "Pregabalin 300mg x {n}"), "Prescription", False, 0.0, 0.6),
    _l("guide", "non_drug", "non_drug", "item", (1,), (), 15.0,
       ("Ultimate stealth shipping guide", "Opsec guide for buyers (PDF)",
        "How to test your pills - reagent guide"), "Guides", False, 0.0, 1.0),
    _l("scales", "non_drug", "non_drug", "item", (1, 2, 5), (), 20.0,
       ("{n}x digital scales 0.01g", "Vacuum sealer + {n} rolls"), "Supplies", False, 0.0, 0.6),
)

LINES_BY_CLASS: dict[str, tuple[ProductLine, ...]] = {
    c: tuple(pl for pl in LINES if pl.drug_class == c) for c in DRUG_CLASSES}

_CLASS_WEIGHTS = {"opioid": 1.6, "stimulant": 2.0, "empathogen": 1.2, "cannabis": 2.6,
                  "psychedelic": 1.0, "dissociative": 0.6, "sedative": 1.2,
                  "other_medicine": 0.6, "non_drug": 0.25}


def class_weights() -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Drug classes and how often a vendor specialises in each."""
    return DRUG_CLASSES, tuple(_CLASS_WEIGHTS[c] for c in DRUG_CLASSES)


def _fmt_qty(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


def render_title(line: ProductLine, units: float, dose: float | None,
                 rng: random.Random, template: int | None = None) -> str:
    """A market-slang title for ``units`` of ``line`` (``template`` picks the phrasing)."""
    tpl = line.titles[template % len(line.titles) if template is not None
                      else rng.randrange(len(line.titles))]
    n = units
    if line.key == "flower" and units in (28, 112, 224, 448) and rng.random() < 0.6:
        name = {28: "1 oz", 112: "QP", 224: "HP", 448: "1 LB"}[int(units)]
        return f"{name} {rng.choice(STRAINS)}" if rng.random() < 0.5 else \
            f"{name} {rng.choice(STRAINS)} - top shelf"
    if line.unit_kind == "ml" and line.key == "carts":
        n = units  # one cart = 1 ml
    return tpl.format(
        n=_fmt_qty(n), dose=_fmt_qty(dose) if dose is not None else "",
        ug=_fmt_qty(round(dose * 1000)) if dose is not None else "",
        purity=rng.choice((80, 85, 88, 90, 92, 95)), origin=rng.choice(_ORIGINS),
        strain=rng.choice(STRAINS), brand=rng.choice(_PILL_BRANDS), art=rng.choice(_BLOTTER_ART))
