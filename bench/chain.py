"""Benchmark the chain stage; prints JSON figures (never pass/fail).

- clustering a synthetic chain of ``--txs`` transactions (default 10 million) with
  darkmap's default pipeline (:func:`darkmap.chain.cluster.cluster_arrays`: CoinJoin
  detection, first input address, multi-input edges, union), each phase's seconds, and
  the bare union on exactly the same edges: ``scipy.sparse.csgraph.connected_components``
  of the edge list as a ``coo_matrix``, nothing else. Both run in fresh child processes,
  interleaved (darkmap, scipy, darkmap, scipy, ...), ``--runs`` times each; the medians
  and their ratio ``darkmap_over_scipy`` are reported with every run and the load
  average. The darkmap child writes its merge edges to a temporary folder, the scipy
  child reads them from there (so its inputs are the edges alone) and the component
  counts are compared. Memory: each child's resident memory once its inputs are ready
  (the generated chain, or the edges) and its peak while clustering (the peak is reset
  after generating, ``/proc/self/clear_refs``), plus the generator's own peak;
- optionally darkmap's numpy union-find and networkx (on a subsample, extrapolated
  linearly and labelled so) on the same edges;
- parse speed (transactions per second) on the real blocks in shared/data/bitcoin, and
  the full load into a workspace.

The generator draws a chain of ``--chunk`` transactions at a time into the final
(int32 address ids) arrays, so chains of 30 or 100 million transactions fit; up to one
chunk it draws exactly the chain the earlier one-piece generator drew.

With ``--stream`` the darkmap child never holds the chain: it draws a piece, takes its
merge edges and CoinJoins (:func:`darkmap.chain.cluster.cluster_chunks`) and drops it;
the seconds drawing pieces are left out of the clustering's. Each darkmap child also
times the bare union on its own edges after clustering (``bare_union_same_process_s``,
``over_bare_same_process``: a ratio paired within one process, less at the mercy of the
load of a shared machine than the fresh processes' medians).

Usage: .venv/bin/python bench/chain.py [--txs 10000000] [--runs 3] [--chunk 10000000]
       [--stream] [--no-bare] [--numpy] [--networkx] [--nx-txs 200000] [--skip-parse]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bitcoin"
CHUNK = 10_000_000


def _counts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and outputs per tx: 62 % 1 input, 24 % 2, 9 % 3-5, 5 % a heavy tail
    (6..500, Pareto-like); 12 % 1 output, 78 % 2, 8 % 3-9, 2 % 10-199."""
    u = rng.random(n)
    n_in = np.where(u < 0.62, 1, np.where(u < 0.86, 2, np.where(
        u < 0.95, rng.integers(3, 6, n),
        np.minimum(6 + (rng.pareto(1.3, n) * 4).astype(np.int64), 500))))
    v = rng.random(n)
    n_out = np.where(v < 0.12, 1, np.where(v < 0.90, 2, np.where(
        v < 0.98, rng.integers(3, 10, n), rng.integers(10, 200, n))))
    return n_in.astype(np.int16), n_out.astype(np.int16)


