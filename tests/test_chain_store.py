"""Loading chain files into the workspace: ids, prevout resolution, idempotency, JSON inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA as REAL_DATA

from darkmap.collect.ingest import load_files
from darkmap.errors import BadInputError
from darkmap.importers.bitcoin_formats import iter_framed_blocks, parse_block, read_utxostore
from darkmap.importers.blockchain import BitcoinImporter
from darkmap.model.bitcoin import classify
from darkmap.plugins import SourceFile, best_importer
from darkmap.store.workspace import Workspace

DATA = REAL_DATA / "bitcoin"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = Workspace.init(tmp_path_factory.mktemp("chainws"))
    results = load_files(w, [DATA])
    yield w, results
    w.close()


def test_every_file_loads_and_counts_reconcile(ws):
    w, results = ws
    by_name = {Path(r.source).name: r for r in results}
    assert "LICENSE" not in by_name  # skipped by the shared file walker
    for name, r in by_name.items():
        assert r.error is None, r.error
        assert r.quarantined == 0 and r.read == r.stored, name
    assert by_name["blocks1-256"].fmt == "blk" and by_name["megatx.bin"].fmt == "tx"
    assert by_name["277647.utxostore"].fmt == "utxostore"
    assert by_name["blockheaders-mainnet-1-11.txt"].read == 11
    n_expected = sum(len(parse_block(f.read_bytes()).txs) for f in DATA.glob("*.blk"))
    got = w.con.execute("SELECT count(*) FROM btc_tx WHERE height IN (540107, 574200)").fetchone()
    assert got[0] == n_expected


def test_ids_are_dense_and_txids_unique(ws):
    w, _ = ws
    n, mx, distinct = w.con.execute(
        "SELECT count(*), max(tx_id), count(DISTINCT txid) FROM btc_tx").fetchone()
    assert mx == n - 1 and distinct == n
    n, mx, distinct = w.con.execute(
        "SELECT count(*), max(address_id), count(DISTINCT address) FROM btc_address").fetchone()
    assert mx == n - 1 and distinct == n
    # every output row exists once and outputs are numbered 0..n_out-1
    bad = w.con.execute(
        "SELECT count(*) FROM btc_tx t WHERE n_out <> (SELECT count(*) FROM btc_txout o "
        "WHERE o.tx_id = t.tx_id) OR n_in <> (SELECT count(*) FROM btc_txin i "
        "WHERE i.tx_id = t.tx_id)").fetchone()[0]
    assert bad == 0


def test_block_277647_inputs_filled_from_utxo_file(ws):
    w, _ = ws
    missing, total = w.con.execute(
        "SELECT count(*) FILTER (WHERE i.value IS NULL OR i.address_id IS NULL), count(*) "
        "FROM btc_txin i JOIN btc_tx t USING (tx_id) "
        "WHERE t.height = 277647 AND NOT t.is_coinbase").fetchone()
    assert total == 732 and missing == 0
    # spot-check one input against the UTXO file decoded independently
    utxos = read_utxostore((DATA / "277647.utxostore").read_bytes())
    (txid, vout), p = next(iter(utxos.items()))
    row = w.con.execute(
        "SELECT i.value, a.address FROM btc_txin i JOIN btc_address a USING (address_id) "
        "WHERE i.prev_txid = ? AND i.prev_vout = ?", [txid, vout]).fetchone()
    assert row == (p.value, classify(p.script)[1])


def test_headers_completed_and_heights_from_genesis(ws):
    w, _ = ws
    n, with_tx, ok = w.con.execute(
        "SELECT count(*), count(n_tx), count(*) FILTER (WHERE merkle_ok) FROM btc_blocks"
    ).fetchone()
    assert n == with_tx == ok
    heights = dict(w.con.execute(
        "SELECT block_hash, height FROM btc_blocks WHERE height < 300").fetchall())
    assert heights["000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"] == 0
    assert heights["00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"] == 1


def test_non_chain_file_is_refused(tmp_path, ws):
    """A file given that is not chain data was one quarantined unit (its capture, a
    quarantine row, a run), exit 0: now it is refused before anything is stored."""
    w, _ = ws
    f = tmp_path / "notes.txt"
    f.write_text("these are not the blocks you are looking for\n")
    before = w.table_counts()
    with pytest.raises(BadInputError, match=r"notes\.txt: not chain data; expected Bitcoin "
                                            r"blocks or transactions .*; nothing was loaded"):
        load_files(w, [DATA / "megatx.bin", f])
    assert w.table_counts() == before


def test_a_folder_quarantines_its_files_that_are_not_chain_data(tmp_path):
    """In a folder with chain files, one that is not chain data is one quarantined unit
    with its reason (the folder is not refused: `ingest --importer bitcoin` does the
    same)."""
    folder = tmp_path / "chain"
    folder.mkdir()
    (folder / "notes.txt").write_text("these are not the blocks you are looking for\n")
    (folder / "megatx.bin").write_bytes((DATA / "megatx.bin").read_bytes())
    with Workspace.init(tmp_path / "ws") as w:
        results = {Path(r.source).name: r for r in load_files(w, [folder])}
    r = results["notes.txt"]
    assert r.error and "not a recognised Bitcoin format" in r.error
    assert (r.read, r.stored, r.quarantined, r.fmt) == (1, 0, 1, None)
    assert r.reasons == ["file: not a recognised Bitcoin format"]
    assert results["megatx.bin"].fmt == "tx"


def test_reload_is_a_noop(ws):
    w, _ = ws
    before = w.table_counts()
    again = load_files(w, [DATA / "blocks1-256", DATA / "megatx.bin"])
    assert all(r.already for r in again)
    assert w.table_counts()["btc_tx"] == before["btc_tx"]


def test_importer_sniffs_every_format(ws):
    imp = BitcoinImporter()
    for f in sorted(DATA.iterdir()):
        head = f.read_bytes()[:65536]
        src = SourceFile(path=f, source=str(f), sha256="x", head=head)
        fmt, score = imp.detect(src)
        if f.name == "LICENSE":
            assert score == 0
        else:
            assert fmt is not None and score >= 0.8, f.name
            assert best_importer(src) is not None and best_importer(src).name == "bitcoin"


def test_getblock_json_is_checked_and_fills_prevouts(tmp_path):
    raw = next(iter_framed_blocks((DATA / "277647.dat").read_bytes()))[1]
    b = parse_block(raw)
    utxos = read_utxostore((DATA / "277647.utxostore").read_bytes())
    from darkmap.model.bitcoin import serialize_tx

    def vin(i):
        p = utxos.get((i.prev_txid, i.prev_vout))
        d = {"txid": i.prev_txid, "vout": i.prev_vout}
        if p is not None:
            d["prevout"] = {"value": f"{p.value / 1e8:.8f}",
                            "scriptPubKey": {"hex": p.script.hex()}}
        return d

    doc = {"hash": b.hash, "height": 277647, "version": b.version,
           "previousblockhash": b.prev_hash, "merkleroot": b.merkle_root, "time": b.time,
           "bits": f"{b.bits:08x}", "nonce": b.nonce,
           "tx": [{"txid": t.txid, "hash": t.wtxid, "hex": serialize_tx(t).hex(),
                   "vin": [vin(i) for i in t.inputs]} for t in b.txs]}
    good = tmp_path / "block.json"
    good.write_text(json.dumps(doc))
    doc["tx"][5]["txid"] = "00" * 32  # a JSON that lies about an id
    bad = tmp_path / "liar.json"
    bad.write_text(json.dumps(doc))
    w = Workspace.init(tmp_path / "ws")
    r_good, r_bad = load_files(w, [good, bad])
    assert r_good.fmt == "getblock_json" and r_good.stored == 1 and r_good.quarantined == 0
    assert r_bad.quarantined == 1 and "hashes to" in r_bad.reasons[0]
    filled = w.con.execute("SELECT count(value) FROM btc_txin").fetchone()[0]
    assert filled == 732  # every prevout came with the JSON
    in_block = w.con.execute("SELECT count(*) FROM btc_txin WHERE prev_tx_id IS NOT NULL"
                             ).fetchone()[0]
    spent_here = sum(1 for t in b.txs for i in t.inputs
                     if i.prev_txid in {x.txid for x in b.txs})
    assert in_block == spent_here > 0
    w.close()


def test_esplora_json_recomputes_txid(tmp_path):
    from darkmap.model.bitcoin import parse_tx

    tx, _ = parse_tx(bytes.fromhex((DATA / "bip69-2.hex").read_text().strip()))
    doc = {"txid": tx.txid, "version": tx.version, "locktime": tx.locktime,
           "vin": [{"txid": i.prev_txid, "vout": i.prev_vout, "scriptsig": i.script_sig.hex(),
                    "sequence": i.sequence, "is_coinbase": False,
                    "prevout": {"scriptpubkey": tx.outputs[0].script.hex(), "value": 12345}}
                   for i in tx.inputs],
           "vout": [{"scriptpubkey": o.script.hex(), "value": o.value} for o in tx.outputs],
           "status": {"confirmed": True, "block_height": 100, "block_time": 1_300_000_000}}
    f = tmp_path / "esplora.json"
    f.write_text(json.dumps([doc, {**doc, "locktime": 7}]))
    w = Workspace.init(tmp_path / "ws")
    (r,) = load_files(w, [f])
    assert r.fmt == "esplora_json" and r.stored == 1 and r.quarantined == 1
    assert w.con.execute("SELECT sum(value) FROM btc_txin").fetchone()[0] == 12345 * 2
    w.close()


def test_corrupted_block_is_quarantined(tmp_path):
    data = bytearray((DATA / "blk_0_to_4.dat").read_bytes())
    # flip one byte inside the second block's coinbase script: merkle root no longer matches
    second = list(iter_framed_blocks(bytes(data)))[1][0]
    data[second + 8 + 80 + 1 + 4 + 1 + 36 + 2] ^= 0xFF
    f = tmp_path / "blk00000.dat"
    f.write_bytes(bytes(data))
    w = Workspace.init(tmp_path / "ws")
    (r,) = load_files(w, [f])
    assert r.read == 5 and r.stored == 4 and r.quarantined == 1
    assert "merkle root" in r.reasons[0]
    q = w.con.execute("SELECT locator, field FROM quarantine").fetchall()
    assert q == [(f"block @{second}", "merkle_root")]
    w.close()


def test_darkmap_ingest_uses_the_table_hook(tmp_path):
    from darkmap.collect.ingest import ingest

    w = Workspace.init(tmp_path / "ws")
    summary = ingest(w, [DATA / "blk_0_to_4.dat", DATA / "bip69-1.hex"])
    t = summary.totals()
    assert t["read"] == t["stored"] == 6 and t.get("files_failed", 0) == 0
    assert w.con.execute("SELECT count(*) FROM btc_blocks").fetchone()[0] == 5
    assert w.con.execute("SELECT count(*) FROM btc_tx").fetchone()[0] == 9 + 1
    w.close()


def test_chain_load_is_ingest_with_the_bitcoin_importer(tmp_path):
    """`darkmap chain load` and `darkmap ingest` store the same tables; the CLI prints the
    chain counts the importer returned through the pipeline."""
    from click.testing import CliRunner
    from conftest import table_snapshot

    from darkmap.cli import main
    from darkmap.collect.ingest import ingest

    files = [DATA / "blk_0_to_4.dat", DATA / "bip69-1.hex", DATA / "277647.utxostore"]
    a = Workspace.init(tmp_path / "a")
    results = load_files(a, files)
    assert [r.fmt for r in results] == ["blk", "hex", "utxostore"]
    assert results[0].counts["blocks"] == 5 and results[0].counts["format"] == "blk"
    b = Workspace.init(tmp_path / "b")
    ingest(b, files)
    assert table_snapshot(a) == table_snapshot(b)
    a.close()
    b.close()
    refused = CliRunner().invoke(main, ["chain", "load", "-w", str(tmp_path / "c"),
                                        *map(str, files)])
    assert refused.exit_code == 1 and "no workspace there" in refused.output
    assert not (tmp_path / "c").exists()
    res = CliRunner().invoke(main, ["chain", "load", "--init", "-w", str(tmp_path / "c"),
                                    *map(str, files)])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0].split()
    assert first[:2] == ["blk_0_to_4.dat", "blk"] and first[-2:] == ["txs", "9"]
    again = CliRunner().invoke(main, ["chain", "load", "-w", str(tmp_path / "c"), "--json",
                                      str(files[0])])
    doc = json.loads(again.output)
    (r,) = doc["files"]
    assert r["already"] and r["stored"] == 5 and r["counts"] == {}
    # the stale blocks are named in JSON too (the fork of blk_0_to_4.dat is the only
    # branch loaded here, so nothing competes with it yet)
    assert doc["stale_chain"] == {"blocks": [], "n_transactions": 0, "txids": []}
