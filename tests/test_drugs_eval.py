"""The drug classifier against hand labels of real Hansa and Agora listings."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmap.evaluate.drugs import eval_drugs, read_listings

from conftest import DATA

LABELS = Path(__file__).resolve().parent / "data" / "labels"
LISTINGS = DATA / "listings"


@pytest.fixture(scope="module")
def hansa() -> dict:
    return eval_drugs(LABELS / "hansa_sample.csv", LISTINGS / "hansa-2016-12.csv")


@pytest.fixture(scope="module")
def agora() -> dict:
    return eval_drugs(LABELS / "agora_sample.csv", LISTINGS / "agora-2014")


def test_every_label_finds_its_listing(hansa: dict, agora: dict) -> None:
    assert hansa["missing"] == [] and agora["missing"] == []
    assert hansa["n"] >= 380 and agora["n"] >= 100


def test_drug_class_accuracy_target(hansa: dict, agora: dict) -> None:
    assert hansa["drug_class"]["accuracy"] >= 0.95
    assert agora["drug_class"]["accuracy"] >= 0.95


def test_flag_precision_and_recall_targets(hansa: dict, agora: dict) -> None:
    for flag in ("counterfeit_pill", "fentanyl_risk"):
        tp = hansa[flag]["tp"] + agora[flag]["tp"]
        fp = hansa[flag]["fp"] + agora[flag]["fp"]
        fn = hansa[flag]["fn"] + agora[flag]["fn"]
        assert tp + fn >= 15, f"too few {flag} positives to measure"
        assert tp / (tp + fp) >= 0.9, flag
        assert tp / (tp + fn) >= 0.9, flag


def test_substance_and_quantities_are_mostly_right(hansa: dict) -> None:
    assert hansa["substance"]["accuracy"] >= 0.9
    assert hansa["units"]["exact_match"] >= 0.85
    assert hansa["dose_mg"]["exact_match"] >= 0.85


def test_split_filter_and_held_out_part_exist() -> None:
    dev = eval_drugs(LABELS / "hansa_sample.csv", LISTINGS / "hansa-2016-12.csv", split="dev")
    held = eval_drugs(LABELS / "hansa_sample.csv", LISTINGS / "hansa-2016-12.csv",
                      split="holdout")
    rand = eval_drugs(LABELS / "hansa_sample.csv", LISTINGS / "hansa-2016-12.csv",
                      split="random")
    assert dev["n"] > 0 and held["n"] > 0 and rand["n"] == 70
    assert dev["n"] + held["n"] + rand["n"] == 387


def test_generic_label_and_listing_files(tmp_path: Path) -> None:
    listings = tmp_path / "l.csv"
    listings.write_text("listing_id,title,category\n"
                        "a1,100x M30 pressed blues,Drugs\n"
                        "a2,Netflix lifetime account,Digital Goods\n", encoding="utf-8")
    labels = tmp_path / "lab.csv"
    labels.write_text("listing_id,drug_class,substance,counterfeit_pill,fentanyl_risk,units,"
                      "unit_kind,dose_mg\n"
                      "a1,opioid,oxycodone,true,true,100,pill,\n"
                      "a2,non_drug,non_drug,false,false,,unknown,\n"
                      "zz,opioid,heroin,false,false,,,\n", encoding="utf-8")
    r = eval_drugs(labels, listings)
    assert r["n"] == 2 and r["missing"] == ["zz"]
    assert r["drug_class"]["accuracy"] == 1.0
    assert r["counterfeit_pill"]["recall"] == 1.0 and r["fentanyl_risk"]["precision"] == 1.0


def test_hansa_reader_uses_second_third_and_sixth_columns() -> None:
    rows = read_listings(LISTINGS / "hansa-2016-12.csv")
    assert rows["18365"]["title"] == "50gr. FUB-AKB"
    assert rows["18365"]["category_path"] == ["Drugs"]


def test_eval_needs_a_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        eval_drugs(LABELS / "hansa_sample.csv")
