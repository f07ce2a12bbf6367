"""``change_one_time`` reads "seen before" in chain order, not load order (money audit, M4):
the same blocks loaded in two orders give the same wallets. On the real blocks 1-255 and
two blocks built on block 255: block 256 pays a coin of 1DmKBave... to Q and R (both
new), block 257 a coin of 1JXLFv... to Q (seen in 256) and W (new: the change)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import explain_addresses, run_clustering
from darkmap.collect.ingest import load_files
from darkmap.model.bitcoin import (
    TxOut,
    block_header,
    merkle_root,
    serialize_block,
    serialize_parts,
)
from darkmap.model.encoding import b58check_encode, sha256d
from darkmap.store.workspace import Workspace

# unspent coinbase outputs of blocks 1-255 and the addresses they pay
COIN_1 = "9e2eaf1d7e5178a2d116f331c340f1f7fd6de7540783ac36a7054fe9a4d64943"
COIN_2 = "43c39b8b3728c6cb26fae0fc18803ca6cf43e15fde218e3dfbd54e633cf6753e"
OWNER_1 = "1DmKBaveG8iQA7nTGpRQ1bf8cJ7zqSMCjJ"
OWNER_2 = "1JXLFv719ec3bzTXaSq7vqRFS634LErtJu"
W = b58check_encode(0, bytes([0x63]) * 20)


def _p2pkh(fill: int) -> bytes:
    return b"\x76\xa9\x14" + bytes([fill]) * 20 + b"\x88\xac"


def _spend(coin: str, outs: list[tuple[int, int]]) -> bytes:
    raw, _ = serialize_parts(1, [(bytes.fromhex(coin)[::-1], 0, b"", 0xFFFFFFFF, [])],
                             [TxOut(v, _p2pkh(f)) for v, f in outs])
    return raw


def _block(parent: str, height: int, tx: bytes, time: int) -> tuple[bytes, str]:
    cb, _ = serialize_parts(1, [(b"\x00" * 32, 0xFFFFFFFF, b"\x02" + height.to_bytes(2, "little"),
                                 0xFFFFFFFF, [])], [TxOut(5_000_000_000, _p2pkh(height % 251))])
    header = block_header(1, bytes.fromhex(parent)[::-1], merkle_root([sha256d(cb), sha256d(tx)]),
                          time, 0x1D00FFFF, 0)
    return serialize_block(header, [cb, tx]), sha256d(header)[::-1].hex()


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a workspace of blocks 1-255, block 256's file, block 257's file)."""
    tmp = tmp_path_factory.mktemp("order")
    ws = Workspace.init(tmp / "base")
    try:
        load_files(ws, [REAL_DATA / "bitcoin" / "blocks1-256"])
        (tip,) = ws.con.execute("SELECT block_hash FROM btc_blocks WHERE NOT stale "
                                "ORDER BY height DESC LIMIT 1").fetchone()
    finally:
        ws.close()
    b256, h256 = _block(str(tip), 256, _spend(COIN_1, [(2_000_000_000, 0x61),
                                                        (2_999_990_000, 0x62)]), 1_231_800_000)
    b257, _ = _block(h256, 257, _spend(COIN_2, [(1_000_000_000, 0x61),
                                                 (3_999_990_000, 0x63)]), 1_231_801_000)
    (tmp / "b256.blk").write_bytes(b256)
    (tmp / "b257.blk").write_bytes(b257)
    return tmp / "base", tmp / "b256.blk", tmp / "b257.blk"


def _wallets(base: Path, dest: Path, files: list[Path]) -> list[tuple[str, ...]]:
    shutil.copytree(base, dest)
    ws = Workspace.open(dest)
    try:
        for f in files:
            load_files(ws, [f])
        run_clustering(ws, ("multi_input", "change_one_time"))
        rows = ws.con.execute(
            "SELECT list(a.address ORDER BY a.address) FROM btc_clusters c "
            "JOIN btc_address a USING (address_id) GROUP BY c.cluster_id "
            "HAVING count(*) > 1").fetchall()
        path = explain_addresses(ws, OWNER_2, W).get("path") or []
        assert [m["heuristic"] for m in path] == ["change_one_time"]
    finally:
        ws.close()
    return sorted(tuple(r[0]) for r in rows)


def test_two_load_orders_give_the_same_wallets(blocks: tuple[Path, Path, Path],
                                               tmp_path: Path) -> None:
    base, b256, b257 = blocks
    chain_order = _wallets(base, tmp_path / "a", [b256, b257])
    reverse = _wallets(base, tmp_path / "b", [b257, b256])
    assert chain_order == reverse
    # block 257's change W joins its payer; block 256 (two new outputs) merges nothing
    assert tuple(sorted((OWNER_2, W))) in chain_order
    assert not any(OWNER_1 in w for w in chain_order)
