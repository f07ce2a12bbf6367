"""Address clustering on Spark (local[2]) equals the embedded path: same clusters, same
merges with the same reasons, same CoinJoins, on the real chain data and a synthetic
market economy, with every heuristic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darkmap.chain import spark as spark_mod
from darkmap.chain.cluster import DEFAULT_HEURISTICS, HEURISTICS, components, run_clustering
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