def synthetic_pieces(n_tx: int, seed: int = 1, chunk: int = CHUNK
                     ) -> tuple[int, int, int, Iterator[Any]]:
    """A chain-shaped chain drawn ``chunk`` transactions at a time: (addresses, inputs,
    outputs, the pieces as TxArrays, each with its tx ids from 0).

    Mostly 1-2 inputs and 2 outputs, a heavy tail, and 8 % of inputs spent from 50k busy
    "service" addresses; 20 % of outputs reuse an address. Piece k is drawn by its own
    generator seeded ``(seed, k)``, piece 0 by ``seed`` alone, in the order the one-piece
    generator drew, so a chain of one piece is the one it drew. The counts of all pieces
    are drawn first (int16), to know the number of addresses.
    """
    from darkmap.chain.graph import TxArrays, id_dtype

    bounds = list(range(0, n_tx, chunk)) + [n_tx]
    rngs = [np.random.default_rng(seed if k == 0 else (seed, k))
            for k in range(len(bounds) - 1)]
    counts = [_counts(rng, hi - lo) for rng, lo, hi in zip(rngs, bounds, bounds[1:],
                                                           strict=False)]
    n_in = sum(int(c[0].sum(dtype=np.int64)) for c in counts)
    n_out = sum(int(c[1].sum(dtype=np.int64)) for c in counts)
    n_addr = int(n_out * 0.8)  # 20 % of outputs reuse an address
    ids = id_dtype(n_addr)

    def pieces() -> Iterator[Any]:
        busy = None
        while rngs:
            rng, (k_in, k_out) = rngs.pop(0), counts.pop(0)
            if busy is None:
                busy = rng.integers(0, n_addr, 50_000)
            in_ptr = np.zeros(len(k_in) + 1, dtype=np.int64)
            np.cumsum(k_in, out=in_ptr[1:])
            out_ptr = np.zeros(len(k_out) + 1, dtype=np.int64)
            np.cumsum(k_out, out=out_ptr[1:])
            in_addr = rng.integers(0, n_addr, int(in_ptr[-1]))
            hub = rng.random(len(in_addr)) < 0.08
            in_addr[hub] = busy[rng.integers(0, len(busy), int(hub.sum()))]
            del hub
            in_addr = in_addr.astype(ids)
            out_addr = rng.integers(0, n_addr, int(out_ptr[-1])).astype(ids)
            out_value = rng.integers(1_000, 10**9, int(out_ptr[-1]))
            yield TxArrays.from_ptrs(n_addr, in_ptr, in_addr, out_ptr, out_addr, out_value)

    return n_addr, n_in, n_out, pieces()


def synthetic_chain(n_tx: int, seed: int = 1, chunk: int = CHUNK) -> Any:
    """:func:`synthetic_pieces` as one TxArrays (int32 address ids), filled piece by piece."""
    from darkmap.chain.graph import TxArrays, id_dtype

    n_addr, n_in, n_out, pieces = synthetic_pieces(n_tx, seed, chunk)
    if n_tx <= chunk:  # one piece: it is the chain
        return next(pieces)
    in_ptr = np.zeros(n_tx + 1, dtype=np.int64)
    out_ptr = np.zeros(n_tx + 1, dtype=np.int64)
    in_addr = np.empty(n_in, dtype=id_dtype(n_addr))
    out_addr = np.empty(n_out, dtype=id_dtype(n_addr))
    out_value = np.empty(n_out, dtype=np.int64)
    t = 0
    for piece in pieces:
        i0, o0 = in_ptr[t], out_ptr[t]
        in_ptr[t + 1:t + piece.n_tx + 1] = piece.in_ptr[1:] + i0
        out_ptr[t + 1:t + piece.n_tx + 1] = piece.out_ptr[1:] + o0
        in_addr[i0:i0 + len(piece.in_addr)] = piece.in_addr
        out_addr[o0:o0 + len(piece.out_addr)] = piece.out_addr
        out_value[o0:o0 + len(piece.out_value)] = piece.out_value
        t += piece.n_tx
        del piece
    return TxArrays.from_ptrs(n_addr, in_ptr, in_addr, out_ptr, out_addr, out_value)


# -- memory of this process ------------------------------------------------------------

def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset the peak resident memory (VmHWM) to the current one; False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _mem(before: float) -> dict[str, float]:
    return {"inputs_rss_mb": round(before), "peak_rss_mb": round(_status_mb("VmHWM")),
            "added_mb": round(_status_mb("VmHWM") - before)}


# -- the measured phases, each in a fresh child process ---------------------------------

