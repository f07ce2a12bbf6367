"""A backward trace (money audit, M2): its amounts are capped by what the traced source
received, poison included, and the exchanges it meets are funding sources, not cash-out
points. On the real data: the 2019 block's batch payout pays
18sqrsjPhpLrmR7BqEkJgMkoXvz3x9rHay 0.013 BTC out of a 119 BTC input of
14J5Q7ageKhM3miKd94DX44Kf6b7ko4BZe, tagged here as an exchange."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import run_clustering
from darkmap.chain.trace import _split, trace
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.model.bitcoin import TxOut, parse_tx, serialize_parts
from darkmap.store.workspace import Workspace

PAYEE = "18sqrsjPhpLrmR7BqEkJgMkoXvz3x9rHay"
PAYER = "14J5Q7ageKhM3miKd94DX44Kf6b7ko4BZe"
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"  # pays Hal Finney 10 BTC in block 170
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
TAGS = f"""title: funding
creator: test
currency: BTC
tags:
  - address: {PAYER}
    label: SomeExchange
    category: exchange
    confidence: service_data
  - address: {HAL}
    label: Kraken
    category: exchange
"""


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("back")
    ws = Workspace.init(tmp / "ws")
    try:
        load_files(ws, [REAL_DATA / "bitcoin"])
        run_clustering(ws)
    finally:
        ws.close()
    (tmp / "tags.yaml").write_text(TAGS)
    res = CliRunner().invoke(main, ["tags", "import", str(tmp / "tags.yaml"),
                                    "-w", str(tmp / "ws")])
    assert res.exit_code == 0, res.output
    return tmp / "ws"


@pytest.mark.parametrize("method", ["poison", "haircut", "fifo"])
def test_backward_amounts_never_exceed_what_the_source_received(real: Path,
                                                                  method: str) -> None:
    ws = Workspace.open(real, read_only=True)
    try:
        out = trace(ws, PAYEE, "backward", 3, method)
    finally:
        ws.close()
    assert out["source_received_sat"] == 1_300_000
    assert out["by_service_sat"] == {"SomeExchange": 1_300_000}
    assert all(h["amount_max_sat"] <= 1_300_000 for h in out["hits"])
    assert out["cashouts"] == []
    assert [(f["service"], f["address"], f["amount_sat"]) for f in out["funding_sources"]] == [
        ("SomeExchange", PAYER, 1_300_000)]


def test_forward_trace_still_lists_cash_out_points(real: Path) -> None:
    """Forward, an exchange the value reaches is a cash-out point (block 170's payment to
    Hal Finney's address, tagged as one here); backward from Hal, the same exchange tag is
    the start itself and Satoshi's untagged coin funds it: no funding source."""
    ws = Workspace.open(real, read_only=True)
    try:
        fwd = trace(ws, SATOSHI, "forward", 5, "poison")
        back = trace(ws, HAL, "backward", 5, "poison")
    finally:
        ws.close()
    assert fwd["funding_sources"] == []
    assert [(c["service"], c["address"], c["amount_sat"]) for c in fwd["cashouts"]] == [
        ("Kraken", HAL, 1_000_000_000)]
    assert back["cashouts"] == [] and back["funding_sources"] == []


def test_cli_backward_says_funding_sources_not_cash_out(real: Path) -> None:
    res = CliRunner().invoke(main, ["trace", PAYEE, "--backward", "--hops", "3",
                                    "-w", str(real)])
    assert res.exit_code == 0, res.output
    assert "cash-out" not in res.output.lower()
    assert "funding sources (exchange the money came from" in res.output
    assert f"SomeExchange         {PAYER}  0.01300000 BTC" in res.output
    assert "none more than the 0.01300000 BTC the start received" in res.output
    out = json.loads(CliRunner().invoke(main, ["trace", PAYEE, "--backward", "--hops", "3",
                                               "--json", "-w", str(real)]).output)
    assert out["cashouts"] == [] and len(out["funding_sources"]) == 1


def _p2pkh(fill: int) -> bytes:
    return b"\x76\xa9\x14" + bytes([fill]) * 20 + b"\x88\xac"


def test_backward_poison_over_a_multi_input_tx_gives_no_more_than_received(
        tmp_path: Path) -> None:
    """Review H2: P spends a real 50 BTC coinbase of blocks1-256 (tagged as an exchange) into
    10 + 10 + 29.9999 BTC; T spends P's first two outputs and pays the start 0.013 BTC.
    Each of T's two inputs was capped alone at the 0.013 BTC, so the coinbase "gave"
    0.026 BTC; the inputs now share the 0.013 BTC, and every hit is capped by it."""
    coin = "ee1afca2d1130676503a6db5d6a77075b2bf71382cfdf99231f89717b5257b5b"
    p_raw, _ = serialize_parts(1, [(bytes.fromhex(coin)[::-1], 0, b"", 0xFFFFFFFF, [])],
                               [TxOut(1_000_000_000, _p2pkh(0x41)),
                                TxOut(1_000_000_000, _p2pkh(0x42)),
                                TxOut(2_999_990_000, _p2pkh(0x43))])
    pid = bytes.fromhex(parse_tx(p_raw)[0].txid)[::-1]
    t_raw, _ = serialize_parts(1, [(pid, 0, b"", 0xFFFFFFFF, []), (pid, 1, b"", 0xFFFFFFFF, [])],
                               [TxOut(1_300_000, _p2pkh(0x51)), TxOut(1_998_690_000, _p2pkh(0x52))])
    (tmp_path / "p.hex").write_text(p_raw.hex() + "\n" + t_raw.hex() + "\n")
    ws = Workspace.init(tmp_path / "ws")
    try:
        load_files(ws, [REAL_DATA / "bitcoin" / "blocks1-256", tmp_path / "p.hex"])
        run_clustering(ws)
        addr = ("select a.address from btc_txout o join btc_tx t using(tx_id) "
                "join btc_address a using(address_id) where t.txid = ? and o.n = 0")
        funder = ws.con.execute(addr, [coin]).fetchone()[0]
        start = ws.con.execute(addr, [parse_tx(t_raw)[0].txid]).fetchone()[0]
    finally:
        ws.close()
    (tmp_path / "t.yaml").write_text(f"title: t\ncreator: t\ncurrency: BTC\ntags:\n"
                                     f"  - address: {funder}\n    label: Ex\n"
                                     "    category: exchange\n")
    res = CliRunner().invoke(main, ["tags", "import", str(tmp_path / "t.yaml"),
                                    "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    ws = Workspace.open(tmp_path / "ws", read_only=True)
    try:
        out = trace(ws, start, "backward", 3, "poison")
    finally:
        ws.close()
    assert out["source_received_sat"] == 1_300_000
    assert [(f["service"], f["amount_sat"], f["amount_max_sat"])
            for f in out["funding_sources"]] == [("Ex", 1_300_000, 1_300_000)]
    assert all(h["amount_max_sat"] <= 1_300_000 for h in out["hits"])


def test_reverse_poison_caps_the_inputs_together() -> None:
    """Five inputs of 100 BTC behind 0.013 BTC of taint share it, pro rata."""
    got = _split("poison", np.array([1.3e6]), np.array([1.3e6]),
                 np.array([1e10, 1e10, 3e10, 0.0, 5e9]), "high", True)
    assert float(got.sum()) == pytest.approx(1.3e6)
    assert got[2] == pytest.approx(3 * got[0]) and got[3] == 0.0
