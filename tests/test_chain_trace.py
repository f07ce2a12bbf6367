"""Tags, tracing (peel chain, exchange cash-outs), wallet summaries and evaluation."""

from __future__ import annotations

import json

import pytest
import yaml

from darkmap.chain.cluster import run_clustering
from darkmap.chain.tags import export_tagpack, sync_evidence_tags
from darkmap.chain.trace import trace
from darkmap.chain.wallet import wallet_summary
from darkmap.collect.ingest import import_tagpack, load_files
from darkmap.evaluate.clustering import cluster_scores, eval_chain
from darkmap.importers.tagpack import read_tagpack
from darkmap.simulate.market_chain import demo_market_chain
from darkmap.store.workspace import Workspace


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("trace")
    chain, truth, tagpack = demo_market_chain(peel_steps=4)
    (d / "blk00000.dat").write_bytes(chain.blk_file())
    (d / "services.yaml").write_text(tagpack)
    ws = Workspace.init(d / "ws")
    load_files(ws, [d / "blk00000.dat"])
    import_tagpack(ws, d / "services.yaml")
    run_clustering(ws)
    yield ws, truth, d
    ws.close()


def _vendor_cluster(ws, truth):
    vendor = [a for a, o in truth["address_owner"].items() if o == "vendor:v1"]
    return ws.con.execute(
        "SELECT c.cluster_id, count(*) FROM btc_clusters c JOIN btc_address a USING (address_id) "
        "WHERE a.address IN (SELECT unnest(?)) GROUP BY 1 ORDER BY 2 DESC", [vendor]).fetchone()[0]


def test_forward_trace_finds_peel_chain_and_cashouts(demo):
    ws, truth, _ = demo
    out = trace(ws, f"cluster:{_vendor_cluster(ws, truth)}", "forward", hops=10)
    deposits = {c["deposit_address"]: c["exchange"] for c in truth["cashouts"]}
    got = {c["address"]: c["service"] for c in out["cashouts"]}
    assert got == deposits
    assert all(c["amount_sat"] == 20_000_000 and len(c["txid"]) == 64 and c["time"]
               for c in out["cashouts"])
    assert all(c["tag_via_cluster"] for c in out["cashouts"])  # deposits tagged via sweep
    (peel,) = out["peel_chains"]
    assert peel["length"] == 4 and peel["peeled_sat"] == 4 * 20_000_000
    assert [s["payment_to"] for s in peel["steps"]] == ["ExchangeA", "ExchangeB"] * 2
    assert peel["start_txid"] == truth["cashouts"][0]["start_txid"]


def test_hops_limit_and_methods(demo):
    ws, truth, _ = demo
    start = f"cluster:{_vendor_cluster(ws, truth)}"
    short = trace(ws, start, "forward", hops=2)
    assert len(short["cashouts"]) == 1  # consolidation + first peel only
    fifo = trace(ws, start, "forward", hops=10, method="fifo")
    hair = trace(ws, start, "forward", hops=10, method="haircut")
    poison = trace(ws, start, "forward", hops=10, method="poison")
    for r in (fifo, hair):
        assert sum(r["by_service_sat"].values()) <= sum(poison["by_service_sat"].values())
    # the vendor's own money: every peeled payment is fully its own under all methods
    assert sum(fifo["by_service_sat"].values()) == 80_000_000
    assert abs(sum(hair["by_service_sat"].values()) - 80_000_000) <= 4


def test_backward_trace_reaches_the_buyers_exchange(demo):
    ws, truth, _ = demo
    out = trace(ws, f"cluster:{_vendor_cluster(ws, truth)}", "backward", hops=6,
                method="haircut")
    assert "ExchangeA" in out["by_service_sat"]  # buyers withdrew from ExchangeA
    assert "Alpha Market hot wallet" in {h["service"] for h in out["hits"]} or \
        out["by_service_sat"]["ExchangeA"] > 0


