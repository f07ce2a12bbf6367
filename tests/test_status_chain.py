"""`darkmap status` and chain data, found by a documentation audit: chain loaded after a
clustering left status saying "clustered" (and `wallet show` refusing the new
addresses), and blocks loaded by `chain import-etl` (which processes no file) read as
"nothing ingested yet"."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import DATA

from darkmap.chain.cluster import run_clustering
from darkmap.chain.etl_parquet import export_etl, import_etl
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.store.workspace import Workspace

CHAIN = DATA / "bitcoin"


def _stage(ws: Path) -> tuple[dict, str]:
    res = CliRunner().invoke(main, ["status", "--json", "-w", str(ws)])
    assert res.exit_code == 0, res.output
    text = CliRunner().invoke(main, ["status", "-w", str(ws)])
    assert text.exit_code == 0, text.output
    return json.loads(res.output)["stage"], text.output


def test_chain_loaded_after_clustering_makes_status_ask_for_a_new_clustering(
        tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        load_files(ws, [CHAIN / "blk_0_to_4.dat"])
        run_clustering(ws)
        load_files(ws, [CHAIN / "277647.dat"])
        new = ws.con.execute("SELECT count(*) FROM btc_address a ANTI JOIN btc_clusters c "
                             "USING (address_id)").fetchone()[0]
    assert new > 100
    stage, text = _stage(tmp_path / "ws")
    assert stage["unclustered_addresses"] == new
    assert stage["next"] == "darkmap chain cluster"
    assert f"{new:,} address(es) loaded after the last clustering" in stage["why"]
    assert f"(out of date: {new:,} address(es) loaded since are in no wallet)" in text
    with Workspace.open(tmp_path / "ws", read_only=True) as ws:
        late = ws.con.execute("SELECT a.address FROM btc_address a ANTI JOIN btc_clusters c "
                              "USING (address_id) ORDER BY a.address LIMIT 1").fetchone()[0]
    res = CliRunner().invoke(main, ["wallet", "show", late, "-w", str(tmp_path / "ws")])
    assert res.exit_code == 1
    assert "in no wallet yet (loaded after the last clustering): run `darkmap chain " \
           "cluster`" in res.output
    res = CliRunner().invoke(main, ["wallet", "show", "1NoSuchAddressXXXXXXXXXXXXXXXXXXXX",
                                    "-w", str(tmp_path / "ws")])
    assert res.exit_code == 1 and "not a clustered address or cluster id" in res.output
    with Workspace.open(tmp_path / "ws") as ws:
        run_clustering(ws)
    stage, text = _stage(tmp_path / "ws")
    assert stage["unclustered_addresses"] == 0 and stage["next"] != "darkmap chain cluster"
    assert "out of date" not in text


def test_blocks_from_import_etl_count_as_chain_data(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "a") as ws:
        load_files(ws, [CHAIN / "blk_0_to_4.dat"])
        export_etl(ws, tmp_path / "etl")
    with Workspace.init(tmp_path / "b") as ws:
        got = import_etl(ws, tmp_path / "etl")
    stage, text = _stage(tmp_path / "b")
    assert stage["files"] == 0 and stage["transactions"] == got["txs"] > 0
    assert stage["next"] == "darkmap chain cluster"
    assert f"no file; {got['txs']:,} transactions of chain data" in text
    assert "nothing ingested" not in text
