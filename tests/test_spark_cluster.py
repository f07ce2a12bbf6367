"""Address clustering on Spark (local[2]) equals the embedded path: same clusters, same
merges with the same reasons, same CoinJoins, on the real chain data and a synthetic
market economy, with every heuristic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darkmap.chain import spark as spark_mod
from darkmap.chain.cluster import (
    DEFAULT_HEURISTICS,
    HEURISTICS,
    cluster_arrays,
    components,
    run_clustering,
)
from darkmap.chain.coinjoin import KINDS
from darkmap.chain.graph import TxArrays
from darkmap.chain.spark import components_frame, run_clustering_spark
from darkmap.collect.ingest import load_files
from darkmap.simulate.market_chain import demo_market_chain
from darkmap.store.chain_columns import clustering_rows
from darkmap.store.workspace import Workspace

_SAME = ("heuristics", "addresses", "transactions", "clusters", "non_singleton_clusters",
         "largest_cluster", "merge_edges", "merge_edges_by_heuristic", "coinjoins")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    ws = Workspace.init(tmp_path_factory.mktemp("real") / "ws")
    load_files(ws, [data_dir / "bitcoin"])
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("market")
    chain, _, _ = demo_market_chain(seed=11)
    (d / "blk00000.dat").write_bytes(chain.blk_file())
    ws = Workspace.init(d / "ws")
    load_files(ws, [d / "blk00000.dat"])
    yield ws
    ws.close()


def _both(ws: Workspace, spark, heuristics):
    emb = run_clustering(ws, heuristics)
    want = clustering_rows(ws.con)
    got_summary = run_clustering_spark(ws, heuristics, spark=spark)
    got = clustering_rows(ws.con)
    return emb, want, got_summary, got


@pytest.mark.parametrize(("world", "heuristics"), [
    ("real", DEFAULT_HEURISTICS), ("real", HEURISTICS), ("market", HEURISTICS)],
    ids=["real-multi_input", "real-all", "market-all"])
def test_spark_equals_embedded(world, heuristics, request, spark):
    ws = request.getfixturevalue(world)
    emb, want, summary, got = _both(ws, spark, heuristics)
    for name in ("clusters", "merges", "coinjoins"):
        assert got[name].equals(want[name]), name
    assert {k: summary[k] for k in _SAME} == {k: emb[k] for k in _SAME}
    assert summary["method"] == "spark"
    # the comparison has teeth: merges happened, with their reasons
    assert emb["non_singleton_clusters"] > 0 and want["merges"].num_rows > 0
    if heuristics == HEURISTICS:
        fired = {h for h, n in emb["merge_edges_by_heuristic"].items() if n}
        assert len(fired) >= 2, fired
    if world == "market":
        assert emb["coinjoins"] == {"whirlpool": 1, "joinmarket": 1}


def _components_spark(spark, n: int, ea: np.ndarray, eb: np.ndarray, **kw) -> np.ndarray:
    df = spark.createDataFrame(list(zip(ea.tolist(), eb.tolist(), strict=True)),
                               "a long, b long")
    rows = components_frame(df, **kw).collect()
    assert len({r["address_id"] for r in rows}) == len(rows)  # each node once
    got = np.arange(n)
    for r in rows:
        got[r["address_id"]] = r["cluster_id"]
    return got


@pytest.mark.parametrize("prune_passes", [0, 1, spark_mod.PRUNE_PASSES])
def test_components_match_scipy_on_long_chains(spark, prune_passes):
    """Paths (the worst case for label propagation and for pruning), stars and random
    edges, with the star rounds alone, after one pruning pass and after the default."""
    rng = np.random.default_rng(5)
    n = 3000
    perm = rng.permutation(n)
    a = [perm[:400][:-1], rng.integers(0, n, 600), np.full(50, 2999)]
    b = [perm[:400][1:], rng.integers(0, n, 600), rng.integers(1000, 1100, 50)]
    ea, eb = np.concatenate(a), np.concatenate(b)
    want = components(n, ea, eb)
    got = _components_spark(spark, n, ea, eb, prune_passes=prune_passes)
    assert np.array_equal(got, want)
    assert len(np.unique(want)) < n - 900


def test_pruning_resolves_stars_without_star_rounds(spark, monkeypatch):
    """Disjoint stars, each centred on its smallest node, are all leaves of the first
    pruning pass: labelled without any large-star / small-star round."""
    rounds: list[int] = []
    real_rounds = spark_mod._star_rounds

    def counted(*args, **kw):
        rounds.append(1)
        return real_rounds(*args, **kw)

    monkeypatch.setattr(spark_mod, "_star_rounds", counted)
    rng = np.random.default_rng(9)
    centres = np.arange(0, 2000, 20)
    ea = np.repeat(centres, 12)
    eb = ea + np.tile(np.arange(1, 13), len(centres))
    order = rng.permutation(len(ea))
    ea, eb = ea[order], eb[order]
    n = 2000
    got = _components_spark(spark, n, eb, ea)
    assert np.array_equal(got, components(n, ea, eb))
    assert not rounds
    assert len(np.unique(got[ea])) == len(centres)


def _random_chain(seed: int, mixes: float) -> TxArrays:
    """A random chain: inputs and outputs of unknown scripts (null addresses), busy
    addresses, script types, round values, coinbases, and a share ``mixes`` of
    transactions shaped like CoinJoins (many inputs and outputs, pool denominations);
    the others mostly of one or two inputs."""
    rng = np.random.default_rng(seed)
    n_tx, n_addr = 4000, 7000
    mix = rng.random(n_tx) < mixes
    n_in = np.where(mix, rng.choice([3, 5, 5, 12, 60], n_tx),
                    rng.choice([1, 1, 1, 1, 2, 2, 3, 4], n_tx))
    n_out = np.where(mix, rng.choice([3, 5, 5, 7, 25, 60], n_tx),
                     rng.choice([1, 2, 2, 2, 3], n_tx))
    in_tx = np.repeat(np.arange(n_tx), n_in)
    out_tx = np.repeat(np.arange(n_tx), n_out)
    in_addr = rng.integers(0, n_addr, len(in_tx))
    hub = rng.random(len(in_addr)) < 0.1
    in_addr[hub] = rng.integers(0, 20, int(hub.sum()))
    in_addr[rng.random(len(in_addr)) < 0.1] = -1
    out_addr = rng.integers(0, n_addr, len(out_tx))
    out_addr[rng.random(len(out_addr)) < 0.05] = -1
    value = rng.integers(1_000, 10**8, len(out_tx))
    value[rng.random(len(value)) < 0.2] = 3_000_000  # round: change_round_payment fires
    pools = mix[out_tx] & (rng.random(len(value)) < 0.7)
    value[pools] = rng.choice([100_000, 1_000_000, 5_000_000, 10_000_000, 20_000_000],
                              int(pools.sum()))
    arr = TxArrays.from_edges(n_tx, n_addr, in_tx, in_addr, out_tx, out_addr, value)
    arr.tx_coinbase = rng.random(n_tx) < 0.02
    arr.in_type = rng.choice(np.array([0, 1, 2, 2, 2, 4], np.int8), len(in_tx))
    arr.out_type = rng.choice(np.array([1, 2, 2, 3, 4], np.int8), len(out_tx))
    return arr


def _frames(spark, arr: TxArrays):
    """The graph frames ``cluster_frames`` reads, null for an unknown address."""
    n_in, n_out = np.diff(arr.in_ptr), np.diff(arr.out_ptr)

    def rows(n: np.ndarray) -> list[int]:
        return np.concatenate([np.arange(k) for k in n]).tolist()

    def addr(a: np.ndarray) -> list[int | None]:
        return [None if x < 0 else x for x in a.tolist()]

    tx = spark.createDataFrame(list(zip(range(arr.n_tx), arr.tx_coinbase.tolist(), strict=True)),
                               "tx_id long, is_coinbase boolean")
    txin = spark.createDataFrame(list(zip(
        arr.in_tx.tolist(), rows(n_in), addr(arr.in_addr), arr.in_type.tolist(), strict=True)),
        "tx_id long, n int, address_id long, st tinyint")
    txout = spark.createDataFrame(list(zip(
        arr.out_tx.tolist(), rows(n_out), addr(arr.out_addr), arr.out_value.tolist(),
        arr.out_type.tolist(), strict=True)),
        "tx_id long, n int, address_id long, value long, st tinyint")
    return tx, txin, txout


@pytest.mark.parametrize(("mixes", "heuristics"), [
    (0.01, DEFAULT_HEURISTICS), (0.01, HEURISTICS), (0.3, HEURISTICS),
    (0.3, ("change_address_type", "change_round_payment")),
    (0.3, ("multi_input", "change_one_time"))],
    ids=["rare-multi_input", "rare-all", "common-all", "common-type-round",
         "common-multi-one_time"])
def test_cluster_frames_equal_embedded_on_random_chains(spark, mixes, heuristics):
    """``cluster_frames`` against ``cluster_arrays`` on random chains with unknown
    addresses and script types, CoinJoin candidates rare and common: the same merge
    edges (with duplicates: one per input / change output), CoinJoins and labels."""
    arr = _random_chain(7, mixes)
    emb = cluster_arrays(arr, heuristics)
    res = spark_mod.cluster_frames(spark, *_frames(spark, arr), heuristics)
    want = sorted(zip(emb.edge_tx.tolist(), [HEURISTICS[h] for h in emb.edge_heur],
                      emb.edge_a.tolist(), emb.edge_b.tolist(), strict=True))
    got = sorted((r["tx_id"], r["heuristic"], r["address_a"], r["address_b"])
                 for r in res.merges.collect())
    assert got == want
    cj = np.flatnonzero(emb.coinjoin.is_coinjoin)
    want_cj = [(int(t), KINDS[emb.coinjoin.kind[t]], int(emb.coinjoin.n_equal[t]),
                int(emb.coinjoin.denomination[t])) for t in cj]
    got_cj = sorted((r["tx_id"], r["kind"], r["n_equal"], r["denomination"])
                    for r in res.coinjoins.collect())
    assert got_cj == want_cj
    labels = np.arange(arr.n_addr)
    for r in res.labels.collect():
        labels[r["address_id"]] = r["cluster_id"]
    assert np.array_equal(labels, emb.labels)
    # teeth: CoinJoins of several kinds found, every enabled heuristic merged
    assert len({k for _, k, _, _ in want_cj}) >= (2 if mixes > 0.1 else 1)
    assert {h for _, h, _, _ in want} == set(heuristics)
