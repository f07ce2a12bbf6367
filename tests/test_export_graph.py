"""GEXF 1.3 and GraphML: read back with networkx, nodes and edges compared with the store,
hostile text survives as (escaped) data, narrowed exports are subgraphs."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from export_workspaces import HOSTILE_HANDLE, HOSTILE_TITLE, built, open_ro, text_capture

import darkmap
from darkmap.export.graph import GexfExporter, GraphmlExporter, label_text, xml_text
from darkmap.export.options import ExportOptions
from darkmap.model.display import lookalike_mark
from darkmap.model.records import AccountRecord, IdentifierRecord

FORMATS = {"gexf": (GexfExporter, nx.read_gexf), "graphml": (GraphmlExporter, nx.read_graphml)}


def _export(fmt: str, name: str, factory: pytest.TempPathFactory, data: Path, out: Path,
            options: ExportOptions | None = None) -> tuple[dict[str, int], Any]:
    exporter, reader = FORMATS[fmt]
    ws = open_ro(built(name, factory, data))
    try:
        counts = exporter().export(ws, out, options)
    finally:
        ws.close()
    return counts, reader(out)


def _store_counts(name: str, factory: pytest.TempPathFactory, data: Path) -> dict[str, int]:
    ws = open_ro(built(name, factory, data))
    try:
        return dict(ws.con.execute("""
            SELECT 'node:account', count(*) FROM accounts UNION ALL
            SELECT 'node:listing', count(*) FROM listings UNION ALL
            SELECT 'node:persona', count(*) FROM personas WHERE n_accounts > 1 UNION ALL
            SELECT 'node:wallet', count(DISTINCT value) FROM identifiers
                WHERE kind IN ('btc_address', 'xmr_address') UNION ALL
            SELECT 'node:identifier', count(DISTINCT (kind, value)) FROM identifiers
                WHERE kind NOT IN ('btc_address', 'xmr_address', 'pgp_fingerprint') UNION ALL
            SELECT 'node:pgp_key', count(*) FROM (SELECT fingerprint FROM pgp_keys UNION
                SELECT value FROM identifiers WHERE kind = 'pgp_fingerprint'
                AND account_id IN (SELECT account_id FROM accounts)) UNION ALL
            SELECT 'edge:similar', count(*) FROM account_links UNION ALL
            SELECT 'edge:member_of', count(*) FROM persona_members m JOIN personas p
                USING (persona_id) WHERE p.n_accounts > 1 UNION ALL
            SELECT 'edge:sells', count(*) FROM listings
                WHERE account_id IN (SELECT account_id FROM accounts) UNION ALL
            SELECT 'edge:advertised', count(DISTINCT (kind, value, account_id))
                FROM identifiers WHERE kind <> 'pgp_fingerprint'
                AND account_id IN (SELECT account_id FROM accounts) UNION ALL
            SELECT 'edge:published', count(DISTINCT (value, account_id)) FROM identifiers
                WHERE kind = 'pgp_fingerprint'
                AND account_id IN (SELECT account_id FROM accounts)""").fetchall())
    finally:
        ws.close()


def _money_counts(name: str, factory: pytest.TempPathFactory, data: Path) -> dict[str, int]:
    """The money trail's nodes and edges as the chain tables give them: a wallet is a
    cluster (else a lone address); the transfers touching the exported addresses'
    wallets join wallet nodes (an exported address that is its whole wallet is its own
    node); an exported address inside a larger cluster has an ``in_wallet`` edge."""
    ws = open_ro(built(name, factory, data))
    try:
        if not ws.con.execute("SELECT count(*) FROM btc_tx").fetchone()[0]:
            return {}
        exported = dict(ws.con.execute(
            "SELECT DISTINCT a.address, coalesce(c.cluster_id, a.address_id) FROM identifiers i "
            "JOIN btc_address a ON a.address = i.value LEFT JOIN btc_clusters c "
            "USING (address_id) WHERE i.kind = 'btc_address'").fetchall())
        sizes = dict(ws.con.execute(
            "SELECT coalesce(c.cluster_id, a.address_id), count(*) FROM btc_address a "
            "LEFT JOIN btc_clusters c USING (address_id) GROUP BY 1").fetchall())
        wallets = set(exported.values())
        pairs = set(ws.con.execute(
            "WITH w AS (SELECT address_id, coalesce(c.cluster_id, address_id) AS wallet "
            " FROM btc_address LEFT JOIN btc_clusters c USING (address_id)), "
            "i AS (SELECT DISTINCT tx_id, wallet FROM btc_txin JOIN w USING (address_id)), "
            "o AS (SELECT DISTINCT tx_id, wallet FROM btc_txout JOIN w USING (address_id)) "
            "SELECT DISTINCT i.wallet, o.wallet FROM i JOIN o ON i.tx_id = o.tx_id "
            "AND i.wallet <> o.wallet WHERE i.wallet IN (SELECT unnest(?)) "
            "OR o.wallet IN (SELECT unnest(?))", [sorted(wallets), sorted(wallets)]).fetchall())
    finally:
        ws.close()
    own = {w for w in exported.values() if sizes[w] == 1}
    ends = wallets | {w for p in pairs for w in p}
    return {"node:wallet_cluster": len(ends - own), "edge:paid": len(pairs),
            "edge:in_wallet": sum(w not in own for w in exported.values())}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", ["demo", "real"])
def test_graph_reads_back_and_matches_the_store(
        fmt: str, name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path) -> None:
    counts, g = _export(fmt, name, tmp_path_factory, data_dir, tmp_path / f"g.{fmt}")
    expected = {k: v for k, v in {**_store_counts(name, tmp_path_factory, data_dir),
                                  **_money_counts(name, tmp_path_factory, data_dir)}.items()
                if v}
    assert counts == expected
    assert Counter(f"node:{k}" for _, k in g.nodes(data="kind")) + Counter(
        f"edge:{d['kind']}" for _, _, d in g.edges(data=True)) == Counter(expected)
    assert g.is_directed()
    ws = open_ro(built(name, tmp_path_factory, data_dir))
    try:
        account_id, handle, market, n_listings = ws.con.execute(
            "SELECT a.account_id, a.handle, a.market_id, count(l.listing_id) FROM accounts a "
            "JOIN listings l USING (account_id) GROUP BY ALL ORDER BY 4 DESC, 1 LIMIT 1"
        ).fetchone()
        pid, label, n_accounts, cohesion = ws.con.execute(
            "SELECT persona_id, label, n_accounts, cohesion FROM personas "
            "WHERE n_accounts > 1 ORDER BY n_accounts DESC, 1 LIMIT 1").fetchone()
        a, b, score = ws.con.execute(
            "SELECT a, b, score FROM account_links ORDER BY score DESC, a, b LIMIT 1"
        ).fetchone()
    finally:
        ws.close()
    node = g.nodes[f"account:{account_id}"]
    label_key = "label"
    assert node[label_key] == xml_text(handle) and node["market"] == market
    assert node["kind"] == "account" and node["listings"] == n_listings
    assert g.out_degree(f"account:{account_id}") >= n_listings
    persona = g.nodes[f"persona:{pid}"]
    assert persona["label"] == label and persona["n_accounts"] == n_accounts
    assert persona["cohesion"] == pytest.approx(cohesion)
    edge = g.edges[f"account:{a}", f"account:{b}"]
    assert edge["kind"] == "similar" and edge["score"] == pytest.approx(score)
    assert isinstance(edge["merged"], bool)


def test_gexf_is_version_1_3_and_graphml_declares_keys(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    _export("gexf", "demo", tmp_path_factory, data_dir, tmp_path / "g.gexf")
    head = (tmp_path / "g.gexf").read_text(encoding="utf-8")[:600]
    assert 'xmlns="http://gexf.net/1.3"' in head and 'version="1.3"' in head
    _export("graphml", "demo", tmp_path_factory, data_dir, tmp_path / "g.graphml")
    text = (tmp_path / "g.graphml").read_text(encoding="utf-8")
    for key in ("kind", "label", "harm_score", "first_seen", "score", "evidence"):
        assert f'attr.name="{key}"' in text, key
    # one key per attribute name and scope: types never disagree
    g = nx.read_graphml(tmp_path / "g.graphml")
    for attr in ("rating", "harm_score", "price"):
        types = {type(d[attr]) for _, d in g.nodes(data=True) if attr in d}
        assert len(types) <= 1, (attr, types)


def test_gexf_header_dates_the_newest_capture_and_reexport_is_the_same_bytes(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    """GEXF's ``lastmodifieddate`` is the day of the newest capture (the data's date, not
    the wall clock's), so exporting again gives the same bytes."""
    first, again = tmp_path / "a.gexf", tmp_path / "b.gexf"
    _export("gexf", "demo", tmp_path_factory, data_dir, first)
    _export("gexf", "demo", tmp_path_factory, data_dir, again)
    assert first.read_bytes() == again.read_bytes()
    ws = open_ro(built("demo", tmp_path_factory, data_dir))
    try:
        (newest,) = ws.con.execute("SELECT max(captured_at) FROM captures").fetchone()
    finally:
        ws.close()
    head = first.read_text(encoding="utf-8")[:800]
    assert f'<meta lastmodifieddate="{newest:%Y-%m-%d}"><creator>darkmap</creator>' in head


