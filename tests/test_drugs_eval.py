"""The drug classifier against hand labels of real Hansa and Agora listings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.errors import BadInputError, NotFoundError
from darkmap.evaluate.drugs import DrugEvalReport, eval_drugs, read_labels, read_listings

LABELS = Path(__file__).resolve().parent / "data" / "labels"


@pytest.fixture(scope="module")
def hansa(data_dir: Path) -> DrugEvalReport:
    return eval_drugs(LABELS / "hansa_sample.csv", data_dir / "listings" / "hansa-2016-12.csv")


@pytest.fixture(scope="module")
def agora(data_dir: Path) -> DrugEvalReport:
    return eval_drugs(LABELS / "agora_sample.csv", data_dir / "listings" / "agora-2014")


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


def test_split_filter_and_held_out_part_exist(data_dir: Path) -> None:
    hansa_csv = data_dir / "listings" / "hansa-2016-12.csv"
    dev = eval_drugs(LABELS / "hansa_sample.csv", hansa_csv, split="dev")
    held = eval_drugs(LABELS / "hansa_sample.csv", hansa_csv, split="holdout")
    rand = eval_drugs(LABELS / "hansa_sample.csv", hansa_csv, split="random")
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


def test_hansa_reader_uses_second_third_and_sixth_columns(data_dir: Path) -> None:
    rows = read_listings(data_dir / "listings" / "hansa-2016-12.csv")
    assert rows["18365"]["title"] == "50gr. FUB-AKB"
    assert rows["18365"]["category_path"] == ["Drugs"]


def test_eval_needs_a_source(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="give the source listings"):
        eval_drugs(LABELS / "hansa_sample.csv")


def test_label_files_that_cannot_be_read(tmp_path: Path, data_dir: Path) -> None:
    hansa_csv = data_dir / "listings" / "hansa-2016-12.csv"
    with pytest.raises(NotFoundError, match="label file not found"):
        eval_drugs(tmp_path / "nope.csv", hansa_csv)
    with pytest.raises(BadInputError, match="cannot read the label file"):
        read_labels(tmp_path)                              # a folder, not a file
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("listing_id,drug_class,substance,counterfeit_pill,fentanyl_risk\n"
                       "18365,cannabis,gr\u00fcn,false,false\n".encode("latin-1"))
    with pytest.raises(BadInputError, match="cannot read the label file"):
        eval_drugs(latin1, hansa_csv)
    short = tmp_path / "short.csv"
    short.write_text("listing_id,drug_class\n18365,cannabis\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="label file needs columns"):
        eval_drugs(short, hansa_csv)


def test_listing_sources_that_are_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="listings file not found"):
        read_listings(tmp_path / "missing.csv")
    with pytest.raises(NotFoundError, match="no CSV listings found"):
        read_listings(tmp_path)                            # an empty folder


def test_cli_prints_an_unreadable_label_file_as_one_line(tmp_path: Path,
                                                         data_dir: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_bytes(b"listing_id,drug_class\n\xff\xfe\x00broken\n")
    res = CliRunner().invoke(main, ["eval", "drugs", "--labels", str(bad), "--listings",
                                    str(data_dir / "listings" / "hansa-2016-12.csv")])
    assert res.exit_code == 1
    assert "cannot read the label file" in res.output and "Traceback" not in res.output


def test_the_text_report_lists_the_mistakes(data_dir: Path) -> None:
    """``--errors N`` listed the mistakes in ``--json`` only (found by a documentation
    audit): the text report lists each with the fields it got wrong, predicted against
    the label, the same as the JSON's."""
    args = ["eval", "drugs", "--labels", str(LABELS / "hansa_random17.csv"), "--listings",
            str(data_dir / "listings" / "hansa-2016-12.csv"), "--errors", "3"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    listed = CliRunner().invoke(main, [*args, "--json"])
    mistakes = json.loads(listed.output)["errors"]
    assert len(mistakes) == 3
    text = res.output.splitlines()
    start = text.index("mistakes, the first 3 (--errors N lists more):")
    for line, m in zip(text[start + 1:], mistakes, strict=True):
        assert line.startswith(f"  {m['listing_id']}  ")
        for f in m["wrong"]:
            assert f" {f} " in line and "(label " in line
    none = CliRunner().invoke(main, [*args[:-1], "0"])
    assert "mistakes" not in none.output


def test_the_api_selects_the_split_by_any_column(tmp_path: Path, data_dir: Path) -> None:
    """``darkmap.evaluate_drugs`` had no ``split_column`` (the CLI's --split-column),
    although the docs say both call the same function (found by a documentation audit)."""
    import darkmap
    listings = data_dir / "listings" / "hansa-2016-12.csv"
    renamed = tmp_path / "labels.csv"
    text = (LABELS / "hansa_sample.csv").read_text(encoding="utf-8")
    renamed.write_text(text.replace(",split,", ",fold,", 1), encoding="utf-8")
    by_split = darkmap.evaluate_drugs(None, LABELS / "hansa_sample.csv", listings,
                                      split="holdout")
    by_fold = darkmap.evaluate_drugs(None, renamed, listings, split="holdout",
                                     split_column="fold")
    assert 0 < by_fold["n"] == by_split["n"] < eval_drugs(renamed, listings)["n"]