def _bare_union(n: int, a: np.ndarray, b: np.ndarray) -> int:
    """The bare union: scipy's weak connected components of the edge list, nothing else
    (the number of components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return int(connected_components(graph, directed=True, connection="weak")[0])


def _timed(pieces: Iterator[Any], spent: list[float]) -> Iterator[Any]:
    """The pieces, adding the seconds spent drawing them to ``spent[0]``."""
    while True:
        t = time.perf_counter()
        piece = next(pieces, None)
        spent[0] += time.perf_counter() - t
        if piece is None:
            return
        yield piece


def _darkmap(n_tx: int, chunk: int, edges: Path, stream: bool, bare: bool) -> dict[str, Any]:
    """Generate the chain, cluster it (timed per phase, peak memory), save the edges
    for the bare union's child, then time the bare union on them in this process too."""
    from darkmap.chain.cluster import cluster_arrays, cluster_chunks

    gen = [0.0]
    if stream:  # the chain is never whole: each piece is drawn and clustered in turn
        n_addr, n_in, n_out, pieces = synthetic_pieces(n_tx, chunk=chunk)
        base: dict[str, Any] = {"mode": f"cluster_chunks, pieces of {chunk:,} txs"}
        before = _status_mb("VmRSS")
        peak_reset = _reset_peak()
        t = time.perf_counter()
        res = cluster_chunks(_timed(pieces, gen), n_addr)
        secs = time.perf_counter() - t - gen[0]
        base["generate_s_interleaved"] = round(gen[0], 2)
    else:
        t0 = time.perf_counter()
        arr = synthetic_chain(n_tx, chunk=chunk)
        n_addr, n_in, n_out = arr.n_addr, len(arr.in_addr), len(arr.out_addr)
        base = {"mode": "cluster_arrays, the whole chain in memory",
                "generate_s": round(time.perf_counter() - t0, 2),
                "generate_peak_rss_mb": round(_status_mb("VmHWM"))}
        before = _status_mb("VmRSS")
        peak_reset = _reset_peak()
        t = time.perf_counter()
        res = cluster_arrays(arr)
        secs = time.perf_counter() - t
        del arr
    mem = _mem(before) if peak_reset else {"peak_rss_mb": round(_status_mb("VmHWM"))}
    sizes = np.bincount(res.labels)
    if not (edges / "a.npy").exists():
        np.save(edges / "a.npy", res.edge_a)
        np.save(edges / "b.npy", res.edge_b)
        (edges / "n").write_text(str(n_addr))
    out = {**base, "inputs": n_in, "outputs": n_out, "addresses": n_addr,
           "seconds": round(secs, 2), **mem, "edges": int(len(res.edge_a)),
           "id_dtype": str(res.edge_a.dtype), "clusters": int((sizes > 0).sum()),
           "largest_cluster": int(sizes.max()),
           "coinjoins_flagged": int(res.coinjoin.is_coinjoin.sum()),
           "phases_s": {k: round(v, 2) for k, v in res.timings.items()}}
    if bare:
        t = time.perf_counter()
        n_comp = _bare_union(n_addr, res.edge_a, res.edge_b)
        secs_bare = time.perf_counter() - t
        out.update({"bare_union_same_process_s": round(secs_bare, 2),
                    "over_bare_same_process": round(secs / secs_bare, 2),
                    "bare_union_same_components": n_comp == out["clusters"]})
    return out


def _load_edges(edges: Path) -> tuple[int, np.ndarray, np.ndarray]:
    return int((edges / "n").read_text()), np.load(edges / "a.npy"), np.load(edges / "b.npy")


def _bare_scipy(edges: Path) -> dict[str, Any]:
    """The bare union in a fresh process whose inputs are the edges alone."""
    import scipy.sparse.csgraph  # noqa: F401 - imported before the clock starts

    n, a, b = _load_edges(edges)
    before = _status_mb("VmRSS")
    peak_reset = _reset_peak()
    t = time.perf_counter()
    n_comp = _bare_union(n, a, b)
    secs = time.perf_counter() - t
    mem = _mem(before) if peak_reset else {"peak_rss_mb": round(_status_mb("VmHWM"))}
    return {"seconds": round(secs, 2), **mem, "edges": int(len(a)), "components": n_comp}


def _numpy_union(edges: Path) -> dict[str, Any]:
    from darkmap.chain.cluster import components

    n, a, b = _load_edges(edges)
    t = time.perf_counter()
    components(n, a, b, "numpy")
    return {"seconds": round(time.perf_counter() - t, 2), "edges": int(len(a)),
            "peak_rss_mb": round(_status_mb("VmHWM"))}


def _networkx(edges: Path, n_tx: int, nx_txs: int) -> dict[str, Any]:
    import networkx as nx

    n, a, b = _load_edges(edges)
    m = int(len(a) * nx_txs / n_tx)
    t = time.perf_counter()
    g = nx.Graph()
    g.add_nodes_from(range(n if nx_txs >= n_tx else 0))
    g.add_edges_from(zip(a[:m].tolist(), b[:m].tolist(), strict=True))
    n_comp = nx.number_connected_components(g)
    secs = time.perf_counter() - t
    return {"subsample_edges": m, "subsample_seconds": round(secs, 2),
            "components_in_subsample_edges_graph": n_comp,
            "extrapolated_seconds_full": round(secs * len(a) / max(m, 1), 1),
            "note": f"networkx on the first {m:,} edges (of {len(a):,}), extrapolated "
                    "linearly; nodes not touched by those edges not added"}


