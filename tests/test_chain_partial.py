"""What tracing and wallets say when the loaded chain is partial, on the real blocks
(every file of shared/data/bitcoin: blocks 0-256, a 2018 and a 2019 block, block 277647
with its UTXO set): inputs whose spent output is not loaded (value unknown), coins known
only from the UTXO file, outputs whose later spends are not loaded.

The figures are the independent audit's (docs/chain.md, "Tracing" and "Wallets").
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA as REAL_DATA

from darkmap.chain.cluster import run_clustering
from darkmap.chain.graph import load_arrays
from darkmap.chain.trace import _split
from darkmap.cli import main
from darkmap.collect.ingest import load_files
from darkmap.store.workspace import Workspace

DATA = REAL_DATA / "bitcoin"
TX_770 = "770cd0fbc9cc9fc5b161c78a24cad255fc9fc247e801f7b65118938f9b3b9888"
TX_CB1 = "cb1fe5451029c31714e28f755d3d2dcbd9b6e7581761341127f8aad9ae661c5d"
TAGS = """title: test services
creator: tests
is_public: false
currency: BTC
tags:
- {address: 39CUiVZVtwAXxHX76x2Jb6yfHNbkuXxg39, label: ExA, category: exchange}
- {address: 3JodN7GmkHdPgKj9G7HCkn9NDLhrcWCjVN, label: ExB, category: exchange}
- {address: 3MfV62sLQMyna5gAVnmB2NV1kXTcyGAz6n, label: ExC, category: exchange}
- {address: 3MDEQjKX72wi9ZCFLsd6AMr5ifYPBRwoWj, label: ExD, category: exchange}
- {address: 11zro2wX8v6mkd99VuQShMrisZNLxYFNm, label: ExE, category: exchange}
"""


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every real chain file, clustered (multi_input), with test service tags."""
    base = tmp_path_factory.mktemp("partial")
    path = base / "ws"
    ws = Workspace.init(path)
    try:
        load_files(ws, [DATA])
        run_clustering(ws)
    finally:
        ws.close()
    (base / "tags.yaml").write_text(TAGS)
    res = CliRunner().invoke(main, ["tags", "import", "-w", str(path), str(base / "tags.yaml")])
    assert res.exit_code == 0, res.output
    return path


