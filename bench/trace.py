"""Benchmark ``darkmap trace`` on a clustered, tagged workspace; prints JSON figures.

Per phase, the median of ``--runs`` runs, for each target and method: loading the
context (:meth:`darkmap.chain.trace.TraceContext.load`: the whole chain as arrays,
clusters, tags, CoinJoin flags), the walk of the method, the haircut walk the
confidence reads (``poison`` and ``fifo`` only), the cluster evidence (the multi-input
groups of the clusters a hit borrows a tag from and of a ``cluster:N`` source) and the
whole :func:`darkmap.chain.trace.trace` with a loaded context (``trace_s``: the
clusters' merges read again; ``trace_kept_context_s``: a further trace in the same
context, as ``eval chain`` and a package run them); with ``--cli``, the
wall time of ``darkmap trace --json`` in a fresh process (load included).

The cluster evidence of the largest cluster as a ``cluster:N`` source is timed alone
(``largest_cluster``: its multi-input groups and change merges, without walking).
The targets default to the three clusters with the most change merges; ``--target``
names others.

Build a workspace with a simulated world (see docs/chain.md, "Performance and the
whole chain"):

    darkmap simulate --vendors 20000 --no-pages --out big
    darkmap chain load --init -w ws big/chain/blk*.dat
    darkmap tags import -w ws big/tags/*.yaml
    darkmap chain cluster -w ws --all-heuristics

An exchange's cluster of 10^5-10^6 addresses (the worst case of a tag borrowed from a
cluster): ``--inflate-exchange N`` first rewrites the clustering of WORKSPACE (use a
copy) with :func:`darkmap.store.chain.replace_clusters`: up to N addresses of untagged
clusters (those whose id is not a multiple of 10, so that traces can start from the
others) join the cluster of the first exchange tag, in multi-input groups of 50 (a chain
and 49 random multi-input merges each) glued to it by one change merge per group.

Usage: .venv/bin/python bench/trace.py -w WORKSPACE [--runs 3] [--target cluster:N ...]
       [--methods poison haircut fifo] [--hops 10] [--cli] [--inflate-exchange N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _median_time(fn: Any, runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4), out


def _default_targets(ws: Any, n: int) -> list[str]:
    """The largest clusters that have change merges (a source factor to compute)."""
    rows = ws.con.execute(
        "SELECT c.cluster_id FROM btc_cluster_merges m "
        "JOIN btc_clusters c ON c.address_id = m.address_a "
        "WHERE m.heuristic <> 'multi_input' GROUP BY 1 ORDER BY count(*) DESC, 1 "
        f"LIMIT {int(n)}").fetchall()
    return [f"cluster:{r[0]}" for r in rows]


def _one(ws: Any, ctx: Any, target: str, method: str, hops: int, runs: int) -> dict[str, Any]:
    """Each phase of one forward trace, medians of ``runs``."""
    from darkmap.chain import trace as tr

    label, ids = tr.resolve_target(ws, target)
    source = np.zeros(ctx.arr.n_addr, dtype=bool)
    source[ids] = True
    walk_s, walked = _median_time(lambda: tr._forward(ctx, source, hops, method, True), runs)
    hair_s = (0.0 if method == "haircut" else _median_time(
        lambda: tr._forward(ctx, source, hops, "haircut", True), runs)[0])

    def groups() -> Any:
        if hasattr(ctx, "mi_roots"):
            ctx.mi_roots = None  # each run reads the clusters' merges afresh
        return tr._groups(ws, ctx, ids, label, walked[0])

    groups_s, _ = _median_time(groups, runs)

    def whole() -> Any:
        if hasattr(ctx, "mi_roots"):
            ctx.mi_roots = None
        return tr.trace(ws, target, "forward", hops, method, ctx)

    total_s, res = _median_time(whole, runs)
    kept_s, _ = _median_time(lambda: tr.trace(ws, target, "forward", hops, method, ctx), runs)
    return {"target": target, "addresses": len(ids), "method": method,
            "hits": len(res["hits"]),
            "hits_via_cluster": sum(h["tag_via_cluster"] for h in res["hits"]),
            "transactions_visited": res["transactions_visited"],
            "walk_s": walk_s, "haircut_walk_s": hair_s, "cluster_evidence_s": groups_s,
            "trace_s": total_s, "trace_kept_context_s": kept_s}


def bench(workspace: Path, targets: list[str], methods: list[str], hops: int, runs: int,
          cli: bool) -> dict[str, Any]:
    from darkmap.chain import trace as tr
    from darkmap.store.workspace import Workspace

    ws = Workspace.open(workspace, read_only=True)
    try:
        sizes = ws.con.execute(
            "SELECT (SELECT count(*) FROM btc_tx), (SELECT count(*) FROM btc_address), "
            "(SELECT count(*) FROM btc_cluster_merges), (SELECT count(*) FROM btc_tags)"
        ).fetchone()
        load_s, ctx = _median_time(lambda: tr.TraceContext.load(ws), runs)
        targets = targets or _default_targets(ws, 3)
        big = ws.con.execute("SELECT cluster_id, count(*) FROM btc_clusters GROUP BY 1 "
                             "ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
        big_ids = tr.resolve_target(ws, f"cluster:{big[0]}")[1]

        def source_evidence() -> Any:
            if hasattr(ctx, "mi_roots"):
                ctx.mi_roots = None
            return tr._groups(ws, ctx, big_ids, f"cluster {big[0]}", {})

        evidence_s, _ = _median_time(source_evidence, runs)
        out: list[dict[str, Any]] = []
        for target in targets:
            for method in methods:
                out.append(_one(ws, ctx, target, method, hops, runs))
                print(json.dumps(out[-1]), file=sys.stderr)
    finally:
        ws.close()
    cli_rows = []
    exe = str(Path(sys.executable).parent / "darkmap")
    for target in targets if cli else []:
        for method in methods:
            cmd = [exe, "trace", target, "--method", method, "--hops", str(hops),
                   "-w", str(workspace), "--json"]
            cli_s, _ = _median_time(lambda c=cmd: subprocess.run(c, check=True,
                                                                  capture_output=True), runs)
            cli_rows.append({"target": target, "method": method, "cli_s": cli_s})
    return {"workspace": str(workspace), "transactions": sizes[0], "addresses": sizes[1],
            "cluster_merges": sizes[2], "tags": sizes[3], "runs": runs, "hops": hops,
            "load_s": load_s,
            "largest_cluster": {"cluster": big[0], "addresses": big[1],
                                "source_evidence_s": evidence_s},
            "traces": out, "cli": cli_rows,
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def inflate_exchange(workspace: Path, n: int, seed: int = 7) -> dict[str, Any]:
    """Grow the cluster of the first exchange tag (see the module docstring)."""
    import uuid

    import pyarrow as pa

    from darkmap.store import chain as store
    from darkmap.store.workspace import Workspace

    ws = Workspace.open(workspace)
    try:
        con = ws.con
        row = con.execute(
            "SELECT c.cluster_id FROM btc_tags t JOIN btc_address a USING (address) "
            "JOIN btc_clusters c USING (address_id) WHERE t.category = 'exchange' "
            "ORDER BY t.label, a.address_id LIMIT 1").fetchone()
        n_row = con.execute("SELECT max(address_id) + 1 FROM btc_address").fetchone()
        assert row and n_row, "a clustered workspace with an exchange tag"
        x, n_addr = int(row[0]), int(n_row[0])
        lab = store.cluster_labels(con)
        cluster = np.arange(n_addr)
        cluster[lab["address_id"]] = lab["cluster_id"]
        tagged = np.unique(cluster[[r[0] for r in con.execute(
            "SELECT a.address_id FROM btc_tags t JOIN btc_address a USING (address)"
        ).fetchall()]])
        free = np.nonzero(~np.isin(cluster, tagged) & (cluster % 10 != 0))[0]
        rng = np.random.default_rng(seed)
        rng.shuffle(free)
        free = free[: min(n, len(free)) // 50 * 50]
        root = int(np.nonzero(cluster == x)[0][0])
        cluster[free] = x
        cluster[cluster == x] = min(x, int(free.min()))
        groups = free.reshape(-1, 50)
        a = np.concatenate([groups[:, :-1].ravel(), groups[:, :-1].ravel()])
        b = np.concatenate([groups[:, 1:].ravel(), groups[
            np.arange(len(groups))[:, None], rng.integers(0, 50, (len(groups), 49))].ravel()])
        old = con.execute("SELECT tx_id, heuristic, address_a, address_b "
                          "FROM btc_cluster_merges").to_arrow_table()
        added = pa.table({
            "tx_id": pa.array(np.zeros(len(a) + len(groups), np.int64)),
            "heuristic": pa.array(["multi_input"] * len(a) + ["change_one_time"] * len(groups)),
            "address_a": pa.array(np.concatenate([a, np.full(len(groups), root)]).astype(np.int64)),
            "address_b": pa.array(np.concatenate([b, groups[:, 0]]).astype(np.int64))})
        merges = pa.concat_tables([old, added])
        clusters = pa.table({"address_id": pa.array(np.arange(n_addr, dtype=np.int64)),
                             "cluster_id": pa.array(cluster.astype(np.int64))})
        cj = con.execute("SELECT * FROM btc_coinjoins").to_arrow_table()
        store.replace_clusters(con, clusters, merges, cj, store.ClusterRun(
            str(uuid.uuid4()), store.last_cluster_heuristics(con) or (), n_addr,
            len(np.unique(cluster)), merges.num_rows, cj.num_rows, 0.0))
        big = int(cluster[root])
        return {"exchange_cluster": big, "addresses": int((cluster == big).sum()),
                "merges": merges.num_rows}
    finally:
        ws.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-w", "--workspace", type=Path, required=True)
    ap.add_argument("--target", action="append", default=[])
    ap.add_argument("--methods", nargs="+", default=["poison", "haircut", "fifo"])
    ap.add_argument("--hops", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also `darkmap trace --json` wall time")
    ap.add_argument("--inflate-exchange", type=int, default=0, metavar="N",
                    help="first grow an exchange's cluster by up to N addresses (on a copy)")
    a = ap.parse_args()
    if a.inflate_exchange:
        print(json.dumps(inflate_exchange(a.workspace, a.inflate_exchange)), file=sys.stderr)
    print(json.dumps(bench(a.workspace, a.target, a.methods, a.hops, a.runs, a.cli),
                     indent=1))


if __name__ == "__main__":
    main()
