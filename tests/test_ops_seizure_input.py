"""What `darkmap ops seizure add` and the other record commands take, found by an audit of
the operational records: repeated cash lots, operation and substance names, crypto
addresses, empty seizures. Input handling only, so on the workspace (DuckDB); the
access rules and both stores are tested elsewhere (tests/test_ops_access.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.ops import access, records, totals
from darkmap.ops.records import Seizure, cash_lots
from darkmap.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with the FBI (bob admin, fay officer) and a task-force compartment
    ``tf``; closed, for the CLI."""
    with Workspace.init(tmp_path / "ws") as w:
        access.add_agency(w.con, "setup", "fbi", "FBI", "US", "JCODE desk")
        access.add_user(w.con, "setup", "bob", "fbi", "admin")
        access.add_user(w.con, "bob", "fay", "fbi", "officer")
        access.add_compartment(w.con, "bob", "taskforce", "JCODE", compartment_id="tf")
    return tmp_path / "ws"


def _cli(ws: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "-w", str(ws)], env={"DARKMAP_OPS_SERVER": None})


def _seizure(ws: Path, *items: str, operation: str = "SpecTor") -> Result:
    return _cli(ws, "ops", "seizure", "add", *items, "--operation", operation,
                "--compartment", "tf", "--provenance", "PV 1", "--as", "fay")


def test_repeated_cash_lots_of_one_currency_are_summed(ws: Path) -> None:
    """A second ``--cash USD:500`` replaced the first ``USD:1000`` (and ``eur`` the
    ``EUR`` lot): the audit's operation reported USD 554 for USD 1,662 seized."""
    res = _seizure(ws, "--cash", "USD:1000", "--cash", "USD:500", "--cash", "EUR:100@108",
                   "--cash", "eur:50@54")
    assert res.exit_code == 0, res.output
    rid = res.stdout.split()[1]
    rep = json.loads(_cli(ws, "ops", "report", "SpecTor", "--json", "--as", "bob").stdout)
    assert rep["recorded"]["cash_usd"] == 1662.0
    assert rep["recorded"]["items_without_usd_value"] == {}
    shown = json.loads(_cli(ws, "ops", "show", rid, "--json", "--as", "bob").stdout)
    assert shown["data"]["cash"] == {"USD": [1500.0, 1500.0], "EUR": [150.0, 162.0]}


def test_cash_lots_sum_values_only_when_every_lot_has_one() -> None:
    """Lots without a value stay without one (counted apart in the totals, never
    guessed); some lots valued and some not is refused: a partial sum would pass for
    the value of them all."""
    assert cash_lots([("EUR", 10.0, None), (" eur ", 5.0, None)]) == {"EUR": (15.0, None)}
    assert cash_lots([("USD", 10.0, None), ("usd", 5.0, 5.0)]) == {"USD": (15.0, 15.0)}
    with pytest.raises(BadInputError, match=r"cash EUR: 1 of 2 lots have a USD value"):
        cash_lots([("EUR", 10.0, 11.0), ("EUR", 5.0, None)])


def test_a_partly_valued_currency_is_refused_and_nothing_stored(ws: Path) -> None:
    res = _seizure(ws, "--cash", "EUR:100@108", "--cash", "EUR:50")
    assert res.exit_code == 1
    assert "give every EUR lot its value (CUR:AMOUNT@USD) or none" in res.stderr
    with Workspace.open(ws) as w:
        assert records.read_records(w, "bob") == []


def test_library_cash_mapping_still_totals(tmp_path: Path) -> None:
    """Library callers give :attr:`Seizure.cash` as a mapping, as before."""
    with Workspace.init(tmp_path / "w") as w:
        access.add_agency(w.con, "setup", "fbi", "FBI", "US", "JCODE desk")
        access.add_user(w.con, "setup", "bob", "fbi", "admin")
        access.add_compartment(w.con, "bob", "agency", "own", compartment_id="own")
        records.add_record(w, "bob", Seizure(cash=cash_lots([("USD", 1.0, None),
                                                             ("USD", 2.0, None)])),
                           compartment="own", operation="Op", provenance="PV")
        assert totals.recorded_totals(w, "bob", "Op")["cash_usd"] == 3.0


