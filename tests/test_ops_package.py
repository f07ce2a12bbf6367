"""Per-country packages (issue #13): the personas attributed to the country with the
evidence, their accounts and listings with the drug assessment, the operational records
the acting user may read, fentanyl marks and contacts; nothing the user may not read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.export import ftm_subgraph
from darkmap.ops import access, records
from darkmap.ops.package import build_package
from darkmap.ops.records import Arrest, Buy, LabResult
from darkmap.store.workspace import Workspace


def _reference(ws: Workspace) -> None:
    """Two personas of the analytical store, one attributed to DE, one to US."""
    for pid, acc, lid, cc, substance in (("persona-de", "dream:berlin", "dream:1", "DE",
                                          "fentanyl"),
                                         ("persona-us", "dream:ohio", "dream:2", "US",
                                          "cocaine")):
        ws.con.execute("INSERT INTO personas (persona_id, label, n_accounts, created_at) "
                       "VALUES (?, ?, 1, now())", [pid, acc])
        ws.con.execute("INSERT INTO persona_members VALUES (?, ?)", [pid, acc])
        ws.con.execute("INSERT INTO listings VALUES (?, 'dream', ?, ?, 'cafe01', 'pages', "
                       "'test', NULL)", [lid, lid[-1], acc])
        ws.con.execute(
            "INSERT INTO listing_assessments (listing_id, account_id, drug_class, substance, "
            "class_confidence, counterfeit_pill, fentanyl_risk, unit_kind, parse_confidence,"
            " method, assessed_at) VALUES (?, ?, 'opioid', ?, 0.9, false, ?, 'gram', 0.9, "
            "'rules', now())", [lid, acc, substance, substance == "fentanyl"])
        ws.con.execute(
            "INSERT INTO jurisdictions VALUES ('persona', ?, ?, 0.8, ?, 'ships_from', now())",
            [pid, cc, json.dumps([{"kind": "ships_from", "value": cc, "weight": 1}])])


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    _reference(ws)
    access.add_agency(ws.con, "setup", "bka", "BKA", "DE", "BKA desk")
    access.add_user(ws.con, "setup", "ana", "bka", "admin")
    access.add_agency(ws.con, "ana", "fbi", "FBI", "US", "JCODE desk")
    access.add_user(ws.con, "ana", "bob", "fbi", "admin")
    access.add_compartment(ws.con, "ana", "agency", "bka", compartment_id="de")
    access.add_compartment(ws.con, "bob", "agency", "fbi", compartment_id="us")
    return ws


def test_the_package_holds_the_country_as_the_user_sees_it(ws: Workspace,
                                                           tmp_path: Path) -> None:
    buy = records.add_record(ws, "ana", Buy("dream:1", lab=LabResult("fentanyl", 9.0)),
                             compartment="de", provenance="lab 12")
    us_arrest = records.add_record(ws, "bob", Arrest("Ohio man"), compartment="us",
                                   country="US", provenance="FBI 302",
                                   links=[("persona", "persona-us")])
    de_by_fbi = records.add_record(ws, "bob", Arrest("courier"), compartment="us",
                                   country="DE", provenance="FBI 303")
    counts = build_package(ws, "ana", "de", tmp_path / "pkg-ana")
    bundle = json.loads((tmp_path / "pkg-ana" / "package.json").read_text(encoding="utf-8"))
    # no chain data here, and no FtM writer handed in: no wallets, no entities file
    assert counts == {"personas": 1, "records": 1, "fentanyl_marks": 2, "wallets": 0,
                      "cashouts": 0, "seized_wallets": 0, "entities": 0}
    assert not (tmp_path / "pkg-ana" / "entities.ftm.json").exists()
    assert [p["persona"] for p in bundle["personas"]] == ["persona-de"]
    listing = bundle["personas"][0]["accounts"][0]["listings"][0]
    assert listing["listing"] == "dream:1" and listing["fentanyl_risk"] is True
    assert listing["provenance"] == {"capture_sha256": "cafe01", "source": "pages"}
    assert bundle["personas"][0]["jurisdiction"]["evidence"][0]["kind"] == "ships_from"
    assert [r["record_id"] for r in bundle["records"]] == [buy.record_id]
    assert {a["agency_id"] for a in bundle["contacts"]} == {"bka", "fbi"}
    page = (tmp_path / "pkg-ana" / "package.html").read_text(encoding="utf-8")
    for text in (us_arrest.record_id, de_by_fbi.record_id, "persona-us", "Ohio"):
        assert text not in page and text not in json.dumps(bundle)
    # the FBI user sees the same reference data, its own DE arrest, not BKA's buy
    build_package(ws, "bob", "DE", tmp_path / "pkg-bob")
    theirs = json.loads((tmp_path / "pkg-bob" / "package.json").read_text(encoding="utf-8"))
    assert [r["record_id"] for r in theirs["records"]] == [de_by_fbi.record_id]
    assert theirs["fentanyl_marks"] == [] and buy.record_id not in json.dumps(theirs)
    with pytest.raises(BadInputError):
        build_package(ws, "bob", "DE", tmp_path / "pkg-bob")      # not an empty folder


def test_cli_package(ws: Workspace, tmp_path: Path) -> None:
    ws.close()
    res = CliRunner().invoke(main, ["package", "--country", "US", "--out",
                                    str(tmp_path / "p"), "--as", "bob", "-w", str(ws.path)])
    assert res.exit_code == 0 and "1 personas" in res.output
    assert (tmp_path / "p" / "package.html").is_file()
    # the CLI hands the FtM exporter in: the persona's subgraph as stock entities
    rows = [json.loads(x) for x in (tmp_path / "p" / "entities.ftm.json").read_text(
        encoding="utf-8").splitlines()]
    bundle = json.loads((tmp_path / "p" / "package.json").read_text(encoding="utf-8"))
    assert bundle["entities"]["file"] == "entities.ftm.json"
    assert sum(bundle["entities"]["counts"].values()) == len(rows)
    assert "persona-de" not in json.dumps(rows) and "dream:berlin" not in json.dumps(rows)


def test_cli_package_takes_o_as_report_and_export_do(ws: Workspace, tmp_path: Path) -> None:
    """`package -o DIR` as `report -o` and `export -o` (it took only --out)."""
    ws.close()
    res = CliRunner().invoke(main, ["package", "--country", "DE", "-o", str(tmp_path / "p"),
                                    "--as", "ana", "-w", str(ws.path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "package.json").is_file()


def test_a_dropped_persona_leaves_the_ftm_file_out_and_says_why(ws: Workspace,
                                                                tmp_path: Path) -> None:
    """A jurisdiction of a persona a later link run dropped: the package is still built,
    without the entities file, and says why (no whole-workspace export instead)."""
    ws.con.execute("INSERT INTO jurisdictions VALUES ('persona', 'persona-gone', 'DE', 0.7, "
                   "'[]', 'ships_from', now())")
    counts = build_package(ws, "ana", "DE", tmp_path / "p", ftm_subgraph)
    bundle = json.loads((tmp_path / "p" / "package.json").read_text(encoding="utf-8"))
    assert counts["personas"] == 2 and counts["entities"] == 0
    assert bundle["entities"] is None and not (tmp_path / "p" / "entities.ftm.json").exists()
    assert any("persona-gone" in x for x in bundle["not_included"])
