"""Benchmark the Spark engine against the embedded one; prints JSON figures (never pass/fail).

- clustering a synthetic chain (``bench/chain.py``'s generator: heavy-tailed inputs and
  outputs, busy service addresses) of each ``--txs`` size: the embedded path
  (:func:`darkmap.chain.cluster.cluster_arrays`, CoinJoins + multi-input + union) and the
  Spark path (:func:`darkmap.chain.spark.cluster_frames` on ``--master``, reading the
  same graph from Parquet and writing labels and merges to Parquet); seconds, peak
  memory (the Python process's VmHWM; for Spark also the JVM's), Spark shuffle bytes
  written, and whether the two label vectors are identical. A chain longer than one
  piece of ``bench/chain.py`` (10 M transactions) is never whole in memory: it is
  written to Parquet piece by piece and the embedded path is
  :func:`darkmap.chain.cluster.cluster_chunks` (drawing the pieces counted in its time);
  the Spark driver's memory can be raised with ``DARKMAP_SPARK_CONF`` (100 M ran with
  ``spark.driver.memory=10g``);
- linking a simulated world of ``--vendors`` vendors: ``darkmap link`` embedded and
  ``--engine spark``; seconds and peak memory (for Spark also the JVM's, and the
  shuffle bytes written), identical personas or not.

Each measurement runs in its own process (peak memory is per process); ``--runs`` repeats
it and the median is reported with every run.

Usage: .venv/bin/python bench/spark.py [--txs 100000 1000000] [--vendors 400] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chain import CHUNK, synthetic_chain, synthetic_pieces  # bench/chain.py


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _graph_tables(arr: Any, tx0: int = 0) -> dict[str, pa.Table]:
    """A TxArrays (its tx ids from 0, counted on from ``tx0``) as the three tables the
    Spark engine reads."""
    n_in, n_out = np.diff(arr.in_ptr), np.diff(arr.out_ptr)
    return {
        "tx": pa.table({"tx_id": np.arange(tx0, tx0 + arr.n_tx, dtype=np.int64),
                        "is_coinbase": arr.tx_coinbase}),
        "txin": pa.table({
            "tx_id": arr.in_tx.astype(np.int64) + tx0,
            "n": np.concatenate([np.arange(k) for k in n_in]).astype(np.int32)
            if len(n_in) else np.zeros(0, np.int32),
            "address_id": arr.in_addr.astype(np.int64),
            "st": np.ascontiguousarray(arr.in_type)}),
        "txout": pa.table({
            "tx_id": arr.out_tx.astype(np.int64) + tx0,
            "n": np.concatenate([np.arange(k) for k in n_out]).astype(np.int32),
            "address_id": arr.out_addr.astype(np.int64), "value": arr.out_value,
            "st": np.ascontiguousarray(arr.out_type)})}


def write_graph(arr: Any, out: Path) -> None:
    """The synthetic TxArrays as the three Parquet files the Spark engine reads."""
    out.mkdir(parents=True, exist_ok=True)
    for name, table in _graph_tables(arr).items():
        pq.write_table(table, out / f"{name}.parquet")


def write_graph_pieces(n_tx: int, out: Path) -> None:
    """The synthetic chain of ``n_tx`` transactions written piece by piece (the chain
    is never whole in memory: the 100 M case)."""
    out.mkdir(parents=True, exist_ok=True)
    _, _, _, pieces = synthetic_pieces(n_tx)
    writers: dict[str, Any] = {}
    tx0 = 0
    try:
        for piece in pieces:
            for name, table in _graph_tables(piece, tx0).items():
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / f"{name}.parquet", table.schema)
                writers[name].write_table(table)
            tx0 += piece.n_tx
            del piece
    finally:
        for w in writers.values():
            w.close()


def _embedded_cluster(n_tx: int) -> dict[str, Any]:
    """The embedded path: the whole chain in memory (``cluster_arrays``), or piece by
    piece (``cluster_chunks``) beyond one piece of ``bench/chain.py``."""
    from darkmap.chain.cluster import cluster_arrays, cluster_chunks
    if n_tx > CHUNK:
        n_addr, _, _, pieces = synthetic_pieces(n_tx)
        t0 = time.perf_counter()
        res = cluster_chunks(pieces, n_addr)  # drawing the pieces is counted here
        mode = "cluster_chunks (drawing the pieces included)"
    else:
        arr = synthetic_chain(n_tx)
        t0 = time.perf_counter()
        res = cluster_arrays(arr)
        mode = "cluster_arrays"
    sec = time.perf_counter() - t0
    np.save(Path(tempfile.gettempdir()) / f"darkmap-bench-emb-{n_tx}.npy", res.labels)
    return {"seconds": round(sec, 2), "peak_mb": round(_hwm_mb()), "mode": mode,
            "merge_edges": int(len(res.edge_tx)), "clusters": res.n_clusters}


def _shuffle_bytes(log_dir: Path) -> int:
    """Shuffle bytes written by every task, from the Spark event log in ``log_dir``."""
    total = 0
    for f in (x for x in log_dir.rglob("*") if x.is_file()):
        for line in f.read_text(encoding="utf-8").splitlines():
            if '"SparkListenerTaskEnd"' not in line:
                continue
            m = json.loads(line).get("Task Metrics") or {}
            total += int((m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0))
    return total


def _spark_cluster(n_tx: int, master: str, graph: str) -> dict[str, Any]:
    graph_dir = Path(graph)
    from darkmap.chain.spark import cluster_frames, spark_session
    events = Path(tempfile.mkdtemp(prefix="darkmap-bench-events-"))
    spark = spark_session(master, "darkmap-bench", {
        "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "16",
        "spark.eventLog.enabled": "true", "spark.eventLog.compress": "false",
        "spark.eventLog.dir": events.as_uri()})
    spark.sparkContext.setLogLevel("ERROR")
    rd = spark.read.parquet
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = cluster_frames(spark, rd(str(graph_dir / "tx.parquet")),
                             rd(str(graph_dir / "txin.parquet")),
                             rd(str(graph_dir / "txout.parquet")))
        res.labels.write.parquet(f"{tmp}/labels")
        res.merges.write.parquet(f"{tmp}/merges")
        sec = time.perf_counter() - t0
        lab = pq.read_table(f"{tmp}/labels")
        n_merges = pq.read_table(f"{tmp}/merges", columns=["tx_id"]).num_rows
    jvm = spark.sparkContext._gateway.proc.pid
    out = {"seconds": round(sec, 2), "peak_mb_python": round(_hwm_mb()),
           "peak_mb_jvm": round(_hwm_mb(jvm)), "merge_edges": n_merges}
    spark.stop()
    out["shuffle_write_mb"] = round(_shuffle_bytes(events) / 2**20, 1)
    shutil.rmtree(events, ignore_errors=True)
    emb = np.load(Path(tempfile.gettempdir()) / f"darkmap-bench-emb-{n_tx}.npy")
    labels = np.arange(len(emb), dtype=np.int64)
    labels[lab.column("address_id").to_numpy()] = lab.column("cluster_id").to_numpy()
    out["labels_equal_embedded"] = bool(np.array_equal(labels, emb))
    return out


_CHILDREN = {"embedded_cluster": _embedded_cluster, "spark_cluster": _spark_cluster}


def _in_process(name: str, *args: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (its own peak memory); its JSON result."""
    r = subprocess.run([sys.executable, __file__, "--child", name, *map(str, args)],
                       capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"{name} {args} failed:\n{r.stderr[-3000:]}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)
            and not isinstance(v, bool)]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def bench_cluster(n_tx: int, master: str, runs: int) -> dict[str, Any]:
    """Both engines on one synthetic chain size."""
    emb = [_in_process("embedded_cluster", n_tx) for _ in range(runs)]
    with tempfile.TemporaryDirectory() as tmp:
        if n_tx > CHUNK:
            write_graph_pieces(n_tx, Path(tmp))
        else:
            write_graph(synthetic_chain(n_tx), Path(tmp))
        spk = [_in_process("spark_cluster", n_tx, master, tmp) for _ in range(runs)]
    return {"txs": n_tx, "embedded": {"median": _median(emb), "runs": emb},
            "spark": {"median": _median(spk), "runs": spk}}


