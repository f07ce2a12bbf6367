"""blockchain-etl Parquet: the real blocks go out in the public shape and come back equal."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from darkmap.chain.etl_parquet import ETL_TYPES, export_etl, import_etl
from darkmap.collect.ingest import load_files
from darkmap.errors import BadInputError
from darkmap.store.chain_columns import etl_blocks, etl_transactions
from darkmap.store.workspace import Workspace


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """A workspace holding every real chain file, and its ETL export."""
    root = tmp_path_factory.mktemp("etl")
    ws = Workspace.init(root / "a")
    load_files(ws, [data_dir / "bitcoin"])
    out = root / "etl"
    counts = export_etl(ws, out)
    yield ws, out, counts
    ws.close()


def _txs(ws: Workspace) -> pa.Table:
    return pa.Table.from_batches(list(etl_transactions(ws.con, ETL_TYPES)))


def test_export_is_the_public_shape(loaded):
    ws, out, counts = loaded
    tx = pq.read_table(out / "transactions.parquet")
    assert counts["transactions"] == tx.num_rows > 4000
    for col in ("hash", "block_hash", "block_number", "block_timestamp", "index", "inputs",
                "outputs", "input_count", "output_count", "fee", "is_coinbase"):
        assert col in tx.column_names
    assert tx.schema.field("block_timestamp").type.tz == "UTC"
    genesis = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    first = tx.filter(pc.equal(tx.column("hash"), genesis)).to_pylist()[0]
    # the genesis coinbase: 50 BTC to Satoshi's key, shown as its P2PKH address
    assert first["block_number"] == 0
    assert first["is_coinbase"] and first["inputs"][0]["spent_transaction_hash"] is None
    assert first["outputs"][0]["type"] == "pubkey"
    assert first["outputs"][0]["addresses"] == ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]
    assert first["outputs"][0]["value"] == 5_000_000_000
    # fees: inputs minus outputs wherever every input value is known
    known = tx.filter(pc.is_valid(tx.column("fee")))
    assert known.num_rows > 700
    assert pc.all(pc.greater_equal(known.column("fee"), 0)).as_py()


def test_round_trip_real_blocks(loaded, tmp_path: Path):
    ws, out, _ = loaded
    back = Workspace.init(tmp_path / "b")
    res = import_etl(back, out)
    assert res["txs"] == _txs(ws).num_rows and res["blocks"] == etl_blocks(ws.con).num_rows
    assert _txs(back).equals(_txs(ws))
    # every block field and check comes back, except the witness commitment check: the
    # coinbase witness is not in the shape, so it is unknown (null), never claimed
    got, want = etl_blocks(back.con), etl_blocks(ws.con)
    assert got.drop_columns(["darkmap_witness_ok"]).equals(
        want.drop_columns(["darkmap_witness_ok"]))
    assert got.column("darkmap_witness_ok").null_count == got.num_rows
    assert pc.sum(pc.fill_null(want.column("darkmap_witness_ok"), False)).as_py() == 2
    again = import_etl(back, out)            # idempotent: nothing is stored twice
    assert again["txs"] == 0 and again["txs_already_stored"] == res["txs"]
    back.close()


def test_public_file_without_darkmap_columns(loaded, tmp_path: Path):
    """A public dataset's file has no darkmap_* columns: segwit is inferred from the
    sizes, the merkle roots are still recomputed from the txids."""
    ws, out, _ = loaded
    tx = pq.read_table(out / "transactions.parquet")
    public = tx.drop_columns([c for c in tx.column_names if c.startswith("darkmap_")])
    bl = pq.read_table(out / "blocks.parquet")
    d = tmp_path / "public"
    d.mkdir()
    pq.write_table(public, d / "transactions.parquet")
    pq.write_table(bl.drop_columns(["darkmap_merkle_ok", "darkmap_pow_ok"]),
                   d / "blocks.parquet")
    back = Workspace.init(tmp_path / "p")
    import_etl(back, d)
    got, want = _txs(back), _txs(ws)
    assert got.column("darkmap_segwit").equals(want.column("darkmap_segwit"))
    assert pc.sum(got.column("darkmap_segwit").cast(pa.int64())).as_py() > 0
    for col in ("hash", "block_number", "block_timestamp", "outputs", "fee", "input_value"):
        assert got.column(col).equals(want.column(col)), col
    blocks = etl_blocks(back.con)
    assert pc.all(blocks.column("darkmap_merkle_ok")).as_py()
    assert pc.all(blocks.column("darkmap_pow_ok")).as_py()
    back.close()


def test_damaged_files_name_file_row_field(loaded, tmp_path: Path):
    _, out, _ = loaded
    tx = pq.read_table(out / "transactions.parquet")
    bad = tmp_path / "no_inputs.parquet"
    pq.write_table(tx.drop_columns(["inputs"]), bad)
    w = Workspace.init(tmp_path / "w")
    with pytest.raises(BadInputError, match=r"no_inputs\.parquet.*'inputs'"):
        import_etl(w, bad)
    hashes = tx.column("hash").to_pylist()
    hashes[7] = "zz" + hashes[7][2:]
    bad2 = tmp_path / "bad_hash.parquet"
    pq.write_table(tx.set_column(0, "hash", pa.array(hashes)), bad2)
    with pytest.raises(BadInputError, match=r"bad_hash\.parquet: row 7: hash"):
        import_etl(w, bad2)
    w.close()
