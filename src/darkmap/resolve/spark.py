"""`darkmap link --engine spark`: pair scoring and persona clustering on Apache Spark.

The same run as :func:`darkmap.resolve.link.link`, with the two stages that grow with
the number of pairs done by Spark tasks calling the *same* functions, so a change to the
features, the model or the clustering is followed without a second implementation:

- **pair comparison**: the candidate pairs (and later the completion pairs) are a
  DataFrame; ``mapInArrow`` tasks call :func:`darkmap.resolve.features.compare` on their
  slice, the profiles being a broadcast variable. The model (the shipped logistic one, or
  Fellegi-Sunter fitted by one M-step over every candidate pair) is chosen and applied on
  the driver by the embedded code (a dot product per pair).
- **clustering**: the scored pairs and the judgements are split into connected components
  on Spark (pruning passes, then large-star / small-star:
  :func:`darkmap.chain.spark.components_frame`); each
  component is clustered by :func:`darkmap.resolve.partition.correlation_clustering` in a
  grouped ``applyInArrow`` task. Merges and single-account moves only ever follow a
  scored pair or a judgement, so no persona spans two components and the result is the
  embedded one (tested on simulated worlds).

- **blocking** (:func:`candidate_pairs_spark`): the exact-key blocks (shared identifier
  values, equal handles, equal normalised handles, 2..30 holders) are a self-join of
  (key, account) rows; the neighbour searches (handle n-grams, phrasing, the three SVD
  text spaces with their k-means cells, large handle groups) are cut into units (blocks
  of rows, cells, groups) that run as tasks calling the embedded search functions, each
  search's matrices a broadcast. The driver prepares them: the SVDs, the k-means cells
  and the migration pairs across market closures (a few per closure and origin).

Loading the profiles, fitting the model and storing the run stay on the driver. pyspark
is the optional ``spark`` extra.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from darkmap.chain.spark import components_frame, spark_session, sql_module
from darkmap.model.arrays import distinct
from darkmap.resolve.candidates import (
    MAX_GROUP,
    BlockingPlan,
    blocking_plan,
    mutual_best_successors,
    one_thread,
    unique_pairs,
)
from darkmap.resolve.features import IDENTIFIER_SIGNALS, PairFeatures, compare
from darkmap.resolve.link import (
    STAGES,
    LinkOptions,
    LinkResult,
    Progress,
    _completion,
    _concat,
    _judgements,
    _learnt,
    _model_for,
    _quiet,
    _store,
    _summary,
    _with_claimed,
    clustering_inputs,
    resolve_signals,
)
from darkmap.resolve.partition import attracted, correlation_clustering, pair_weights
from darkmap.resolve.profiles import Profiles, load_profiles
from darkmap.store.personas import finish_link_run
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["candidate_pairs_spark", "cluster_pairs_spark", "compare_pairs_spark",
           "link_spark"]

_SPARK_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
                np.dtype(np.int8): "byte", np.dtype(np.int16): "short",
                np.dtype(np.int32): "int", np.dtype(np.int64): "long",
                np.dtype(np.bool_): "boolean"}


def _feature_dtypes(prof: Profiles, use: tuple[str, ...]) -> tuple[dict[str, np.dtype],
                                                                   dict[str, np.dtype]]:
    """The dtypes of each signal's raw value and level (from one probe comparison)."""
    probe = compare(prof, np.zeros(1, np.int64), np.full(1, min(1, len(prof) - 1), np.int64),
                    use)
    return ({k: v.dtype for k, v in probe.raw.items()},
            {k: v.dtype for k, v in probe.level.items()})


def _group_pairs_spark(spark: Any, plan: BlockingPlan) -> np.ndarray:
    """Pairs sharing a key held by 2..MAX_GROUP accounts, per key family: a self-join."""
    fams, keys, accts = [], [], []
    for f, (_, g) in enumerate(plan.groups):
        g = g.tocsr()
        accts.append(np.repeat(np.arange(g.shape[0], dtype=np.int64), np.diff(g.indptr)))
        keys.append(g.indices.astype(np.int64))
        fams.append(np.full(g.nnz, f, np.int32))
    if not accts or not sum(len(a) for a in accts):
        return np.zeros((0, 2), np.int64)
    fn = sql_module().functions
    window = sql_module().Window.partitionBy("fam", "key")
    rows = spark.createDataFrame(pa.table({"fam": np.concatenate(fams),
                                           "key": np.concatenate(keys),
                                           "acct": np.concatenate(accts)}))
    held = (rows.withColumn("holders", fn.count("*").over(window))
            .where((fn.col("holders") >= 2) & (fn.col("holders") <= MAX_GROUP))
            .drop("holders"))
    a = held.withColumnRenamed("acct", "a")
    b = held.withColumnRenamed("acct", "b")
    out = (a.join(b, ["fam", "key"]).where(fn.col("a") < fn.col("b"))
           .select("a", "b").distinct().toArrow())
    return np.stack([out.column("a").to_numpy(), out.column("b").to_numpy()], axis=1)


