"""CoinJoin detection examines only the transactions whose input and output counts some
rule accepts (>= 3 inputs and outputs, and at most 2 * inputs + 1 outputs or >= 10 of
each), and flags exactly what the rules flag when every transaction's outputs are
grouped."""

from __future__ import annotations

import numpy as np
import pytest

from darkmap.chain.coinjoin import (
    MIN_INPUTS,
    MIN_OUTPUTS,
    WHIRLPOOL_DENOMS,
    _rules,
    candidates,
    detect_coinjoins,
    equal_output_stats,
)
from darkmap.chain.graph import TxArrays


def _chain(seed: int, n_tx: int = 4000) -> TxArrays:
    """Random transactions (1-60 inputs, 1-80 outputs), many with groups of equal outputs
    in pool denominations, some shaped like each CoinJoin kind."""
    rng = np.random.default_rng(seed)
    n_in = rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6, 12, 60], n_tx)
    n_out = rng.choice([1, 2, 2, 3, 4, 5, 7, 11, 15, 60, 80], n_tx)
    n_addr = 10_000
    in_tx = np.repeat(np.arange(n_tx, dtype=np.int64), n_in)
    out_tx = np.repeat(np.arange(n_tx, dtype=np.int64), n_out)
    value = rng.integers(1_000, 10**9, len(out_tx))
    ptr = np.concatenate([[0], np.cumsum(n_out)])
    pools = np.concatenate([WHIRLPOOL_DENOMS, [10_000_000, 20_000_000, 40_000, 7]])
    for t in range(n_tx):
        if rng.random() < 0.6:
            a, b = ptr[t], ptr[t + 1]
            k = int(rng.integers(1, b - a + 1))
            value[a:a + k] = rng.choice(pools)
            if rng.random() < 0.3 and b - a - k >= 2:  # a second, smaller group
                value[a + k:a + k + 2] = rng.choice(pools)
    return TxArrays.from_edges(n_tx, n_addr, in_tx, rng.integers(0, n_addr, len(in_tx)),
                               out_tx, rng.integers(0, n_addr, len(out_tx)), value)


@pytest.mark.parametrize("seed", range(6))
def test_filtered_detection_equals_the_rules_on_every_transaction(seed: int) -> None:
    arr = _chain(seed)
    n_in, n_out = np.diff(arr.in_ptr), np.diff(arr.out_ptr)
    k, denom, grouped = equal_output_stats(arr.n_tx, arr.out_tx, arr.out_value)  # all txs
    want = _rules(n_in, n_out, k, denom, grouped)
    got = detect_coinjoins(arr.n_tx, arr.in_ptr, arr.out_ptr, arr.out_tx, arr.out_value)
    assert np.array_equal(got.kind, want)
    assert (want > 0).sum() > 10  # the chain holds CoinJoins of several kinds
    assert len(np.unique(want[want > 0])) >= 2
    cand = np.zeros(arr.n_tx, dtype=bool)
    cand[candidates(n_in, n_out)] = True
    assert cand.sum() < ((n_in >= MIN_INPUTS) & (n_out >= MIN_OUTPUTS)).sum()  # narrower
    assert not cand[(n_in < MIN_INPUTS) | (n_out < MIN_OUTPUTS)].any()
    assert np.array_equal(got.n_equal[cand], k[cand])
    assert np.array_equal(got.denomination[cand], denom[cand])
    # the others are not examined: no group, no denomination
    assert np.array_equal(got.n_equal[~cand], (n_out[~cand] > 0).astype(np.int64))
    assert not got.denomination[~cand].any()
    # and no rule could have flagged one of them
    assert not want[~cand].any()


@pytest.mark.parametrize("seed", range(4))
def test_multi_input_edges_without_the_input_column_are_the_same(seed: int) -> None:
    """The default clustering (multi-input only) takes each tx's first known input
    address from its first input and spreads it over the tx's inputs; the edges are
    those of the general path (first known input per usable tx), in the same order."""
    from darkmap.chain import cluster as cl

    arr = _chain(seed)
    rng = np.random.default_rng(seed)
    in_addr = arr.in_addr.copy()
    in_addr[rng.random(len(in_addr)) < 0.25] = -1  # inputs of unknown scripts, first ones too
    arr = TxArrays.from_edges(arr.n_tx, arr.n_addr, arr.in_tx, in_addr, arr.out_tx,
                              arr.out_addr, arr.out_value)
    usable = rng.random(arr.n_tx) > 0.1  # coinbases and CoinJoins left out
    first, t, a = cl._first_input_address(arr, usable)
    assert np.array_equal(cl._first_known_input(arr, usable), first)
    want = cl._multi_input(first, t, a)
    got = cl._multi_input_fast(arr, first)
    assert len(want[0]) > 1000
    for x, y in zip(got, want, strict=True):
        assert np.array_equal(x, y)
    # the default clustering (fast path) gives the multi-input edges of a run that also
    # asks for a change heuristic (general path)
    fast = cl.cluster_arrays(arr)
    general = cl.cluster_arrays(arr, ("multi_input", "change_round_payment"))
    mi = general.edge_heur == 0
    for x, y in ((fast.edge_tx, general.edge_tx[mi]), (fast.edge_a, general.edge_a[mi]),
                 (fast.edge_b, general.edge_b[mi])):
        assert np.array_equal(x, y)
