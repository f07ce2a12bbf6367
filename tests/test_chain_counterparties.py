"""Who paid a wallet and whom it paid (money audit, M1): a counterparty is credited the
wallet's share of a transaction, never the whole of it, so the rows never add up to more
than the wallet received or sent; CoinJoins are left out and counted. On the real data
(blocks 1-256, the 2018 and 2019 blocks...) and a crafted CoinJoin spending three real
coins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import run_clustering
from darkmap.chain.wallet import wallet_summary
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.model.bitcoin import TxOut, parse_tx, serialize_parts
from darkmap.store import chain as store
from darkmap.store.workspace import Workspace

# three unspent 50-BTC coinbase outputs of blocks 1-256, each of its own miner
COINS = ("ee1afca2d1130676503a6db5d6a77075b2bf71382cfdf99231f89717b5257b5b",
         "e0175970efb4417950921bfcba2a3a1e88c007c21232ff706009cc70b89210b4",
         "9e2eaf1d7e5178a2d116f331c340f1f7fd6de7540783ac36a7054fe9a4d64943")
# the 2019 block's batch payout: 119.13347295 BTC in, 0.013 BTC of it to this address
PAYEE = "18sqrsjPhpLrmR7BqEkJgMkoXvz3x9rHay"
PAYER = "14J5Q7ageKhM3miKd94DX44Kf6b7ko4BZe"


def _p2pkh(fill: int) -> bytes:
    return b"\x76\xa9\x14" + bytes([fill]) * 20 + b"\x88\xac"


def _coinjoin() -> bytes:
    """Three strangers' coins in, three equal 40-BTC outputs and three changes out (the
    JoinMarket shape the clustering detects)."""
    ins = [(bytes.fromhex(t)[::-1], 0, b"", 0xFFFFFFFF, []) for t in COINS]
    outs = [TxOut(4_000_000_000, _p2pkh(0x21 + k)) for k in range(3)] + \
           [TxOut(999_990_000, _p2pkh(0x31 + k)) for k in range(3)]
    raw, _ = serialize_parts(1, ins, outs)
    return raw


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The real data and the crafted CoinJoin, clustered with multi_input; the txid of
    the CoinJoin."""
    tmp = tmp_path_factory.mktemp("cp")
    cj = tmp / "cj.hex"
    cj.write_text(_coinjoin().hex() + "\n")
    ws = Workspace.init(tmp / "ws")
    try:
        load_files(ws, [REAL_DATA / "bitcoin", cj])
        run_clustering(ws)
    finally:
        ws.close()
    return tmp / "ws", parse_tx(_coinjoin())[0].txid


def test_payee_of_a_batch_payout_is_paid_its_own_share(real: tuple[Path, str]) -> None:
    path, _ = real
    ws = Workspace.open(path, read_only=True)
    try:
        w = wallet_summary(ws, PAYEE)
    finally:
        ws.close()
    assert w["received_sat"] == 1_300_000
    assert [(c["example_address"], c["received_sat"]) for c in w["paid_by"]] == [
        (PAYER, 1_300_000)]
    assert "never the whole" in w["counterparties_rule"]


def test_no_wallet_is_credited_more_than_it_received_or_sent(real: tuple[Path, str]) -> None:
    """Every wallet that spends in or is paid by a transaction with several outputs and a
    known input value: its counterparties add up to at most its totals."""
    path, _ = real
    ws = Workspace.open(path, read_only=True)
    try:
        cids = [int(c) for (c,) in ws.con.execute(
            "SELECT DISTINCT c.cluster_id FROM btc_tx t JOIN btc_txout o USING (tx_id) "
            "JOIN btc_clusters c USING (address_id) WHERE t.n_out > 1 AND t.n_in > 0 "
            "AND NOT t.is_coinbase ORDER BY 1 LIMIT 150").fetchall()]
        assert len(cids) == 150
        checked = 0
        for cid in cids:
            f = store.wallet_facts(ws.con, cid, limit=100_000)
            paid = sum(c["sent_sat"] for c in f.paid_to)
            paid_by = sum(c["received_sat"] for c in f.paid_by)
            assert paid <= f.sent_sat, (cid, paid, f.sent_sat)
            assert paid_by <= f.received_sat, (cid, paid_by, f.received_sat)
            checked += bool(f.paid_to or f.paid_by)
        assert checked > 100
    finally:
        ws.close()


def test_coinjoin_participant_is_not_shown_paying_the_others(real: tuple[Path, str]) -> None:
    path, cj_txid = real
    ws = Workspace.open(path, read_only=True)
    try:
        tx_id = ws.con.execute("SELECT tx_id FROM btc_tx WHERE txid = ?", [cj_txid]).fetchone()
        assert tx_id is not None
        assert ws.con.execute("SELECT kind FROM btc_coinjoins WHERE tx_id = ?",
                              [tx_id[0]]).fetchone() == ("joinmarket",)
        (spender,) = ws.con.execute(
            "SELECT a.address FROM btc_txin i JOIN btc_address a USING (address_id) "
            "WHERE i.tx_id = ? AND i.n = 0", [tx_id[0]]).fetchone()
    finally:
        ws.close()
    res = CliRunner().invoke(main, ["wallet", "show", spender, "--json", "-w", str(path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["sent_sat"] == 5_000_000_000
    assert out["paid_to"] == [] and out["counterparties_left_out"] == {"coinjoin": 1}
    text = CliRunner().invoke(main, ["wallet", "show", spender, "-w", str(path)]).output
    assert "left out: 1 transaction(s) CoinJoin(s)" in text
    assert "  paid (" not in text


def test_cli_shows_paid_by_with_the_share(real: tuple[Path, str]) -> None:
    path, _ = real
    res = CliRunner().invoke(main, ["wallet", "show", PAYEE, "-w", str(path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    at = lines.index("  paid by (counterparty cluster, the wallet's share, an address of it, "
                     "its tags):")
    assert lines[at + 1].endswith(f" 0.01300000 BTC  {PAYER}")
    assert any(ln.startswith("  counterparties: each counterparty is credited") for ln in lines)