def test_evaluation_against_truth(demo):
    ws, truth, _ = demo
    res = eval_chain(ws, {"chain": truth})
    c = res["clustering"]
    assert c["pairwise_precision"] == 1.0 and 0 < c["pairwise_recall"] < 1
    assert res["cashouts"]["share_traced"] == 1.0
    assert res["clustering_by_wallet_kind"]["exchange"]["pairwise_recall"] == 1.0


def test_cluster_scores_by_hand():
    import numpy as np

    pred = np.array([0, 0, 0, 1, 1, 2])
    true = np.array([0, 0, 1, 1, 1, 2])
    s = cluster_scores(pred, true)
    # predicted pairs: 3 + 1 = 4; true pairs: 1 + 3 = 4; shared: (0,1), (3,4) = 2
    assert s["pairwise_precision"] == 0.5 and s["pairwise_recall"] == 0.5
    assert s["purity"] == round(5 / 6, 6)


def test_tagpack_round_trip_and_rejects(demo, tmp_path):
    ws, _, d = demo
    out = tmp_path / "export.yaml"
    export_tagpack(ws, out, origin="tagpack")
    h1, t1, p1 = read_tagpack((d / "services.yaml").read_text())
    h2, t2, p2 = read_tagpack(out.read_text())
    def key(t: list[dict]) -> list[tuple]:
        return sorted((x["address"], x["label"], x["category"], x["actor"]) for x in t)

    assert key(t1) == key(t2) and not p1 and not p2
    assert h2["title"] and h2["creator"] and "description" in h2
    hostile = yaml.safe_dump({"title": "x", "creator": "y", "currency": "BTC", "tags": [
        {"address": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "label": "bad checksum"},
        {"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "label": "ok",
         "category": "exchange"},
        {"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "label": "eth",
         "currency": "ETH"},
        "not a mapping"]})
    _, tags, problems = read_tagpack(hostile, "hostile.yaml")
    assert [t["label"] for t in tags] == ["ok"]
    assert [(p.locator, p.field) for p in problems] == [
        ("hostile.yaml#tag 0", "address"), ("hostile.yaml#tag 2", "currency"),
        ("hostile.yaml#tag 3", "tag")]
    assert read_tagpack("tags: [unclosed", "x")[2][0].field == "yaml"
    assert read_tagpack("just text", "x")[2][0].field == "tags"


def test_evidence_addresses_become_tags_linked_to_accounts_and_personas(demo):
    ws, truth, _ = demo
    vendor = sorted(a for a, o in truth["address_owner"].items() if o == "vendor:v1")[0]
    ws.con.execute(
        "INSERT INTO identifiers (ident_id, kind, value, market_id, account_id, field, "
        "capture_sha256, source, method) VALUES ('i1', 'btc_address', ?, 'alpha', "
        "'alpha:v1', 'profile', 'cafe', 'pages/alpha/v1.html', 'test@1')", [vendor])
    has_personas = ws.con.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_name = 'personas'").fetchone()[0]
    if not has_personas:
        ws.con.execute("CREATE TABLE personas (persona_id VARCHAR PRIMARY KEY, label VARCHAR, "
                       "n_accounts INTEGER)")
        ws.con.execute("CREATE TABLE persona_members (persona_id VARCHAR, account_id VARCHAR)")
    ws.con.execute("INSERT INTO personas (persona_id, label, n_accounts, created_at) "
                   "SELECT 'p1', 'v1', 2, now()" if _has_col(ws, "personas", "created_at")
                   else "INSERT INTO personas (persona_id, label, n_accounts) VALUES ('p1','v1',2)")
    ws.con.execute("INSERT INTO persona_members VALUES ('p1', 'alpha:v1')")
    assert sync_evidence_tags(ws) == 1
    w = wallet_summary(ws, vendor)
    assert w["linked_accounts"] == ["alpha:v1"]
    assert w["linked_personas"][0]["persona_id"] == "p1"
    assert w["n_addresses"] == 5 and w["merge_reasons"]["multi_input"]["transactions"] == 1
    assert {t["origin"] for t in w["tags"]} == {"evidence"}
    assert any("ExchangeA" in c["tags"] for c in w["paid_to"]) or w["paid_to"]
    assert w["received_sat"] == 5 * 45_000_000
    json.dumps(w)  # JSON-ready