def test_operation_names_are_stripped_and_a_near_spelling_is_refused(ws: Path) -> None:
    """``"SpecTor "`` and ``Spector`` were operations of their own beside SpecTor, and
    each was totalled apart. Spaces around and between the words are dropped; a name that
    differs only in case or spacing from one the user knows of is refused, naming it."""
    assert _seizure(ws, "--firearms", "1", operation="SpecTor").exit_code == 0
    spaced = _seizure(ws, "--firearms", "2", operation="  SpecTor ")
    assert spaced.exit_code == 0, spaced.output
    for near in ("Spector", "spec tor", "SPECTOR "):
        res = _seizure(ws, "--firearms", "4", operation=near)
        assert res.exit_code == 1, res.output
        assert (f"operation {' '.join(near.split())!r}: fay knows of 'SpecTor', which "
                "differs only in case or spacing; give that name") in res.stderr
    rep = json.loads(_cli(ws, "ops", "report", " SpecTor", "--json", "--as", "bob").stdout)
    assert rep["operation"] == "SpecTor" and rep["recorded"]["firearms"] == 3
    listed = json.loads(_cli(ws, "ops", "show", "--operation", "SpecTor ", "--json",
                             "--as", "bob").stdout)
    assert len(listed) == 2 and {r["operation"] for r in listed} == {"SpecTor"}
    empty = _seizure(ws, "--firearms", "1", operation="  ")
    assert empty.exit_code == 1 and "the name is empty" in empty.stderr


def test_a_reported_operation_is_a_spelling_to_follow(ws: Path, data_dir: Path) -> None:
    """The imported figures name operations too: ``Dark Huntor`` is refused for
    ``Dark HunTor``, and ``darkhuntor`` as well."""
    imp = _cli(ws, "ops", "import-reported", str(data_dir / "operations" /
                                                 "jcode-operations.csv"), "--as", "bob")
    assert imp.exit_code == 0, imp.output
    for near in ("Dark Huntor", "darkhuntor"):
        res = _seizure(ws, "--firearms", "1", operation=near)
        assert res.exit_code == 1 and "knows of 'Dark HunTor'" in res.stderr


def test_an_operation_other_compartments_name_is_not_looked_at(tmp_path: Path) -> None:
    """Only what the user knows of is compared: an operation named only in a
    compartment the user may not read neither refuses nor is named."""
    with Workspace.init(tmp_path / "w") as w:
        access.add_agency(w.con, "setup", "fbi", "FBI", "US", "JCODE desk")
        access.add_user(w.con, "setup", "bob", "fbi", "admin")
        access.add_agency(w.con, "bob", "bka", "BKA", "DE", "BKA desk")
        access.add_user(w.con, "bob", "ana", "bka", "admin")
        access.add_compartment(w.con, "bob", "agency", "own", compartment_id="fbi-own")
        access.add_compartment(w.con, "ana", "agency", "own", compartment_id="bka-own")
        records.add_record(w, "bob", Seizure(firearms=1), compartment="fbi-own",
                           operation="Hidden Op", provenance="PV")
        row = records.add_record(w, "ana", Seizure(firearms=1), compartment="bka-own",
                                 operation="hidden op", provenance="PV")
        assert row.operation == "hidden op"


def test_substances_are_stripped_and_named_as_the_assessment_names_them(ws: Path) -> None:
    """``--drug "fentanyl :5"`` made a substance ``"fentanyl "``, totalled apart from
    fentanyl (and not counted as fentanyl kg). A name is lower-case with one space
    between words, and the assessment's own substance name where it is one written
    otherwise; a synonym is kept as written (no guess at what "M30" held)."""
    res = _seizure(ws, "--drug", "fentanyl :5", "--drug", " Fentanyl:5", "--drug",
                   "Cannabis  Resin:100", "--drug", "MDMA:3", "--drug", "M30:7",
                   "--drug", "4-ANPP:1")
    assert res.exit_code == 0, res.output
    rec = json.loads(_cli(ws, "ops", "report", "SpecTor", "--json",
                          "--as", "bob").stdout)["recorded"]
    assert rec["drugs_kg_by_substance"] == {"4-anpp": 0.001, "cannabis_resin": 0.1,
                                            "fentanyl": 0.01, "m30": 0.007, "mdma": 0.003}
    assert rec["fentanyl_kg"] == 0.01
    blank = _seizure(ws, "--drug", " :5")
    assert blank.exit_code == 1 and "no substance named" in blank.stderr


