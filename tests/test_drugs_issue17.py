"""Issue #17 drug fixes on real listing titles (Hansa 2016-12): pressed-pill slang,
form words against substances, negations, NBOMe sold as LSD, non-drug items in a Drugs
category, and quantities (thousands separators, prices per ounce, masses in mg, STUKS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmap.assess.listing import assess_listing
from darkmap.assess.stage import assess_workspace
from darkmap.collect.ingest import ingest
from darkmap.errors import BadInputError
from darkmap.evaluate.drugs import eval_drugs, normal_kind, read_labels
from darkmap.store.workspace import Workspace

DRUGS = ["Drugs"]


@pytest.mark.parametrize("title", [
    "1000 2 mg Hulks!", "100 XANAX BAR 2 MG DOUBLE DOSED (4 MG )",
    "Yellow Buses Xanax Bars / Alprazolam 3.5mg 50 Pills",
    '50 x "CAPTAGON" (FENETHYLLINE) A++', "MIX(XANAX,Yellow Busses, HULK) 175 pills"])
def test_pressed_pill_slang_raises_counterfeit(title: str) -> None:
    assert assess_listing(title, None, DRUGS).counterfeit_pill


def test_genuine_alprazolam_is_not_counterfeit() -> None:
    assert not assess_listing("10 Xanax 2mg Pfizer", None, DRUGS).counterfeit_pill


@pytest.mark.parametrize(("title", "cls", "substance"), [
    ("50x Temazepam Aurobindo 20mg – Jelly Eggs – ★ 76 EUR ★", "sedative",
     "other_benzodiazepine"),
    ("28g Golden Buddha Special No Seed Weed £100", "cannabis", "cannabis_flower"),
    ("LSD 25i-NBOMe blotters 10x", "psychedelic", "other_psychedelic"),
    ("5 Empty Vape Cartridges", "non_drug", "non_drug"),
    ("Acrylic Powder Grinder", "non_drug", "non_drug"),
    ("TS (10 packs x 20 cigarettes)", "non_drug", "non_drug"),
    ("[PAID] Shipping costs on other listing [Next Day]", "non_drug", "non_drug"),
    ("2G jelly + 2G WAX + Lean THC syrup", "cannabis", "cannabis_concentrate"),
    ("★100 XTC PILLS★Golden Bars 200MG", "empathogen", "mdma"),
    ("1g (Shatter) Big Bud by Tommy Chong 51.7% THC", "cannabis", "cannabis_concentrate")])
def test_classes(title: str, cls: str, substance: str) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.drug_class, a.substance) == (cls, substance)


@pytest.mark.parametrize(("title", "units", "kind", "dose"), [
    ("Xanax 2mg x10,000", 10000, "pill", 2.0),
    ('Gelato aka "Larry Bird" - $165 Oz', None, "unknown", None),
    ("1000 Milligram Mescaline HCl", 1.0, "gram", None),
    ("XTC ORANGE MINIONS 220MG MDMA 150 STUKS FREE SHIPPING", 150, "pill", 220.0),
    ("Diazepam 10 mg - Valium - 30 tablets in blister by Teva", 30, "pill", 10.0),
    ("250 x XTC Pill Green Tripadvisor 220-240 MG MDMA", 250, "pill", 230.0),
    ("Anonymous face Pills x5 - 180mg MDMA", 5, "pill", 180.0)])
def test_quantities(title: str, units: float | None, kind: str, dose: float | None) -> None:
    a = assess_listing(title, None, DRUGS)
    assert (a.units, a.unit_kind, a.dose_mg) == (units, kind, dose)


def test_unit_kinds_compared_by_normalised_kind() -> None:
    assert [normal_kind(k) for k in ("Tablets", "grams", " Pill ", "", "blotter")] == [
        "pill", "gram", "pill", "unknown", "blotter"]


def test_split_by_a_named_column(tmp_path: Path) -> None:
    p = tmp_path / "labels.csv"
    p.write_text("listing_id,drug_class,substance,counterfeit_pill,fentanyl_risk,part\n"
                 "1,cannabis,cannabis_flower,false,false,random\n"
                 "2,opioid,heroin,false,false,keyword\n", encoding="utf-8")
    assert [r["listing_id"] for r in read_labels(p, "random", "part")] == ["1"]
    with pytest.raises(BadInputError, match="no column 'split'"):
        read_labels(p, "random")


def test_eval_scores_what_is_stored(tmp_path: Path, data_dir: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    try:
        ingest(ws, [data_dir / "pages" / "apollon" / "listings"])
        assess_workspace(ws)
        lid, cls, sub = ws.con.execute(
            "SELECT listing_id, drug_class, substance FROM listing_assessments "
            "WHERE listing_id = 'apollon:83163'").fetchone()
        assert (cls, sub) == ("psychedelic", "lsd")  # "105ug LSD tabs - GammaGoblin"
        labels = tmp_path / "labels.csv"
        labels.write_text("listing_id,drug_class,substance,counterfeit_pill,fentanyl_risk\n"
                          "83163,psychedelic,lsd,false,false\n", encoding="utf-8")
        first = eval_drugs(labels, workspace=ws)
        assert first["scored"] == "stored assessments"
        assert first["drug_class"]["accuracy"] == 1.0
        # a stored row that differs from what the assessor would say now is what is scored
        ws.con.execute("UPDATE listing_assessments SET drug_class = 'opioid', "
                       "substance = 'heroin' WHERE listing_id = ?", [lid])
        second = eval_drugs(labels, workspace=ws)
        assert second["drug_class"]["accuracy"] == 0.0
        assert second["errors"][0]["predicted"]["substance"] == "heroin"
    finally:
        ws.close()


def test_new_random_labels_meet_the_goals(data_dir: Path) -> None:
    """147 Drug-category Hansa listings drawn at random (seed 1717) and labelled by hand:
    the goal figures of issue #17 on both parts (holdout17 was scored once, at the end)."""
    labels = Path(__file__).parent / "data" / "labels" / "hansa_random17.csv"
    for split in ("random17", "holdout17"):
        r = eval_drugs(labels, data_dir / "listings" / "hansa-2016-12.csv", split=split)
        assert r["n"] >= 50 and not r["missing"]
        assert r["drug_class"]["accuracy"] >= 0.97, split
        assert r["units"]["exact_match"] >= 0.97, split
        assert r["fentanyl_risk"]["fp"] == 0 and r["fentanyl_risk"]["fn"] == 0
