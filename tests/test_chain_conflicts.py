"""Coins spent twice (money audit, H1): a forged transaction, or one in a block whose proof
of work fails, that spends a coin a real mined transaction spends, is set aside with its
reason, not used in clustering, tracing or wallet figures, and the conflict is shown at
load, in `status`, and in `wallet show` and `trace` where the figures rest on it. On the
real blocks 1-255 (block 170: Satoshi pays Hal Finney 10 BTC from the block-9 coinbase)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chain_support import unmined_block, unsigned_tx
from click.testing import CliRunner
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import run_clustering
from darkmap.chain.trace import trace
from darkmap.chain.wallet import wallet_summary
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.model.bitcoin import parse_tx
from darkmap.store.chain import chain_doubts, mark_conflicts
from darkmap.store.workspace import Workspace

BLOCKS = REAL_DATA / "bitcoin" / "blocks1-256"
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
BLOCK9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
BLOCK170_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
# an unspent 50-BTC coinbase output of blocks 1-255
UNSPENT = "e1cf3476234d8446653ad52a8939ed792003eefdcd0e897319ab9d2cb4c14c8c"


FORGED = unsigned_tx([(BLOCK9_COINBASE, 0), (BLOCK170_TX, 0)], [6_000_000_000], fill=0x11)
FORGED_TXID = parse_tx(FORGED)[0].txid
CHILD = unsigned_tx([(FORGED_TXID, 0)], [5_000_000_000], fill=0x31)  # rests on the forgery


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Blocks 1-255 loaded and clustered (no forgery); the hash of the tip."""
    path = tmp_path_factory.mktemp("conflicts") / "base"
    ws = Workspace.init(path)
    try:
        load_files(ws, [BLOCKS])
        run_clustering(ws)
        (tip,) = ws.con.execute("SELECT block_hash FROM btc_blocks WHERE NOT stale "
                                "ORDER BY height DESC LIMIT 1").fetchone()
    finally:
        ws.close()
    return path, str(tip)


def _copy(base: Path, tmp: Path, *files: tuple[str, bytes | str]) -> Path:
    path = tmp / "ws"
    shutil.copytree(base, path)
    runner = CliRunner()
    for name, data in files:
        f = tmp / name
        f.write_bytes(data) if isinstance(data, bytes) else f.write_text(data)
        res = runner.invoke(main, ["chain", "load", str(f), "-w", str(path)])
        assert res.exit_code == 0, res.output
    ws = Workspace.open(path)
    try:
        run_clustering(ws)
    finally:
        ws.close()
    return path


def _figures(path: Path) -> tuple[object, ...]:
    ws = Workspace.open(path, read_only=True)
    try:
        t = trace(ws, SATOSHI, "forward", 5, "poison")
        w = wallet_summary(ws, SATOSHI)
    finally:
        ws.close()
    return (t["transactions_visited"], [(h["txid"], h["amount_sat"]) for h in t["hits"]],
            w["received_sat"], w["sent_sat"], w["n_addresses"])


def test_forged_blockless_double_spend_is_set_aside_and_shown(
        base: tuple[Path, str], tmp_path: Path) -> None:
    path = _copy(base[0], tmp_path, ("forged.hex", FORGED.hex() + "\n" + CHILD.hex() + "\n"))
    # the trail and the wallet are those of the real chain
    assert _figures(path) == _figures(base[0])
    ws = Workspace.open(path, read_only=True)
    try:
        rows = dict(ws.con.execute("SELECT txid, set_aside FROM btc_tx "
                                   "WHERE set_aside IS NOT NULL").fetchall())
        w = wallet_summary(ws, SATOSHI)
        t = trace(ws, SATOSHI, "forward", 5, "poison")
    finally:
        ws.close()
    child = parse_tx(CHILD)[0].txid
    assert set(rows) == {FORGED_TXID, child}
    assert rows[FORGED_TXID].startswith(f"spends {BLOCK9_COINBASE}:0, which {BLOCK170_TX} "
                                        "spends too and stands higher (in a block on the best "
                                        "chain with valid proof of work; this one: in no "
                                        "loaded block)")
    assert rows[child] == (f"spends an output of {FORGED_TXID}, which is set aside (a coin "
                           "spent twice before it)")
    # both spenders flagged where the wallet's and the trail's figures rest on them
    assert w["standing"]["set_aside"] == 1 and w["standing"]["kept_in_conflict"] == 1
    assert t["set_aside_transactions_left_out"] == 1
    assert t["standing"]["kept_in_conflict"] >= 1
    out = CliRunner().invoke(main, ["wallet", "show", SATOSHI, "-w", str(path)]).output
    assert "left out: 1 transaction(s) of the wallet set aside" in out
    assert "conflict: 1 transaction(s) of the wallet spend a coin" in out
    status = CliRunner().invoke(main, ["status", "-w", str(path)]).output
    assert "double spends: 1 coin(s) spent by two or more loaded transactions" in status
    assert f"    {BLOCK170_TX} (in a block on the best chain with valid proof of work): kept" \
        in status
    assert f"    {FORGED_TXID} (in no loaded block): set aside: spends" in status
    doubts = json.loads(CliRunner().invoke(main, ["status", "--json", "-w", str(path)]).output)[
        "chain_doubts"]
    assert doubts["n_conflicts"] == 1 and doubts["n_set_aside"] == 2
    assert doubts["transactions_without_block"] == 0  # both set aside: none is used