def test_lab_result_substances_are_named_as_seizures_name_them(ws: Path) -> None:
    """A lab result kept its substance as typed (" Fentanyl " beside the seizures'
    "fentanyl", "MDMA" beside "mdma"): it is named as a seizure's drug is, so the
    record, its fentanyl mark and the seizures' totals use one name."""
    res = _cli(ws, "ops", "buy", "add", "--listing", "dream:1", "--substance", " Fentanyl ",
               "--purity", "9", "--compartment", "tf", "--provenance", "lab 1", "--as", "fay")
    assert res.exit_code == 0, res.output
    rid = res.stdout.split()[1]
    shown = json.loads(_cli(ws, "ops", "show", rid, "--json", "--as", "bob").stdout)
    assert shown["data"]["lab"]["substance"] == "fentanyl"
    assert records.LabResult("Cannabis  Resin").substance == "cannabis_resin"
    assert records.LabResult("M30").substance == "m30"  # a synonym kept as written
    blank = _cli(ws, "ops", "buy", "add", "--listing", "dream:1", "--substance", "  ",
                 "--compartment", "tf", "--provenance", "lab 2", "--as", "fay")
    assert blank.exit_code == 1 and "lab result: no substance named" in blank.stderr


BTC = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
XMR = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
       "wfn3RVGQBEP3A")


@pytest.mark.parametrize("crypto", [
    "BTC:1:notanaddress@100", f"BTC:1:{BTC}:extra@5", f"BTC:1:{BTC[:-1]}x@5",
    f"XMR:2:{BTC}@5", f"BTC:1:{XMR}@5", f"xmr:2:{XMR[:-1]}B", "ETH:1:0x12 34@5",
    "BTC:1:cluster:12ab"])
def test_a_seized_address_is_checked_as_a_linked_one(ws: Path, crypto: str) -> None:
    """``--crypto BTC:1:notanaddress@100`` and an address with ``:extra`` after it were
    stored as written. A Bitcoin lot's address is checked as ``--link address:`` checks
    one (or is a wallet, ``cluster:ID``), a Monero lot's as a Monero address; the seizure
    is refused and nothing stored."""
    res = _seizure(ws, "--crypto", crypto)
    assert res.exit_code == 1, res.output
    assert res.stderr.startswith("Error: crypto ") and " address " in res.stderr
    with Workspace.open(ws) as w:
        assert records.read_records(w, "bob") == []


def test_valid_seized_addresses_are_kept_in_their_normal_form(ws: Path) -> None:
    bech = "BC1QXY2KGDYGJRSQTZQ2N0YRF2493P83KKFJHX0WLH"
    res = _seizure(ws, "--crypto", f"btc:1:{bech}@100", "--crypto", f"BTC:2:{BTC}",
                   "--crypto", f"XMR:3:{XMR}@50", "--crypto", "BTC:4:cluster:17",
                   "--crypto", "ETH:5:0x52908400098527886E0F7030069857D2E4169EE7")
    assert res.exit_code == 0, res.output
    shown = json.loads(_cli(ws, "ops", "show", res.stdout.split()[1], "--json",
                            "--as", "bob").stdout)
    assert [(c["asset"], c["address"]) for c in shown["data"]["crypto"]] == [
        ("BTC", bech.lower()), ("BTC", BTC), ("XMR", XMR), ("BTC", "cluster:17"),
        ("ETH", "0x52908400098527886E0F7030069857D2E4169EE7")]


@pytest.mark.parametrize("items", [(), ("--drug", "heroin:0"), ("--pills", "0"),
                                   ("--cash", "USD:0", "--crypto", "BTC:0")])
def test_a_seizure_of_nothing_is_refused(ws: Path, items: tuple[str, ...]) -> None:
    """A seizure without an item was stored and counted in the operation's seizures."""
    res = _seizure(ws, *items)
    assert res.exit_code == 1, res.output
    assert "a seizure of nothing: give what was seized (--drug, --pills, --firearms, " \
           "--cash or --crypto, an amount above 0)" in res.stderr
    with Workspace.open(ws) as w:
        assert records.read_records(w, "bob") == []


def test_repeated_pills_and_firearms_add_up(ws: Path) -> None:
    """``--pills 10 --pills 20`` kept 20 (click kept the last value of a single option),
    while ``--drug`` and ``--cash`` lots add up (audit ops, finding 9): they add up now;
    a sum past the largest count is refused, nothing stored."""
    res = _seizure(ws, "--drug", "fentanyl:100", "--pills", "10", "--pills", "20",
                   "--firearms", "1", "--firearms", "2")
    assert res.exit_code == 0, res.output
    rep = json.loads(_cli(ws, "ops", "report", "SpecTor", "--json", "--as", "bob").stdout)
    assert (rep["recorded"]["pills"], rep["recorded"]["firearms"]) == (30, 3), rep
    big = _seizure(ws, "--pills", str(10**12), "--pills", "1")
    assert big.exit_code != 0 and "--pills" in big.output, big.output
    rep = json.loads(_cli(ws, "ops", "report", "SpecTor", "--json", "--as", "bob").stdout)
    assert rep["recorded"]["pills"] == 30
