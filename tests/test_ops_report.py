"""`darkmap ops report` (issue #13): the reported figures of the seed operation are
reproduced with the disagreeing sources shown; recorded totals equal a hand computation;
a lab result showing fentanyl marks the listing and its persona."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.ops import access, records, totals
from darkmap.ops.records import Arrest, Buy, CryptoItem, LabResult, Seizure
from darkmap.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    access.add_agency(ws.con, "setup", "fbi", "FBI", "US", "JCODE desk")
    access.add_user(ws.con, "setup", "bob", "fbi", "admin")
    access.add_agency(ws.con, "bob", "bka", "BKA", "DE", "BKA desk")
    access.add_user(ws.con, "bob", "ana", "bka", "admin")
    access.add_compartment(ws.con, "bob", "taskforce", "JCODE", compartment_id="tf")
    access.add_compartment(ws.con, "ana", "agency", "own", compartment_id="de-own")
    return ws


def test_reported_figures_of_spector_with_disagreeing_sources(ws: Workspace,
                                                              data_dir: Path) -> None:
    counts = totals.import_reported(ws, "bob", data_dir / "operations" /
                                    "jcode-operations.csv")
    assert set(counts) == {"SaboTor", "DisrupTor", "Dark HunTor", "SpecTor", "RapTor"}
    rep = totals.operation_report(ws, "bob", "SpecTor")["reported"]
    assert (rep["arrests"]["low"], rep["arrests"]["high"]) == (288, 288)
    us = rep["arrests:US"]
    assert (us["low"], us["high"], us["sources_disagree"]) == (153, 155, True)
    assert {f["source"].split(":")[0] for f in us["figures"]} == {
        "jcode-operations.csv", "some outlets (a note in jcode-operations.csv for SpecTor)"}
    by_country = {m.split(":")[1]: v["low"] for m, v in rep.items()
                  if m.startswith("arrests:")}
    assert by_country == {"US": 153, "GB": 55, "DE": 52, "NL": 10, "AT": 9, "FR": 5,
                          "CH": 2, "PL": 1, "BR": 1}
    assert sum(by_country.values()) == 288
    assert rep["drugs_kg"]["low"] == 850 and rep["fentanyl_kg"]["low"] == 64
    assert rep["firearms"]["low"] == 117 and rep["firearms:US"]["low"] == 104
    assert rep["cash_crypto_usd"]["low"] == 53.4e6 and rep["cash_crypto_eur"]["low"] == 50.8e6
    assert (rep["pills:US"]["low"], rep["pills:US"]["high"]) == (200_000, None)  # "> 200,000"
    assert all("todaytimeslive.com" in f["source"] for f in rep["drugs_kg"]["figures"])
    dis = totals.operation_report(ws, "bob", "DisrupTor")["reported"]["countries"]
    assert (dis["low"], dis["high"], dis["sources_disagree"]) == (6, 7, True)
    assert {f["source"] for f in dis["figures"]} >= {"Rosen", "Washington Examiner"}
    sabo = totals.operation_report(ws, "bob", "SaboTor")["reported"]
    assert (sabo["cash_crypto_usd"]["low"], sabo["cash_crypto_usd"]["high"]) == (7e6, None)
    assert sabo["crypto_usd"]["low"] == 4.5e6 and sabo["cash_usd"]["low"] == 2.48e6


def test_recorded_totals_equal_a_hand_computation(ws: Workspace) -> None:
    op = "Test-Op"
    add = records.add_record
    add(ws, "bob", Seizure({"fentanyl": 2500.0, "heroin": 1000.0}, pills=1200, firearms=3,
                           cash={"USD": (50_000.0, None), "EUR": (10_000.0, 10_850.0)},
                           crypto=(CryptoItem("BTC", 1.5,
                                              "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh",
                                              45_000.0),)),
        compartment="tf", operation=op, provenance="PV 1")
    add(ws, "ana", Seizure({"Fentanyl": 500.0, "cocaine": 750.5}, firearms=1,
                           crypto=(CryptoItem("XMR", 10.0, "", None),)),
        compartment="tf", operation=op, provenance="PV 2")
    add(ws, "ana", Seizure({"heroin": 9999.0}), compartment="de-own", operation=op,
        provenance="not shared")
    add(ws, "ana", Seizure({"heroin": 1.0}), compartment="tf", operation="Other",
        provenance="other op")
    for who, country in (("bob", "US"), ("bob", "US"), ("ana", "DE"), ("ana", "NL")):
        add(ws, who, Arrest("x"), compartment="tf", operation=op, country=country,
            occurred_on=date(2026, 4, 1), provenance="arrest report")
    add(ws, "ana", Arrest("y"), compartment="de-own", operation=op, provenance="own")
    rec = totals.recorded_totals(ws, "bob", op)
    # by hand: bob reads the task-force compartment only
    assert rec["arrests"] == 4
    assert rec["arrests_by_country"] == {"US": 2, "DE": 1, "NL": 1}
    assert rec["countries"] == 3     # where the arrests were made, as a press release counts
    assert rec["drugs_kg_by_substance"] == {"cocaine": 0.7505, "fentanyl": 3.0, "heroin": 1.0}
    assert rec["drugs_kg"] == pytest.approx(2.5 + 1.0 + 0.5 + 0.7505)
    assert rec["fentanyl_kg"] == 3.0
    assert (rec["pills"], rec["firearms"]) == (1200, 4)
    assert rec["cash_usd"] == 60_850.0 and rec["crypto_usd"] == 45_000.0
    assert rec["cash_crypto_usd"] == 105_850.0
    assert rec["items_without_usd_value"] == {"crypto": 1}
    ana = totals.recorded_totals(ws, "ana", op)      # ana reads her own agency's too
    assert ana["arrests"] == 5 and ana["drugs_kg_by_substance"]["heroin"] == 10.999
    ws.close()
    res = CliRunner().invoke(main, ["ops", "report", op, "--json", "--as", "bob", "-w",
                                    str(ws.path)])
    assert res.exit_code == 0 and json.loads(res.output)["recorded"] == rec
    text = CliRunner().invoke(main, ["ops", "report", op, "--as", "bob", "-w", str(ws.path)])
    assert "4 arrests in 3 countries US 2, DE 1, NL 1" in text.output
    assert "fentanyl 3.000 kg" in text.output


def test_cli_report_shows_ranges_and_sources(ws: Workspace, data_dir: Path) -> None:
    ws.close()
    runner = CliRunner()
    csv_path = data_dir / "operations" / "jcode-operations.csv"
    imp = runner.invoke(main, ["ops", "import-reported", str(csv_path), "--as", "ana", "-w",
                               str(ws.path)])
    assert imp.exit_code == 0 and "SpecTor: " in imp.output
    res = runner.invoke(main, ["ops", "report", "SpecTor", "--as", "ana", "-w", str(ws.path)])
    assert res.exit_code == 0
    line = next(x for x in res.output.splitlines() if x.strip().startswith("arrests:US"))
    assert "153-155" in line and "sources disagree" in line
    assert "some outlets say US 155" in res.output


def test_a_fentanyl_lab_result_marks_listing_and_persona(ws: Workspace) -> None:
    ws.con.execute("INSERT INTO listings VALUES ('dream:42', 'dream', '42', 'dream:candy', "
                   "'0', 'test', 'test', NULL)")
    ws.con.execute("INSERT INTO persona_members VALUES ('persona-7', 'dream:candy')")
    buy = records.add_record(ws, "ana", Buy("dream:42", price=120.0,
                                            lab=LabResult("acetylfentanyl", 8.5, 0.93)),
                             compartment="tf", provenance="lab report 2026-118")
    records.add_record(ws, "ana", Buy("dream:43", lab=LabResult("MDMA", 80.0)),
                       compartment="tf", provenance="lab report 2026-119")
    marks = records.fentanyl_marks(ws, "bob")
    assert {(m["ref_kind"], m["ref_id"]) for m in marks} == {
        ("listing", "dream:42"), ("persona", "persona-7")}
    assert all(m["buy"] == buy.record_id and m["substance"] == "acetylfentanyl"
               for m in marks)
    ws.close()
    res = CliRunner().invoke(main, ["ops", "show", buy.record_id, "--as", "bob", "-w",
                                    str(ws.path)])
    assert res.exit_code == 0
    assert "marks persona persona-7 as selling acetylfentanyl" in res.output
    assert "marks listing dream:42" in res.output


def test_countries_recorded_are_set_beside_the_reported_ones(ws: Workspace,
                                                             data_dir: Path) -> None:
    """"288 arrests in nine countries" had no recorded side: the totals counted no
    countries. They count the countries of the arrests the user may read (not of the
    seizures: a press release's countries are where its arrests were), beside the
    countries the reported arrests list."""
    totals.import_reported(ws, "bob", data_dir / "operations" / "jcode-operations.csv")
    for who, country in (("bob", "US"), ("bob", "US"), ("ana", "DE"), ("ana", "AT")):
        records.add_record(ws, who, Arrest("x"), compartment="tf", operation="SpecTor",
                           country=country, provenance="arrest report")
    records.add_record(ws, "ana", Seizure(firearms=1), compartment="tf", operation="SpecTor",
                       country="NL", provenance="PV")
    records.add_record(ws, "ana", Arrest("y"), compartment="de-own", operation="SpecTor",
                       country="FR", provenance="not shared")
    side = totals.operation_report(ws, "bob", "SpecTor")["side_by_side"]
    assert side["countries"] == {"recorded": 3, "reported_low": 9, "reported_high": 9}
    assert totals.recorded_totals(ws, "ana", "SpecTor")["countries"] == 4
    ws.close()
    text = CliRunner().invoke(main, ["ops", "report", "SpecTor", "--as", "bob", "-w",
                                     str(ws.path)]).output
    assert re.search(r"^  countries\s+3\s+9$", text, re.M), text