def test_load_output_names_the_conflict_whatever_the_order(base: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    """The forgery loaded into an empty workspace first, the real blocks after: the same
    transaction is set aside, and `chain load` says so."""
    (tmp_path / "forged.hex").write_text(FORGED.hex() + "\n")
    ws_path = tmp_path / "ws"
    res = CliRunner().invoke(main, ["chain", "load", "--init", str(tmp_path / "forged.hex"),
                                    "-w", str(ws_path)])
    assert res.exit_code == 0, res.output
    assert "unproven: 1 transaction(s) are in no loaded block" in res.output
    assert "double spends" not in res.output
    res = CliRunner().invoke(main, ["chain", "load", str(BLOCKS), "-w", str(ws_path)])
    assert res.exit_code == 0, res.output
    assert "double spends: 1 coin(s)" in res.output
    assert f"{FORGED_TXID} (in no loaded block): set aside" in res.output
    ws = Workspace.open(ws_path, read_only=True)
    try:
        assert ws.con.execute("SELECT txid FROM btc_tx WHERE set_aside IS NOT NULL"
                              ).fetchall() == [(FORGED_TXID,)]
    finally:
        ws.close()


def test_block_failing_proof_of_work_loses_and_is_marked(base: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    path, tip = base
    block = unmined_block(tip, b"\x02\x00\x01", [FORGED], 1_231_800_000)  # coinbase: height 256
    ws_path = _copy(path, tmp_path, ("fake256.blk", block))
    assert _figures(ws_path) == _figures(path)
    res = CliRunner().invoke(main, ["chain", "load", str(tmp_path / "fake256.blk"),
                                    "-w", str(ws_path)])
    assert "already loaded" in res.output  # the load itself was checked in _copy
    status = CliRunner().invoke(main, ["status", "-w", str(ws_path)]).output
    assert "unproven: 1 block(s) on the best chain fail their proof of work" in status
    assert (f"    {FORGED_TXID} (in a block on the best chain whose proof of work fails): "
            "set aside") in status
    # the fake block's coinbase stands, but every figure resting on it says it is unproven
    ws = Workspace.open(ws_path, read_only=True)
    try:
        (miner,) = ws.con.execute(
            "SELECT a.address FROM btc_txout o JOIN btc_address a USING (address_id) "
            "JOIN btc_tx t USING (tx_id) JOIN btc_blocks b USING (block_hash) "
            "WHERE NOT b.pow_ok AND t.is_coinbase").fetchone()
    finally:
        ws.close()
    out = CliRunner().invoke(main, ["wallet", "show", miner, "-w", str(ws_path)]).output
    assert "unproven: 1 transaction(s) of the wallet are only in blocks whose proof of " \
           "work fails" in out
    back = CliRunner().invoke(main, ["trace", miner, "--backward", "-w", str(ws_path)]).output
    assert "unproven: 1 transaction(s) of the start and the trail are only in blocks whose " \
           "proof of work fails" in back


def test_two_spenders_of_equal_standing_are_both_set_aside(base: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    one = unsigned_tx([(UNSPENT, 0)], [4_000_000_000], fill=0x61)
    two = unsigned_tx([(UNSPENT, 0)], [4_900_000_000], fill=0x71)
    path = _copy(base[0], tmp_path, ("a.hex", one.hex()), ("b.hex", two.hex()))
    ws = Workspace.open(path, read_only=True)
    try:
        rows = ws.con.execute(
            "SELECT t.txid, c.kept, t.set_aside FROM btc_conflicts c JOIN btc_tx t "
            "USING (tx_id) ORDER BY t.txid").fetchall()
        (owner,) = ws.con.execute(
            "SELECT a.address FROM btc_txout o JOIN btc_tx t USING (tx_id) JOIN btc_address a "
            "USING (address_id) WHERE t.txid = ? AND o.n = 0", [UNSPENT]).fetchone()
        w = wallet_summary(ws, owner)
    finally:
        ws.close()
    assert [(t, k) for t, k, _ in rows] == sorted(
        [(parse_tx(one)[0].txid, False), (parse_tx(two)[0].txid, False)])
    assert all("which another transaction of the same standing spends too" in (w or "")
               for *_, w in rows)
    # neither spend counts: the coin is still the owner's, and both spends are named
    assert w["sent_sat"] == 0 and w["balance_sat"] == w["received_sat"] == 5_000_000_000
    assert w["standing"]["set_aside"] == 2


def test_month_of_a_transaction_without_block_time_is_named(base: tuple[Path, str],
                                                            tmp_path: Path) -> None:
    """A spend in no block has no month (money audit, L1: the row read "None")."""
    spend = unsigned_tx([(UNSPENT, 0)], [4_000_000_000], fill=0x61)
    path = _copy(base[0], tmp_path, ("spend.hex", spend.hex()))
    ws = Workspace.open(path, read_only=True)
    try:
        (owner,) = ws.con.execute(
            "SELECT a.address FROM btc_txout o JOIN btc_tx t USING (tx_id) JOIN btc_address a "
            "USING (address_id) WHERE t.txid = ? AND o.n = 0", [UNSPENT]).fetchone()
    finally:
        ws.close()
    out = CliRunner().invoke(main, ["wallet", "show", owner, "-w", str(path)]).output
    assert "  no block time: in 0.00000000 BTC out 50.00000000 BTC" in out
    assert "None:" not in out
    assert "unproven: 1 transaction(s) of the wallet are in no loaded block" in out
    months = json.loads(CliRunner().invoke(main, ["wallet", "show", owner, "--json", "-w",
                                                  str(path)]).output)["by_month"]
    assert {"month": None, "received_sat": 0, "sent_sat": 5_000_000_000} in months


def test_trace_says_when_stored_conflicts_are_not_resolved(base: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    """A workspace whose conflicts were never resolved (loaded before the check: here its
    flags are cleared) is traced read-only: the trace says that a spender won by load
    order, and `chain cluster` resolves it."""
    path = _copy(base[0], tmp_path, ("forged.hex", FORGED.hex()))
    ws = Workspace.open(path)
    try:
        ws.con.execute("UPDATE btc_tx SET set_aside = NULL")
        ws.con.execute("DELETE FROM btc_conflicts")
    finally:
        ws.close()
    out = CliRunner().invoke(main, ["trace", SATOSHI, "-w", str(path)]).output
    assert "1 loaded output(s) are spent by two or more transactions that this workspace " \
           "has not resolved" in out
    assert CliRunner().invoke(main, ["chain", "cluster", "-w", str(path)]).exit_code == 0
    out = CliRunner().invoke(main, ["trace", SATOSHI, "-w", str(path)]).output
    assert "not resolved" not in out


def test_an_etl_row_naming_a_block_does_not_tie_with_the_block(base: tuple[Path, str],
                                                               tmp_path: Path) -> None:
    """Review H1: a one-row ETL Parquet file copies the block-170 transaction, changes its
    hash and payee and keeps `block_hash` 170. The block (loaded from the blk file, merkle
    root checked) does not hold it: the real spender is kept and the forgery set aside,
    standing as in no loaded block."""
    etl = tmp_path / "etl"
    res = CliRunner().invoke(main, ["chain", "export-etl", str(etl), "-w", str(base[0])])
    assert res.exit_code == 0, res.output
    table = pq.read_table(etl / "transactions.parquet")
    real = next(r for r in table.to_pylist() if r["hash"] == BLOCK170_TX)
    forged = copy.deepcopy(real)
    forged["hash"] = "ab" * 32
    forged["outputs"] = [dict(real["outputs"][0], index=0, value=5_000_000_000,
                              addresses=["1BitcoinEaterAddressDontSendf59kuE"])]
    (tmp_path / "etlf").mkdir()
    pq.write_table(pa.Table.from_pylist([forged], schema=table.schema),
                   tmp_path / "etlf" / "transactions.parquet")
    path = tmp_path / "ws"
    shutil.copytree(base[0], path)
    res = CliRunner().invoke(main, ["chain", "import-etl", str(tmp_path / "etlf"),
                                    "-w", str(path)])
    assert res.exit_code == 0, res.output
    ws = Workspace.open(path, read_only=True)
    try:
        rows = dict(ws.con.execute(
            "SELECT t.txid, c.kept FROM btc_conflicts c JOIN btc_tx t USING (tx_id)"
        ).fetchall())
        aside = {t for (t,) in ws.con.execute(
            "SELECT txid FROM btc_tx WHERE set_aside IS NOT NULL").fetchall()}
        t = trace(ws, SATOSHI, "forward", 5, "poison")
    finally:
        ws.close()
    assert rows == {BLOCK170_TX: True, "ab" * 32: False}
    assert aside == {"ab" * 32}
    assert t["set_aside_transactions_left_out"] == 1
    status = CliRunner().invoke(main, ["status", "-w", str(path)]).output
    assert f"    {'ab' * 32} (in no loaded block): set aside: spends" in status
    assert f"{BLOCK170_TX} (in a block on the best chain with valid proof of work): kept" \
        in status


def test_an_etl_import_with_its_blocks_file_stays_checked(base: tuple[Path, str],
                                                          tmp_path: Path) -> None:
    """export-etl then import-etl into a new workspace: the blocks file's merkle roots
    match its transactions, so every placement is checked (none without block)."""
    etl = tmp_path / "etl"
    res = CliRunner().invoke(main, ["chain", "export-etl", str(etl), "-w", str(base[0])])
    assert res.exit_code == 0, res.output
    ws = Workspace.init(tmp_path / "ws")
    ws.close()
    res = CliRunner().invoke(main, ["chain", "import-etl", str(etl), "-w",
                                    str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    ws = Workspace.open(tmp_path / "ws", read_only=True)
    try:
        n, unchecked = ws.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE block_checked IS NOT TRUE) FROM btc_tx"
        ).fetchone()
        doubts = chain_doubts(ws.con)
    finally:
        ws.close()
    assert n > 255 and unchecked == 0 and doubts.transactions_without_block == 0


def _marks(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    ws = Workspace.open(path, read_only=True)
    try:
        return (ws.con.execute("SELECT * FROM btc_conflicts ORDER BY ALL").fetchall(),
                ws.con.execute("SELECT tx_id, set_aside FROM btc_tx WHERE set_aside IS NOT "
                               "NULL ORDER BY ALL").fetchall())
    finally:
        ws.close()


def _checked_at(path: Path) -> list[tuple[object, ...]]:
    ws = Workspace.open(path, read_only=True)
    try:
        return ws.con.execute("SELECT checked_at FROM btc_conflict_checks").fetchall()
    finally:
        ws.close()


def test_loads_that_cannot_change_a_conflict_skip_the_recompute(base: tuple[Path, str],
                                                                tmp_path: Path) -> None:
    """Review M3: every file recomputed the conflicts of the whole chain. A load whose
    inputs spend no outpoint another input spends, on a chain without conflicts, now
    leaves the last whole check as it was; after every load the marks equal a whole
    recompute (an unrelated spend, then the forged double spend, its child, a second
    spender of an unspent coin, then a load after them)."""
    path = tmp_path / "ws"
    shutil.copytree(base[0], path)
    runner = CliRunner()
    steps = [("plain.hex", unsigned_tx([(UNSPENT, 0)], [4_000_000_000], fill=0x61).hex()),
             ("forged.hex", FORGED.hex()), ("child.hex", CHILD.hex()),
             ("two.hex", unsigned_tx([(UNSPENT, 0)], [4_900_000_000], fill=0x71).hex()),
             ("later.hex", unsigned_tx(
                 [("e3bf3d07d4b0375638d5f1db5255fe07ba2c4cb067cd81b84ee974b6585fb468", 0)],
                 [1_000_000_000], fill=0x81).hex())]
    before = _checked_at(path)
    assert len(before) == 1
    for k, (name, data) in enumerate(steps):
        (tmp_path / name).write_text(data)
        res = runner.invoke(main, ["chain", "load", str(tmp_path / name), "-w", str(path)])
        assert res.exit_code == 0, res.output
        if k == 0:  # nothing could change: the whole check was skipped
            assert _checked_at(path) == before
        marks = _marks(path)
        ws = Workspace.open(path)
        try:
            mark_conflicts(ws.con)
        finally:
            ws.close()
        assert _marks(path) == marks, name
    conflicts, aside = _marks(path)
    assert len(aside) == 4 and len({(p, v) for p, v, *_ in conflicts}) == 2


def test_a_workspace_never_checked_whole_is_checked_at_its_next_load(
        base: tuple[Path, str], tmp_path: Path) -> None:
    """A workspace loaded before the check holds a double spend unmarked and no whole
    check: the next load, whatever it holds, marks it."""
    path = _copy(base[0], tmp_path, ("forged.hex", FORGED.hex()))
    marks = _marks(path)
    ws = Workspace.open(path)
    try:
        ws.con.execute("DELETE FROM btc_conflicts")
        ws.con.execute("UPDATE btc_tx SET set_aside = NULL")
        ws.con.execute("DELETE FROM btc_conflict_checks")
    finally:
        ws.close()
    plain = unsigned_tx([(UNSPENT, 0)], [4_000_000_000], fill=0x61)
    (tmp_path / "plain.hex").write_text(plain.hex())
    res = CliRunner().invoke(main, ["chain", "load", str(tmp_path / "plain.hex"),
                                    "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert _marks(path) == marks and marks[1]
