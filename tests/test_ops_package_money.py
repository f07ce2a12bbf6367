"""The money trail in the per-country packages (issue #13): each persona's wallets (the
clusters of the addresses its accounts published, with tags and merge reasons), the
value traced from them to tagged services with the exchanges as cash-out points, and
``entities.ftm.json`` (stock FtM, the package's subgraph only); the same for every
user, since it is shared reference data, while operational records still follow the
grants. Checked against the chain tables of the demo workspace (simulated flows written
as Bitcoin Core blk files and parsed like real blocks) and on the real data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from export_workspaces import built

import darkmap
from darkmap.export import ftm_subgraph
from darkmap.ops import access, records
from darkmap.ops.package import build_package
from darkmap.ops.records import Arrest, CryptoItem, Seizure
from darkmap.store.operations import CompartmentRow
from darkmap.store.workspace import Workspace

FTM = str(Path(sys.executable).with_name("ftm"))
XMR = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
       "wfn3RVGQBEP3A")
"""A Monero address (checksum checked since a seizure's addresses are)."""


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _ftm_validate(path: Path) -> None:
    done = subprocess.run([FTM, "validate", "-i", str(path), "-o",
                           str(path.with_suffix(".validated.json"))],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A writable copy of the demo workspace (packages are audited: a write)."""
    path = tmp_path_factory.mktemp("pkgmoney") / "ws"
    shutil.copytree(built("demo", tmp_path_factory, data_dir), path)
    return path


def _owner(ws: Workspace) -> tuple[str, str, str, int]:
    """(persona, country, published address, its cluster) of a persona attributed to a
    country whose published address is in the chain data."""
    row = ws.con.execute(
        "SELECT pm.persona_id, j.country, i.value, coalesce(c.cluster_id, a.address_id) "
        "FROM identifiers i JOIN persona_members pm USING (account_id) "
        "JOIN jurisdictions j ON j.entity_kind = 'persona' AND j.entity_id = pm.persona_id "
        "JOIN btc_address a ON a.address = i.value "
        "LEFT JOIN btc_clusters c USING (address_id) "
        "WHERE i.kind = 'btc_address' ORDER BY 1 LIMIT 1").fetchone()
    assert row is not None
    return row[0], row[1], row[2], int(row[3])


def _partner_and_compartment(ws: Workspace, country: str, partner: str,
                             compartment: str) -> CompartmentRow:
    """A partner agency of ``country`` with an officer (``PARTNER-officer``), and a new
    compartment of bka's that the partner holds no grant on."""
    access.add_agency(ws.con, "bka-admin", partner, partner.upper(), country, f"{partner} desk")
    access.add_user(ws.con, "bka-admin", f"{partner}-officer", partner, "officer")
    return access.add_compartment(ws.con, "bka-admin", "agency", compartment,
                                  compartment_id=compartment)


def test_package_holds_wallets_cashouts_and_the_ftm_subgraph(demo: Path,
                                                              tmp_path: Path) -> None:
    ws = Workspace.open(demo)
    try:
        persona, country, address, cluster = _owner(ws)
        comp = _partner_and_compartment(ws, country, "guardia", "bka-money")
        hidden = records.add_record(ws, "bka-admin", Arrest("hidden courier"),
                                    compartment=comp.compartment_id, country=country,
                                    provenance="OPSLEAK report",
                                    links=[("persona", persona)])
        counts = build_package(ws, "bka-admin", country, tmp_path / "bka", ftm_subgraph)
        theirs = build_package(ws, "guardia-officer", country, tmp_path / "gc", ftm_subgraph)
        bundle = json.loads((tmp_path / "bka" / "package.json").read_text(encoding="utf-8"))
        other = json.loads((tmp_path / "gc" / "package.json").read_text(encoding="utf-8"))
        # the wallets and flows are reference data: the same for both users ...
        assert [p["wallets"] for p in bundle["personas"]] == \
            [p["wallets"] for p in other["personas"]]
        assert counts["wallets"] == theirs["wallets"] >= 1
        # ... the operational record is not: only its compartment's agency sees it
        assert hidden.record_id in json.dumps(bundle["records"])
        for f in (tmp_path / "gc").iterdir():
            assert hidden.record_id not in f.read_text(encoding="utf-8")
            assert "OPSLEAK" not in f.read_text(encoding="utf-8")
        for f in (tmp_path / "bka").glob("*.ftm.json"):  # never in the entities file
            assert "OPSLEAK" not in f.read_text(encoding="utf-8")
        mine = next(p for p in bundle["personas"] if p["persona"] == persona)
        wallet = next(w for w in mine["wallets"] if w["wallet"] == cluster)
        assert address in wallet["published_addresses"]
        n_addr = ws.con.execute("SELECT count(*) FROM btc_clusters WHERE cluster_id = ?",
                                [cluster]).fetchone()[0]
        assert wallet["n_addresses"] == n_addr
        merges = dict(ws.con.execute(
            "SELECT m.heuristic, count(*) FROM btc_cluster_merges m JOIN btc_clusters c "
            "ON c.address_id = m.address_a WHERE c.cluster_id = ? GROUP BY 1",
            [cluster]).fetchall())
        assert {h: v["edges"] for h, v in wallet["merge_reasons"].items()} == merges
        cashouts = [c for p in bundle["personas"] for w in p["wallets"]
                    for c in w.get("cashouts", [])]
        assert counts["cashouts"] == len(cashouts) > 0
        for c in cashouts:
            assert c["category"] == "exchange" and 0 < c["confidence"] <= 1
            # the trace's own confidence, one scale: not a second heuristic of the package's
            assert c["confidence"] == round(c["confidence_score"] / 100, 2)
            assert c["confidence_level"] in ("high", "medium", "low") and c["confidence_reasons"]
            paid = ws.con.execute(
                "SELECT o.value, a.address FROM btc_txout o JOIN btc_tx t USING (tx_id) "
                "JOIN btc_address a USING (address_id) WHERE t.txid = ? AND o.n = ?",
                [c["txid"], c["vout"]]).fetchone()
            assert paid[1] == c["address"] and 0 < c["amount_sat"] <= paid[0]
            tagged = ws.con.execute(
                "SELECT count(*) FROM btc_tags WHERE address = ? AND label = ? "
                "AND lower(category) = 'exchange'",
                [c["tagged_address"], c["service"]]).fetchone()[0]
            assert tagged == 1
            assert c["amount_usd"] > 0
        page = (tmp_path / "bka" / "package.html").read_text(encoding="utf-8")
        assert "cash-out" in page and cashouts[0]["txid"] in page
        # the FtM file: stock, valid, the package's subgraph only
        ents = tmp_path / "bka" / "entities.ftm.json"
        _ftm_validate(ents)
        rows = _rows(ents)
        assert bundle["entities"]["counts"]["Payment"] == \
            sum(r["schema"] == "Payment" for r in rows) > 0
        persons = {r["properties"]["keywords"][0] for r in rows if r["schema"] == "Person"}
        assert persons <= {p["persona"] for p in bundle["personas"]}
        outside = ws.con.execute(
            "SELECT count(*) FROM identifiers i JOIN persona_members pm USING (account_id) "
            "WHERE i.kind = 'btc_address' AND pm.persona_id NOT IN (SELECT unnest(?))",
            [[p["persona"] for p in bundle["personas"]]]).fetchone()[0]
        wallets = {r["properties"]["publicKey"][0] for r in rows
                   if r["schema"] == "CryptoWallet" and r["id"].startswith("dm-wallet-")}
        assert address in wallets and len(wallets) >= len(
            {a for p in bundle["personas"] for w in p["wallets"]
             for a in w["published_addresses"]})
        assert outside >= 1  # another persona's address exists and was left out
        _traced_flows_in_ftm(rows, bundle["personas"], cashouts)
    finally:
        ws.close()


def _traced_flows_in_ftm(rows: list[dict[str, Any]], personas: list[dict[str, Any]],
                         cashouts: list[dict[str, Any]]) -> None:
    """Each traced flow of the package is an UnknownLink from the persona's wallet to the
    wallet of the service it reached, held by the service's Organization; each entity
    once, every reference to an entity of the file."""
    ids = {r["id"]: r for r in rows}
    assert len(ids) == len(rows)
    traced = [r for r in rows if r["schema"] == "UnknownLink"
              and r["properties"]["role"][0].startswith("traced value")]
    assert len(traced) == sum(len(w.get("flows", [])) for p in personas
                              for w in p["wallets"]) > 0
    # whose a wallet is: its holder (a persona's Person), an account that advertised it
    # (a persona of one account is no Person), or theirs of an address the clustering
    # put in it
    into: dict[str, list[str]] = {}
    for r in rows:
        role = r["properties"].get("role", [""])[0]
        if r["schema"] == "UnknownLink" and (role == "address advertised by the account"
                                             or role.startswith("address of wallet cluster")):
            into.setdefault(r["properties"]["object"][0], []).append(
                r["properties"]["subject"][0])

    def owners(ent: str) -> set[str]:
        if ids[ent]["schema"] in ("Person", "UserAccount"):
            return {ids[ent]["properties"]["keywords" if ids[ent]["schema"] == "Person"
                                               else "username"][0]}
        return set().union(*(owners(h) for h in ids[ent]["properties"].get("holder", [])),
                           *(owners(a) for a in into.get(ent, []) if a != ent))

    mine = {p["persona"] for p in personas} | {
        a["account"].split(":", 1)[1] for p in personas for a in p["accounts"]}
    for link in traced:
        src, dst = ids[link["properties"]["subject"][0]], ids[link["properties"]["object"][0]]
        assert src["schema"] == dst["schema"] == "CryptoWallet"
        found = owners(src["id"])
        assert found and found <= mine, (src, found)
        assert ids[dst["properties"]["holder"][0]]["schema"] == "Organization"
    for c in cashouts:
        [link] = [r for r in traced if f"txid: {c['txid']}\nvout: {c['vout']}\n"
                  in r["properties"]["summary"][0] and ids[r["properties"]["object"][0]][
                      "properties"]["publicKey"] == [c["address"]]]
        assert f"reached {c['service']} (exchange)" in link["properties"]["role"][0]
        assert f"confidence {c['confidence_level']}" in link["properties"]["description"][0]
        org = ids[ids[link["properties"]["object"][0]]["properties"]["holder"][0]]
        assert org["properties"]["name"] == [c["service"]]


def test_a_seized_address_is_traced_to_its_persona_sources_and_cash_outs(
        demo: Path, tmp_path: Path) -> None:
    """A seizure naming a persona's published address: the package finds its wallet, the
    persona that published an address of it, the value traced forward (the same as the
    persona's wallet) and back to the services it came from; other assets and unknown
    addresses say why they are not traced; another agency's user sees none of it."""
    ws = Workspace.open(demo)
    try:
        persona, country, address, cluster = _owner(ws)
        comp = _partner_and_compartment(ws, country, "nca", "bka-seized")
        unknown = "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"
        seizure = records.add_record(ws, "bka-admin", Seizure(crypto=(
            CryptoItem("BTC", 0.5, address=address, usd=21_000.0),
            CryptoItem("XMR", 12.0, address=XMR),
            CryptoItem("BTC", 0.1, address=unknown),
            CryptoItem("BTC", 0.2, address=f"cluster:{cluster}"),
            CryptoItem("BTC", 0.3, address="cluster:99999999999999999999999"))),
            compartment=comp.compartment_id, country=country, provenance="search report")
        counts = build_package(ws, "bka-admin", country, tmp_path / "bka", ftm_subgraph)
        build_package(ws, "nca-officer", country, tmp_path / "nca", ftm_subgraph)
        bundle = json.loads((tmp_path / "bka" / "package.json").read_text(encoding="utf-8"))
        seized = {w["address"]: w for w in bundle["seized_wallets"]}
        assert set(seized) == {address, unknown, XMR,
                               f"cluster:{cluster}", "cluster:99999999999999999999999"}
        assert counts["seized_wallets"] == 2
        assert seized[f"cluster:{cluster}"]["flows"] == seized[address]["flows"]
        assert "not in the loaded chain data" in seized["cluster:99999999999999999999999"][
            "note"]
        w = seized[address]
        assert w["record"] == seizure.record_id and w["wallet"] == cluster
        assert {"persona": persona, "published_address": address} in w["personas"]
        owners = {r[0] for r in ws.con.execute(
            "SELECT DISTINCT pm.persona_id FROM identifiers i JOIN persona_members pm "
            "USING (account_id) JOIN btc_address a ON a.address = i.value "
            "JOIN btc_clusters c USING (address_id) WHERE c.cluster_id = ?",
            [cluster]).fetchall()}
        assert {o["persona"] for o in w["personas"]} == owners
        mine = next(x for p in bundle["personas"] if p["persona"] == persona
                    for x in p["wallets"] if x["wallet"] == cluster)
        assert w["flows"] == mine["flows"] and w["cashouts"] == mine["cashouts"]
        # the outputs (txid, vout) spent by a transaction that pays into the wallet
        paid_in_by = set(ws.con.execute(
            "SELECT i.prev_txid, i.prev_vout FROM btc_txin i WHERE i.tx_id IN ("
            "SELECT o.tx_id FROM btc_txout o JOIN btc_clusters c USING (address_id) "
            "WHERE c.cluster_id = ?)", [cluster]).fetchall())
        assert w["sources"] and [s for s in w["sources"] if s["hop"] == 1]
        for src in w["sources"]:    # a tagged service's output whose value came in
            assert src["service"] and 0 < src["confidence"] <= 1
            tagged = ws.con.execute("SELECT count(*) FROM btc_tags WHERE address = ?",
                                    [src["tagged_address"]]).fetchone()[0]
            assert tagged >= 1
            assert src["hop"] > 1 or (src["txid"], src["vout"]) in paid_in_by
        assert "not in the loaded chain data" in seized[unknown]["note"]
        assert "XMR" in seized[XMR]["note"]
        page = (tmp_path / "bka" / "package.html").read_text(encoding="utf-8")
        assert "Seized wallets" in page and f"wallet cluster {cluster}" in page
        for f in (tmp_path / "nca").iterdir():   # the seizure is bka's: not in nca's
            text = f.read_text(encoding="utf-8")
            assert seizure.record_id not in text and "Seized wallets" not in text
        assert json.loads((tmp_path / "nca" / "package.json").read_text(
            encoding="utf-8"))["seized_wallets"] == []
        # in the FtM file: the two seized wallets in the chain data, the persona that
        # published an address of them, and the value traced forward and back
        ents = tmp_path / "bka" / "entities.ftm.json"
        _ftm_validate(ents)
        rows = _rows(ents)
        ids = {r["id"]: r for r in rows}
        held = {r["properties"]["name"][0]: r for r in rows if r["schema"] == "CryptoWallet"
                and r["properties"]["name"][0].startswith("seized: ")}
        assert set(held) == {f"seized: {address}", f"seized: cluster:{cluster}"}
        mine = held[f"seized: {address}"]["properties"]
        assert mine["publicKey"] == [address] and float(mine["amountUsd"][0]) == 21_000
        assert f"seized in record: {seizure.record_id}" in mine["summary"][0]
        links = [r["properties"] for r in rows if r["schema"] == "UnknownLink"
                 and held[f"seized: {address}"]["id"] in r["properties"]["object"]
                 + r["properties"]["subject"]]
        published = [x for x in links if " published by persona " in x["role"][0]]
        persons = {p["persona"] for p in bundle["personas"]}
        assert persona in persons and {x["role"][0].rsplit(" ", 1)[1] for x in published} == \
            {o["persona"] for o in w["personas"]} & persons
        assert {ids[x["subject"][0]]["properties"]["publicKey"][0] for x in published} >= \
            {address}
        back = [x for x in links if " came from " in x["role"][0]]
        ahead = [x for x in links if " reached " in x["role"][0]]
        assert len(back) == len(w["sources"]) and len(ahead) == len(w["flows"])
        assert "search report" not in ents.read_text(encoding="utf-8")  # the record's text
        theirs = (tmp_path / "nca" / "entities.ftm.json").read_text(encoding="utf-8")
        assert "seized" not in theirs and seizure.record_id not in theirs
    finally:
        ws.close()


def test_package_on_real_data(tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
                              tmp_path: Path) -> None:
    """Real Hansa pages and real main-net blocks: the personas' published addresses are
    not in those blocks, and the package says so; the FtM file is stock and valid."""
    path = tmp_path_factory.mktemp("pkgreal") / "ws"
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [data_dir / "pages" / "hansa", data_dir / "bitcoin" / "blocks1-256"])
        darkmap.link(ws)
        darkmap.assess_listings(ws)
        row = ws.con.execute(
            "SELECT j.country, count(*) FROM jurisdictions j JOIN persona_members pm "
            "ON pm.persona_id = j.entity_id JOIN identifiers i USING (account_id) "
            "WHERE j.entity_kind = 'persona' AND i.kind = 'btc_address' "
            "AND j.country IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
        country = row[0] if row else ws.con.execute(
            "SELECT country FROM jurisdictions WHERE entity_kind = 'persona' "
            "AND country IS NOT NULL ORDER BY 1 LIMIT 1").fetchone()[0]
        access.add_agency(ws.con, "setup", "agency", "Agency", country, "desk")
        access.add_user(ws.con, "setup", "ana", "agency", "admin")
        mined = ws.con.execute(  # a real main-net address of the blocks: a miner's
            "SELECT a.address FROM btc_txout o JOIN btc_address a USING (address_id) "
            "ORDER BY o.tx_id, o.n LIMIT 1").fetchone()[0]
        comp = access.add_compartment(ws.con, "ana", "agency", "own")
        records.add_record(ws, "ana", Seizure(crypto=(CryptoItem("BTC", 50.0, mined),)),
                           compartment=comp.compartment_id, country=country,
                           provenance="test seizure of a real address")
        counts = build_package(ws, "ana", country, tmp_path / "pkg", ftm_subgraph)
    bundle = json.loads((tmp_path / "pkg" / "package.json").read_text(encoding="utf-8"))
    assert counts["personas"] == len(bundle["personas"]) > 0
    assert counts["cashouts"] == 0
    for p in bundle["personas"]:
        for w in p["wallets"]:
            assert w["wallet"] is None and w["note"] == "not in the loaded chain data"
    [seized] = bundle["seized_wallets"]   # in the blocks; no persona published it
    assert seized["address"] == mined and seized["wallet"] is not None
    assert seized["personas"] == [] and counts["seized_wallets"] == 1
    assert seized["trace"]["source_received_sat"] >= 50 * 10**8  # the coinbase
    if row:
        assert counts["wallets"] >= 1
    _ftm_validate(tmp_path / "pkg" / "entities.ftm.json")
    assert bundle["entities"]["counts"].get("UserAccount", 0) > 0