def _has_col(ws, table, col):
    return bool(ws.con.execute("SELECT count(*) FROM information_schema.columns WHERE "
                               "table_name = ? AND column_name = ?", [table, col]).fetchone()[0])


# -- how sure each step is (the 2 a.m. usability walk) ----------------------------------


def test_cashouts_say_how_sure_they_are_and_why(demo):
    """Each cash-out point carries a confidence with its reasons, read from what darkmap
    knows: the tag's TagPack confidence and source, how the tag reaches the deposit
    address (the exchange's sweep: a multi-input merge), the haircut share, the hops and
    the path; deeper peel steps are no surer than the first ones."""
    ws, truth, _ = demo
    out = trace(ws, f"cluster:{_vendor_cluster(ws, truth)}", "forward", hops=10)
    assert out["method"] == "poison" and len(out["cashouts"]) == 4
    for c in out["cashouts"]:
        assert c["tag_confidence"] == "service_data"
        assert c["tag_source"] == "https://example.invalid/demo"
        assert c["value_share"] == 1.0  # the vendor's own money all the way
        assert c["coinjoins_on_path"] == 0
        assert len(c["path_txids"]) == c["hop"] and c["path_txids"][-1] == c["txid"]
        assert c["confidence_level"] in ("high", "medium")
        reasons = " | ".join(c["confidence_reasons"])
        assert "service_data (level 50)" in reasons
        assert "linked by multi-input merges" in reasons and f"{c['hop']} hops" in reasons
    by_hop = sorted(out["cashouts"], key=lambda c: c["hop"])
    scores = [c["confidence_score"] for c in by_hop]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert by_hop[0]["confidence_level"] == "high"
    # the confidence path runs from the vendor's consolidation to the cash-out
    first = truth["cashouts"][0]["start_txid"]
    assert by_hop[0]["path_txids"][-1] == first


def test_wallet_show_says_how_the_cluster_was_formed_and_what_to_run_next(demo, tmp_path):
    import shutil

    from click.testing import CliRunner

    from darkmap.cli import main

    ws, truth, d = demo
    cid = _vendor_cluster(ws, truth)
    w = wallet_summary(ws, f"cluster:{cid}")
    ev = w["evidence"]
    assert ev["level"] == "high" and ev["heuristics_run"] == ["multi_input"]
    assert ev["merges_by_heuristic"] == {"multi_input": 4} and ev["change_merges"] == 0
    assert ev["multi_input_groups"] == 1 and "multi-input alone" in ev["reasons"][0]
    assert w["trace_command"] == f"darkmap trace cluster:{cid} --forward"
    # a CoinJoin participant: the CoinJoin it spent in is named (its inputs not merged)
    mix = next(a for a, o in sorted(truth["address_owner"].items()) if o == "mixuser:0")
    m = wallet_summary(ws, mix)["evidence"]
    assert m["coinjoins_spent_in"] and "CoinJoin" in " ".join(m["reasons"])
    ws.con.execute("CHECKPOINT")  # the CLI reads a copy (the fixture holds the original)
    shutil.copytree(d / "ws", tmp_path / "ws")
    text = CliRunner().invoke(main, ["wallet", "show", str(cid), "-w", str(tmp_path / "ws")]
                              ).output
    assert text.startswith(f"cluster:{cid}: 5 addresses")
    assert "how sure the cluster is: high (clustered with multi_input)" in text
    assert "[]" not in text
    assert "    cluster:" in text  # counterparties as the next command takes them
    assert text.rstrip().endswith(f"next: darkmap trace cluster:{cid} --forward")
    trace_text = CliRunner().invoke(main, ["trace", f"cluster:{cid}", "-w",
                                           str(tmp_path / "ws")]).output
    assert "confidence high (" in trace_text and "poison: amounts are upper bounds" in trace_text
