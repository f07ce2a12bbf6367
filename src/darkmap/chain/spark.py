"""Address clustering on Apache Spark, equal to the embedded path (:mod:`.cluster`).

The same stage as :func:`darkmap.chain.cluster.run_clustering` for chains that do not fit
one machine: the same CoinJoin rules (:mod:`.coinjoin`), the same heuristics with the same
merge edges (one per input / per change output, each with its transaction and heuristic),
and the same cluster ids (the smallest address id of the cluster), computed in Spark
DataFrames only (no GraphFrames: its jar cannot be fetched offline).

- per transaction: one aggregation by ``tx_id`` over ``tx``, ``txin`` and ``txout``
  stacked (one shuffle of map-side partial aggregates, no join) gives every figure the
  rules need (counts, first and last known input, the change heuristics' counts and
  picks); the result is checkpointed and read by every step below.
- CoinJoins: only the candidates (:func:`darkmap.chain.coinjoin.candidates`: every rule
  needs >= 3 inputs and outputs) have their outputs counted per ``(tx, value)``, the
  candidates broadcast while they are few; the largest equal-value group (ties: the
  larger value), outputs in groups, then the four rules of :mod:`.coinjoin`.
- ``multi_input``: each known input address of a usable transaction (not a coinbase, not
  a CoinJoin) is merged with the first known input address (lowest input index): with
  two known inputs straight from the per-transaction row, with three or more from the
  inputs joined with those transactions.
- change heuristics: per transaction the output each enabled rule picks; where two rules
  pick different outputs none merges; self-change transactions are skipped.
  ``change_one_time`` needs each address's first transaction: one shuffle by address.
- connected components: pruning passes first (each partition's edges become stars
  rooted at their smallest node, scipy in a ``mapInArrow`` task, and the star leaves that
  appear in no other edge are set aside with their root), then the large-star /
  small-star algorithm (Kiveris et al., "Connected Components in MapReduce and Beyond",
  SoCC 2014) on what is left, each round checkpointed; at the fixed point every node
  points at the smallest id of its component, and the leaves take their roots' ids.

pyspark is an optional extra (``pip install darkmap[spark]``, Java 17+). The workspace path
(:func:`run_clustering_spark`) writes the graph as Parquet (:mod:`darkmap.store.chain_columns`),
clusters it on ``master`` and stores the result exactly as the embedded run does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from darkmap.chain.cluster import (
    DEFAULT_HEURISTICS,
    HEURISTICS,
    ROUND_SATS,
    ClusterSummary,
    components,
)
from darkmap.chain.coinjoin import KINDS, MIN_INPUTS, MIN_OUTPUTS, WHIRLPOOL_DENOMS
from darkmap.deferred_imports import allow_import
from darkmap.errors import BadInputError, DarkmapError
from darkmap.model.bitcoin import SCRIPT_TYPES
from darkmap.plugins import import_optional
from darkmap.store import chain as store
from darkmap.store.chain_columns import write_graph_parquet
from darkmap.store.workspace import Workspace

__all__ = ["SparkClusters", "SparkMasterError", "cluster_frames", "components_frame",
           "env_conf", "master_problem", "run_clustering_spark", "spark_session", "sql_module"]

_WASABI1_BASE = 10_000_000
_TYPE_CODES = tuple(range(1, len(SCRIPT_TYPES) + 1))
"""Script type codes (``st``) of the known types."""
_BROADCAST_ROWS = 4_000_000
"""At most this many CoinJoin candidates, or transactions of three or more known inputs,
are broadcast to find their outputs or inputs (the outputs or inputs are not shuffled)."""


_MASTER_PROBE_SECONDS = 10.0
"""How long a ``spark://`` master's port gets to take a TCP connection."""
_DEFAULT_MASTER_PORT = 7077
_REGISTRATION = ("Spark's standalone client tries to register the application 3 times, 20 s "
                 "each")


class SparkMasterError(DarkmapError):
    """A ``spark://`` master that does not answer, or does not take the application."""


