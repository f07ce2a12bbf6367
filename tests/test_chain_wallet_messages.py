"""What `wallet show` and `chain explain` say where the figures are not all known: a
wallet whose inputs spend outputs that are not loaded, an address alone in its cluster,
an address the chain does not hold. On the real data (the 2019 block alone gives no
earlier outputs for its inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import run_clustering
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.store.workspace import Workspace

BLOCK_2019 = (REAL_DATA / "bitcoin" /
              "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A clustered workspace of the 2019 block and blocks 1-256, an address of the 2019
    block that only spends (its inputs' earlier outputs are not loaded) and the address
    block 1's coinbase pays (alone in its cluster)."""
    path = tmp_path_factory.mktemp("wallet") / "ws"
    ws = Workspace.init(path)
    try:
        load_files(ws, [BLOCK_2019, REAL_DATA / "bitcoin" / "blocks1-256"])
        run_clustering(ws)
        row = ws.con.execute(
            "SELECT a.address FROM btc_txin i JOIN btc_address a USING (address_id) "
            "WHERE i.value IS NULL AND i.address_id NOT IN (SELECT address_id FROM "
            "btc_txout WHERE address_id IS NOT NULL) ORDER BY a.address_id LIMIT 1"
        ).fetchone()
        miner = ws.con.execute(
            "SELECT a.address FROM btc_tx t JOIN btc_txout o USING (tx_id) "
            "JOIN btc_address a USING (address_id) WHERE t.height = 1").fetchone()
    finally:
        ws.close()
    assert row is not None and miner is not None
    return path, str(row[0]), str(miner[0])


def test_what_a_wallet_sent_is_unknown_when_its_inputs_outputs_are_not_loaded(
        real: tuple[Path, str, str]) -> None:
    path, spender, miner = real
    res = CliRunner().invoke(main, ["wallet", "show", spender, "-w", str(path)])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert "sent: unknown for " in first and "whose earlier outputs are not loaded" in first
    assert "sent 0.00000000 BTC" not in res.output
    out = json.loads(CliRunner().invoke(
        main, ["wallet", "show", spender, "--json", "-w", str(path)]).output)
    assert out["sent_unknown_inputs"] > 0 and out["balance_sat"] is None
    # a wallet whose every input is known keeps its figures
    res = CliRunner().invoke(main, ["wallet", "show", miner, "--json", "-w", str(path)])
    out = json.loads(res.output)
    assert out["sent_unknown_inputs"] == 0 and out["balance_sat"] == out["received_sat"]


def test_explain_says_an_address_is_alone_in_its_cluster(real: tuple[Path, str, str]) -> None:
    path, _, miner = real
    res = CliRunner().invoke(main, ["chain", "explain", miner, "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert f"{miner} is alone in its cluster (cluster:" in res.output
    assert "no merge joined it" in res.output


def test_explain_of_an_address_the_chain_lacks_says_so(real: tuple[Path, str, str]) -> None:
    path, _, _ = real
    res = CliRunner().invoke(main, ["chain", "explain", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
                                    "-w", str(path)])
    assert res.exit_code == 1
    assert "not in the loaded chain data: no loaded transaction pays or spends it" in res.output
    res = CliRunner().invoke(main, ["chain", "explain", "not-an-address", "-w", str(path)])
    assert res.exit_code == 1 and "is not a Bitcoin address" in res.output
