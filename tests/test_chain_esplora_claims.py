"""What Esplora JSON may not decide (money audit, H2): a `prevout` that contradicts the
input's own unlocking data is quarantined, and a `status` (block hash, height, time) is
kept as the file's claim, never as a placement. On a real two-input P2PKH transaction of
the 2018 block, whose fields are kept (so the txid checks) while its JSON lies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA as REAL_DATA

from darkmap.collect.ingest import load_files
from darkmap.importers.bitcoin_formats import parse_block
from darkmap.model.bitcoin import Tx, infer_input_address, script_for_address
from darkmap.store.chain import chain_doubts
from darkmap.store.workspace import Workspace

BLOCK_2018 = next((REAL_DATA / "bitcoin").glob("block-00000000000000000021868c*.blk"))
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"


@pytest.fixture(scope="module")
def real_tx() -> tuple[Tx, int]:
    """A non-segwit transaction of the 2018 block with two P2PKH inputs, and the block's
    height."""
    block = parse_block(BLOCK_2018.read_bytes())
    for tx in block.txs[1:]:
        owners = [infer_input_address(i.script_sig, i.witness) for i in tx.inputs]
        if len(owners) == 2 and not tx.segwit and all(o and o[0] == "p2pkh" for o in owners):
            assert block.height is not None
            return tx, block.height
    raise AssertionError("no two-input P2PKH transaction in the 2018 block")


def _esplora(tx: Tx, prevout_of: list[str], status: dict[str, Any]) -> dict[str, Any]:
    return {"txid": tx.txid, "version": tx.version, "locktime": tx.locktime,
            "vin": [{"txid": i.prev_txid, "vout": i.prev_vout, "scriptsig": i.script_sig.hex(),
                     "sequence": i.sequence, "is_coinbase": False,
                     "prevout": {"scriptpubkey": script_for_address(a).hex(),
                                 "value": 5_000_000_000}}
                    for i, a in zip(tx.inputs, prevout_of, strict=True)],
            "vout": [{"scriptpubkey": o.script.hex(), "value": o.value} for o in tx.outputs],
            "status": status}


def _owners(tx: Tx) -> list[str]:
    return [o[1] for o in (infer_input_address(i.script_sig, i.witness) for i in tx.inputs)
            if o]


def test_prevout_paying_another_owner_than_the_input_key_is_quarantined(
        real_tx: tuple[Tx, int], tmp_path: Path) -> None:
    tx, _ = real_tx
    owners = _owners(tx)
    lie = _esplora(tx, [SATOSHI, owners[1]], {})
    honest = _esplora(tx, owners, {})
    f = tmp_path / "txs.json"
    f.write_text(json.dumps([lie, honest]))
    ws = Workspace.init(tmp_path / "ws")
    try:
        (r,) = load_files(ws, [f])
        assert (r.read, r.stored, r.quarantined) == (2, 1, 1)
        ((loc, fld, reason),) = ws.con.execute(
            "SELECT locator, field, reason FROM quarantine").fetchall()
        assert (loc, fld) == ("json tx 0", "vin[0].prevout")
        assert reason == (f"tx {tx.txid} input 0: its prevout pays {SATOSHI}, but its own "
                          f"unlocking data (p2pkh) belongs to {owners[0]}: the claimed spent "
                          "output is not the one it spends")
        # the honest copy is stored, each input credited to its own key's address
        assert ws.con.execute(
            "SELECT list(a.address ORDER BY i.n) FROM btc_txin i JOIN btc_address a "
            "USING (address_id)").fetchone() == (owners,)
        assert ws.con.execute("SELECT count(*) FROM btc_address WHERE address = ?",
                              [SATOSHI]).fetchone() == (0,)
    finally:
        ws.close()


def test_status_is_a_claim_until_a_loaded_block_holds_the_transaction(
        real_tx: tuple[Tx, int], tmp_path: Path) -> None:
    tx, height = real_tx
    claim = {"confirmed": True, "block_height": 170, "block_hash": "00" * 32,
             "block_time": 1_231_731_025}
    f = tmp_path / "tx.json"
    f.write_text(json.dumps(_esplora(tx, _owners(tx), claim)))
    ws = Workspace.init(tmp_path / "ws")
    try:
        load_files(ws, [f])
        row = ws.con.execute(
            "SELECT block_hash, height, block_time, claimed_block_hash, claimed_height, "
            "strftime(claimed_time, '%Y-%m-%d %H:%M:%S') FROM btc_tx").fetchone()
        assert row == (None, None, None, "00" * 32, 170, "2009-01-12 03:30:25")
        # the real block arrives: the transaction is placed where the block puts it
        load_files(ws, [BLOCK_2018])
        row = ws.con.execute(
            "SELECT height, block_hash, claimed_height FROM btc_tx WHERE txid = ?",
            [tx.txid]).fetchone()
        assert row == (height, BLOCK_2018.name[len("block-"):-len(".blk")], 170)
    finally:
        ws.close()


BLOCK_170 = "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"


def test_an_esplora_placement_stored_before_the_fix_becomes_a_claim(
        real_tx: tuple[Tx, int], tmp_path: Path) -> None:
    """Review M1: a workspace loaded before migration 025 holds the 2018 transaction with
    its Esplora `status` as a placement in block 170 (block hash, height, time, but no
    position: the old Esplora path alone stored that). Opened now, the placement moves to
    the claimed columns, so the transaction is in no loaded block; the real placements
    (with a position) stay."""
    tx, _ = real_tx
    f = tmp_path / "txs.json"
    f.write_text(json.dumps([_esplora(tx, _owners(tx), {})]))
    ws = Workspace.init(tmp_path / "ws")
    try:
        load_files(ws, [REAL_DATA / "bitcoin" / "blocks1-256", f])
        # the rows as the code before the fix wrote them, and the fix not yet applied
        ws.con.execute(
            "UPDATE btc_tx SET block_hash = ?, height = 170, block_time = TIMESTAMP "
            "'2009-01-12 03:30:25', position = NULL, claimed_block_hash = NULL, "
            "claimed_height = NULL, claimed_time = NULL, block_checked = NULL "
            "WHERE txid = ?", [BLOCK_170, tx.txid])
        ws.con.execute("DELETE FROM schema_migrations WHERE version = 27")
        placed = ws.con.execute("SELECT count(*) FROM btc_tx WHERE block_hash IS NOT NULL "
                                "AND txid <> ?", [tx.txid]).fetchone()
    finally:
        ws.close()
    ws = Workspace.open(tmp_path / "ws")
    try:
        row = ws.con.execute(
            "SELECT block_hash, height, block_time, claimed_block_hash, claimed_height, "
            "strftime(claimed_time, '%Y-%m-%d %H:%M:%S') FROM btc_tx WHERE txid = ?",
            [tx.txid]).fetchone()
        assert row == (None, None, None, BLOCK_170, 170, "2009-01-12 03:30:25")
        assert ws.con.execute("SELECT count(*) FROM btc_tx WHERE block_hash IS NOT NULL"
                              ).fetchone() == placed
        assert chain_doubts(ws.con).transactions_without_block == 1
    finally:
        ws.close()