def _search_pairs_spark(spark: Any, plan: BlockingPlan, partitions: int) -> list[np.ndarray]:
    """Every unit of every search of ``plan`` as a task; the searches' states broadcast."""
    work = [(k, u) for k, s in enumerate(plan.searches) for u in s.units]
    if not work:
        return []
    # units differ in cost (a cell of a dense space, a block of sparse rows): spread
    # each search over the tasks instead of giving a task one search's units only
    order = np.random.default_rng(0).permutation(len(work))
    work = [work[x] for x in order.tolist()]
    sc = spark.sparkContext
    states = sc.broadcast([s.state for s in plan.searches])
    runs = [s.run for s in plan.searches]

    def task(units: Iterator[tuple[int, Any]]) -> Iterator[np.ndarray]:
        st = states.value
        with one_thread():
            out = [runs[k](st[k], u) for k, u in units]
        if out:
            yield np.concatenate(out).astype(np.int64)

    try:
        got: list[np.ndarray] = (sc.parallelize(work, min(len(work), partitions))
                                 .mapPartitions(task).collect())
        return got
    finally:
        states.unpersist()


def candidate_pairs_spark(spark: Any, prof: Profiles, use_identifiers: bool = True,
                          partitions: int | None = None, timings: dict[str, float] | None = None,
                          **kw: Any) -> np.ndarray:
    """:func:`darkmap.resolve.candidates.candidate_pairs` with its blocks run on Spark:
    the same pairs (``kw``: its other options). ``timings`` receives the seconds of the
    driver's preparation (``plan_s``: SVDs, k-means cells, migrations) and of the Spark
    jobs that run it (``search_s``), as ``candidate_pairs`` reports its own."""
    t0 = time.perf_counter()
    plan = blocking_plan(prof, use_identifiers, **kw)
    t1 = time.perf_counter()
    parts = partitions or 4 * spark.sparkContext.defaultParallelism
    blocks = [_group_pairs_spark(spark, plan)]
    blocks += _search_pairs_spark(spark, plan, parts)
    blocks += [pairs for _, pairs in plan.done]
    if timings is not None:
        timings["plan_s"] = t1 - t0
        timings["search_s"] = time.perf_counter() - t1
    return unique_pairs(blocks)


def compare_pairs_spark(spark: Any, prof_bc: Any, pairs: np.ndarray, use: tuple[str, ...],
                        dtypes: tuple[dict[str, np.dtype], dict[str, np.dtype]],
                        partitions: int = 8) -> PairFeatures:
    """:func:`~darkmap.resolve.features.compare` of ``pairs`` in Spark tasks, returned in
    the pairs' order. ``prof_bc`` is a broadcast
    :class:`~darkmap.resolve.profiles.Profiles`; ``dtypes`` those of the raw values and
    levels (:func:`_feature_dtypes`), so the values come back bit for bit."""
    raw_t, lev_t = dtypes
    fields = ["seq long", "i long", "j long"]
    fields += [f"r_{k} {_SPARK_TYPES[v]}" for k, v in raw_t.items()]
    fields += [f"l_{k} {_SPARK_TYPES[v]}" for k, v in lev_t.items()]

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        prof = prof_bc.value
        for b in batches:
            i = b.column("i").to_numpy()
            j = b.column("j").to_numpy()
            f = compare(prof, i, j, use)
            cols = {"seq": b.column("seq"), "i": b.column("i"), "j": b.column("j")}
            cols.update({f"r_{k}": pa.array(f.raw[k]) for k in raw_t})
            cols.update({f"l_{k}": pa.array(f.level[k]) for k in lev_t})
            yield pa.RecordBatch.from_pydict(cols)

    tbl = pa.table({"seq": np.arange(len(pairs), dtype=np.int64),
                    "i": pairs[:, 0].astype(np.int64), "j": pairs[:, 1].astype(np.int64)})
    df = spark.createDataFrame(tbl).repartition(partitions)
    out = df.mapInArrow(score, ", ".join(fields)).toArrow().sort_by("seq")
    return PairFeatures(
        out.column("i").to_numpy(), out.column("j").to_numpy(),
        {k: out.column(f"r_{k}").to_numpy().astype(v) for k, v in raw_t.items()},
        {k: out.column(f"l_{k}").to_numpy().astype(v) for k, v in lev_t.items()})