def _link(vendors: str, engine: str, master: str) -> dict[str, Any]:
    from darkmap.collect.ingest import ingest
    from darkmap.resolve.link import link
    from darkmap.resolve.spark import link_spark
    from darkmap.simulate import SimParams, simulate
    from darkmap.store.workspace import Workspace
    base = Path(tempfile.gettempdir()) / f"darkmap-bench-link-{vendors}"
    if not (base / "ws").exists():
        simulate(base / "world", 41, SimParams(vendors=int(vendors), chain=False))
        ws = Workspace.init(base / "ws")
        w = base / "world"
        ingest(ws, [w / "pages", w / "listings", w / "seized"])
    else:
        ws = Workspace.open(base / "ws")
    spark_figures: dict[str, Any] = {}
    t0 = time.perf_counter()
    if engine == "embedded":
        res = link(ws)
    else:
        from darkmap.chain.spark import spark_session
        events = Path(tempfile.mkdtemp(prefix="darkmap-bench-events-"))
        # the session is timed too, as `link --engine spark` starts its own
        spark = spark_session(master, "darkmap-bench-link", {
            "spark.eventLog.enabled": "true", "spark.eventLog.compress": "false",
            "spark.eventLog.dir": events.as_uri()})
        spark.sparkContext.setLogLevel("ERROR")
        res = link_spark(ws, master=master, spark=spark)
        spark_figures["peak_mb_jvm"] = round(_hwm_mb(spark.sparkContext._gateway.proc.pid))
        spark.stop()
        spark_figures["shuffle_write_mb"] = round(_shuffle_bytes(events) / 2**20, 1)
        shutil.rmtree(events, ignore_errors=True)
    sec = time.perf_counter() - t0
    labels = res.labels.tolist() if res.labels is not None else []
    members = sorted(zip(res.ids, labels, strict=True))
    ws.close()
    return {"seconds": round(sec, 2), "peak_mb": round(_hwm_mb()), **spark_figures,
            "accounts": res.summary["accounts"], "personas": res.summary["personas"],
            "pairs": res.summary["candidate_pairs"] + res.summary["completion_pairs"],
            "timings": res.summary["timings"],
            "partition": _partition(members)}