def master_problem(master: str, timeout: float = _MASTER_PROBE_SECONDS) -> str | None:
    """Why no master of a ``spark://host:port[,host:port...]`` URL can be reached, or
    None when one takes a TCP connection (or the master is not ``spark://``).

    Each host is tried in turn for ``timeout`` seconds at most: nothing listening there,
    no answer, a host name that does not resolve. Checked before a JVM starts: a master
    that is down made Spark retry for a minute and end in a Java stack trace.
    """
    if not master.startswith("spark://"):
        return None
    problems = []
    for hostport in master.removeprefix("spark://").split(","):
        host, sep, port_text = hostport.strip().rpartition(":")
        if not sep:
            host, port_text = port_text, str(_DEFAULT_MASTER_PORT)
        host = host.strip("[]")
        if (not host or not (port_text.isascii() and port_text.isdigit())
                or len(port_text) > 5 or not 0 < int(port_text) < 65536):
            problems.append(f"{hostport!r} is not host:port")
            continue
        try:
            with socket.create_connection((host, int(port_text)), timeout=timeout):
                return None
        except ConnectionRefusedError:
            why = "refused the connection (nothing listens there)"
        except TimeoutError:
            why = f"did not answer within {timeout:g} s"
        except socket.gaierror as exc:
            why = f"was not found ({exc.strerror})"
        except OSError as exc:
            why = f"was unreachable ({exc.strerror or exc})"
        problems.append(f"{hostport} {why}")
    return "; ".join(problems)


def sql_module() -> Any:
    """``pyspark.sql`` or a one-line error saying how to install it."""
    allow_import("pandas")  # the command line defers it (darkmap.deferred_imports)
    mod = import_optional("pyspark.sql")
    if mod is None:
        raise BadInputError("the Spark engine needs pyspark: pip install 'darkmap[spark]' "
                            "(and Java 17+)")
    return mod


def spark_session(master: str = "local[2]", app: str = "darkmap",
                  conf: dict[str, str] | None = None) -> Any:
    """A SparkSession on ``master`` (``local[N]``, ``spark://host:7077``, ``k8s://...``).

    A ``spark://`` master is tried first (:func:`master_problem`): when none of its hosts
    takes a connection, :class:`SparkMasterError` says so within seconds, no JVM started.
    One that takes the connection but never registers the application (not a Spark
    master, another Spark version) fails after Spark's own registration time (3 tries of
    20 s, fixed in Spark), also as :class:`SparkMasterError`.

    Local masters bind to 127.0.0.1, run their Python workers with this interpreter
    and run without the web UI; their driver (which is also the executor) gets half of
    the machine's memory, at most 16 GiB, and no cap on results collected to it (Spark's
    defaults, 1 GiB each, stop the linking of 100,000 accounts). ``conf`` adds or
    overrides settings (e.g. ``spark.executor.memory``), and so does the environment
    variable ``DARKMAP_SPARK_CONF`` (``key=value`` pairs separated by ``;``), last.
    """
    if master != "yarn" and not master.startswith(("local", "spark://", "k8s://")):
        # what Spark itself accepts; checked before a JVM is started to say so
        raise BadInputError(f"Spark master {master!r}: give local[N], spark://host:port, "
                            "k8s://https://host:port or yarn")
    problem = master_problem(master)
    if problem:
        raise SparkMasterError(
            f"Spark master {master}: {problem}; start the master (`start-master.sh` on its "
            "host) or check --master, or run on this machine with --master local[N]")
    sql = sql_module()
    b = sql.SparkSession.builder.master(master).appName(app)
    settings = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                "spark.sql.shuffle.partitions": "8",
                "spark.sql.adaptive.enabled": "true"}
    if master.startswith("local"):
        # the Python workers run this interpreter (its venv has darkmap); on a cluster
        # the executors' image must have darkmap installed (docs/scale.md)
        settings.update({"spark.driver.host": "127.0.0.1",
                         "spark.driver.bindAddress": "127.0.0.1",
                         "spark.pyspark.python": sys.executable,
                         "spark.driver.memory": f"{_local_driver_mib()}m",
                         "spark.driver.maxResultSize": "0"})
        # pyspark reads the workers' interpreter from the environment when the context
        # starts (a user's own PYSPARK_PYTHON wins)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update(conf or {})
    settings.update(env_conf())
    for k, v in settings.items():
        b = b.config(k, v)
    from py4j.protocol import Py4JJavaError  # noqa: PLC0415 - imported with pyspark.sql
    from pyspark.errors import PySparkException  # noqa: PLC0415

    try:
        return b.getOrCreate()
    except PySparkException as exc:  # Java missing or the master not understood
        text = str(exc).strip().splitlines() or [type(exc).__name__]
        raise BadInputError(
            f"Spark did not start on master {master!r}: {text[0]} (check the master URL "
            "and that Java 17+ is installed)") from exc
    except Py4JJavaError as exc:  # the JVM ran; the context it made was stopped at once
        _stop_active()
        if master.startswith("spark://"):
            raise SparkMasterError(
                f"Spark master {master} took the connection but did not register the "
                f"application ({_REGISTRATION}): check that a Spark master of this "
                "version listens there, or run with --master local[N]") from exc
        raise SparkMasterError(f"Spark did not start on master {master!r}: "
                               f"{_java_error(exc)}") from exc