def _run(path: Path, *args: str) -> dict:
    res = CliRunner().invoke(main, [*args, "-w", str(path), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _hits(out: dict) -> dict[tuple[str, int], dict]:
    return {(h["txid"], h["vout"]): h for h in out["hits"]}


# -- finding 1: fifo (and haircut) through an input of unknown value -------------------


def test_fifo_never_gives_more_than_the_known_values_prove(real: Path) -> None:
    """770cd0fb: input 0 (unknown value, first in line) holds at least 2,280,260 -
    80,000 = 2,200,260 sat, so the source's 80,000 sat reach output 0 (2,268,600 sat) for
    at most 68,340 sat and output 1 (11,660 sat) for at most 11,660 sat; both could also
    have gone to a large fee, so nothing is proven."""
    out = _run(real, "trace", "38NHteHQ5HkwiCkdJZ5as78FrFkmCmgpCz", "--forward",
               "--method", "fifo")
    hits = _hits(out)
    h0, h1 = hits[(TX_770, 0)], hits[(TX_770, 1)]
    assert h0["amount_sat"] <= 68_340 and h0["amount_sat"] == 0
    assert h0["amount_max_sat"] == 68_340
    assert (h1["amount_sat"], h1["amount_max_sat"]) == (0, 11_660)
    for h in (h0, h1):
        assert h["uncertain"] and any("input 0" in r and "2,200,260" in r
                                      for r in h["uncertain_reasons"])
    assert out["by_service_sat"] == {"ExA": 0, "ExB": 0}
    assert out["by_service_max_sat"] == {"ExA": 68_340, "ExB": 11_660}
    [u] = out["uncertain_transactions"]
    assert (u["txid"], u["inputs_of_unknown_value"], u["unknown_at_least_sat"]) == (
        TX_770, [0], 2_200_260)
    text = CliRunner().invoke(main, ["trace", "38NHteHQ5HkwiCkdJZ5as78FrFkmCmgpCz",
                                     "--method", "fifo", "-w", str(real)]).output
    assert "uncertain: 1 transaction(s)" in text and "up to 0.00068340 BTC" in text


def test_fifo_second_case_and_haircut_say_the_range(real: Path) -> None:
    """cb1fe545: input 1 (8,144,486 sat, traced) alone covers the outputs, input 0 is
    unknown: the outputs receive anything from 0 to their whole value."""
    for method in ("fifo", "haircut"):
        out = _run(real, "trace", "3LwVXr3hD25ebZMyejfJf5LqXpsyJpv8vM", "--method", method)
        hits = _hits(out)
        got = {v: (hits[(TX_CB1, v)]["amount_sat"], hits[(TX_CB1, v)]["amount_max_sat"])
               for v in (0, 1)}
        assert got == {0: (0, 753_552), 1: (0, 7_375_989)}, method
        assert all(hits[(TX_CB1, v)]["uncertain"] for v in (0, 1))
    # poison does not read input values: whole outputs, certain
    out = _run(real, "trace", "3LwVXr3hD25ebZMyejfJf5LqXpsyJpv8vM", "--method", "poison")
    assert {h["amount_sat"] for h in out["hits"]} == {753_552, 7_375_989}
    assert not any(h["uncertain"] for h in out["hits"]) and not out["uncertain_transactions"]


def _exact_fifo(vals: list[int], taint: np.ndarray, outs: np.ndarray,
                reverse: bool) -> np.ndarray:
    if reverse:  # outputs (tainted) poured into inputs
        return _split("fifo", outs, taint, np.asarray(vals, np.float64))
    return _split("fifo", np.asarray(vals, np.int64), taint, outs)


def test_fifo_bounds_hold_on_every_mixed_transaction(real: Path) -> None:
    """Every live transaction mixing inputs of known and unknown value (39 of them), each
    known input traced in full (forward) and each output traced (backward): the exact
    FIFO figure for any values the unknown inputs may hold (the inputs cover the outputs)
    lies within the bounds, and with one unknown input the bounds are reached (for the
    outputs, and the inputs of known value a backward trace follows)."""
    ws = Workspace.open(real, read_only=True)
    try:
        arr = load_arrays(ws.con)
    finally:
        ws.close()
    mixed = 0
    for t in range(arr.n_tx):
        i0, i1, o0, o1 = (int(arr.in_ptr[t]), int(arr.in_ptr[t + 1]),
                          int(arr.out_ptr[t]), int(arr.out_ptr[t + 1]))
        vals = arr.in_value[i0:i1]
        if arr.tx_coinbase[t] or not ((vals < 0).any() and (vals >= 0).any()):
            continue
        mixed += 1
        outs = arr.out_value[o0:o1].astype(np.float64)
        unknown = np.flatnonzero(vals < 0)
        need = max(0.0, outs.sum() - vals[vals >= 0].sum())
        known = [float(v) for v in vals if v >= 0]
        b_marks = [0.0, *np.cumsum(outs).tolist()]
        a_marks = [0.0, *np.cumsum(known).tolist()]
        cases = [(False, k) for k in np.flatnonzero(vals >= 0)] + [
            (True, j) for j in range(o1 - o0)]
        for reverse, k in cases:
            if reverse:
                taint = np.zeros(o1 - o0)
                taint[k] = outs[k]
                lo = _split("fifo", outs, taint, vals.astype(np.float64), "low", True)
                hi = _split("fifo", outs, taint, vals.astype(np.float64), "high", True)
            else:
                taint = np.zeros(i1 - i0)
                taint[k] = vals[k]
                lo = _split("fifo", vals, taint, outs, "low")
                hi = _split("fifo", vals, taint, outs, "high")
            if len(unknown) == 1:  # where the overlaps change slope, and far away
                shifts = {x - y - v for x in b_marks for y in a_marks for v in (0.0, *known)}
                combos = [(s - need,) for s in {need, *shifts} if s >= need]
                combos.append((10 * outs.sum() + 10 * sum(known),))
            else:
                combos = list(itertools.product([0.0, 1.0, need, 10 * outs.sum()],
                                                repeat=len(unknown)))
            seen = []
            for combo in combos:
                filled = vals.astype(np.int64).tolist()
                for u in unknown:
                    filled[u] = 0
                filled[unknown[-1]] = int(need)  # the least the unknown values hold
                for u, e in zip(unknown, combo, strict=True):
                    filled[u] += int(e)
                got = _exact_fifo(filled, taint, outs, reverse)
                assert (got >= lo - 1e-6).all() and (got <= hi + 1e-6).all(), (t, k, combo)
                seen.append(got)
            if len(unknown) == 1:  # tight (an input of unknown value is never followed)
                tight = vals >= 0 if reverse else np.ones(o1 - o0, bool)
                seen_a = np.array(seen)[:, tight]
                assert np.allclose(seen_a.max(axis=0), hi[tight]), (t, k, reverse)
                assert np.allclose(seen_a.min(axis=0), lo[tight]), (t, k, reverse)
    assert mixed == 39


# -- finding 3: a forward trace starts from spends of coins known only from the UTXO file


TX_D38 = "d385205568"


def test_forward_trace_starts_from_spends_known_only_from_the_utxo_file(real: Path) -> None:
    """153AKrkx... is paid in no loaded transaction, but spends 16 coins (84.2902 BTC,
    values from 277647.utxostore) in block 277647, 100 BTC of it reaching 11zro2... in
    d3852055...: the trace starts there instead of printing 0 transactions."""
    out = _run(real, "trace", "153AKrkxfeGSaqAQZ78qcmtVeKzHJpn7T5", "--forward")
    assert out["transactions_visited"] > 0
    assert (out["started_from_spends"], out["started_from_spends_sat"]) == (16, 8_429_020_000)
    assert out["spends_not_started"] == 0 and out["source_received_sat"] == 0
    [hit] = [h for h in out["hits"] if h["txid"].startswith(TX_D38)]
    assert hit["address"] == "11zro2wX8v6mkd99VuQShMrisZNLxYFNm" and hit["hop"] == 1
    assert hit["amount_sat"] == 10_000_000_000  # poison: the whole output
    assert [t[:10] for t in hit["path_txids"]] == [TX_D38]
    text = CliRunner().invoke(main, ["trace", "153AKrkxfeGSaqAQZ78qcmtVeKzHJpn7T5",
                                     "-w", str(real)]).output
    assert "0 transactions" not in text.splitlines()[0]
    assert "started also from 16 spend(s)" in text


def test_forward_trace_says_which_spends_it_could_not_start_from(real: Path) -> None:
    """36xEqP5e... only spends, in the 2019 block, a coin whose earlier output is not
    loaded and whose value no UTXO file gives (its address read from the witness)."""
    out = _run(real, "trace", "36xEqP5e4RRYuVrojM9EmzpfBpZK7nf9p1", "--forward")
    assert out["spends_not_started"] >= 1 and out["started_from_spends"] == 0
    assert any("could not start from" in n for n in out["start_notes"])


# -- findings 2 and 7: a wallet's balance only when it is known --------------------------


def test_wallet_balance_is_unknown_when_it_spends_coins_received_in_blocks_not_loaded(
        real: Path) -> None:
    """cluster:2 received 37.9995 BTC in loaded transactions and spent 142.02825338 BTC,
    23 of its coins valued by 277647.utxostore but paid in blocks not loaded: its balance
    (once -10,402,875,338 sat) is unknown, and so are cluster:911's and cluster:373's."""
    out = _run(real, "wallet", "show", "cluster:2")
    assert (out["received_sat"], out["sent_sat"]) == (3_799_950_000, 14_202_825_338)
    assert out["balance_sat"] is None
    assert out["spends_received_unloaded"] == 23
    assert "received in blocks not loaded" in out["balance_unknown_reason"]
    for cid in (911, 373):
        got = _run(real, "wallet", "show", f"cluster:{cid}")
        assert got["balance_sat"] is None and got["spends_received_unloaded"] > 0
    text = CliRunner().invoke(main, ["wallet", "show", "cluster:2", "-w", str(real)]).output
    assert "balance: unknown: it spends 23 coin(s)" in text and "-104.0" not in text


def test_a_known_balance_says_which_blocks_it_covers(real: Path) -> None:
    """1Q2TWHE... is paid 10 BTC in block 170 and spends nothing loaded: its balance is
    10 BTC within the loaded blocks only (it was spent later, in a block not loaded)."""
    out = _run(real, "wallet", "show", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3")
    assert out["balance_sat"] == 1_000_000_000 and out["balance_unknown_reason"] is None
    assert out["coverage"]["heights"] == "0-255, 277647, 540107, 574200"
    assert "blocks not loaded are not seen" in out["covers"]["balance"]
    text = CliRunner().invoke(main, ["wallet", "show", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3",
                                     "-w", str(real)]).output
    assert "within the loaded blocks only" in text
    assert "loaded: 259 blocks (heights 0-255, 277647, 540107, 574200)" in text


def test_the_genesis_output_is_no_balance(real: Path) -> None:
    out = _run(real, "wallet", "show", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert out["received_sat"] == 5_000_000_000 and out["unspendable_sat"] == 5_000_000_000
    assert out["balance_sat"] == 0
