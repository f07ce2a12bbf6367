"""Benchmark the chain stage; prints JSON figures (never pass/fail).

- clustering a synthetic chain of ``--txs`` transactions (default 10 million) with
  darkmap's full pipeline (CoinJoin detection + multi-input edges + union), seconds
  and peak resident memory, each phase in its own process;
- the bare union on the same edges by scipy.sparse.csgraph, darkmap's numpy
  union-find, and networkx (on a subsample, extrapolated linearly and labelled so);
- parse speed (transactions per second) on the real blocks in shared/data/bitcoin, and
  the full load into a workspace.

Usage: .venv/bin/python bench/chain.py [--txs 10000000] [--nx-txs 200000] [--runs 3]
       [--skip-numpy] [--skip-networkx] [--skip-parse]

With ``--runs N`` the darkmap and scipy phases run N times each (each in its own
process) and report the median seconds, with ``darkmap_over_scipy`` their ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bitcoin"


def synthetic_chain(n_tx: int, seed: int = 1):
    """A chain-shaped TxArrays: mostly 1-2 inputs and 2 outputs, a heavy tail, hubs."""
    from darkmap.chain.graph import TxArrays

    rng = np.random.default_rng(seed)
    # inputs per tx: 62% 1, 24% 2, 9% 3-5, 5% heavy tail (6..500, Pareto-like)
    u = rng.random(n_tx)
    n_in = np.where(u < 0.62, 1, np.where(u < 0.86, 2, np.where(
        u < 0.95, rng.integers(3, 6, n_tx),
        np.minimum(6 + (rng.pareto(1.3, n_tx) * 4).astype(np.int64), 500))))
    v = rng.random(n_tx)
    n_out = np.where(v < 0.12, 1, np.where(v < 0.90, 2, np.where(
        v < 0.98, rng.integers(3, 10, n_tx), rng.integers(10, 200, n_tx))))
    n_addr = int(n_out.sum() * 0.8)  # 20 % of outputs reuse an address
    in_tx = np.repeat(np.arange(n_tx, dtype=np.int64), n_in)
    out_tx = np.repeat(np.arange(n_tx, dtype=np.int64), n_out)
    # spenders: mostly one-off addresses, 8 % from 50k busy "service" addresses
    busy = rng.integers(0, n_addr, 50_000)
    in_addr = rng.integers(0, n_addr, len(in_tx))
    hub = rng.random(len(in_tx)) < 0.08
    in_addr[hub] = busy[rng.integers(0, len(busy), int(hub.sum()))]
    out_addr = rng.integers(0, n_addr, len(out_tx))
    out_value = rng.integers(1_000, 10**9, len(out_tx))
    return TxArrays.from_edges(n_tx, n_addr, in_tx, in_addr, out_tx, out_addr, out_value)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phase(name: str, n_tx: int, nx_txs: int, q: mp.Queue) -> None:
    try:
        q.put(_run_phase(name, n_tx, nx_txs))
    except Exception as exc:  # noqa: BLE001 - report, never crash the benchmark
        q.put({"error": f"{type(exc).__name__}: {exc}"})


def _run_phase(name: str, n_tx: int, nx_txs: int) -> dict:
    from darkmap.chain.cluster import cluster_arrays, components

    t0 = time.perf_counter()
    arr = synthetic_chain(n_tx)
    gen = time.perf_counter() - t0
    base = {"generate_s": round(gen, 2), "inputs": int(len(arr.in_addr)),
            "outputs": int(len(arr.out_addr)), "addresses": arr.n_addr}
    if name == "darkmap":
        t = time.perf_counter()
        res = cluster_arrays(arr)
        secs = time.perf_counter() - t
        sizes = np.bincount(res.labels)
        return {**base, "seconds": round(secs, 2), "peak_rss_mb": round(_peak_mb()),
                "edges": int(len(res.edge_a)), "clusters": int((sizes > 0).sum()),
                "largest_cluster": int(sizes.max()),
                "coinjoins_flagged": int(res.coinjoin.is_coinjoin.sum()),
                "phases_s": {k: round(v, 2) for k, v in res.timings.items()}}
    res = cluster_arrays(arr)  # edges as darkmap makes them (CoinJoins skipped)
    a, b = res.edge_a, res.edge_b
    del res
    if name in ("scipy", "numpy"):
        t = time.perf_counter()
        components(arr.n_addr, a, b, name)
        return {"seconds": round(time.perf_counter() - t, 2), "edges": int(len(a)),
                "peak_rss_mb": round(_peak_mb())}
    if name == "networkx":
        import networkx as nx

        m = int(len(a) * nx_txs / n_tx)
        t = time.perf_counter()
        g = nx.Graph()
        g.add_nodes_from(range(arr.n_addr if nx_txs >= n_tx else 0))
        g.add_edges_from(zip(a[:m].tolist(), b[:m].tolist(), strict=True))
        n_comp = nx.number_connected_components(g)
        secs = time.perf_counter() - t
        scale = len(a) / max(m, 1)
        return {"subsample_edges": m, "subsample_seconds": round(secs, 2),
                "components_in_subsample_edges_graph": n_comp,
                "extrapolated_seconds_full": round(secs * scale, 1),
                "note": f"networkx on the first {m:,} edges (of {len(a):,}), extrapolated "
                        "linearly; nodes not touched by those edges not added"}
    raise ValueError(name)


def parse_speed() -> dict:
    """Parse and load speed on the real blocks."""
    from darkmap.collect.ingest import load_files
    from darkmap.importers.bitcoin_batch import ChainBatch
    from darkmap.importers.bitcoin_formats import iter_framed_blocks, parse_block
    from darkmap.store.workspace import Workspace

    raws = [raw for name in ("blk_0_to_4.dat", "blocks1-256", "277647.dat")
            for _, raw in iter_framed_blocks((DATA / name).read_bytes())]
    raws += [f.read_bytes() for f in sorted(DATA.glob("*.blk"))]
    t = time.perf_counter()
    blocks = [parse_block(r) for r in raws]
    parse_s = time.perf_counter() - t
    n_tx = sum(len(b.txs) for b in blocks)
    n_in = sum(len(tx.inputs) for b in blocks for tx in b.txs)
    t = time.perf_counter()
    batch = ChainBatch()
    for b in blocks:
        batch.add_block(b, "bench")
    batch.arrow()
    table_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace.init(Path(d))
        t = time.perf_counter()
        load_files(ws, [DATA])
        load_s = time.perf_counter() - t
        loaded = ws.con.execute("SELECT count(*) FROM btc_tx").fetchone()[0]
        ws.close()
    return {"blocks": len(blocks), "transactions": n_tx, "inputs": n_in,
            "parse_and_verify_txs_per_s": round(n_tx / parse_s),
            "classify_and_columnar_txs_per_s": round(n_tx / table_s),
            "end_to_end_load_txs_per_s": round(loaded / load_s),
            "end_to_end_load_s": round(load_s, 2)}


def main() -> None:
    """Run every phase and print one JSON document."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--txs", type=int, default=10_000_000)
    ap.add_argument("--nx-txs", type=int, default=200_000)
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--skip-networkx", action="store_true")
    ap.add_argument("--skip-parse", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    ctx = mp.get_context("fork")
    out: dict = {"synthetic_transactions": args.txs, "runs": args.runs}
    phases = (["darkmap", "scipy"] + ([] if args.skip_numpy else ["numpy"])
              + ([] if args.skip_networkx else ["networkx"]))
    for name in phases:
        results = []
        for _ in range(args.runs if name in ("darkmap", "scipy") else 1):
            q = ctx.Queue()
            p = ctx.Process(target=_phase, args=(name, args.txs, args.nx_txs, q))
            t = time.perf_counter()
            p.start()
            results.append(q.get())
            p.join()
            print(f"{name}: {time.perf_counter() - t:.1f}s", file=sys.stderr)
        res = results[0]
        if len(results) > 1 and all("seconds" in r for r in results):
            secs = sorted(r["seconds"] for r in results)
            res = {**results[0], "seconds": secs[len(secs) // 2], "runs_s": secs}
        out[f"union_{name}" if name != "darkmap" else "darkmap_cluster"] = res
    dm, sc = out.get("darkmap_cluster", {}), out.get("union_scipy", {})
    if "seconds" in dm and "seconds" in sc and sc["seconds"]:
        out["darkmap_over_scipy"] = round(dm["seconds"] / sc["seconds"], 2)
    if not args.skip_parse:
        out["parse_real_blocks"] = parse_speed()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
