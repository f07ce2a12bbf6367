"""Competing blocks: the best chain wins, the other blocks are stale, and transactions
found only in stale blocks are left out of balances, clusters, traces and wallets.

The real data holds two chains from genesis: mainnet (blocks 1-256, headers 1-11) and
btcd's test chain in ``blk_0_to_4.dat``, whose blocks 1-4 compete with mainnet's and
whose block-4 coinbase (txid ``1e4cb731...``) pays the genesis key again.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import run_clustering
from darkmap.chain.trace import trace
from darkmap.chain.wallet import wallet_summary
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.model.best_chain import block_work, stale_blocks
from darkmap.model.bitcoin import TxOut, display_hex, frame_block
from darkmap.simulate.tx_builder import (
    Spend,
    address_for,
    block_bytes,
    build_tx,
    coinbase_tx,
    output_script,
)
from darkmap.store.workspace import Workspace

DATA = REAL_DATA / "bitcoin"
GENESIS_ADDRESS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
FORK_COINBASE = "1e4cb731517708924ce5d4efe4b305425a1f44e2172abe1c2a526d682259ec43"
MAINNET_1 = "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
FORK_BLOCKS = [  # blk_0_to_4.dat's blocks 1-4 (btcd's test chain)
    "00000000ebe5ec3e94d8dfe18100e5c0f3b1955bc6107fbe24d95732b814551b",
    "00000000952ccb1bf9b799fcd0cc654dd48363f76781f8b1c61dbf1696c39f97",
    "00000000bc3589303953766cc9364130cb97bc3749bae170f476d45f1e23f850",
    "000000002f264d6504013e73b9c913de9098d4d771c1bb219af475d2a01b128e",
]
BITS = 0x1D00FFFF


def _stale(ws: Workspace) -> list[str]:
    return [h for (h,) in ws.con.execute(
        "SELECT block_hash FROM btc_blocks WHERE stale ORDER BY height").fetchall()]


# -- the choice, on block links alone ----------------------------------------------------


def test_block_work_of_difficulty_one() -> None:
    assert block_work(BITS) == 0x100010001
    assert block_work(0) == block_work(None) == block_work(0x01800000) == 0


def test_the_branch_with_most_work_wins_whatever_the_order() -> None:
    links = [("g", "0" * 64, BITS, True), ("a1", "g", BITS, True), ("a2", "a1", BITS, True),
             ("b1", "g", BITS, True)]
    for order in itertools.permutations(links):
        assert stale_blocks(order) == {"b1"}


def test_a_tie_goes_to_the_lowest_tip_hash() -> None:
    links = [("g", None, BITS, True), ("b1", "g", BITS, True), ("a1", "g", BITS, True)]
    assert stale_blocks(links) == stale_blocks(links[::-1]) == {"b1"}


def test_work_without_proof_of_work_does_not_count() -> None:
    # a longer branch of unmined blocks claiming a high difficulty loses to one mined block
    links = [("g", None, BITS, True), ("m1", "g", BITS, True),
             *[(f"x{i}", f"x{i - 1}" if i else "g", 0x1700FFFF, False) for i in range(5)]]
    assert stale_blocks(links) == {f"x{i}" for i in range(5)}
    # unmined chains (a simulator's) are decided by length
    sim = [("g", None, BITS, False), ("a1", "g", BITS, False), ("b1", "g", BITS, False),
           ("b2", "b1", BITS, False)]
    assert stale_blocks(sim) == {"a1"}


def test_blocks_after_a_gap_are_not_stale_for_it() -> None:
    # y1 and z1 have parents that are not loaded: they cannot be placed against g's tree
    links = [("g", None, BITS, True), ("a1", "g", BITS, True), ("a2", "a1", BITS, True),
             ("y1", "missing-1", BITS, True), ("z1", "missing-2", BITS, True)]
    assert stale_blocks(links) == set()


# -- the real data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stale") / "ws"
    ws = Workspace.init(path)
    try:
        load_files(ws, [DATA])
        summary = run_clustering(ws)
        # the stale transactions are counted apart, not among those clustered
        stale = ws.con.execute("SELECT count(*) FROM btc_tx WHERE stale").fetchone()
        assert stale is not None and summary["stale_transactions_left_out"] == stale[0] > 0
        total = ws.con.execute("SELECT count(*) FROM btc_tx").fetchone()
        assert total is not None and summary["transactions"] == total[0] - stale[0]
    finally:
        ws.close()
    return path


def test_the_fork_from_genesis_is_stale_and_mainnet_is_not(real: Path) -> None:
    ws = Workspace.open(real, read_only=True)
    try:
        assert _stale(ws) == FORK_BLOCKS
        row = ws.con.execute("SELECT stale FROM btc_blocks WHERE block_hash = ?",
                             [MAINNET_1]).fetchone()
        assert row == (False,)
        stale_txs = {t for (t,) in ws.con.execute(
            "SELECT txid FROM btc_tx WHERE stale").fetchall()}
        assert FORK_COINBASE in stale_txs and len(stale_txs) == 8
    finally:
        ws.close()


def test_the_genesis_address_received_50_btc(real: Path) -> None:
    ws = Workspace.open(real, read_only=True)
    try:
        w = wallet_summary(ws, GENESIS_ADDRESS)
        assert w["received_sat"] == 50 * 10**8
        assert w["transactions"] == 1 and w["stale_transactions"] == 1
        t = trace(ws, GENESIS_ADDRESS)
        assert t["stale_transactions_left_out"] == 1
    finally:
        ws.close()
    res = CliRunner().invoke(main, ["wallet", "show", GENESIS_ADDRESS, "-w", str(real)])
    assert res.exit_code == 0, res.output
    assert "received 50.00000000 BTC" in res.output
    assert "left out: 1 transaction(s) found only in stale blocks" in res.output


def test_status_names_the_stale_blocks_and_the_transactions_left_out(real: Path) -> None:
    res = CliRunner().invoke(main, ["status", "-w", str(real)])
    assert res.exit_code == 0, res.output
    assert "4 stale block(s) off the best chain, 8 transaction(s) left out" in res.output
    for h in FORK_BLOCKS:
        assert h in res.output
    assert FORK_COINBASE in res.output


@pytest.mark.parametrize("first,later", [
    (["blk_0_to_4.dat"], ["blockheaders-mainnet-1-11.txt", "blocks1-256"]),
    (["blocks1-256"], ["blk_0_to_4.dat"]),
])
def test_stale_is_recomputed_after_each_load(tmp_path: Path, first: list[str],
                                             later: list[str]) -> None:
    ws = Workspace.init(tmp_path / "ws")
    try:
        load_files(ws, [DATA / n for n in first])
        if first == ["blk_0_to_4.dat"]:
            assert _stale(ws) == []  # one branch only: nothing competes yet
        for name in later:  # a run per file
            load_files(ws, [DATA / name])
        assert _stale(ws) == FORK_BLOCKS
    finally:
        ws.close()


def test_chain_load_names_the_stale_blocks(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["chain", "load", "--init", "-w", str(tmp_path / "ws"),
                                    str(DATA / "blk_0_to_4.dat"), str(DATA / "blocks1-256")])
    assert res.exit_code == 0, res.output
    assert "4 block(s) are stale" in res.output and FORK_BLOCKS[3] in res.output
    assert "8 transaction(s) found only in them are left out" in res.output
    # and in JSON, for a script: the blocks by height with their file, the count left out
    for cmd in (["chain", "load", "-w", str(tmp_path / "ws")],  # loaded: named still
                ["ingest", "--init", "-w", str(tmp_path / "new")]):
        again = CliRunner().invoke(main, [*cmd, "--json", str(DATA / "blk_0_to_4.dat"),
                                          str(DATA / "blocks1-256")])
        assert again.exit_code == 0, again.output
        st = json.loads(again.output)["stale_chain"]
        assert [b["block_hash"] for b in st["blocks"]] == FORK_BLOCKS
        assert [b["height"] for b in st["blocks"]] == [1, 2, 3, 4]
        assert {Path(b["source"]).name for b in st["blocks"]} == {"blk_0_to_4.dat"}
        assert st["n_transactions"] == 8 and len(st["txids"]) == 8


# -- a transaction confirmed in both branches --------------------------------------------


def _key(i: int) -> bytes:
    return bytes([2]) + bytes([i]) * 32


def _fork_files(tmp_path: Path) -> tuple[Path, Path, str, str, str]:
    """Unmined blocks R <- A1 (stale) and R <- B1 <- B2, with one payment T in A1 and B1:
    (branch A's file, branch B's file, T's txid, A1's coinbase txid, the payee)."""
    k0, k1 = _key(1), _key(2)
    cb0 = coinbase_tx(0, [TxOut(50 * 10**8, output_script("p2pkh", k0))], None)
    root, root_hash = block_bytes(b"\0" * 32, 1_600_000_000, [cb0])
    payee_script = output_script("p2pkh", k1)
    pay = build_tx([Spend(cb0.txid, 0, "p2pkh", k0)], [TxOut(49 * 10**8, payee_script)],
                   10**8)
    cb_a = coinbase_tx(1, [TxOut(51 * 10**8, output_script("p2pkh", _key(3)))], None)
    cb_b = coinbase_tx(1, [TxOut(51 * 10**8, output_script("p2pkh", _key(4)))], None)
    a1, _ = block_bytes(root_hash, 1_600_000_600, [cb_a, pay])
    b1, b1_hash = block_bytes(root_hash, 1_600_000_600, [cb_b, pay], nonce=1)
    cb_b2 = coinbase_tx(2, [TxOut(50 * 10**8, output_script("p2pkh", _key(5)))], None)
    b2, _ = block_bytes(b1_hash, 1_600_001_200, [cb_b2])
    fa, fb = tmp_path / "a.dat", tmp_path / "b.dat"
    fa.write_bytes(frame_block(root) + frame_block(a1))
    fb.write_bytes(frame_block(b2) + frame_block(b1))  # out of order
    return (fa, fb, display_hex(pay.txid), display_hex(cb_a.txid),
            address_for("p2pkh", payee_script))


def test_a_transaction_in_both_branches_counts_once_and_is_kept(tmp_path: Path) -> None:
    fa, fb, pay, cb_a, payee = _fork_files(tmp_path)
    ws = Workspace.init(tmp_path / "ws")
    try:
        load_files(ws, [fa])  # T stored with the block that will lose
        load_files(ws, [fb])
        assert len(_stale(ws)) == 1
        stale = {t for (t,) in ws.con.execute("SELECT txid FROM btc_tx WHERE stale")
                 .fetchall()}
        assert stale == {cb_a}
        assert pay not in stale
        run_clustering(ws)
        w = wallet_summary(ws, payee)
        assert w["received_sat"] == 49 * 10**8 and w["transactions"] == 1
        assert w["stale_transactions"] == 0
    finally:
        ws.close()


def test_status_counts_wallets_as_clusters_not_addresses(real: Path) -> None:
    res = CliRunner().invoke(main, ["status", "--json", "-w", str(real)])
    assert res.exit_code == 0, res.output
    stage = json.loads(res.output)["stage"]
    ws = Workspace.open(real, read_only=True)
    try:
        clusters, addresses = ws.con.execute(
            "SELECT count(DISTINCT cluster_id), count(*) FROM btc_clusters").fetchone()
    finally:
        ws.close()
    assert clusters < addresses  # 8,747 wallets of 14,172 addresses
    assert stage["wallets"] == clusters
    text = CliRunner().invoke(main, ["status", "-w", str(real)]).output
    assert f"clustered: {clusters:,} wallets" in text


@pytest.mark.parametrize("command", [["wallet", "show"], ["trace"]])
def test_a_number_of_no_cluster_says_what_a_cluster_id_is(real: Path, tmp_path: Path,
                                                          command: list[str]) -> None:
    res = CliRunner().invoke(main, [*command, "cluster:42", "-w", str(real)])
    assert res.exit_code == 1
    assert "no cluster 42: a cluster's id is the id of its first address" in res.output
    assert "`darkmap wallet show ADDRESS` shows the cluster of an address" in res.output
    assert "chain cluster" not in res.output  # it has run
    ws = Workspace.init(tmp_path / "unclustered")
    try:
        load_files(ws, [DATA / "blk_0_to_4.dat"])
    finally:
        ws.close()
    res = CliRunner().invoke(main, [*command, "cluster:42", "-w", str(tmp_path / "unclustered")])
    assert res.exit_code == 1
    assert "not clustered yet (run `darkmap chain cluster` first)" in res.output