def test_every_graph_attribute_is_documented(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    """Each node and edge attribute the demo's and the real data's graphs hold is named
    in docs/exports.md's link graph section."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "exports.md").read_text()
    section = doc[doc.index("## Link graph"):doc.index("## STIX")]
    names: set[str] = set()
    for name in ("demo", "real"):
        _, g = _export("graphml", name, tmp_path_factory, data_dir, tmp_path / f"{name}.xml")
        names.update(k for _, d in g.nodes(data=True) for k in d)
        names.update(k for _, _, d in g.edges(data=True) for k in d)
    assert {"wallet_cluster", "key_id", "persona_id", "unit_price_usd"} <= names
    assert sorted(n for n in names if f"`{n}`" not in section) == []


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_hostile_text_is_data(fmt: str, tmp_path_factory: pytest.TempPathFactory,
                              data_dir: Path, tmp_path: Path) -> None:
    counts, g = _export(fmt, "hostile", tmp_path_factory, data_dir, tmp_path / f"h.{fmt}")
    assert counts["node:account"] == 3 and counts["node:listing"] == 3
    labels = {d["label"] for _, d in g.nodes(data=True)}
    # a label as the CSV and the report show it: <, &, quotes kept; the BEL and the bidi
    # override escaped, the look-alike mark after the handle (exports audit, finding 7)
    shown = label_text(HOSTILE_HANDLE)
    assert f"{shown} {lookalike_mark(HOSTILE_HANDLE, account_id=False)}" in labels
    assert "\\x07" in shown and "\\u202e" in shown and "\u202e" not in shown
    assert label_text(HOSTILE_TITLE) in labels
    assert "</node>" in shown  # the text, not markup
    accounts = {d["account_id"] for _, d in g.nodes(data=True) if d["kind"] == "account"}
    assert f"alpha:{xml_text(HOSTILE_HANDLE).casefold()}" in accounts  # the id as it was
    assert g.number_of_nodes() == sum(v for k, v in counts.items() if k.startswith("node:"))


def test_a_country_export_is_a_subgraph(tmp_path_factory: pytest.TempPathFactory,
                                        data_dir: Path, tmp_path: Path) -> None:
    _, full = _export("graphml", "real", tmp_path_factory, data_dir, tmp_path / "all.graphml")
    counts, part = _export("graphml", "real", tmp_path_factory, data_dir,
                           tmp_path / "nl.graphml", ExportOptions(countries=("nl",)))
    assert 0 < part.number_of_nodes() < full.number_of_nodes()
    assert set(part.nodes) <= set(full.nodes)
    assert set(part.edges) <= set(full.edges)
    ws = open_ro(built("real", tmp_path_factory, data_dir))
    try:
        nl = {r[0] for r in ws.con.execute(
            "SELECT m.account_id FROM persona_members m JOIN jurisdictions j ON "
            "j.entity_kind = 'persona' AND j.entity_id = m.persona_id WHERE j.country = 'NL'"
        ).fetchall()}
    finally:
        ws.close()
    accounts = {d["account_id"] for _, d in part.nodes(data=True) if d["kind"] == "account"}
    assert accounts == nl
    for _, d in part.nodes(data=True):
        if d["kind"] == "persona":
            assert d["country"] == "NL"


def test_graphml_and_gexf_read_back_as_the_same_graph(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    """Both streamed writers give back every node, edge and attribute value with its
    type (the demo world: personas, accounts, listings, keys, wallets, paid edges)."""
    _, gexf = _export("gexf", "demo", tmp_path_factory, data_dir, tmp_path / "g.gexf")
    counts, gml = _export("graphml", "demo", tmp_path_factory, data_dir,
                          tmp_path / "g.graphml")
    assert gml.number_of_edges() == sum(v for k, v in counts.items() if k.startswith("edge:"))
    assert set(gml.nodes) == set(gexf.nodes) and set(gml.edges) == set(gexf.edges)
    for node, attrs in gml.nodes(data=True):
        other = {k: v for k, v in gexf.nodes[node].items() if k != "label"}
        assert {k: v for k, v in attrs.items() if k != "label"} == other, node
    for u, v, attrs in gml.edges(data=True):
        other = {k: x for k, x in gexf.edges[u, v].items() if k not in ("id", "label")}
        assert attrs == other, (u, v)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_handle_spelling_anothers_escape_keeps_its_own_node(fmt: str,
                                                              tmp_path: Path) -> None:
    """``evil<BEL>one`` and the literal ``evil\\x07one`` are two vendors: two account
    nodes, each with its own edges (one took the other's node, attributes and edges)."""
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    handles = ("evil\x07one", "evil\\x07one", "back\\slash")
    with darkmap.init_workspace(tmp_path / "ws") as ws:
        w, prov = text_capture(ws, handles, "collide.txt", t0)
        for n, handle in enumerate(handles):
            w.add(AccountRecord(market_id="alpha", handle=handle, observed_at=t0,
                                locator=f"profile {n}"), prov)
            w.add(IdentifierRecord(kind="email", value=f"v{n}@example.com", market_id="alpha",
                                   account_handle=handle, field="profile",
                                   locator=f"id {n}"), prov)
        w.flush()
        exporter, reader = FORMATS[fmt]
        counts = exporter().export(ws, tmp_path / f"c.{fmt}", None)
    g = reader(tmp_path / f"c.{fmt}")
    accounts = {n: d for n, d in g.nodes(data=True) if d.get("kind") == "account"}
    assert counts["node:account"] == len(accounts) == 3
    assert len({d["label"] for d in accounts.values()}) == 3
    for nid in accounts:  # each vendor keeps its own address, no other
        assert len(list(g.successors(nid))) == 1, nid


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_harm_score_says_what_it_rests_on(fmt: str, tmp_path_factory: pytest.TempPathFactory,
                                           data_dir: Path, tmp_path: Path) -> None:
    """Each persona and account node with a harm score carries, as `darkmap targets`
    gives them, whether sales evidence lies behind it and the score's listing and
    activity points: on the real data, Hansa's personas rank on their listings alone,
    cryptonia:terrysukstock on its counter and feedback too."""
    _, g = _export(fmt, "real", tmp_path_factory, data_dir, tmp_path / f"g.{fmt}")
    ws = open_ro(built("real", tmp_path_factory, data_dir))
    try:
        targets = {t["persona_id"]: t for t in darkmap.targets(ws, limit=None)}
    finally:
        ws.close()
    scored = [d for _, d in g.nodes(data=True) if "harm_score" in d]
    assert {d["kind"] for d in scored} == {"persona", "account"}
    for d in scored:
        t = targets[d.get("persona_id") or d["account_id"]]
        assert d["harm_score"] == pytest.approx(t["harm_score"])
        assert d["harm_sales_evidence"] is t["sales_evidence"]
        assert d["harm_rests_on"] == t["harm_rests_on"]
        assert d["harm_from_listings"] == pytest.approx(t["harm_parts"]["listings"])
        assert d["harm_from_activity"] == pytest.approx(t["harm_parts"]["activity"])
    assert {d["harm_sales_evidence"] for d in scored} == {True, False}
    (terry,) = [d for _, d in g.nodes(data=True)
                if d.get("account_id") == "cryptonia:terrysukstock"]
    assert terry["harm_sales_evidence"] is True and terry["harm_from_activity"] > 0
