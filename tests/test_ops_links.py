"""What a record's links reach in the analytical store (documentation audit): a link whose
target the workspace does not hold is warned of by name on every record kind (a persona
a link run replaced names its successor), an address that is no Bitcoin address is
refused, and a case's subjects take in the account and persona of a buy's listing.
On both homes of the records: the workspace (DuckDB) and the team server (PostgreSQL);
the reference data (a generated world, linked) are the workspace's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ops_backends import Backend

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.ops import access, records
from darkmap.ops.records import Arrest, Buy, Case
from darkmap.resolve.judgements import judge
from darkmap.resolve.link import link
from darkmap.store.operations import Space
from darkmap.store.workspace import Workspace
from darkmap.training.synthworld import WorldParams, make_world

ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"   # valid, in no capture of the world
PUBLISHED = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"          # valid, put in the chain data


@pytest.fixture
def world(space: Space, backend: Backend) -> Path:
    """A generated world of 40 vendors, linked, in the workspace; BKA (ana admin, ben
    officer) with its agency compartment ``de``."""
    path = space.path
    assert path is not None
    space.close()
    with Workspace.open(path) as ws:
        make_world(ws, WorldParams(actors=40, seed=5))
        link(ws)
    with backend.open(path) as ops:
        access.add_agency(ops.con, "setup", "bka", "BKA", "DE", "BKA SO41 desk")
        access.add_user(ops.con, "setup", "ana", "bka", "admin")
        access.add_user(ops.con, "ana", "ben", "bka", "officer")
        access.add_compartment(ops.con, "ben", "agency", "de", (), "de")
    return path


def _cli(path: Path, backend: Backend, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "-w", str(path)], env=backend.env)


def _one(path: Path, sql: str) -> str:
    with Workspace.open(path) as ws:
        row = ws.con.execute(sql).fetchone()
    assert row is not None
    return str(row[0])


RECORD = {"case": ["case", "add", "Vendor X"], "parcel": ["parcel", "add"],
          "seizure": ["seizure", "add", "--drug", "heroin:10"],
          "arrest": ["arrest", "add", "J. Doe"], "buy": ["buy", "add", "--listing", "L"]}


def test_every_link_to_nothing_the_workspace_holds_is_warned_of_by_name(
        world: Path, backend: Backend) -> None:
    """`ops arrest add --link account:nosuch:acct --link listing:zz:1 --link
    wallet:99999999 --link persona:p-1` was recorded with exit 0 and no word, and `ops
    show` listed the links: a mistyped attribution pointed at nothing unseen. Each such
    link is now named in a warning on stderr (the record is kept, as a buy on an unknown
    listing is), on every record kind; links the workspace holds pass without a word."""
    account = _one(world, "SELECT account_id FROM persona_members ORDER BY 1 LIMIT 1")
    persona = _one(world, f"SELECT persona_id FROM persona_members WHERE account_id = "
                          f"'{account}'")
    listing = _one(world, f"SELECT listing_id FROM listings WHERE account_id = '{account}' "
                          "ORDER BY 1 LIMIT 1")
    with Workspace.open(world) as ws:   # the generated world's addresses fail the checksum
        ws.con.execute("INSERT INTO btc_address VALUES (1, ?, 'p2wpkh')", [PUBLISHED])
    good = ["--link", f"account:{account}", "--link", f"persona:{persona}",
            "--link", f"listing:{listing}", "--link", f"address:{PUBLISHED}"]
    res = _cli(world, backend, "ops", "arrest", "add", "J. Doe", *good, "--compartment", "de",
               "--provenance", "arrest report 4", "--as", "ben")
    assert res.exit_code == 0 and res.stderr == "", res.output
    bad = {"account:nosuch:acct": "no account of that id in this workspace",
           "listing:zz:1": "no listing of that id in this workspace",
           "wallet:99999999": "no wallet (address cluster) of that id in this workspace's "
                              "chain data",
           f"address:{ADDRESS}": "in neither this workspace's chain data nor any of its "
                                 "captures",
           "persona:p-1": "no persona of that id in this workspace"}
    res = _cli(world, backend, "ops", "arrest", "add", "Z", "--country", "DE",
               *[a for link_ in bad for a in ("--link", link_)], "--compartment", "de",
               "--provenance", "x", "--as", "ben")
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == len(bad), res.stderr
    for line, (link_, absent) in zip(lines, bad.items(), strict=True):
        assert line.startswith(f"warning: link {link_}: {absent}. The arrest is recorded "
                               "with the link as typed: check the id ("), line
    for kind, args in RECORD.items():
        if kind == "buy":
            args = ["buy", "add", "--listing", listing]
        res = _cli(world, backend, "ops", *args, "--link", "persona:p-1", "--compartment",
                   "de", "--provenance", "x", "--as", "ben")
        assert res.exit_code == 0, res.output
        assert res.stderr == (f"warning: link persona:p-1: no persona of that id in this "
                              f"workspace. The {kind} is recorded with the link as typed: "
                              "check the id (`darkmap persona search TEXT` finds a persona "
                              "by handle, key or address)\n"), (kind, res.stderr)


def test_an_address_that_is_no_bitcoin_address_is_refused(world: Path,
                                                          backend: Backend) -> None:
    """`--link address:notanaddress` was recorded; it is refused before anything is
    stored, the library's callers as the CLI's. A valid address is kept in its normal
    form (bech32 in lower case, as the deconfliction selector is)."""
    res = _cli(world, backend, "ops", "arrest", "add", "Z", "--link", "address:notanaddress",
               "--compartment", "de", "--provenance", "x", "--as", "ben")
    assert res.exit_code == 1 and res.stderr == (
        "Error: link address:notanaddress: not a Bitcoin address (1..., 3... or bc1..., its "
        "checksum checked) nor a Monero one; a wallet (address cluster) is linked as "
        "wallet:CLUSTER_ID\n")
    assert "arrest" not in _cli(world, backend, "ops", "show", "--as", "ben").stdout
    with backend.open(world) as ops:
        with pytest.raises(BadInputError, match="not a Bitcoin address"):
            records.add_record(ops, "ben", Arrest("Z"), compartment="de", provenance="x",
                               links=[("address", ADDRESS[:-1] + "x")])
        row = records.add_record(ops, "ben", Arrest("Z"), compartment="de", provenance="x",
                                 links=[("address", ADDRESS.upper())])
        assert records.show_record(ops, "ben", row.record_id).links == (("address", ADDRESS),)
        # a vendor's Monero address is linked too (refused by the first form of the check)
        xmr = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2"
               "VBBEt7f2wfn3RVGQBEP3A")
        row = records.add_record(ops, "ben", Arrest("Z"), compartment="de", provenance="x",
                                 links=[("address", xmr)])
        assert records.show_record(ops, "ben", row.record_id).links == (("address", xmr),)
        with pytest.raises(BadInputError, match="nor a Monero one"):
            records.add_record(ops, "ben", Arrest("Z"), compartment="de", provenance="x",
                               links=[("address", xmr[:-1] + "B")])


def test_a_persona_a_link_run_replaced_names_its_successor(world: Path,
                                                           backend: Backend) -> None:
    """Persona ids follow a persona's smallest account, so a link run that merges two
    personas drops one id. A link to the dropped id names the persona that now holds
    its accounts (followed through later runs), and says to link that one."""
    with Workspace.open(world) as ws:
        pairs = ws.con.execute("SELECT min(account_id), persona_id FROM persona_members "
                               "GROUP BY persona_id ORDER BY 1 LIMIT 2").fetchall()
        members = dict(ws.con.execute("SELECT account_id, persona_id FROM persona_members"
                                      ).fetchall())
        (x, px), (y, py) = pairs
        judge(ws, x, y, "same", author="tester")
        link(ws)
        after = dict(ws.con.execute("SELECT account_id, persona_id FROM persona_members"
                                    ).fetchall())
        link(ws)   # a run that changes nothing keeps the successors named
    gone = next(p for p in (px, py) if p not in after.values())
    now = sorted({after[a] for a, p in members.items() if p == gone})
    instead = (f"link persona:{now[0]} instead if that is the one meant (`darkmap persona "
               f"show {now[0]}`)" if len(now) == 1 else
               "link the one meant instead (`darkmap persona show ID`)")
    res = _cli(world, backend, "ops", "arrest", "add", "J. Doe", "--link", f"persona:{gone}",
               "--compartment", "de", "--provenance", "x", "--as", "ben")
    assert res.exit_code == 0, res.output
    assert res.stderr == (f"warning: link persona:{gone}: a link run replaced that persona; "
                          f"its accounts are now in {', '.join(now)}. The arrest is recorded "
                          f"with the link as typed: {instead}\n")


def test_a_buys_listing_brings_its_account_and_persona_into_the_case(
        world: Path, backend: Backend, tmp_path: Path) -> None:
    """`darkmap export gexf --case CASE` of a case holding a controlled buy answered
    "case ... links no persona or account: nothing to export", though `ops buy add` had
    printed the account and persona the listing leads to. A linked listing now brings
    them into the case's subjects."""
    account = _one(world, "SELECT account_id FROM persona_members ORDER BY 1 LIMIT 1")
    persona = _one(world, f"SELECT persona_id FROM persona_members WHERE account_id = "
                          f"'{account}'")
    listing = _one(world, f"SELECT listing_id FROM listings WHERE account_id = '{account}' "
                          "ORDER BY 1 LIMIT 1")
    with backend.open(world) as ops:
        case = records.add_record(ops, "ben", Case("Vendor X"), compartment="de",
                                  provenance="file 12").record_id
        records.add_record(ops, "ben", Buy(listing), case_id=case, provenance="lab 7")
        assert records.case_subjects(ops, "ben", case) == sorted([account, persona])
        assert records.buy_reaches(ops, Buy(listing)) == (
            f"listing {listing} (account {account}, persona {persona})")
    # on the team server too: `export --case` read the cases of the workspace alone
    out = tmp_path / "case.gexf"
    res = _cli(world, backend, "export", "gexf", "-o", str(out), "--case", case, "--as", "ben")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["written"] and account in out.read_text(encoding="utf-8")