def cluster_pairs_spark(spark: Any, n: int, i: np.ndarray, j: np.ndarray, p: np.ndarray,
                        threshold: float, must: list[tuple[int, int]],
                        cannot: list[tuple[int, int]], apart: np.ndarray | None = None
                        ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """:func:`~darkmap.resolve.partition.correlation_clustering` per connected component
    of attracting pairs and judgements, on Spark (``apart``: the pairs kept apart, as
    there); the components are grouped in buckets, a task per bucket. Only the pairs
    inside components of attracting pairs and ``must`` judgements travel: no persona
    spans two of them (:func:`~darkmap.resolve.partition.attracted`), and the rest are
    most of a candidate set. Labels: the smallest member index of each persona; the
    judgement conflicts in ``must`` order."""
    fn = sql_module().functions
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    inside = attracted(n, i, j, pair_weights(np.asarray(p, np.float64), threshold), must)
    i, j, p = i[inside], j[inside], np.asarray(p)[inside]
    if apart is not None:
        apart = np.asarray(apart, bool)[inside]
    kind = np.concatenate([np.zeros(len(i), np.int8), np.ones(len(must), np.int8),
                           np.full(len(cannot), 2, np.int8)])
    mi = np.array([a for a, _ in must] + [a for a, _ in cannot], np.int64)
    mj = np.array([b for _, b in must] + [b for _, b in cannot], np.int64)
    keep_apart = np.zeros(len(kind), bool)
    if apart is not None:
        keep_apart[:len(i)] = apart
    rows = pa.table({"seq": np.arange(len(kind), dtype=np.int64), "kind": kind,
                     "apart": keep_apart,
                     "a": np.concatenate([np.asarray(i, np.int64), mi]),
                     "b": np.concatenate([np.asarray(j, np.int64), mj]),
                     "p": np.concatenate([np.asarray(p, np.float64),
                                          np.zeros(len(mi), np.float64)])})
    labels = np.arange(n, dtype=np.int64)
    if rows.num_rows == 0:
        return labels, []
    df = spark.createDataFrame(rows)
    comp = components_frame(df.select("a", "b"))
    # components are small once only attracting pairs remain (tens of thousands of a
    # few accounts each): one task per component would spend its time on the calls,
    # so a task clusters a bucket of components at once, which gives what each alone
    # gives (no persona spans two components; order within each is kept)
    buckets = max(1, spark.sparkContext.defaultParallelism) * 8
    grouped = df.join(comp.select(fn.col("address_id").alias("a"),
                                  fn.pmod(fn.col("cluster_id"), fn.lit(buckets))
                                  .alias("bucket")), "a")

    def cluster(t: pa.Table) -> pa.Table:
        t = t.sort_by("seq")
        k = t.column("kind").to_numpy()
        a = t.column("a").to_numpy()
        b = t.column("b").to_numpy()
        nodes = distinct(np.concatenate([a, b]))
        la, lb = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
        pairs = k == 0
        res = correlation_clustering(
            len(nodes), la[pairs], lb[pairs], t.column("p").to_numpy()[pairs], threshold,
            list(zip(la[k == 1].tolist(), lb[k == 1].tolist(), strict=True)),
            list(zip(la[k == 2].tolist(), lb[k == 2].tolist(), strict=True)),
            apart=t.column("apart").to_numpy(zero_copy_only=False)[pairs])
        first: dict[int, int] = {}
        for x, lab in enumerate(res.labels.tolist()):
            first.setdefault(lab, x)       # nodes ascend: the first is the smallest
        canon = np.array([nodes[first[lab]] for lab in res.labels.tolist()], np.int64)
        ca = [int(nodes[x]) for x, _ in res.conflicts]
        cb = [int(nodes[y]) for _, y in res.conflicts]
        return pa.table({"kind": pa.array([0] * len(nodes) + [1] * len(ca), pa.int8()),
                         "a": pa.array(np.concatenate([nodes, np.array(ca, np.int64)])),
                         "b": pa.array(np.concatenate([canon, np.array(cb, np.int64)]))})

    out = grouped.groupBy("bucket").applyInArrow(cluster, "kind byte, a long, b long").toArrow()
    kinds = out.column("kind").to_numpy()
    a = out.column("a").to_numpy()
    b = out.column("b").to_numpy()
    labels[a[kinds == 0]] = b[kinds == 0]
    order = {pair: k for k, pair in enumerate(must)}
    conflicts = sorted(((int(x), int(y)) for x, y in zip(a[kinds == 1], b[kinds == 1],
                                                          strict=True)),
                       key=lambda c: order.get(c, len(order)))
    return labels, conflicts


def link_spark(ws: Workspace, opts: LinkOptions | None = None, master: str = "local[2]",
               spark: Any = None, progress: Progress | None = None) -> LinkResult:
    """:func:`darkmap.resolve.link.link` with scoring and clustering on Spark: the same
    personas, links, signals and contributions are stored (``progress``: as there)."""
    opts = opts or LinkOptions()
    opts.check()
    say = progress or _quiet
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    use = resolve_signals(opts.signals, opts.without)
    run_id = uuid.uuid4().hex[:12]
    started = utcnow()
    say(STAGES[0])
    prof = load_profiles(ws.con)
    n = len(prof)
    timings["profiles_s"] = time.perf_counter() - t0
    judged = _judgements(ws, prof, opts.learn)
    must, cannot, judged_pairs = judged.must, judged.cannot, judged.pairs
    own = spark is None
    if own:
        say(f"starting Spark ({master})")
        spark = spark_session(master, "darkmap-link")
    try:
        blocking: dict[str, float] = {}
        say(f"{STAGES[1]} among {n:,} accounts, on Spark")
        pairs = candidate_pairs_spark(
            spark, prof, use_identifiers=any(s in use for s in IDENTIFIER_SIGNALS),
            timings=blocking)
        pairs = _with_claimed(pairs, prof, use)
        if judged_pairs:
            pairs = np.unique(np.concatenate([pairs, np.array(judged_pairs, np.int64)]),
                              axis=0)
        timings["candidates_s"] = time.perf_counter() - t0 - sum(timings.values())
        say(f"{STAGES[2]}: {len(pairs):,}, on Spark")
        dtypes = _feature_dtypes(prof, use) if n else ({}, {})
        if "migration" in use:  # derived once here and broadcast with the profiles,
            mutual_best_successors(prof)  # not again in every task's batches
        bc = spark.sparkContext.broadcast(prof)
        f = compare_pairs_spark(spark, bc, pairs, use, dtypes)
        model, judged_fit = _learnt(_model_for(opts.method, use, f, prof), f, prof,
                                    judged.sample, opts)
        p = model.probability(f)
        extra = _completion(n, pairs, p, must, opts.complete_max)
        if len(extra):
            f2 = compare_pairs_spark(spark, bc, extra, use, dtypes)
            f = _concat(f, f2)
            p = np.concatenate([p, model.probability(f2)])
        timings["scoring_s"] = time.perf_counter() - t0 - sum(timings.values())
        say(f"{STAGES[3]}, on Spark")
        weighed, apart = clustering_inputs(f, p, use, opts.threshold, prof.market)
        labels, conflicts = cluster_pairs_spark(spark, n, f.i, f.j, weighed, opts.threshold,
                                                must, cannot, apart)
        bc.unpersist()
    finally:
        if own:
            spark.stop()
    # the evidence is scored and clustered: let its matrices go before storing
    roster = prof.roster()
    del prof
    timings["clustering_s"] = time.perf_counter() - t0 - sum(timings.values())
    say(STAGES[4])
    stored = _store(ws, run_id, started, roster, f, p, labels, model, use, opts,
                    judged.verdicts)
    timings["store_s"] = time.perf_counter() - t0 - sum(timings.values())
    summary = _summary(stored, roster, pairs, extra, use, opts, conflicts, judged_fit,
                       timings, blocking, t0)
    finish_link_run(ws.con, run_id, utcnow(), json.dumps(summary))
    return LinkResult(run_id, summary, roster.ids, labels)

