"""Chain data as Parquet in the blockchain-etl shape (the public Bitcoin datasets).

blockchain-etl (``bitcoin-etl``; Google BigQuery ``crypto_bitcoin``, AWS Public Blockchain
Data) publishes one row per transaction with its ``inputs`` and ``outputs`` as nested
lists of structs, and one row per block. :func:`export_etl` writes the workspace's chain
tables in that shape (``blocks.parquet``, ``transactions.parquet``); :func:`import_etl`
reads such files (darkmap's or a public dataset's) into the chain tables through the
same bulk load as every other chain format (:func:`darkmap.store.chain.write_batch`),
so ids, idempotence and late-arriving spent outputs behave alike.

Fields the public shape has no place for travel as extra ``darkmap_*`` columns (wtxid,
weight, segwit, BIP69 order, an input address inferred from its unlocking data, the
previous block hash and the block checks); readers of the public shape ignore them.
Without them (a public file): ``segwit`` is ``virtual_size < size``, BIP69 order is
recomputed from the inputs and output scripts, weight and wtxid stay unknown.

What is checked on import: no raw bytes travel, so a txid cannot be recomputed; the
block's merkle root is recomputed from its transactions' txids (all of the block's
transactions in the file, by ``index``), and, when the previous block hash is there, the
header is rebuilt and hashed (block hash and proof of work). ``witness_ok`` stays
unknown. A row of the wrong shape or with an out-of-range field is refused with the file,
row and field named.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from darkmap.capture.content_store import sha256_file
from darkmap.errors import BadInputError
from darkmap.importers.bitcoin_batch import ChainBatch
from darkmap.model.bitcoin import MAX_MONEY, block_header, merkle_root
from darkmap.model.encoding import sha256d
from darkmap.model.values import clean_btc_address
from darkmap.store import chain as store
from darkmap.store.chain_columns import etl_blocks, etl_transactions
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, transaction

__all__ = ["ETL_TYPES", "EtlImport", "EtlTables", "export_etl", "from_etl", "import_etl",
           "read_etl"]

ETL_TYPES = {
    "p2pk": "pubkey", "p2pkh": "pubkeyhash", "p2sh": "scripthash",
    "p2wpkh": "witness_v0_keyhash", "p2wsh": "witness_v0_scripthash",
    "p2tr": "witness_v1_taproot", "witness_unknown": "witness_unknown",
    "multisig": "multisig", "nulldata": "nulldata", "nonstandard": "nonstandard",
}
"""darkmap script type -> blockchain-etl (Bitcoin Core ``Solver``) type name."""
_FROM_ETL = {v: k for k, v in ETL_TYPES.items()}
_KEEP_SCRIPT = {"multisig", "nonstandard", "nulldata", "witness_unknown"}
_NULL_TXID = "0" * 64
_COINBASE_VOUT = 0xFFFFFFFF
_HEX = frozenset("0123456789abcdef")
BATCH_ROWS = 50_000
MAX_IO = 1_000_000          # inputs or outputs of one transaction (a block's worth)
_I32, _U32 = 2**31 - 1, 2**32 - 1


class EtlImport(TypedDict):
    """What :func:`import_etl` stored."""

    files: list[str]
    blocks: int
    txs: int
    txs_already_stored: int
    addresses: int


def export_etl(ws: Workspace, out_dir: Path) -> dict[str, int]:
    """Write ``blocks.parquet`` and ``transactions.parquet`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = etl_blocks(ws.con)
    pq.write_table(blocks, out_dir / "blocks.parquet")
    n = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in etl_transactions(ws.con, ETL_TYPES):
            if writer is None:
                writer = pq.ParquetWriter(out_dir / "transactions.parquet", batch.schema)
            writer.write_batch(batch)
            n += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:      # no transactions: still a readable (empty) file
        pq.write_table(pa.table({"hash": pa.array([], pa.string())}),
                       out_dir / "transactions.parquet")
    return {"blocks": blocks.num_rows, "transactions": n}


@dataclass
class EtlTables:
    """One batch of ETL rows as the chain load's tables (``ChainBatch.arrow`` shape)."""

    tables: dict[str, pa.Table]
    script_types: dict[str, int]

    def arrow(self) -> dict[str, pa.Table]:
        """The tables for :func:`darkmap.store.chain.write_batch`."""
        return self.tables



def _files(path: Path) -> tuple[list[Path], list[Path]]:
    """(block files, transaction files) of a file or a directory of ``*.parquet``."""
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    blocks = [f for f in files if "block" in f.name.lower()]
    return blocks, [f for f in files if f not in blocks]


def _parquet(path: Path) -> pq.ParquetFile:
    """``path`` opened as Parquet; a file that is not Parquet is a :class:`BadInputError`
    naming it (checked before anything is written)."""
    try:
        return pq.ParquetFile(path)
    except pa.ArrowInvalid as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInputError(f"{path}: not a Parquet file ({first}); give blockchain-etl "
                            "Parquet (`darkmap chain export-etl`'s or a public "
                            "dataset's)") from exc


def import_etl(ws: Workspace, path: Path) -> EtlImport:
    """Load blockchain-etl Parquet (a file or a directory) into the chain tables."""
    blocks_files, tx_files = _files(path)
    if not tx_files and not blocks_files:
        raise BadInputError(f"{path}: no Parquet files")
    out: EtlImport = {"files": [], "blocks": 0, "txs": 0, "txs_already_stored": 0,
                      "addresses": 0}
    block_rows: list[dict[str, Any]] = []
    for f in blocks_files:
        block_rows += _check_shape(_parquet(f).read(), f, _BLOCK_FIELDS).to_pylist()
    txids_by_block: dict[str, dict[int, str]] = {}
    for f in tx_files:
        pf = _parquet(f)
        _check_shape(pf.schema_arrow.empty_table(), f, _TX_FIELDS)
        for b in pf.iter_batches(columns=["hash", "block_hash", "index"]):
            for h, bh, i in zip(*(b.column(c).to_pylist() for c in ("hash", "block_hash",
                                                                      "index")), strict=True):
                if bh is not None and i is not None:
                    txids_by_block.setdefault(bh, {})[int(i)] = h
    checked: set[tuple[str, int, str]] = set()
    with transaction(ws.con):
        if block_rows:
            tabs = _empty_tables()
            tabs["blocks"] = _blocks_table(block_rows, txids_by_block, blocks_files[0])
            checked = _checked_members(tabs["blocks"], txids_by_block)
            counts = store.write_batch(ws.con, EtlTables(tabs, {}), Provenance(
                sha256_file(blocks_files[0]), str(blocks_files[0]), "etl_parquet", None))
            out["blocks"] += int(counts["blocks"])
        for f in tx_files:
            prov = Provenance(sha256_file(f), str(f), "etl_parquet", None)
            out["files"].append(str(f))
            for tables in read_etl(f):
                _mark_checked(tables, checked)
                _repeats_agree(ws.con, tables, f)
                counts = store.write_batch(ws.con, tables, prov)
                out["txs"] += int(counts["txs"])
                out["txs_already_stored"] += int(counts["txs_already_stored"])
                out["addresses"] += int(counts["addresses"])
    return out


def _checked_members(blocks: pa.Table, txids: dict[str, dict[int, str]]
                     ) -> set[tuple[str, int, str]]:
    """(block hash, index, txid) of every transaction of a block whose merkle root the
    file's transactions recompute (review H1: only such a placement is proven)."""
    out: set[tuple[str, int, str]] = set()
    for bh, ok in zip(blocks.column("block_hash").to_pylist(),
                      blocks.column("merkle_ok").to_pylist(), strict=True):
        if ok and bh is not None:
            out.update((str(bh), i, t) for i, t in txids.get(str(bh), {}).items())
    return out


def _mark_checked(tables: EtlTables, checked: set[tuple[str, int, str]]) -> None:
    """Set ``block_checked`` on the rows of ``tables`` that :func:`_checked_members`
    proves; every other row's block stays a claim."""
    tx = tables.tables["tx"]
    if not checked or not tx.num_rows:
        return
    flags = [(bh, p, t) in checked for bh, p, t in zip(
        tx.column("block_hash").to_pylist(), tx.column("position").to_pylist(),
        tx.column("txid").to_pylist(), strict=True)]
    k = tx.schema.get_field_index("block_checked")
    tables.tables["tx"] = tx.set_column(k, "block_checked", pa.array(flags, pa.bool_()))


# -- a txid stated twice -------------------------------------------------------------

def _repeats_agree(con: Any, tables: EtlTables, path: Path) -> None:
    """Refuse a transaction whose txid is already stored, or repeats in the batch, with
    other inputs or outputs. A txid cannot be recomputed here (no raw bytes travel), and
    the store keeps the first of each txid, so a second, different body would be dropped
    silently. The same body again (a re-import; the two coinbases Bitcoin itself holds
    twice, BIP 30) passes. An address counts only where both sides know one."""
    tabs = tables.arrow()
    rows = store.repeated_txids(con, tabs["tx"])
    if not rows:
        return
    mine = _batch_bodies(tabs, pa.array([s for s, _ in rows], pa.int64()))
    ref = store.stored_tx_bodies(con, sorted({t for _, t in rows}))
    first_row: dict[str, int] = {}
    for seq, txid in rows:
        body = mine[seq]
        if txid not in ref:
            ref[txid], first_row[txid] = body, seq
            continue
        field = _differs(ref[txid], body)
        if field:
            than = (f"row {first_row[txid]}" if txid in first_row
                    else "the transaction already stored")
            raise BadInputError(f"{path}: row {seq}: hash {txid} is repeated with other "
                                f"{field} than {than}")


def _batch_bodies(tabs: dict[str, pa.Table], seqs: pa.Array[Any]) -> dict[int, store.TxBody]:
    tx = tabs["tx"].filter(pc.is_in(tabs["tx"].column("seq"), seqs))
    out: dict[int, store.TxBody] = {int(s): (int(i), int(o), {}, {}) for s, i, o in zip(
        *(tx.column(c).to_pylist() for c in ("seq", "n_in", "n_out")), strict=True)}
    outs = tabs["txout"].filter(pc.is_in(tabs["txout"].column("seq"), seqs))
    for s, n, v, a in zip(*(outs.column(c).to_pylist()
                            for c in ("seq", "n", "value", "address")), strict=True):
        out[int(s)][2][int(n)] = (int(v), a)
    ins = tabs["txin"].filter(pc.is_in(tabs["txin"].column("seq"), seqs))
    for s, n, p, v in zip(*(ins.column(c).to_pylist()
                            for c in ("seq", "n", "prev_txid", "prev_vout")), strict=True):
        out[int(s)][3][int(n)] = (p, int(v))
    return out


def _differs(a: store.TxBody, b: store.TxBody) -> str | None:
    """The first field in which two bodies of one txid disagree, or None."""
    if a[0] != b[0] or a[3].keys() != b[3].keys():
        return "inputs"
    if a[1] != b[1] or a[2].keys() != b[2].keys():
        return "outputs"
    for n, (txid, vout) in a[3].items():
        if b[3][n][0] != txid:
            return "inputs.spent_transaction_hash"
        if b[3][n][1] != vout:
            return "inputs.spent_output_index"
    for n, (value, addr) in a[2].items():
        if b[2][n][0] != value:
            return "outputs.value"
        if addr is not None and b[2][n][1] is not None and b[2][n][1] != addr:
            return "outputs.addresses"
    return None


# -- shape checks -------------------------------------------------------------------

_TX_FIELDS = {"hash": "string", "block_hash": "string", "block_number": "int",
              "block_timestamp": "timestamp", "index": "int", "is_coinbase": "bool",
              "inputs": "list", "outputs": "list", "version": "int", "lock_time": "int",
              "size": "int", "virtual_size": "int"}
_BLOCK_FIELDS = {"hash": "string", "number": "int", "version": "int", "merkle_root": "string",
                 "timestamp": "timestamp", "nonce": "string", "bits": "string",
                 "transaction_count": "int"}
_INPUT_FIELDS = ("index", "spent_transaction_hash", "spent_output_index", "sequence", "type",
                 "addresses", "value")
_OUTPUT_FIELDS = ("index", "script_hex", "type", "addresses", "value")


def _kind(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "list"
    return str(t)


def _check_shape(tbl: pa.Table, path: Path, fields: dict[str, str]) -> pa.Table:
    """Raise a one-line :class:`BadInputError` naming the file and field when a
    blockchain-etl column is missing or of the wrong type."""
    for name, kind in fields.items():
        if name not in tbl.column_names:
            raise BadInputError(f"{path}: not blockchain-etl Parquet (no column {name!r})")
        got = _kind(tbl.schema.field(name).type)
        if got != kind:
            raise BadInputError(f"{path}: column {name!r} is {got}, expected {kind}")
    for col, need in (("inputs", _INPUT_FIELDS), ("outputs", _OUTPUT_FIELDS)):
        if col in fields:
            item = tbl.schema.field(col).type.value_type
            names = {item.field(k).name for k in range(item.num_fields)} \
                if pa.types.is_struct(item) else set()
            missing = [n for n in need if n not in names]
            if missing:
                raise BadInputError(f"{path}: {col} items lack field {missing[0]!r}")
    return tbl


# -- conversion ---------------------------------------------------------------------

def read_etl(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[EtlTables]:
    """The transactions of one ETL Parquet file as chain-load tables, batch by batch."""
    pf = _parquet(path)
    _check_shape(pf.schema_arrow.empty_table(), path, _TX_FIELDS)
    offset = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        yield from_etl(pa.Table.from_batches([batch]), path, offset)
        offset += batch.num_rows


def _naive(col: Any) -> Any:
    """A timestamp column as naive UTC microseconds (``btc_tx.block_time``)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_timestamp(arr.type):
        raise BadInputError("block_timestamp is not a timestamp")
    # a zoned timestamp holds UTC instants: dropping the zone keeps the UTC wall time
    return arr.cast(pa.timestamp(arr.type.unit)).cast(pa.timestamp("us"))


_LAST_TIME = datetime(2106, 2, 7, 6, 28, 15)  # a block's time is 32-bit Unix seconds


def _times(arr: Any, path: Path, rows: Any, fld: str) -> Any:
    """``arr`` (naive UTC timestamps), each within what a block header can state."""
    bad = pc.fill_null(pc.or_(pc.less(arr, pa.scalar(datetime(1970, 1, 1), arr.type)),
                              pc.greater(arr, pa.scalar(_LAST_TIME, arr.type))), False)
    if pc.any(bad).as_py():
        k = int(pc.index(bad, True).as_py())
        raise BadInputError(f"{path}: row {int(rows[k])}: {fld} {arr[k].as_py()} is out of "
                            "range (a block's time is 1970 to 2106)")
    return arr


def _field(items: Any, name: str) -> Any:
    return pc.struct_field(items, name)


def _col(tbl: pa.Table, name: str, typ: Any) -> Any:
    if name not in tbl.column_names:
        return pa.nulls(tbl.num_rows, typ)
    return tbl.column(name).combine_chunks().cast(typ)


def _txid_list(values: list[Any], path: Path, row0: int, fld: str,
               rows: Any = None) -> list[str | None]:
    """The hashes of ``values`` in lower case; the first one that is not 64 hex digits
    refused, named by its row (``rows[k]`` when given: an input's or output's
    transaction, else ``row0 + k``)."""
    out: list[str | None] = []
    for k, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        s = str(v).lower()
        if len(s) != 64 or not set(s) <= _HEX:
            row = int(rows[k]) if rows is not None else row0 + k
            raise BadInputError(f"{path}: row {row}: {fld} is not a 64-hex-digit hash")
        out.append(s)
    return out


def _ints(arr: Any, path: Path, rows: Any, fld: str, lo: int, hi: int) -> Any:
    """``arr`` (integers) as int64, each value within ``lo``..``hi`` (nulls pass); the
    first one out of range refused with its row (``rows[k]``) and field named."""
    try:
        ints = arr.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise BadInputError(f"{path}: {fld} holds a value that is no 64-bit integer") from None
    low, high = pa.scalar(lo, pa.int64()), pa.scalar(hi, pa.int64())
    bad: Any = pc.fill_null(pc.or_(pc.less(ints, low), pc.greater(ints, high)), False)
    if pc.any(bad).as_py():
        k = int(pc.index(bad, True).as_py())
        raise BadInputError(f"{path}: row {int(rows[k])}: {fld} {ints[k].as_py()} is out of "
                            f"range ({lo:,} to {hi:,})")
    return ints


def _unique_per_row(parents: Any, index: Any, path: Path, fld: str) -> None:
    """Refuse an ``index`` missing, or repeated among the items of one transaction
    (``parents``): the store numbers a transaction's inputs and outputs by it."""
    if index.null_count:
        k = int(pc.index(pc.is_null(index), True).as_py())
        raise BadInputError(f"{path}: row {int(parents[k])}: {fld} is missing")
    idx = index.to_numpy(zero_copy_only=False).astype(np.int64)
    keys = np.asarray(parents, dtype=np.int64) * (_U32 + 1) + idx
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if len(same):
        k = int(order[same[0] + 1])
        raise BadInputError(f"{path}: row {int(parents[k])}: {fld} {int(idx[k])} is repeated "
                            "in one transaction")


def _outputs_in_range(values: Any, parents: Any, path: Path) -> None:
    """Refuse the first transaction whose outputs add up to more than :data:`MAX_MONEY`
    (each is in range already): consensus refuses it, and the other chain formats
    quarantine it (``money_range_problem``; review of the money fixes, L2: five outputs
    of 21 million BTC each were stored)."""
    if not len(parents):
        return
    vals = values.to_numpy(zero_copy_only=False)
    rows, at = np.unique(parents, return_inverse=True)
    # float sums are exact below 2**53 sat, far above MAX_MONEY: the test is exact
    over = np.flatnonzero(np.bincount(at, weights=vals.astype(np.float64)) > MAX_MONEY)
    if len(over):
        k = int(over[0])
        total = sum(int(v) for v in vals[at == k])
        raise BadInputError(f"{path}: row {int(rows[k])}: outputs.value adds up to "
                            f"{total:,} sat, over {MAX_MONEY:,} (21,000,000 BTC)")


def _hex_scripts(scripts: list[Any], path: Path, rows: Any) -> None:
    """Refuse the first output script that is not hex (an even number of hex digits)."""
    for k, s in enumerate(scripts):
        if s is not None and (len(s) % 2 or not set(str(s).lower()) <= _HEX):
            raise BadInputError(f"{path}: row {int(rows[k])}: outputs.script_hex is not hex")


def _coinbase_agrees(flags: list[Any], prev: list[str | None], parents: Any, offset: int,
                     path: Path) -> None:
    """Refuse a transaction whose ``is_coinbase`` disagrees with its inputs: a coinbase
    spends nothing (its input names no transaction), any other spends outputs."""
    spends: dict[int, set[bool]] = {}
    for t, p in zip(parents.tolist(), prev, strict=True):
        spends.setdefault(int(t), set()).add(p is not None)
    for k, flag in enumerate(flags):
        kinds = spends.get(offset + k, set())
        if flag is not None and kinds and (True in kinds if flag else False in kinds):
            raise BadInputError(
                f"{path}: row {offset + k}: is_coinbase is {str(bool(flag)).lower()} but "
                f"{'an input spends an output' if flag else 'an input spends nothing'}")


def _address(addrs: list[str] | None) -> str | None:
    """darkmap's one address of an input or output: the only valid one listed."""
    if not addrs or len(addrs) != 1:
        return None
    return clean_btc_address(addrs[0])


def _types(values: list[Any]) -> list[str | None]:
    """darkmap script types of ETL type names (unknown names: ``nonstandard``)."""
    return [_FROM_ETL.get(str(v), "nonstandard") if v is not None else None for v in values]


def from_etl(tbl: pa.Table, path: Path, offset: int = 0) -> EtlTables:
    """Convert one batch of ETL transaction rows (rows ``offset``.. of ``path``)."""
    n = tbl.num_rows
    seq = pa.array(range(offset, offset + n), pa.int64())
    txid = _txid_list(tbl.column("hash").to_pylist(), path, offset, "hash")
    if None in txid:
        raise BadInputError(f"{path}: row {offset + txid.index(None)}: hash is missing")
    ins = tbl.column("inputs").combine_chunks()
    outs = tbl.column("outputs").combine_chunks()
    for name, lists in (("inputs", ins), ("outputs", outs)):
        lens = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
        if len(lens) and lens.max() > MAX_IO:
            k = int(lens.argmax())
            raise BadInputError(f"{path}: row {offset + k}: {name} has {lens[k]} items "
                                f"(limit {MAX_IO})")
    rows = seq.to_numpy()
    size = _ints(_col(tbl, "size", pa.int64()), path, rows, "size", 0, _I32)
    vsize = _ints(_col(tbl, "virtual_size", pa.int64()), path, rows, "virtual_size", 0, _I32)
    segwit = _col(tbl, "darkmap_segwit", pa.bool_())
    inferred_segwit = pc.fill_null(pc.less(vsize, size), False)
    segwit = pc.if_else(pc.is_null(segwit), inferred_segwit, segwit)
    # inputs and outputs, flattened
    in_parent = pc.list_parent_indices(ins).to_numpy() + offset
    in_items = pc.list_flatten(ins)
    out_parent = pc.list_parent_indices(outs).to_numpy() + offset
    out_items = pc.list_flatten(outs)
    prev = _txid_list(_field(in_items, "spent_transaction_hash").to_pylist(), path, offset,
                      "inputs.spent_transaction_hash", rows=in_parent)
    vout = _ints(_field(in_items, "spent_output_index"), path, in_parent,
                 "inputs.spent_output_index", 0, _U32).to_pylist()
    coinbase_in = [p is None for p in prev]
    _coinbase_agrees(_col(tbl, "is_coinbase", pa.bool_()).to_pylist(), prev, in_parent,
                     offset, path)
    in_value = _ints(_field(in_items, "value"), path, in_parent, "inputs.value", 0, MAX_MONEY)
    in_index = _ints(_field(in_items, "index"), path, in_parent, "inputs.index", 0, _I32)
    _unique_per_row(in_parent, in_index, path, "inputs.index")
    in_sequence = _ints(_field(in_items, "sequence"), path, in_parent, "inputs.sequence", 0,
                        _U32)
    in_types = _types(_field(in_items, "type").to_pylist())
    in_addr = [_address(a) for a in _field(in_items, "addresses").to_pylist()]
    names = {in_items.type.field(k).name for k in range(in_items.type.num_fields)}
    inferred = (_field(in_items, "darkmap_addr_inferred").to_pylist()
                if "darkmap_addr_inferred" in names else
                [False if v is not None else None for v in in_value.to_pylist()])
    out_types = [t or "nonstandard" for t in _types(_field(out_items, "type").to_pylist())]
    out_addr = [_address(a) for a in _field(out_items, "addresses").to_pylist()]
    out_script = _field(out_items, "script_hex").to_pylist()
    _hex_scripts(out_script, path, out_parent)
    out_value = _ints(_field(out_items, "value"), path, out_parent, "outputs.value", 0, MAX_MONEY)
    out_index = _ints(_field(out_items, "index"), path, out_parent, "outputs.index", 0, _I32)
    _unique_per_row(out_parent, out_index, path, "outputs.index")
    if out_value.null_count:
        k = int(pc.index(pc.is_null(out_value), True).as_py())
        raise BadInputError(f"{path}: row {out_parent[k]}: outputs.value is missing")
    _outputs_in_range(out_value, out_parent, path)
    given: list[bool | None] = _col(tbl, "darkmap_bip69", pa.bool_()).to_pylist()
    bip69: list[bool | None] = given
    if None in given:
        bip69 = list(_bip69(given, prev, vout, in_parent - offset, out_value.to_pylist(),
                            out_script, out_parent - offset))
    n_in = pc.list_value_length(ins).cast(pa.int32())
    n_out = pc.list_value_length(outs).cast(pa.int32())
    stypes: dict[str, int] = {}
    for t in out_types:
        stypes[t] = stypes.get(t, 0) + 1
    tx = pa.table({
        "seq": seq, "txid": pa.array(txid, pa.string()),
        "wtxid": _col(tbl, "darkmap_wtxid", pa.string()),
        "block_hash": _col(tbl, "block_hash", pa.string()),
        "height": _ints(_col(tbl, "block_number", pa.int64()), path, rows, "block_number",
                        0, _I32).cast(pa.int32()),
        "block_time": _times(_naive(tbl.column("block_timestamp")), path, rows,
                             "block_timestamp"),
        "position": _ints(_col(tbl, "index", pa.int64()), path, rows, "index", 0,
                          _I32).cast(pa.int32()),
        "version": _ints(_col(tbl, "version", pa.int64()), path, rows, "version", -_I32 - 1,
                         _I32).cast(pa.int32()),
        "locktime": _ints(_col(tbl, "lock_time", pa.int64()), path, rows, "lock_time", 0,
                          _U32),
        "size": size.cast(pa.int32()),
        "weight": _ints(_col(tbl, "darkmap_weight", pa.int64()), path, rows, "darkmap_weight",
                        0, _I32).cast(pa.int32()),
        "n_in": pc.fill_null(n_in, 0), "n_out": pc.fill_null(n_out, 0),
        "is_coinbase": _col(tbl, "is_coinbase", pa.bool_()).fill_null(False),
        "segwit": segwit, "bip69": pa.array(bip69, pa.bool_()),
        "locator": pa.array([f"{path.name}#row {offset + k}" for k in range(n)], pa.string()),
        # no claim beside the placement (the Esplora importer's status claims)
        "claimed_block_hash": pa.nulls(n, pa.string()),
        "claimed_height": pa.nulls(n, pa.int32()),
        "claimed_time": pa.nulls(n, pa.timestamp("us")),
        # a row naming a block is no proof the block holds it: import_etl checks it
        "block_checked": pa.array(np.zeros(n, dtype=bool), pa.bool_()),
    })
    txin = pa.table({
        "seq": pa.array(in_parent, pa.int64()),
        "n": in_index.cast(pa.int32()),
        "prev_txid": pa.array([p or _NULL_TXID for p in prev], pa.string()),
        "prev_vout": pa.array([_COINBASE_VOUT if c else v
                               for c, v in zip(coinbase_in, vout, strict=True)], pa.int64()),
        "value": in_value, "address": pa.array(in_addr, pa.string()),
        "script_type": pa.array([None if c else t for c, t in zip(coinbase_in, in_types,
                                                                   strict=True)], pa.string()),
        "addr_inferred": pa.array(inferred, pa.bool_()),
        "sequence": in_sequence,
    })
    keep = [t in _KEEP_SCRIPT or a is None for t, a in zip(out_types, out_addr, strict=True)]
    txout = pa.table({
        "seq": pa.array(out_parent, pa.int64()),
        "n": out_index.cast(pa.int32()),
        "value": out_value, "script_type": pa.array(out_types, pa.string()),
        "address": pa.array(out_addr, pa.string()),
        "script_hex": pa.array([s if k else None for s, k in zip(out_script, keep,
                                                                    strict=True)], pa.string()),
    })
    tabs = _empty_tables()
    tabs.update({"tx": tx, "txin": txin, "txout": txout})
    return EtlTables(tabs, stypes)


def _bip69(given: list[bool | None], prev: list[str | None], vout: list[Any],
           in_tx: Any, values: list[int], scripts: list[str | None], out_tx: Any) -> list[bool]:
    """BIP69 order per transaction where the file does not say (needs output scripts)."""
    ins: dict[int, list[tuple[str, int]]] = {}
    for t, p, v in zip(in_tx.tolist(), prev, vout, strict=True):
        ins.setdefault(t, []).append((p or _NULL_TXID, int(v) if v is not None else 0))
    outs: dict[int, list[tuple[int, bytes]]] = {}
    unknown: set[int] = set()
    for t, v, s in zip(out_tx.tolist(), values, scripts, strict=True):
        if s is None:
            unknown.add(t)
            continue
        outs.setdefault(t, []).append((v, bytes.fromhex(s)))
    out: list[bool] = []
    for t, g in enumerate(given):
        if g is not None:
            out.append(bool(g))
            continue
        # BIP69 compares txids as the bytes are hashed (internal order): reversed display
        i = [(bytes.fromhex(p)[::-1], v) for p, v in ins.get(t, [])]
        o = outs.get(t, [])
        out.append(t not in unknown and i == sorted(i) and o == sorted(o))
    return out


def _empty_tables() -> dict[str, pa.Table]:
    """Empty chain-load tables (the ``ChainBatch`` schemas)."""
    return ChainBatch().arrow()


def _blocks_table(rows: list[dict[str, Any]], txids: dict[str, dict[int, str]],
                  path: Path) -> pa.Table:
    """Block rows with darkmap's checks recomputed from what the file gives."""
    cols: dict[str, list[Any]] = {k: [] for k in (
        "block_hash", "height", "version", "prev_hash", "merkle_root", "time", "bits", "nonce",
        "n_tx", "merkle_ok", "witness_ok", "pow_ok", "network", "locator")}
    for k, r in enumerate(rows):
        where = f"{path}: row {k}"
        bhash = _txid_list([r["hash"]], path, k, "hash")[0]
        if bhash is None:
            raise BadInputError(f"{where}: hash is missing")
        for fld, lo, hi in (("number", 0, _I32), ("version", -_I32 - 1, _I32),
                            ("transaction_count", 0, MAX_IO)):
            v = r.get(fld)
            if v is not None and not lo <= int(v) <= hi:
                raise BadInputError(f"{where}: {fld} {v} is out of range ({lo:,} to {hi:,})")
        root = _txid_list([r["merkle_root"]], path, k, "merkle_root")[0]
        prev = _txid_list([r.get("darkmap_prev_hash")], path, k, "darkmap_prev_hash")[0]
        try:
            bits, nonce = int(str(r["bits"]), 16), int(str(r["nonce"]), 16)
        except ValueError:
            raise BadInputError(f"{where}: bits or nonce is not hex") from None
        if not (0 <= bits < 2**32 and 0 <= nonce < 2**32):
            raise BadInputError(f"{where}: bits or nonce out of range")
        ts: datetime | None = r["timestamp"]
        if ts is not None and ts.tzinfo is not None:
            ts = ts.astimezone(UTC).replace(tzinfo=None)
        mine = txids.get(bhash or "", {})
        n_tx = r.get("transaction_count")
        merkle_ok = None
        if mine and root and n_tx is not None and sorted(mine) == list(range(int(n_tx))):
            merkle_ok = merkle_root([bytes.fromhex(mine[i])[::-1] for i in range(int(n_tx))]
                                    )[::-1].hex() == root
        pow_ok = None
        if prev and root and bhash and ts is not None and r.get("version") is not None:
            header = block_header(int(r["version"]), bytes.fromhex(prev)[::-1],
                                  bytes.fromhex(root)[::-1], int(_epoch(ts)), bits, nonce)
            digest = sha256d(header)[::-1].hex()
            pow_ok = digest == bhash and int(digest, 16) <= _target(bits)
        cols["block_hash"].append(bhash)
        cols["height"].append(r.get("number"))
        cols["version"].append(r.get("version"))
        cols["prev_hash"].append(prev)
        cols["merkle_root"].append(root)
        cols["time"].append(ts)
        cols["bits"].append(bits)
        cols["nonce"].append(nonce)
        cols["n_tx"].append(n_tx)
        cols["merkle_ok"].append(merkle_ok)
        cols["witness_ok"].append(None)
        cols["pow_ok"].append(pow_ok)
        cols["network"].append(r.get("darkmap_network") or "main")
        cols["locator"].append(f"{path.name}#row {k}")
    schema = _empty_tables()["blocks"].schema
    return pa.table(cols, schema=schema)


def _epoch(ts: datetime) -> float:
    return (ts - datetime(1970, 1, 1)).total_seconds()


def _target(bits: int) -> int:
    exp, mant = bits >> 24, bits & 0x007FFFFF
    return mant << (8 * (exp - 3)) if exp > 3 else mant >> (8 * (3 - exp))
