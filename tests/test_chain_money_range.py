"""Amounts outside Bitcoin's money range (money audit, M3): a transaction paying a negative
output, one over 21 million BTC, or outputs that together exceed it, is quarantined at
load with the file, the unit and the field named; nothing of it is stored."""

from __future__ import annotations

from pathlib import Path

from chain_support import p2pkh, unmined_block, unsigned_tx
from conftest import DATA as REAL_DATA

from darkmap.collect.ingest import load_files
from darkmap.model.bitcoin import MAX_MONEY, parse_tx
from darkmap.model.encoding import sha256d
from darkmap.store.workspace import Workspace

# block 170's input: the block-9 coinbase output; any real outpoint will do, the check is
# on the amounts alone
SPENT = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"


def _tx(values: list[int]) -> bytes:
    """A one-input transaction paying ``values`` (signed 64-bit, as the wire holds them)."""
    return unsigned_tx([(SPENT, 0)], values, fill=0x41)


def _load(tmp_path: Path, name: str, data: bytes | str) -> tuple[Workspace, object]:
    f = tmp_path / name
    if isinstance(data, str):
        f.write_text(data)
    else:
        f.write_bytes(data)
    w = Workspace.init(tmp_path / "ws")
    (r,) = load_files(w, [f])
    return w, r


def test_negative_and_huge_outputs_are_quarantined_naming_field(tmp_path: Path) -> None:
    hexes = [_tx([-100_000_000_000, 1]).hex(), _tx([2**63 - 1]).hex(),
             _tx([MAX_MONEY, 1]).hex(), _tx([MAX_MONEY - 1, 1]).hex()]
    w, r = _load(tmp_path, "forged.hex", "\n".join(hexes) + "\n")
    try:
        assert r.read == 4 and r.stored == 1 and r.quarantined == 3  # type: ignore[attr-defined]
        rows = w.con.execute("SELECT locator, field, reason, source FROM quarantine "
                             "ORDER BY locator").fetchall()
        assert [(loc, fld) for loc, fld, _, _ in rows] == [
            ("line 1", "value"), ("line 2", "value"), ("line 3", "value")]
        assert "output 0: value -100,000,000,000 sat is outside" in rows[0][2]
        assert "output 0: value 9,223,372,036,854,775,807 sat is outside" in rows[1][2]
        assert "sum to 2,100,000,000,000,001 sat" in rows[2][2]
        assert all(src.endswith("forged.hex") for *_, src in rows)
        # only the transaction at exactly the limit is stored; no negative value anywhere
        assert w.con.execute("SELECT count(*), min(value) FROM btc_txout").fetchone() == (2, 1)
    finally:
        w.close()


def test_raw_tx_file_with_negative_output_is_quarantined(tmp_path: Path) -> None:
    w, r = _load(tmp_path, "neg.bin", _tx([-5, 10]))
    try:
        assert r.stored == 0 and r.quarantined == 1  # type: ignore[attr-defined]
        assert w.con.execute("SELECT locator, field FROM quarantine").fetchall() == [
            ("tx", "value")]
        assert w.con.execute("SELECT count(*) FROM btc_tx").fetchone() == (0,)
    finally:
        w.close()


def test_block_holding_an_out_of_range_output_is_quarantined(tmp_path: Path) -> None:
    """A block whose ids all check (merkle root recomputed) but whose second transaction
    pays -1 BTC: the block is refused, naming the transaction."""
    genesis_next = (REAL_DATA / "bitcoin" / "blk_0_to_4.dat").read_bytes()
    genesis = sha256d(genesis_next[8:88])[::-1].hex()  # the genesis block's hash
    bad = _tx([-100_000_000])
    block = unmined_block(genesis, b"\x04\xff\xff\x00\x1d", [bad], 1_231_469_665)
    w, r = _load(tmp_path, "fake.blk", block)
    try:
        assert r.quarantined == 1 and r.stored == 0  # type: ignore[attr-defined]
        ((loc, fld, reason),) = w.con.execute(
            "SELECT locator, field, reason FROM quarantine").fetchall()
        assert loc == "block @0" and fld == "value"
        assert f"tx {parse_tx(bad)[0].txid} output 0: value -100,000,000 sat" in reason
        assert w.con.execute("SELECT count(*) FROM btc_blocks").fetchone() == (0,)
    finally:
        w.close()


def test_esplora_prevout_value_out_of_range_is_quarantined(tmp_path: Path) -> None:
    import json

    tx, _ = parse_tx(_tx([1000]))
    doc = {"txid": tx.txid, "version": 1, "locktime": 0,
           "vin": [{"txid": tx.inputs[0].prev_txid, "vout": 0, "scriptsig": "",
                    "sequence": 0xFFFFFFFF, "is_coinbase": False,
                    "prevout": {"scriptpubkey": p2pkh(0x11).hex(), "value": -7}}],
           "vout": [{"scriptpubkey": p2pkh(0x41).hex(), "value": 1000}], "status": {}}
    w, r = _load(tmp_path, "tx.json", json.dumps(doc))
    try:
        assert r.quarantined == 1 and r.stored == 0  # type: ignore[attr-defined]
        assert w.con.execute("SELECT locator, field FROM quarantine").fetchall() == [
            ("json tx 0", "prevout.value")]
    finally:
        w.close()