def _java_error(exc: Any) -> str:
    """The first line of the Java exception behind a ``Py4JJavaError``."""
    try:
        text = str(exc.java_exception.toString())
    except Exception:  # noqa: BLE001 - the gateway may be gone: fall back to the message
        text = str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def _stop_active() -> None:
    """Stop the context a failed start left behind, so that a later session can start
    in this process (best effort: the JVM stopped it already)."""
    from pyspark import SparkContext  # noqa: PLC0415 - imported with pyspark.sql

    active = SparkContext._active_spark_context  # pyspark keeps it there
    if active is not None:
        with contextlib.suppress(Exception):
            active.stop()


def _local_driver_mib() -> int:
    """Half of this machine's memory in MiB, at least 1 GiB and at most 16 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        total = 2048
    return int(max(1024, min(16 * 1024, total // 2)))


def env_conf(text: str | None = None) -> dict[str, str]:
    """Spark settings from ``DARKMAP_SPARK_CONF`` (or ``text``): ``k=v;k=v``.

    Raises :class:`~darkmap.errors.BadInputError` for an item without ``=``.
    """
    raw = os.environ.get("DARKMAP_SPARK_CONF", "") if text is None else text
    out: dict[str, str] = {}
    for item in (i.strip() for i in raw.split(";")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise BadInputError(f"DARKMAP_SPARK_CONF: {item!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


@dataclass
class SparkClusters:
    """The Spark result frames: ``labels`` (address_id, cluster_id) for addresses in a
    merge, ``merges`` (tx_id, heuristic, address_a, address_b), ``coinjoins`` (tx_id,
    kind, n_equal, denomination)."""

    labels: Any
    merges: Any
    coinjoins: Any


def _per_tx(fn: Any, tx: Any, txin: Any, txout: Any, change: list[str]) -> Any:
    """One row per transaction of ``tx`` with every per-transaction figure: one
    aggregation by ``tx_id`` over ``tx``, ``txin`` and ``txout`` stacked (``side`` 0, 1,
    2), so one shuffle (of map-side partial aggregates) and no join.

    Inputs: ``n_in``; ``n_known`` (inputs with an address), ``first`` and ``last`` (the
    address of the known input with the lowest and the highest index); with
    ``change_address_type``, ``lo``, ``hi`` and ``n_typed`` over the inputs of a known
    script type. Outputs: ``n_out``; with a change heuristic ``addressed`` (outputs with
    an address); with ``change_round_payment`` ``n_round``, ``c_round`` (addressed outputs
    of a non-round value) and that output's ``n`` and address (``r_n``, ``r_a``: minima,
    so the output itself when ``c_round`` is 1); with ``change_address_type``, per script
    type code ``s`` the count of addressed outputs of that type and, the same way, the one
    output's ``n`` and address (``t{s}_c``, ``t{s}_n``, ``t{s}_a``).
    """
    rows = (tx.select("tx_id", fn.lit(0).alias("side"), "is_coinbase")
            .unionByName(txin.select("tx_id", fn.lit(1).alias("side"), "n", "address_id", "st"),
                         allowMissingColumns=True)
            .unionByName(txout.select("tx_id", fn.lit(2).alias("side"), "n", "address_id",
                                      "value", "st"), allowMissingColumns=True))
    side = fn.col("side")
    is_in, is_out = side == 1, side == 2
    known = fn.col("address_id").isNotNull()
    at = fn.when(is_in & known, fn.col("n"))
    aggs = [fn.count(fn.when(side == 0, 1)).alias("n_tx"),
            fn.max(fn.when(side == 0, fn.col("is_coinbase"))).alias("is_coinbase"),
            fn.count(fn.when(is_in, 1)).alias("n_in"),
            fn.count(fn.when(is_in, fn.col("address_id"))).alias("n_known"),
            fn.min_by("address_id", at).alias("first"), fn.max_by("address_id", at).alias("last"),
            fn.count(fn.when(is_out, 1)).alias("n_out")]
    has = is_out & known
    if change:
        aggs.append(fn.count(fn.when(has, 1)).alias("addressed"))
    if "change_round_payment" in change:
        rnd = (fn.col("value") % ROUND_SATS == 0) & (fn.col("value") > 0)
        other = has & ~rnd
        aggs += [fn.count(fn.when(is_out & rnd, 1)).alias("n_round"),
                 fn.count(fn.when(other, 1)).alias("c_round"),
                 fn.min(fn.when(other, fn.col("n"))).alias("r_n"),
                 fn.min(fn.when(other, fn.col("address_id"))).alias("r_a")]
    if "change_address_type" in change:
        typed = fn.when(is_in & (fn.col("st") > 0), fn.col("st"))
        aggs += [fn.min(typed).alias("lo"), fn.max(typed).alias("hi"),
                 fn.count(typed).alias("n_typed")]
        for s in _TYPE_CODES:
            of = has & (fn.col("st") == s)
            aggs += [fn.count(fn.when(of, 1)).alias(f"t{s}_c"),
                     fn.min(fn.when(of, fn.col("n"))).alias(f"t{s}_n"),
                     fn.min(fn.when(of, fn.col("address_id"))).alias(f"t{s}_a")]
    return rows.groupBy("tx_id").agg(*aggs).where("n_tx > 0").drop("n_tx")


def _coinjoins(fn: Any, t: Any, txout: Any, broadcast: bool) -> Any:
    """(tx_id, kind, k, denom) of the CoinJoin candidates of ``t`` (:func:`_per_tx`), as
    coinjoin.py: the transactions whose counts some rule could accept
    (:func:`darkmap.chain.coinjoin.candidates`), their outputs' largest equal-value group
    (ties: the larger value), outputs in groups, then the four rules. The others are no
    CoinJoin, and only the candidates' outputs are grouped by value (with ``broadcast``
    the candidates are broadcast and the outputs are not shuffled to find them)."""
    ni, no = fn.col("n_in"), fn.col("n_out")
    cand = t.where((ni >= MIN_INPUTS) & (no >= MIN_OUTPUTS)
                   & ((no <= 2 * ni + 1) | ((ni >= 10) & (no >= 10)))).select(
        "tx_id", "n_in", "n_out")
    ids = cand.select("tx_id")
    runs = (txout.select("tx_id", "value").join(fn.broadcast(ids) if broadcast else ids, "tx_id")
            .groupBy("tx_id", "value").agg(fn.count(fn.lit(1)).alias("len")).where("len >= 2"))
    best = runs.groupBy("tx_id").agg(
        fn.max(fn.struct("len", "value")).alias("top"), fn.sum("len").alias("grouped"))
    c = cand.join(best, "tx_id", "left").select(
        "tx_id", "n_in", "n_out", fn.coalesce(fn.col("top.len"), fn.lit(1)).alias("k"),
        fn.coalesce(fn.col("top.value"), fn.lit(0)).alias("denom"),
        fn.coalesce("grouped", fn.lit(0)).alias("grouped"))
    k, denom = fn.col("k"), fn.col("denom")
    joinmarket = (k >= 3) & (no <= 2 * k + 1) & (ni >= k) & (denom >= 10_000)
    wasabi2 = (ni >= 50) & (no >= 50) & (2 * fn.col("grouped") >= no)
    ratio = fn.when(denom > 0, denom / fn.lit(float(_WASABI1_BASE))).otherwise(0.0)
    level = fn.rint(fn.log2(fn.when(ratio > 0, ratio).otherwise(1.0)))
    near = (level >= 0) & (level <= 6) & (fn.abs(ratio / fn.pow(fn.lit(2.0), level) - 1.0) <= 0.02)
    wasabi1 = (k >= 10) & (ni >= k) & near & (denom > 0)
    whirlpool = ((ni == 5) & (no == 5) & (k == 5)
                 & denom.isin([int(d) for d in WHIRLPOOL_DENOMS]))
    kind = (fn.when(whirlpool, 1).when(wasabi1, 2).when(wasabi2, 3).when(joinmarket, 4)
            .otherwise(0))
    return c.select("tx_id", kind.alias("kind"), "k", "denom")


def _self_change(fn: Any, txin: Any, txout: Any) -> Any:
    """(tx_id, self_change) of the transactions paying an output to one of their own
    input addresses: the known inputs and the addressed outputs as one frame, grouped by
    transaction and address."""
    side = [f.where("address_id IS NOT NULL").select("tx_id", "address_id", fn.lit(k).alias("side"))
            for k, f in ((1, txin), (2, txout))]
    pairs = side[0].unionByName(side[1])
    both = (pairs.groupBy("tx_id", "address_id")
            .agg(fn.min("side").alias("lo"), fn.max("side").alias("hi")).where("lo < hi"))
    return both.groupBy("tx_id").agg(fn.lit(True).alias("self_change"))


def _one_time(fn: Any, txout: Any, tx: Any) -> Any:
    """(tx_id, n_new, o_n, o_a) for ``change_one_time``: per transaction its outputs
    whose address is seen there first (in chain order: ``tx``'s ``o`` when it has one,
    as :func:`~darkmap.store.chain_columns.write_graph_parquet` writes it, else the
    lowest tx_id), and the smallest such output's index and address (the output itself
    when ``n_new`` is 1). One shuffle of the addressed outputs by address, one of the new
    ones by transaction."""
    has = txout.where("address_id IS NOT NULL").select("tx_id", "n", "address_id")
    has = (has.join(tx.select("tx_id", "o"), "tx_id") if "o" in tx.columns
           else has.withColumn("o", fn.col("tx_id")))
    per = (has.repartition("address_id").groupBy("address_id", "tx_id", "o")
           .agg(fn.count(fn.lit(1)).alias("c"), fn.min("n").alias("n")))
    seen = per.groupBy("address_id").agg(fn.min(fn.struct("o", "tx_id", "c", "n"))
                                         .alias("f"))
    return (seen.select(fn.col("f.tx_id").alias("tx_id"), fn.col("f.c").alias("c"),
                        fn.col("f.n").alias("n"), "address_id")
            .groupBy("tx_id").agg(fn.sum("c").alias("n_new"), fn.min("n").alias("o_n"),
                                  fn.min("address_id").alias("o_a")))


def _change_picks(fn: Any, change: list[str]) -> list[tuple[str, Any, Any]]:
    """Per change heuristic: (name, output index, output address) of the output it picks,
    null where it is silent, as columns of the per-transaction frame."""
    ok = (fn.col("usable") & fn.col("first").isNotNull() & (fn.col("n_out") >= 2)
          & ~fn.col("self_change"))
    picks = []
    for h in change:
        if h == "change_one_time":
            fires = ok & (fn.col("n_new") == 1) & (fn.col("addressed") == fn.col("n_out"))
            n, a = fn.col("o_n"), fn.col("o_a")
        elif h == "change_address_type":
            lo = fn.col("lo")
            c, n, a = (_by_code(fn, lo, x) for x in ("c", "n", "a"))
            fires = (ok & (lo == fn.col("hi")) & (fn.col("n_typed") == fn.col("n_in"))
                     & (c == 1))
        elif h == "change_round_payment":
            fires = (ok & (fn.col("n_out") == 2) & (fn.col("n_round") == 1)
                     & (fn.col("c_round") == 1))
            n, a = fn.col("r_n"), fn.col("r_a")
        else:
            raise BadInputError(f"unknown heuristic {h!r}; have {', '.join(HEURISTICS)}")
        fires = fn.coalesce(fires, fn.lit(False))
        picks.append((h, fn.when(fires, n), fn.when(fires, a)))
    return picks


def _by_code(fn: Any, code: Any, what: str) -> Any:
    """The column ``t{s}_{what}`` of the script type code ``s`` = ``code`` (null for none)."""
    out = fn.when(code == _TYPE_CODES[0], fn.col(f"t{_TYPE_CODES[0]}_{what}"))
    for s in _TYPE_CODES[1:]:
        out = out.when(code == s, fn.col(f"t{s}_{what}"))
    return out


def cluster_frames(spark: Any, tx: Any, txin: Any, txout: Any,
                   heuristics: tuple[str, ...] = DEFAULT_HEURISTICS,
                   checkpoint: bool = True) -> SparkClusters:
    """Cluster the graph frames (``tx``: tx_id, is_coinbase; ``txin``: tx_id, n,
    address_id, st; ``txout``: tx_id, n, address_id, value, st) with ``heuristics``.

    ``st`` is the script type code (1 + index into :data:`~darkmap.model.bitcoin.SCRIPT_TYPES`,
    0 unknown), as :func:`~darkmap.store.chain_columns.write_graph_parquet` writes it.
    """
    unknown = set(heuristics) - set(HEURISTICS)
    if unknown:
        raise BadInputError(
            f"unknown heuristic(s) {sorted(unknown)}; have {', '.join(HEURISTICS)}")
    fn = sql_module().functions
    change = [h for h in heuristics if h.startswith("change_")]
    t = _per_tx(fn, tx, txin, txout, change)
    if checkpoint:  # read by every step below
        t = t.localCheckpoint()
    ni, no = fn.col("n_in"), fn.col("n_out")
    few = checkpoint and (t.where((ni >= MIN_INPUTS) & (no >= MIN_OUTPUTS)).count()
                          <= _BROADCAST_ROWS)
    cj = _coinjoins(fn, t, txout, few)
    if checkpoint:
        cj = cj.localCheckpoint()
    kinds = cj.select("tx_id", "kind")
    t = (t.join(fn.broadcast(kinds) if few else kinds, "tx_id", "left")
         .withColumn("usable", ~fn.col("is_coinbase") & fn.coalesce(fn.col("kind") == 0,
                                                                    fn.lit(True)))
         .withColumn("first", fn.when(fn.col("usable"), fn.col("first"))))
    frames: list[Any] = []
    if "multi_input" in heuristics:
        # three or more known inputs (one transaction in seven on bench/spark.py's chain,
        # half of the inputs): each against the first, joined from the inputs
        many = t.where("usable AND n_known >= 3").select("tx_id", "first")
        if checkpoint and many.count() <= _BROADCAST_ROWS:
            many = fn.broadcast(many)
        frames.append(txin.where("address_id IS NOT NULL").join(many, "tx_id")
                      .where("address_id <> first").select(
                          "tx_id", fn.lit("multi_input").alias("heuristic"),
                          fn.col("first").alias("address_a"),
                          fn.col("address_id").alias("address_b")))
    if change:
        t = t.join(_self_change(fn, txin, txout), "tx_id", "left").withColumn(
            "self_change", fn.coalesce("self_change", fn.lit(False)))
        if "change_one_time" in change:
            t = t.join(_one_time(fn, txout, tx), "tx_id", "left")
    # per transaction, the edges it makes on its own (each a filter of the checkpointed
    # rows): multi-input with two known inputs, and the change output the enabled
    # heuristics agree on (where two of them pick different outputs, none merges)
    if "multi_input" in heuristics:
        frames.append(t.where(fn.col("usable") & (fn.col("n_known") == 2)
                              & (fn.col("first") != fn.col("last")))
                      .select("tx_id", fn.lit("multi_input").alias("heuristic"),
                              fn.col("first").alias("address_a"),
                              fn.col("last").alias("address_b")))
    if change:
        picks = _change_picks(fn, change)
        ns = [n for _, n, _ in picks]
        agreed = fn.least(*ns) == fn.greatest(*ns) if len(ns) > 1 else fn.lit(True)
        t = t.select("tx_id", "first", agreed.alias("agreed"),
                     *[fn.struct(n.alias("n"), a.alias("a")).alias(h) for h, n, a in picks])
        if checkpoint:  # read once per heuristic
            t = t.localCheckpoint()
        for h, _, _ in picks:
            frames.append(t.where(fn.col("agreed") & fn.col(f"{h}.n").isNotNull()
                                  & (fn.col(f"{h}.a") != fn.col("first")))
                          .select("tx_id", fn.lit(h).alias("heuristic"),
                                  fn.col("first").alias("address_a"),
                                  fn.col(f"{h}.a").cast("long").alias("address_b")))
    if frames:
        merges = frames[0]
        for p in frames[1:]:
            merges = merges.unionByName(p)
    else:
        merges = spark.createDataFrame([], "tx_id long, heuristic string, address_a long, "
                                           "address_b long")
    if checkpoint:
        merges = merges.localCheckpoint()
    labels = components_frame(merges.select(fn.col("address_a").alias("a"),
                                            fn.col("address_b").alias("b")), checkpoint)
    names = fn.element_at(fn.array(*[fn.lit(k) for k in KINDS[1:]]), fn.col("kind"))
    coinjoins = cj.where("kind > 0").select(
        "tx_id", names.alias("kind"), fn.col("k").cast("int").alias("n_equal"),
        fn.col("denom").cast("long").alias("denomination"))
    return SparkClusters(labels, merges, coinjoins)


def _large_star(fn: Any, e: Any) -> Any:
    both = e.unionByName(e.select(fn.col("dst").alias("src"), fn.col("src").alias("dst")))
    m = both.groupBy("src").agg(fn.least(fn.col("src"), fn.min("dst")).alias("m"))
    return (both.join(m, "src").where("dst > src")
            .select(fn.col("dst").alias("src"), fn.col("m").alias("dst")).distinct())


def _small_star(fn: Any, e: Any) -> Any:
    o = e.select(fn.greatest("src", "dst").alias("src"), fn.least("src", "dst").alias("dst"))
    m = o.groupBy("src").agg(fn.min("dst").alias("m"))
    leaves = (o.join(m, "src").where("dst <> m")
              .select(fn.col("dst").alias("src"), fn.col("m").alias("dst")))
    return leaves.unionByName(m.select("src", fn.col("m").alias("dst"))).distinct()


# Pruning passes before the star rounds (see components_frame); a pass that removes less
# than this share of the edges is the last one
PRUNE_PASSES = 8
PRUNE_MIN_SHRINK = 0.2


def _local_stars(batches: Any) -> Any:
    """``mapInArrow`` task: one partition's edges ``(src, dst)`` as stars, each node of a
    connected component in this partition pointing at the component's smallest node
    (``(node, root)`` for every node but the root; :func:`components` on the partition's
    nodes numbered in their order, so a component's smallest number is its smallest node)."""
    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    t = pa.Table.from_batches(parts)
    src = t.column("src").to_numpy()
    nodes, at = np.unique(np.concatenate([src, t.column("dst").to_numpy()]),
                          return_inverse=True)
    of = nodes[components(len(nodes), at[:len(src)], at[len(src):])]
    keep = nodes != of
    yield pa.RecordBatch.from_arrays([pa.array(nodes[keep]), pa.array(of[keep])],
                                     names=["src", "dst"])


def _prune(fn: Any, e: Any, by: str) -> tuple[Any, Any]:
    """One pruning pass over the edges ``e`` (``src`` > ``dst``): ``(core, leaves)``.

    The edges, partitioned by ``by``, become per-partition stars rooted at the smallest
    node (:func:`_local_stars`): the same components. A star's node that appears in no
    other edge is a leaf: its component is its root's, and the root is smaller, so the
    component's smallest node is never a leaf. ``core`` is the rest of the stars, with
    the components of ``e`` minus the leaves; ``leaves`` are ``(src, dst)``: leaf, root.
    The stars are checkpointed: a partition's stars depend on what the partition holds,
    so they are computed once.
    """
    stars = e.repartition(by).mapInArrow(_local_stars, "src long, dst long").localCheckpoint()
    ends = stars.select(fn.col("src").alias("v")).unionByName(
        stars.select(fn.col("dst").alias("v")))
    single = (ends.groupBy("v").count().where("count = 1")
              .select(fn.col("v").alias("src"), fn.lit(True).alias("leaf")))
    tagged = stars.join(single, "src", "left").localCheckpoint()
    return (tagged.where("leaf IS NULL").select("src", "dst"),
            tagged.where("leaf").select("src", "dst"))


def _star_rounds(fn: Any, e: Any, checkpoint: bool, max_rounds: int) -> Any:
    """Large-star / small-star rounds over ``e`` (``src`` > ``dst``) until
    every node points at the smallest node of its component: ``(address_id,
    cluster_id)`` for every node of ``e``."""
    for _ in range(max_rounds):
        e = _small_star(fn, _large_star(fn, e))
        e = e.select(fn.greatest("src", "dst").alias("src"), fn.least("src", "dst").alias("dst"))
        if checkpoint:
            e = e.localCheckpoint()
        # done when every node has one parent and no parent has a parent: stars whose
        # centres are the smallest ids of their components
        multi = e.groupBy("src").count().where("count > 1").limit(1).count()
        deep = e.join(e.select(fn.col("src").alias("dst")).distinct(), "dst",
                      "left_semi").limit(1).count()
        if multi == 0 and deep == 0:
            nodes = e.select(fn.col("src").alias("address_id"), fn.col("dst").alias("cluster_id"))
            roots = e.select(fn.col("dst").alias("address_id")).distinct().withColumn(
                "cluster_id", fn.col("address_id"))
            return nodes.unionByName(roots)
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def _with_leaves(fn: Any, labels: Any, leaves: Any) -> Any:
    """``labels`` of a pass's core, extended to its leaves and to the roots only leaves
    pointed at (a component of one partition: its root is its smallest node)."""
    got = labels.select("address_id", fn.col("cluster_id").alias("root_label"))
    leaf = (leaves.join(got, leaves.dst == got.address_id, "left")
            .select(leaves.src.alias("address_id"),
                    fn.coalesce("root_label", leaves.dst).alias("cluster_id")))
    alone = (leaves.select(fn.col("dst").alias("address_id")).distinct()
             .join(got, "address_id", "left_anti")
             .withColumn("cluster_id", fn.col("address_id")))
    return labels.unionByName(leaf).unionByName(alone).localCheckpoint()


def components_frame(edges: Any, checkpoint: bool = True, max_rounds: int = 64,
                     prune_passes: int = PRUNE_PASSES) -> Any:
    """Connected components of the edge frame ``(a, b)``: ``(address_id, cluster_id)``
    for every node on an edge, the cluster id being the smallest node id of its
    component.

    First up to ``prune_passes`` pruning passes (:func:`_prune`; only with
    ``checkpoint``), partitioned by the smaller node and by the larger one in turn, each
    setting aside the leaves of per-partition stars, until a pass removes less than
    ``PRUNE_MIN_SHRINK`` of the edges. Then large-star / small-star rounds on what is
    left, if anything, and the leaves take their roots' labels, last pass first. On the
    10 M-transaction chain of ``bench/spark.py`` three passes leave no edge (12.5 M, 3.8 M,
    0.4 M, none), so no star round runs (docs/scale.md).
    """
    fn = sql_module().functions
    e = (edges.where("a <> b").select(fn.greatest("a", "b").alias("src"),
                                      fn.least("a", "b").alias("dst")).distinct())
    passes: list[Any] = []
    n = e.count() if checkpoint and prune_passes > 0 else 0
    while n and len(passes) < prune_passes:
        core, leaves = _prune(fn, e, "dst" if len(passes) % 2 == 0 else "src")
        passes.append(leaves)
        e, left = core, core.count()
        if left > (1 - PRUNE_MIN_SHRINK) * n:
            break
        n = left
    if passes and n == 0:
        labels = e.sparkSession.createDataFrame([], "address_id long, cluster_id long")
    else:
        labels = _star_rounds(fn, e, checkpoint, max_rounds)
    for leaves in reversed(passes):
        labels = _with_leaves(fn, labels, leaves)
    return labels


def run_clustering_spark(ws: Workspace,
                         heuristics: tuple[str, ...] | list[str] = DEFAULT_HEURISTICS,
                         master: str = "local[2]", spark: Any = None,
                         work_dir: Path | None = None) -> ClusterSummary:
    """:func:`darkmap.chain.cluster.run_clustering` on Spark: same clusters, merges (with
    their reasons) and CoinJoins stored, same summary (``method`` is ``spark``).

    ``spark``: a session to use (default: one on ``master``, stopped at the end);
    ``work_dir``: where the Parquet hand-over goes (default: a temporary folder; on a
    real cluster it must be storage every executor reads, e.g. HDFS or S3 mounted).
    """
    heuristics = tuple(heuristics)
    unknown = set(heuristics) - set(HEURISTICS)
    if unknown:
        raise BadInputError(
            f"unknown heuristic(s) {sorted(unknown)}; have {', '.join(HEURISTICS)}")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="darkmap-spark-", dir=work_dir))
    own = spark is None
    try:
        stale = store.mark_stale(ws.con)  # as run_clustering: stale ones are left out
        aside = store.mark_conflicts(ws.con)  # coins spent twice: losers set aside
        dims = write_graph_parquet(ws.con, tmp / "graph", SCRIPT_TYPES)
        n_addr = dims["n_addr"]
        if own:
            spark = spark_session(master)
        rd = spark.read.parquet
        res = cluster_frames(spark, rd(str(tmp / "graph" / "tx.parquet")),
                             rd(str(tmp / "graph" / "txin.parquet")),
                             rd(str(tmp / "graph" / "txout.parquet")), heuristics)
        for name, df in (("labels", res.labels), ("merges", res.merges),
                         ("coinjoins", res.coinjoins)):
            df.write.mode("overwrite").parquet(str(tmp / name))
        lab_t = pq.read_table(tmp / "labels")
        merges = pq.read_table(tmp / "merges")
        cjt = pq.read_table(tmp / "coinjoins").sort_by("tx_id")
    finally:
        if own and spark is not None:
            spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    labels = np.arange(n_addr, dtype=np.int64)
    if lab_t.num_rows:
        labels[lab_t.column("address_id").to_numpy()] = lab_t.column("cluster_id").to_numpy()
    clusters = pa.table({"address_id": np.arange(n_addr, dtype=np.int64), "cluster_id": labels})
    cjt = pa.table({"tx_id": cjt.column("tx_id").cast(pa.int64()),
                    "kind": cjt.column("kind").cast(pa.string()),
                    "n_equal": cjt.column("n_equal").cast(pa.int32()),
                    "denomination": cjt.column("denomination").cast(pa.int64())})
    sizes = np.bincount(labels) if n_addr else np.zeros(0, np.int64)
    n_clusters = int((sizes > 0).sum())
    seconds = time.perf_counter() - t0
    run_id = uuid.uuid4().hex[:12]
    stored = store.replace_clusters(ws.con, clusters, merges.select(
        ["tx_id", "heuristic", "address_a", "address_b"]), cjt, store.ClusterRun(
        run_id, heuristics, n_addr, n_clusters, merges.num_rows, cjt.num_rows, seconds))
    kinds = cjt.column("kind").to_pylist()
    return {
        "run_id": run_id, "heuristics": list(heuristics), "method": "spark",
        "addresses": n_addr,
        "transactions": dims["n_tx"] - stale["stale_txs"] - aside["set_aside_txs"],
        "stale_transactions_left_out": stale["stale_txs"],
        "set_aside_transactions_left_out": aside["set_aside_txs"], "clusters": n_clusters,
        "non_singleton_clusters": int((sizes > 1).sum()),
        "largest_cluster": int(sizes.max()) if n_addr else 0,
        "merge_edges": sum(stored.values()),  # distinct, as stored and shown
        "merge_edges_by_heuristic": {h: stored.get(h, 0) for h in HEURISTICS
                                     if h in heuristics},
        "coinjoins": {k: kinds.count(k) for k in KINDS[1:] if k in kinds},
        "seconds": round(seconds, 3),
    }
