"""The vectorised clustering gives the clusters and merge edges of a plain per-transaction
reference: a Python loop over transactions (CoinJoins from the rules applied to every
transaction's outputs, no candidate filter) and a Python union-find; on the real blocks,
a simulated market economy and a random chain with busy hub addresses; and the same
clustering of a chain handed over in pieces (``cluster_chunks``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darkmap.chain.cluster import (
    HEURISTICS,
    PER_TRANSACTION,
    _smallest_member,
    cluster_arrays,
    cluster_chunks,
    components,
)
from darkmap.chain.coinjoin import _rules, equal_output_stats
from darkmap.chain.graph import TxArrays, load_arrays
from darkmap.collect.ingest import load_files
from darkmap.errors import BadInputError
from darkmap.simulate.market_chain import demo_market_chain
from darkmap.store.workspace import Workspace


def _coinjoins_unfiltered(arr: TxArrays) -> np.ndarray:
    k, denom, grouped = equal_output_stats(arr.n_tx, arr.out_tx, arr.out_value)
    return _rules(np.diff(arr.in_ptr), np.diff(arr.out_ptr), k, denom, grouped) > 0


def _union_labels(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Python union-find; each node's label is the smallest node of its component."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


def _reference(arr: TxArrays) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Multi-input merge edges (tx, first known input address, other input address) in
    transaction and input order, and the clusters they make."""
    cj = _coinjoins_unfiltered(arr)
    edges = []
    for t in range(arr.n_tx):
        if arr.tx_coinbase[t] or cj[t]:
            continue
        known = [int(a) for a in arr.in_addr[arr.in_ptr[t]:arr.in_ptr[t + 1]] if a >= 0]
        edges += [(t, known[0], a) for a in known[1:] if a != known[0]]
    return edges, _union_labels(arr.n_addr, [(a, b) for _, a, b in edges])


def _check(arr: TxArrays, min_edges: int) -> None:
    want_edges, want_labels = _reference(arr)
    assert len(want_edges) >= min_edges  # merges happened: the comparison has teeth
    res = cluster_arrays(arr)
    got = list(zip(res.edge_tx.tolist(), res.edge_a.tolist(), res.edge_b.tolist(),
                   strict=True))
    assert got == want_edges
    assert res.labels.tolist() == want_labels
    assert np.array_equal(res.coinjoin.is_coinjoin, _coinjoins_unfiltered(arr))
    # every heuristic: the labels are the components of the run's own edges, and its
    # multi-input edges are the reference's
    full = cluster_arrays(arr, HEURISTICS)
    assert full.labels.tolist() == _union_labels(
        arr.n_addr, list(zip(full.edge_a.tolist(), full.edge_b.tolist(), strict=True)))
    mi = full.edge_heur == 0
    assert list(zip(full.edge_tx[mi].tolist(), full.edge_a[mi].tolist(),
                    full.edge_b[mi].tolist(), strict=True)) == want_edges


def _loaded(path: Path, files: list[Path]) -> TxArrays:
    ws = Workspace.init(path)
    try:
        load_files(ws, files)
        return load_arrays(ws.con)
    finally:
        ws.close()


def test_real_blocks_cluster_as_the_reference(tmp_path: Path, data_dir: Path) -> None:
    arr = _loaded(tmp_path / "ws", [data_dir / "bitcoin"])
    assert arr.in_addr.dtype == np.int32  # ids fit 32 bits
    _check(arr, min_edges=100)


def test_market_economy_clusters_as_the_reference(tmp_path: Path) -> None:
    chain, _, _ = demo_market_chain(seed=11)
    (tmp_path / "blk00000.dat").write_bytes(chain.blk_file())
    arr = _loaded(tmp_path / "ws", [tmp_path / "blk00000.dat"])
    assert _coinjoins_unfiltered(arr).sum() == 2  # a whirlpool and a joinmarket mix
    _check(arr, min_edges=5)