def _child(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], q: Any) -> None:
    try:
        q.put(fn(*args))
    except Exception as exc:  # noqa: BLE001 - report, never crash the benchmark
        q.put({"error": f"{type(exc).__name__}: {exc}"})


def _in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh forked process; its result, with ``ru_maxrss``."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    t = time.perf_counter()
    p.start()
    res: dict[str, Any] = q.get()
    p.join()
    print(f"{fn.__name__}: {time.perf_counter() - t:.1f}s "
          f"{res.get('seconds', res.get('error', ''))}", file=sys.stderr)
    return res


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median seconds, with every run's seconds and peak memory."""
    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return runs[0]
    mid = sorted(ok, key=lambda r: r["seconds"])[(len(ok) - 1) // 2]
    out = {**mid, "seconds": statistics.median(r["seconds"] for r in ok),
           "runs_s": [r["seconds"] for r in ok],
           "runs_peak_rss_mb": [r.get("peak_rss_mb") for r in ok]}
    if "bare_union_same_process_s" in mid:
        out["runs_bare_union_same_process_s"] = [r["bare_union_same_process_s"] for r in ok]
        out["bare_union_same_process_s"] = statistics.median(
            r["bare_union_same_process_s"] for r in ok)
    if "phases_s" in mid:
        out["phases_s"] = {k: round(statistics.median(r["phases_s"][k] for r in ok), 2)
                           for k in mid["phases_s"]}
    return out


def clustering(n_tx: int, runs: int, chunk: int, stream: bool, bare: bool,
               numpy_union: bool, networkx: bool, nx_txs: int) -> dict[str, Any]:
    """darkmap's clustering against the bare scipy union, interleaved, in child processes."""
    edges = Path(tempfile.mkdtemp(prefix="darkmap-bench-edges-"))
    load = [round(x, 2) for x in os.getloadavg()]
    try:
        dm: list[dict[str, Any]] = []
        sc: list[dict[str, Any]] = []
        for _ in range(runs):
            dm.append(_in_child(_darkmap, n_tx, chunk, edges, stream, bare))
            if "error" in dm[-1]:
                break
            if not bare:
                continue
            sc.append(_in_child(_bare_scipy, edges))
        out: dict[str, Any] = {"darkmap_cluster": _median(dm)}
        if sc:
            out["union_scipy_bare"] = _median(sc)
            d, s = out["darkmap_cluster"], out["union_scipy_bare"]
            if "seconds" in d and s.get("seconds"):
                out["darkmap_over_scipy"] = round(d["seconds"] / s["seconds"], 2)
                out["same_components"] = d["clusters"] == s["components"]
            paired = [r["over_bare_same_process"] for r in dm if "over_bare_same_process" in r]
            if paired:
                out["darkmap_over_bare_same_process_median"] = statistics.median(paired)
        if numpy_union and sc:
            out["union_numpy"] = _in_child(_numpy_union, edges)
        if networkx and sc:
            out["union_networkx"] = _in_child(_networkx, edges, n_tx, nx_txs)
    finally:
        shutil.rmtree(edges, ignore_errors=True)
    out["load_average_before"] = load
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=CHUNK)
    ap.add_argument("--stream", action="store_true",
                    help="cluster piece by piece (cluster_chunks); the chain is never whole")
    ap.add_argument("--no-bare", action="store_true",
                    help="darkmap's clustering only (a memory run: no bare union)")
    ap.add_argument("--numpy", action="store_true", help="also darkmap's numpy union-find")
    ap.add_argument("--networkx", action="store_true", help="also networkx, on a subsample")
    ap.add_argument("--nx-txs", type=int, default=200_000)
    ap.add_argument("--skip-parse", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"synthetic_transactions": args.txs, "runs": args.runs,
                           "command": " ".join([Path(sys.executable).name] + sys.argv),
                           "max_rss_parent_mb": 0}
    out.update(clustering(args.txs, args.runs, args.chunk, args.stream, not args.no_bare,
                          args.numpy, args.networkx, args.nx_txs))
    if not args.skip_parse:
        out["parse_real_blocks"] = parse_speed()
    out["max_rss_parent_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
