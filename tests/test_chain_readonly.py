"""Reads never write: wallet summaries, traces and merge explanations work on a workspace
opened read-only and leave its file byte for byte as it was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.chain.cluster import explain_addresses, run_clustering
from darkmap.chain.tags import export_tagpack, sync_evidence_tags
from darkmap.chain.trace import trace
from darkmap.chain.wallet import wallet_summary
from darkmap.cli import main
from darkmap.collect.ingest import import_tagpack, load_files
from darkmap.errors import BadInputError, NotFoundError
from darkmap.simulate.market_chain import demo_market_chain
from darkmap.store.workspace import Workspace


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str, dict]:
    """A workspace like the demo's money stage leaves it: chain, TagPack, clusters and an
    address a vendor published (an evidence tag); the answers read while it was open for
    writing."""
    d = tmp_path_factory.mktemp("readonly")
    chain, truth, tagpack = demo_market_chain(peel_steps=4)
    (d / "blk00000.dat").write_bytes(chain.blk_file())
    (d / "services.yaml").write_text(tagpack)
    vendor = sorted(a for a, o in truth["address_owner"].items() if o == "vendor:v1")[0]
    ws = Workspace.init(d / "ws")
    load_files(ws, [d / "blk00000.dat"])
    import_tagpack(ws, d / "services.yaml")
    ws.con.execute(
        "INSERT INTO identifiers (ident_id, kind, value, market_id, account_id, field, "
        "capture_sha256, source, method) VALUES ('i1', 'btc_address', ?, 'alpha', "
        "'alpha:v1', 'profile', 'cafe', 'pages/alpha/v1.html', 'test@1')", [vendor])
    run_clustering(ws)
    assert sync_evidence_tags(ws) == 1
    answers = {"wallet": wallet_summary(ws, vendor),
               "trace": trace(ws, vendor, "forward", hops=10, method="haircut"),
               "explain": explain_addresses(ws, vendor)}
    ws.close()
    return d, truth, vendor, answers


def test_reads_on_a_read_only_workspace(demo: tuple[Path, dict, str, dict]) -> None:
    d, _, vendor, answers = demo
    db = d / "ws" / "darkmap.duckdb"
    before = _sha(db)
    ws = Workspace.open(d / "ws", read_only=True)
    try:
        w = wallet_summary(ws, vendor)
        assert w == answers["wallet"]
        assert w["linked_accounts"] == ["alpha:v1"] and w["n_addresses"] == 5
        assert {t["origin"] for t in w["tags"]} == {"evidence"}
        t = trace(ws, vendor, "forward", hops=10, method="haircut")
        assert t == answers["trace"] and t["cashouts"]
        assert explain_addresses(ws, vendor) == answers["explain"]
        out = d / "tags.yaml"
        assert export_tagpack(ws, out)["tags"] == 4  # 3 TagPack tags + 1 evidence tag
    finally:
        ws.close()
    assert _sha(db) == before


def test_cli_reads_open_the_workspace_read_only(demo: tuple[Path, dict, str, dict]) -> None:
    d, _, vendor, answers = demo
    db = d / "ws" / "darkmap.duckdb"
    before = _sha(db)
    runner = CliRunner()
    for args, key in ((["wallet", "show", vendor], "wallet"),
                      (["trace", vendor, "--method", "haircut"], "trace"),
                      (["chain", "explain", vendor], "explain")):
        res = runner.invoke(main, [*args, "-w", str(d / "ws"), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output) == json.loads(json.dumps(answers[key], default=str))
    assert _sha(db) == before


def test_unknown_targets_and_bad_arguments(demo: tuple[Path, dict, str, dict]) -> None:
    d, _, vendor, _ = demo
    ws = Workspace.open(d / "ws", read_only=True)
    try:
        with pytest.raises(NotFoundError, match="not a clustered address"):
            wallet_summary(ws, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        with pytest.raises(NotFoundError, match="no cluster 999999"):
            wallet_summary(ws, "cluster:999999")
        with pytest.raises(NotFoundError, match="does not appear in the loaded chain data"):
            trace(ws, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        with pytest.raises(NotFoundError, match="not in the loaded chain data"):
            explain_addresses(ws, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        with pytest.raises(BadInputError, match="unknown method"):
            trace(ws, vendor, method="sideways")
        with pytest.raises(BadInputError, match="cluster:N"):
            trace(ws, "cluster:abc")
    finally:
        ws.close()
    res = CliRunner().invoke(main, ["wallet", "show", "cluster:999999", "-w", str(d / "ws")])
    assert res.exit_code == 1 and "no cluster 999999" in res.output
