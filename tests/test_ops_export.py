"""The export read path of the access matrix (issue #13): `darkmap export`, in every
installed format, carries the shared reference data (markets, accounts, listings,
personas) and no operational record, for anyone: a workspace holding cases, buys with a
fentanyl lab result, parcels, seizures and arrests linked to real personas, accounts and
listings exports exactly what it exported before they were recorded, and none of their
ids, provenance, titles, tracking numbers, compartments or agencies appears in any
output. Operational records leave a workspace only through a per-country package, built
for one user from that user's grants (tests/test_ops_access.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import darkmap
from darkmap.cli import main
from darkmap.ops import access, records
from darkmap.ops.records import Arrest, Buy, Case, CryptoItem, LabResult, Parcel, Seizure
from darkmap.plugins import exporters
from darkmap.store import exports
from darkmap.store.workspace import Workspace

MARK = "OPSLEAK"   # in every text field of every operational record


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Path]:
    """The real Hansa pages, linked and assessed."""
    path = tmp_path_factory.mktemp("opsexp") / "ws"
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [data_dir / "pages" / "hansa"])
        darkmap.link(ws)
        darkmap.assess_listings(ws)
    yield path


def _export_all(path: Path, out: Path) -> dict[str, bytes]:
    """Every format's output files (relative name -> bytes), through the CLI."""
    runner = CliRunner()
    got: dict[str, bytes] = {}
    for fmt in sorted(exporters()):
        target = out / fmt
        args = ["export", fmt, "--out", str(target), "-w", str(path)]
        if fmt in ("csv", "parquet"):
            args.append("--all")
        res = runner.invoke(main, args)
        assert res.exit_code == 0, (fmt, res.output)
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*")
                                                          if p.is_file())
        assert files, fmt
        for f in files:
            got[f"{fmt}/{f.relative_to(out).as_posix()}"] = f.read_bytes()
    return got


def _record_operations(path: Path) -> list[str]:
    """Agencies, users and one record of each kind linked to a real persona, account and
    listing; the strings that must not leave through an export."""
    with Workspace.open(path) as ws:
        persona, account = ws.con.execute(
            "SELECT persona_id, account_id FROM persona_members ORDER BY 1 LIMIT 1").fetchone()
        listing = ws.con.execute("SELECT listing_id FROM listings WHERE account_id = ? "
                                 "ORDER BY 1 LIMIT 1", [account]).fetchone()[0]
        access.add_agency(ws.con, "setup", f"{MARK.lower()}-agency", f"{MARK} agency", "DE",
                          f"{MARK} desk")
        access.add_user(ws.con, "setup", f"{MARK.lower()}-admin", f"{MARK.lower()}-agency",
                        "admin")
        by = f"{MARK.lower()}-admin"
        comp = access.add_compartment(ws.con, by, "agency", f"{MARK} own",
                                      compartment_id=f"{MARK.lower()}-comp")
        links = [("persona", persona), ("account", account), ("listing", listing)]
        details: list[records.Detail] = [
            Case(f"{MARK} case title", f"{MARK} summary"),
            Buy(listing, account=account, price=120.0, txid=f"{MARK}txid",
                lab=LabResult("fentanyl", 8.5, 0.9, imprint=f"{MARK} M30")),
            Parcel("DHL", f"{MARK}TRACK1", sender=f"{MARK} sender street 1"),
            Seizure({"fentanyl": 640.0}, pills=10, firearms=2, cash={"USD": (5000.0, None)},
                    crypto=(CryptoItem("BTC", 0.5, "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh",
                                       30000.0),),
                    place=f"{MARK} place"),
            Arrest(f"{MARK} person", place=f"{MARK} town", charges=(f"{MARK} charge",)),
        ]
        ids = [records.add_record(ws, by, d, compartment=comp.compartment_id,
                                  operation=f"{MARK}-op", provenance=f"{MARK} exhibit",
                                  links=links).record_id for d in details]
        assert records.fentanyl_marks(ws, by)   # the marks exist for a reader with grants
    return [MARK, MARK.lower(), *ids]


def test_exports_carry_no_operational_record(real: Path, tmp_path: Path) -> None:
    before = _export_all(real, tmp_path / "before")
    forbidden = _record_operations(real)
    with Workspace.open(real) as ws:
        assert not any(t.startswith("ops_") for t in exports.table_names(ws.con))
    after = _export_all(real, tmp_path / "after")
    assert sorted(after) == sorted(before)
    for name, blob in after.items():
        for word in forbidden:
            assert word.encode() not in blob, (name, word)
    assert [n for n in after if after[n] != before[n]] == []   # byte for byte