def _random_chain(seed: int) -> TxArrays:
    """Inputs of unknown scripts (-1), busy addresses spent from by many transactions,
    transactions shaped like CoinJoins, coinbases."""
    rng = np.random.default_rng(seed)
    n_tx, n_addr = 3000, 6000
    n_in = rng.choice([1, 1, 1, 2, 2, 3, 5, 5, 12], n_tx)
    n_out = rng.choice([1, 2, 2, 3, 5, 5, 7, 25], n_tx)
    in_tx = np.repeat(np.arange(n_tx), n_in)
    out_tx = np.repeat(np.arange(n_tx), n_out)
    in_addr = rng.integers(0, n_addr, len(in_tx))
    hub = rng.random(len(in_addr)) < 0.1
    in_addr[hub] = rng.integers(0, 20, int(hub.sum()))
    in_addr[rng.random(len(in_addr)) < 0.15] = -1
    value = rng.integers(1_000, 10**8, len(out_tx))
    value[rng.random(len(value)) < 0.2] = 3_000_000  # round: change_round_payment fires
    pools = rng.random(len(value)) < 0.4
    value[pools] = rng.choice([100_000, 1_000_000, 5_000_000], int(pools.sum()))
    arr = TxArrays.from_edges(n_tx, n_addr, in_tx, in_addr, out_tx,
                              rng.integers(0, n_addr, len(out_tx)), value)
    arr.tx_coinbase = rng.random(n_tx) < 0.02
    arr.in_type = rng.choice(np.array([1, 2, 2, 2], np.int8), len(in_tx))  # script types
    arr.out_type = rng.choice(np.array([1, 2, 2, 3], np.int8), len(out_tx))
    return arr


@pytest.mark.parametrize("seed", range(3))
def test_random_chain_with_hubs_clusters_as_the_reference(seed: int) -> None:
    arr = _random_chain(seed)
    assert _coinjoins_unfiltered(arr).sum() > 10
    _check(arr, min_edges=1000)


@pytest.mark.parametrize("seed", range(2))
def test_pieces_cluster_as_the_whole(seed: int) -> None:
    """cluster_chunks over consecutive pieces of transactions (one of a single tx) gives
    cluster_arrays' clusters, edges with their heuristics (in another order: piece by
    piece) and CoinJoins."""
    arr = _random_chain(seed)
    whole = cluster_arrays(arr, PER_TRANSACTION)
    cuts = [0, 1, 700, 1800, 1801, arr.n_tx]
    pieces = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        i0, i1, o0, o1 = arr.in_ptr[lo], arr.in_ptr[hi], arr.out_ptr[lo], arr.out_ptr[hi]
        piece = TxArrays.from_ptrs(arr.n_addr, arr.in_ptr[lo:hi + 1] - i0, arr.in_addr[i0:i1],
                                   arr.out_ptr[lo:hi + 1] - o0, arr.out_addr[o0:o1],
                                   arr.out_value[o0:o1])
        piece.tx_coinbase = arr.tx_coinbase[lo:hi]
        piece.in_type, piece.out_type = arr.in_type[i0:i1], arr.out_type[o0:o1]
        pieces.append(piece)
    got = cluster_chunks(iter(pieces), arr.n_addr, PER_TRANSACTION)
    assert len(np.unique(whole.edge_heur)) == 3  # every per-transaction heuristic merged
    assert np.array_equal(got.labels, whole.labels)

    def edges(r: object) -> list[tuple[int, ...]]:  # piece by piece: each piece's in turn
        cols = [getattr(r, f"edge_{k}").tolist() for k in ("tx", "heur", "a", "b")]
        return sorted(zip(*cols, strict=True))

    assert edges(got) == edges(whole)
    for name in ("kind", "n_equal", "denomination"):
        assert np.array_equal(getattr(got.coinjoin, name), getattr(whole.coinjoin, name)), name
    with pytest.raises(BadInputError, match="change_one_time"):
        cluster_chunks(iter(pieces), arr.n_addr, HEURISTICS)


def test_smallest_member_without_scipy_numbering() -> None:
    """Component numbers in another order than scipy's (the fallback) give the same
    smallest members; so do scipy's own."""
    rng = np.random.default_rng(3)
    n = 5000
    a, b = rng.integers(0, n, 3000), rng.integers(0, n, 3000)
    want = _union_labels(n, list(zip(a.tolist(), b.tolist(), strict=True)))
    assert components(n, a, b).tolist() == want
    assert components(n, a, b, compact=True).tolist() == want
    _, lab = np.unique(np.array(want), return_inverse=True)
    ncomp = int(lab.max()) + 1
    assert _smallest_member(lab.astype(np.int32), ncomp, np.int32).tolist() == want
    shuffled = rng.permutation(ncomp)[lab].astype(np.int32)
    assert shuffled[0] != 0  # not numbered in order of first node: the fallback runs
    assert _smallest_member(shuffled, ncomp, np.int32).tolist() == want
