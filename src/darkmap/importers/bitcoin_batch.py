"""Columnar buffers of parsed chain data, turned into Arrow tables for a bulk load.

Parsed blocks and transactions are appended column by column (plain lists, no per-row
objects kept); :meth:`ChainBatch.arrow` hands DuckDB one Arrow table per store table.
Rows still name transactions by txid and addresses by string here: the store assigns
the integer ids in SQL, against what it already holds
(:func:`darkmap.store.chain.write_batch`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import pyarrow as pa

from darkmap.importers.bitcoin_formats import Block
from darkmap.model.bitcoin import Prevout, Tx, classify, infer_input_address

__all__ = ["ChainBatch", "is_bip69"]

_KEEP_SCRIPT = {"multisig", "nonstandard", "nulldata", "witness_unknown"}


def is_bip69(tx: Tx) -> bool:
    """True when inputs and outputs are in BIP69 (lexicographic) order."""
    ins = [(i.prev_txid, i.prev_vout) for i in tx.inputs]
    outs = [(o.value, o.script) for o in tx.outputs]
    return ins == sorted(ins) and outs == sorted(outs)


def _ts(unix: int | None) -> datetime | None:
    if unix is None or unix <= 0:
        return None
    return datetime.fromtimestamp(unix, tz=UTC).replace(tzinfo=None)


class ChainBatch:
    """Rows for btc_blocks, btc_tx, btc_txin, btc_txout and btc_prevouts, by column."""

    _SCHEMAS: ClassVar[dict[str, list[tuple[str, pa.DataType]]]] = {
        "blocks": [("block_hash", pa.string()), ("height", pa.int32()),
                   ("version", pa.int32()), ("prev_hash", pa.string()),
                   ("merkle_root", pa.string()), ("time", pa.timestamp("us")),
                   ("bits", pa.int64()), ("nonce", pa.int64()), ("n_tx", pa.int32()),
                   ("merkle_ok", pa.bool_()), ("witness_ok", pa.bool_()),
                   ("pow_ok", pa.bool_()), ("network", pa.string()), ("locator", pa.string())],
        "tx": [("seq", pa.int64()), ("txid", pa.string()), ("wtxid", pa.string()),
               ("block_hash", pa.string()), ("height", pa.int32()),
               ("block_time", pa.timestamp("us")), ("position", pa.int32()),
               ("version", pa.int32()), ("locktime", pa.int64()), ("size", pa.int32()),
               ("weight", pa.int32()), ("n_in", pa.int32()), ("n_out", pa.int32()),
               ("is_coinbase", pa.bool_()), ("segwit", pa.bool_()), ("bip69", pa.bool_()),
               ("locator", pa.string()), ("claimed_block_hash", pa.string()),
               ("claimed_height", pa.int32()), ("claimed_time", pa.timestamp("us")),
               ("block_checked", pa.bool_())],
        "txin": [("seq", pa.int64()), ("n", pa.int32()), ("prev_txid", pa.string()),
                 ("prev_vout", pa.int64()), ("value", pa.int64()), ("address", pa.string()),
                 ("script_type", pa.string()), ("addr_inferred", pa.bool_()),
                 ("sequence", pa.int64())],
        "txout": [("seq", pa.int64()), ("n", pa.int32()), ("value", pa.int64()),
                  ("script_type", pa.string()), ("address", pa.string()),
                  ("script_hex", pa.string())],
        "prevouts": [("prev_txid", pa.string()), ("vout", pa.int64()), ("value", pa.int64()),
                     ("script_type", pa.string()), ("address", pa.string()),
                     ("height", pa.int32()), ("coinbase", pa.bool_())],
    }

    def __init__(self) -> None:
        self.cols: dict[str, dict[str, list[object]]] = {
            t: {c: [] for c, _ in cols} for t, cols in self._SCHEMAS.items()}
        self.n_tx = 0
        self.script_types: dict[str, int] = {}

    def __len__(self) -> int:
        return self.n_tx

    def _row(self, table: str, *values: object) -> None:
        for col, v in zip(self.cols[table].values(), values, strict=True):
            col.append(v)

    def add_block(self, block: Block, locator: str, header_only: bool = False) -> None:
        """Add a block header row and (unless ``header_only``) all its transactions."""
        self._row("blocks", block.hash, block.height, block.version, block.prev_hash,
                  block.merkle_root, _ts(block.time), block.bits, block.nonce,
                  None if header_only else len(block.txs), block.merkle_ok,
                  block.witness_ok, block.pow_ok, block.network, locator)
        checked = bool(block.merkle_ok) and not header_only
        for pos, tx in enumerate(block.txs):
            self.add_tx(tx, f"{locator}#tx {pos}", block.hash, block.height, block.time, pos,
                        checked=checked)

    def add_tx(self, tx: Tx, locator: str, block_hash: str | None = None,
               height: int | None = None, time: int | None = None,
               position: int | None = None,
               claimed: tuple[str | None, int | None, int | None] | None = None,
               checked: bool = False) -> None:
        """Add one transaction with its inputs and outputs. ``block_hash``, ``height``,
        ``time``, ``position``: the loaded block holding it; ``checked``: that block's
        merkle root was recomputed over its transactions, this one among them (a placement
        that may rank a spender first, :func:`darkmap.store.chain.mark_conflicts`);
        ``claimed``: (block hash, height, time) a file states without the block (Esplora
        ``status``), kept as a claim, not a placement."""
        seq = self.n_tx
        self.n_tx += 1
        coinbase = tx.is_coinbase
        c_hash, c_height, c_time = claimed or (None, None, None)
        self._row("tx", seq, tx.txid, tx.wtxid if tx.segwit else None, block_hash, height,
                  _ts(time), position, tx.version, tx.locktime, tx.size, tx.weight,
                  len(tx.inputs), len(tx.outputs), coinbase, tx.segwit, is_bip69(tx), locator,
                  c_hash, c_height, _ts(c_time), checked and block_hash is not None)
        stypes = self.script_types
        for n, o in enumerate(tx.outputs):
            st, addr = classify(o.script)
            stypes[st] = stypes.get(st, 0) + 1
            self._row("txout", seq, n, o.value, st, addr,
                      o.script.hex() if st in _KEEP_SCRIPT or addr is None else None)
        for n, i in enumerate(tx.inputs):
            value = st_in = addr_in = None
            inferred = None
            if i.prevout is not None:
                value = i.prevout.value
                st_in, addr_in = classify(i.prevout.script)
                inferred = False
            elif not coinbase:
                guess = infer_input_address(i.script_sig, i.witness)
                if guess:
                    st_in, addr_in = guess
                    inferred = True
            self._row("txin", seq, n, i.prev_txid, i.prev_vout, value, addr_in, st_in,
                      inferred, i.sequence)

    def add_prevouts(self, prevouts: dict[tuple[str, int], Prevout]) -> None:
        """Add outputs known from outside (a UTXO set)."""
        for (txid, vout), p in prevouts.items():
            st, addr = classify(p.script)
            self._row("prevouts", txid, vout, p.value, st, addr, p.height, p.coinbase)

    def arrow(self) -> dict[str, pa.Table]:
        """One Arrow table per store table."""
        return {t: pa.table({c: pa.array(self.cols[t][c], type=typ) for c, typ in cols})
                for t, cols in self._SCHEMAS.items()}
