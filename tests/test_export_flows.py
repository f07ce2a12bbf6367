"""The money trail in the exports (issue #15): the Bitcoin transfers touching the wallets
(clusters) of the exported addresses are stock FtM ``Payment`` entities between
``CryptoWallet`` entities, ``paid`` edges of the GEXF/GraphML graph, ``paid``
relationships of the STIX bundle and ``cryptocurrency-transaction`` objects of the MISP
event; the txids and amounts are checked against the chain tables of the demo workspace
(simulated flows written as Bitcoin Core blk files and parsed like real blocks), and a
persona or country export carries only the transfers touching its own wallets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner
from export_workspaces import built, open_ro
from pymisp import MISPEvent
from stix2validator import validate_file

from darkmap.cli import main
from darkmap.export.ftm import FtmExporter
from darkmap.export.graph import GexfExporter
from darkmap.export.misp import MispExporter
from darkmap.export.options import ExportOptions
from darkmap.export.stix import StixExporter
from darkmap.ops import access, records
from darkmap.ops.records import Case
from darkmap.store.transfers import chain_wallets
from darkmap.store.workspace import Workspace

FTM = str(Path(sys.executable).with_name("ftm"))


def _wallet_of(ws: Workspace) -> dict[str, int]:
    """Exported BTC address -> its cluster (else address id), read straight from the store."""
    return {a: int(w) for a, w in ws.con.execute(
        "SELECT a.address, coalesce(c.cluster_id, a.address_id) FROM identifiers i "
        "JOIN btc_address a ON a.address = i.value LEFT JOIN btc_clusters c USING (address_id)"
        " WHERE i.kind = 'btc_address'").fetchall()}


def _expected_txids(ws: Workspace, wallets: set[int]) -> set[str]:
    """Transactions in which a wallet of ``wallets`` pays another wallet or is paid by one
    (change back to the payer is no transfer)."""
    if not wallets:
        return set()
    rows = ws.con.execute(
        "WITH w AS (SELECT address_id, coalesce(c.cluster_id, address_id) AS wallet "
        " FROM btc_address LEFT JOIN btc_clusters c USING (address_id)), "
        "i AS (SELECT DISTINCT tx_id, wallet FROM btc_txin JOIN w USING (address_id)), "
        "o AS (SELECT DISTINCT tx_id, wallet FROM btc_txout JOIN w USING (address_id)) "
        "SELECT DISTINCT t.txid FROM i JOIN o ON i.tx_id = o.tx_id AND i.wallet <> o.wallet "
        "JOIN btc_tx t ON t.tx_id = i.tx_id "
        "WHERE i.wallet IN (SELECT unnest(?)) OR o.wallet IN (SELECT unnest(?))",
        [sorted(wallets), sorted(wallets)]).fetchall()
    return {r[0] for r in rows}


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _summary(entity: dict[str, Any]) -> dict[str, str]:
    lines = entity["properties"]["summary"][0].splitlines()
    return dict(line.split(": ", 1) for line in lines)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return built("demo", tmp_path_factory, data_dir)


def test_payments_are_the_stores_transfers(demo: Path, tmp_path: Path) -> None:
    ws = open_ro(demo)
    try:
        out = tmp_path / "e.ftm.json"
        counts = FtmExporter().export(ws, out)
        wallet_of = _wallet_of(ws)
        expected = _expected_txids(ws, set(wallet_of.values()))
        rows = _rows(out)
        by_id = {r["id"]: r for r in rows}
        payments = [r for r in rows if r["schema"] == "Payment"]
        assert expected and counts["Payment"] == len(payments) > 0
        assert {p["properties"]["transactionNumber"][0] for p in payments} == expected
        for p in payments:
            props, facts = p["properties"], _summary(p)
            for end in ("payer", "beneficiary"):
                assert by_id[props[end][0]]["schema"] == "CryptoWallet"
            assert props["currency"] == ["BTC"] and props["date"][0].startswith("20")
            assert props["proof"][0] in by_id  # the chain capture is exported
            assert "capture sha256" in props["description"][0]
            payer, ben = int(facts["payer wallet"]), int(facts["beneficiary wallet"])
            assert payer != ben and {payer, ben} & set(wallet_of.values())
            # the amount is what the transaction paid to the beneficiary's wallet
            paid = ws.con.execute(
                "SELECT sum(o.value) FROM btc_txout o JOIN btc_tx t USING (tx_id) "
                "LEFT JOIN btc_clusters c USING (address_id) WHERE t.txid = ? "
                "AND coalesce(c.cluster_id, o.address_id) = ?",
                [props["transactionNumber"][0], ben]).fetchone()[0]
            assert int(facts["outputs sat"]) == paid
            if "payer share" not in facts:
                assert round(float(props["amount"][0]) * 1e8) == paid
            assert float(props["amountUsd"][0]) > 0  # 2017-2021: inside the fx table
        done = subprocess.run([FTM, "validate", "-i", str(out), "-o", str(tmp_path / "v.json")],
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        ws.close()


def test_selective_exports_carry_only_their_wallets_transfers(demo: Path,
                                                              tmp_path: Path) -> None:
    ws = open_ro(demo)
    try:
        owners = ws.con.execute(
            "SELECT pm.persona_id, i.value, j.country FROM identifiers i "
            "JOIN persona_members pm USING (account_id) LEFT JOIN jurisdictions j "
            "ON j.entity_kind = 'persona' AND j.entity_id = pm.persona_id "
            "WHERE i.kind = 'btc_address' ORDER BY 1").fetchall()
        wallet_of = _wallet_of(ws)
        assert len(owners) >= 2  # two personas publish addresses: selections differ
        none = ws.con.execute(
            "SELECT min(persona_id) FROM personas WHERE persona_id NOT IN (SELECT "
            "pm.persona_id FROM identifiers i JOIN persona_members pm USING (account_id) "
            "WHERE i.kind = 'btc_address')").fetchone()[0]
        cases = [(ExportOptions(personas=(p,)), {wallet_of[a]}) for p, a, _ in owners]
        cases += [(ExportOptions(countries=(cc,)),
                   {wallet_of[a] for _, a, c in owners if c == cc})
                  for cc in sorted({c for _, _, c in owners if c})]
        cases.append((ExportOptions(personas=(none,)), set()))
        seen: list[set[str]] = []
        for n, (options, wallets) in enumerate(cases):
            out = tmp_path / f"s{n}.ftm.json"
            FtmExporter().export(ws, out, options)
            got = {r["properties"]["transactionNumber"][0] for r in _rows(out)
                   if r["schema"] == "Payment"}
            assert got == _expected_txids(ws, wallets), options
            seen.append(got)
            gexf = tmp_path / f"s{n}.gexf"
            GexfExporter().export(ws, gexf, options)
            g = nx.read_gexf(gexf)
            edge_txids = {t for _, _, d in g.edges(data=True) if d.get("kind") == "paid"
                          for t in d["txids"].split(", ")}
            assert edge_txids == got
        assert seen[0] != seen[1] and seen[-1] == set()
    finally:
        ws.close()


def test_graph_stix_and_misp_carry_the_same_transfers(demo: Path, tmp_path: Path) -> None:
    ws = open_ro(demo)
    try:
        FtmExporter().export(ws, tmp_path / "e.ftm.json")
        payments = [r for r in _rows(tmp_path / "e.ftm.json") if r["schema"] == "Payment"]
        keyed = {(p["properties"]["transactionNumber"][0], _summary(p)["payer wallet"],
                  _summary(p)["beneficiary wallet"]) for p in payments}
        GexfExporter().export(ws, tmp_path / "g.gexf")
        g = nx.read_gexf(tmp_path / "g.gexf")
        paid = [d for _, _, d in g.edges(data=True) if d.get("kind") == "paid"]
        assert sum(int(d["transactions"]) for d in paid) == len(payments)
        btc = sum(float(p["properties"]["amount"][0]) for p in payments)
        assert abs(sum(float(d["amount_btc"]) for d in paid) - btc) < 1e-6
        StixExporter().export(ws, tmp_path / "b.json")
        assert validate_file(str(tmp_path / "b.json")).is_valid
        bundle = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
        objects = {o["id"]: o for o in bundle["objects"]}
        rels = [o for o in bundle["objects"] if o["type"] == "relationship"
                and o["relationship_type"] == "paid"]
        assert len(rels) == len(keyed)
        assert {r["external_references"][0]["external_id"] for r in rels} == \
            {k[0] for k in keyed}
        for r in rels:
            assert objects[r["source_ref"]]["type"] in ("cryptocurrency-wallet", "infrastructure")
            assert objects[r["target_ref"]]["type"] in ("cryptocurrency-wallet", "infrastructure")
        MispExporter().export(ws, tmp_path / "m.json")
        ev = MISPEvent()
        ev.load_file(str(tmp_path / "m.json"))
        txs = [o for o in ev.objects if o.name == "cryptocurrency-transaction"]
        assert len(txs) == len(keyed)
        assert {o.get_attributes_by_relation("transaction-number")[0].value for o in txs} == \
            {k[0] for k in keyed}
        for o in txs:
            assert {r.relationship_type for r in o.references} == {"sent-from", "sent-to"}
    finally:
        ws.close()


def test_a_case_export_carries_its_subjects_transfers(demo: Path, tmp_path: Path) -> None:
    """`export ftm --case CASE --as USER`: the transfers of the case persona's wallet, the
    same as `--persona` gives; a user of another agency is refused the case."""
    path = tmp_path / "ws"
    shutil.copytree(demo, path)  # reading a case is audited: a write
    with Workspace.open(path) as ws:
        persona, address = ws.con.execute(
            "SELECT pm.persona_id, i.value FROM identifiers i JOIN persona_members pm "
            "USING (account_id) WHERE i.kind = 'btc_address' ORDER BY 1 LIMIT 1").fetchone()
        wallet = _wallet_of(ws)[address]
        expected = _expected_txids(ws, {wallet})
        # the demo's operation onboarded two agencies: BKA's own compartment holds the case
        comp = access.add_compartment(ws.con, "bka-admin", "agency", "BKA only").compartment_id
        case = records.add_record(ws, "bka-admin", Case("wallet case"), compartment=comp,
                                  provenance="test", links=[("persona", persona)]).record_id
    assert expected
    res = CliRunner().invoke(main, ["export", "ftm", "--out", str(tmp_path / "c.ftm.json"),
                                    "-w", str(path), "--case", case, "--as", "bka-officer"])
    assert res.exit_code == 0, res.output
    got = {r["properties"]["transactionNumber"][0] for r in _rows(tmp_path / "c.ftm.json")
           if r["schema"] == "Payment"}
    assert got == expected
    res = CliRunner().invoke(main, ["export", "ftm", "--out", str(tmp_path / "x.ftm.json"),
                                    "-w", str(path), "--case", case, "--as", "politie-officer"])
    assert res.exit_code != 0 and not (tmp_path / "x.ftm.json").exists()


def test_a_wallets_size_and_addresses_do_not_count_its_tags(demo: Path, tmp_path: Path) -> None:
    """An address with several tags is one address: a wallet's size and address list
    (what every money-trail export shows) are the store's, whatever the tags (a one-
    address wallet with six tags was exported as six addresses merged by clustering)."""
    shutil.copytree(demo, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    try:
        wid, n, first = ws.con.execute(
            "SELECT cluster_id, count(*), min(address_id) FROM btc_clusters "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
        addr = ws.con.execute("SELECT address FROM btc_address WHERE address_id = ?",
                              [first]).fetchone()[0]
        lone = ws.con.execute(  # a wallet of one address
            "SELECT c.cluster_id, min(a.address) FROM btc_clusters c JOIN btc_address a "
            "USING (address_id) GROUP BY 1 HAVING count(*) = 1 ORDER BY 1 LIMIT 1").fetchone()
        before = chain_wallets(ws.con, [wid, lone[0]])
        for k in range(6):
            for a in (addr, lone[1]):
                ws.con.execute(
                    "INSERT INTO btc_tags (tag_id, address, label, category, origin, "
                    "imported_at) VALUES (?, ?, ?, 'exchange', 'tagpack', now())",
                    [f"t{k}-{a}", a, f"label {k}"])
        after = chain_wallets(ws.con, [wid, lone[0]])
    finally:
        ws.close()
    assert n > 1
    for w in (wid, lone[0]):
        assert after[w].n_addresses == before[w].n_addresses
        assert after[w].addresses == before[w].addresses
        assert len(set(after[w].addresses)) == len(after[w].addresses)
        assert {f"label {k} (exchange), tagpack" for k in range(6)} <= set(after[w].tags)
    assert after[lone[0]].n_addresses == 1 and after[wid].n_addresses == n