def _partition(members: list[tuple[str, int]]) -> str:
    groups: dict[int, list[str]] = {}
    for a, lab in members:
        groups.setdefault(lab, []).append(a)
    return hashlib.sha256(json.dumps(sorted(sorted(g) for g in groups.values())).encode()
                          ).hexdigest()[:16]


def bench_link(vendors: int, master: str, runs: int) -> dict[str, Any]:
    """``darkmap link`` on both engines over one simulated world."""
    emb = [_in_process("link", vendors, "embedded", master) for _ in range(runs)]
    spk = [_in_process("link", vendors, "spark", master) for _ in range(runs)]
    return {"vendors": vendors, "accounts": emb[0]["accounts"],
            "same_personas": all(r["partition"] == emb[0]["partition"] for r in emb + spk),
            "embedded": {"median": _median(emb), "runs": emb},
            "spark": {"median": _median(spk), "runs": spk}}


def main() -> None:
    """Run the benchmarks (or, with ``--child``, one measurement) and print JSON."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        fn = {**_CHILDREN, "link": _link}[sys.argv[2]]
        args: list[Any] = [int(x) if x.isdigit() else x for x in sys.argv[3:]]
        print(json.dumps(fn(*args)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--txs", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--vendors", type=int, nargs="*", default=[400])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    a = ap.parse_args()
    out: dict[str, Any] = {"master": a.master, "runs": a.runs, "cluster": [], "link": []}
    for n in a.txs:
        out["cluster"].append(bench_cluster(n, a.master, a.runs))
        print(json.dumps(out["cluster"][-1]), file=sys.stderr, flush=True)
    for v in a.vendors:
        out["link"].append(bench_link(v, a.master, a.runs))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
