"""Address clustering: named, switchable heuristics and union-find over numpy arrays.

Heuristics (``HEURISTICS``), each producing merge edges ``(tx, address_a, address_b)``:

- ``multi_input`` (on by default): all addresses spending in one transaction belong to
  one wallet (Nakamoto 2008; Reid & Harrigan 2011; Meiklejohn et al. 2013). Skipped
  for coinbases and for detected CoinJoins (see :mod:`darkmap.chain.coinjoin`).
- ``change_one_time``: the one output address never seen before, when every other
  output address has been seen and none pays back to an input (Meiklejohn et al. 2013).
- ``change_address_type``: the only output whose script type matches that of all
  inputs (Ermilov et al. 2017; Möser & Narayanan 2022 "address type").
- ``change_round_payment``: in a two-output tx, when exactly one output is a round
  amount (a multiple of 0.001 BTC), the other is change.

Change heuristics are off by default (as Meiklejohn et al., be conservative). When
several are enabled and they point at different outputs of a transaction, none of
them merges there. Every merge edge is recorded with its transaction and heuristic so
a cluster can be explained and a heuristic undone by re-clustering without it.
Union-find is scipy's connected components over the edge list (``method="scipy"``) or
a pure numpy hook-and-compress (``method="numpy"``); a cluster's id is its smallest
address id. Address and transaction ids are int32 while they fit (:func:`id_dtype`).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from darkmap.chain.coinjoin import KINDS, CoinJoinFlags, detect_coinjoins
from darkmap.chain.graph import TxArrays, id_dtype, load_arrays
from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.arrays import distinct
from darkmap.model.values import btc_address_key, clean_btc_address
from darkmap.store import chain as store
from darkmap.store.chain import MergeEdge
from darkmap.store.workspace import Workspace

__all__ = [
    "DEFAULT_HEURISTICS",
    "HEURISTICS",
    "PER_TRANSACTION",
    "ClusterResult",
    "ClusterSummary",
    "ExplainResult",
    "MergeEdges",
    "cluster_arrays",
    "cluster_chunks",
    "components",
    "explain",
    "explain_addresses",
    "last_heuristics",
    "merge_edges",
    "no_cluster",
    "run_clustering",
    "undo_heuristic",
]

HEURISTICS = ("multi_input", "change_one_time", "change_address_type", "change_round_payment")
"""All heuristic names; codes in ClusterResult.edge_heur index into this tuple."""
DEFAULT_HEURISTICS = ("multi_input",)
ROUND_SATS = 100_000


@dataclass
class ClusterResult:
    """Cluster id per address plus every merge edge with its reason."""

    labels: np.ndarray
    edge_tx: np.ndarray
    edge_a: np.ndarray
    edge_b: np.ndarray
    edge_heur: np.ndarray
    coinjoin: CoinJoinFlags
    heuristics: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        """Number of clusters (singletons included)."""
        return int(len(distinct(self.labels))) if len(self.labels) else 0


def components(n: int, a: np.ndarray, b: np.ndarray, method: str = "scipy",
               compact: bool = False) -> np.ndarray:
    """Connected components of ``n`` nodes and edges ``a-b``; label = smallest node id
    (int32 while ``n`` fits, see :func:`id_dtype`).

    ``scipy``: scipy's weak connected components of the edge list, called as one would
    call it bare, then each node's smallest member read off scipy's numbering
    (:func:`_smallest_member`). With ``compact`` the nodes some edge touches are first
    numbered ``0..k-1`` in their order (on a chain about a third of the addresses share
    an input with another) and scipy runs on those ``k`` nodes, every other node its own
    cluster: the numbering keeps the order, so a component's smallest renumbered node is
    its smallest address. That takes about a third less memory (scipy's arrays of one
    entry per node shrink to ``k``) and more time (two random gathers over the edges);
    :func:`cluster_chunks`, for chains that do not fit, uses it.
    """
    ids = id_dtype(n)
    if method == "numpy":
        return _components_numpy(n, a, b).astype(ids, copy=False)
    if len(a) == 0:
        return np.arange(n, dtype=ids)
    if not compact:
        graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
        ncomp, lab = connected_components(graph, directed=True, connection="weak")
        del graph
        return _smallest_member(lab, ncomp, ids)
    touched = np.zeros(n, dtype=bool)
    touched[a] = True
    touched[b] = True
    nodes = np.flatnonzero(touched).astype(ids)
    k = len(nodes)
    renum = np.cumsum(touched, dtype=ids)  # node -> its number among the touched, + 1
    del touched
    ra = renum[a]
    ra -= 1
    rb = renum[b]
    rb -= 1
    del renum
    small = coo_matrix((np.ones(len(ra), dtype=np.int8), (ra, rb)), shape=(k, k)).tocsr()
    del ra, rb
    ncomp, lab = connected_components(small, directed=True, connection="weak")
    del small
    smallest = _smallest_member(lab, ncomp, ids)
    del lab
    labels = np.arange(n, dtype=ids)  # after scipy's arrays are freed: a lower peak
    labels[nodes] = nodes[smallest]
    return labels


def _smallest_member(lab: np.ndarray, ncomp: int, ids: type[np.signedinteger]) -> np.ndarray:
    """For each node, the smallest node of its component (``lab``: component numbers
    ``0..ncomp-1``).

    scipy numbers components in the order it meets them scanning nodes ``0..n-1``, so the
    first node of each component is where the running maximum of ``lab`` rises, and
    there are exactly ``ncomp`` rises (strictly increasing, hence ``0..ncomp-1`` in
    turn). That count is checked; should a scipy number them otherwise, the minimum is
    taken per component (``np.minimum.at``, slower).
    """
    n = len(lab)
    top = np.maximum.accumulate(lab)
    rise = np.empty(n, dtype=bool)
    rise[0] = True
    np.greater(top[1:], top[:-1], out=rise[1:])
    del top
    first = np.flatnonzero(rise).astype(ids)
    del rise
    if len(first) != ncomp:
        minid = np.full(ncomp, n, dtype=np.int64)
        np.minimum.at(minid, lab, np.arange(n, dtype=np.int64))
        first = minid.astype(ids)
    out: np.ndarray = first[lab]
    return out


def _components_numpy(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union-find by rounds of min-hooking and full path compression (pointer jumping)."""
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while len(a):
        ra, rb = parent[a], parent[b]
        live = ra != rb
        if not live.any():
            break
        a, b, ra, rb = a[live], b[live], ra[live], rb[live]
        lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
        np.minimum.at(parent, hi, lo)   # hook each root under the smallest root it meets
        while True:                      # compress: every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def _first_input_address(arr: TxArrays, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """(first known input address per tx or -1, input tx, input address) of usable txs."""
    in_tx = arr.in_tx
    keep = (arr.in_addr >= 0) & usable[in_tx]
    t, addr = in_tx[keep], arr.in_addr[keep]
    first = np.full(arr.n_tx, -1, dtype=arr.in_addr.dtype)
    if len(t):
        start = np.ones(len(t), dtype=bool)
        start[1:] = t[1:] != t[:-1]
        first[t[start]] = addr[start]
    return first, t, addr


def _first_known_input(arr: TxArrays, usable: np.ndarray) -> np.ndarray:
    """The first input address (>= 0) of each usable tx, else -1: what
    :func:`_first_input_address` gives, from each tx's first input (one gather) and a
    scan of the inputs only of the txs whose first input has no address."""
    n_in = np.diff(arr.in_ptr)
    first = np.full(arr.n_tx, -1, dtype=arr.in_addr.dtype)
    has = usable & (n_in > 0)
    first[has] = arr.in_addr[arr.in_ptr[:-1][has]]
    late = np.flatnonzero(has & (first < 0) & (n_in > 1))
    if len(late):
        lens = n_in[late]
        ends = np.cumsum(lens)
        idx = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(
            arr.in_ptr[late] - (ends - lens), lens)
        who = np.repeat(late, lens)
        addr = arr.in_addr[idx]
        ok = addr >= 0
        who, addr = who[ok], addr[ok]
        start = np.ones(len(who), dtype=bool)
        start[1:] = who[1:] != who[:-1]
        first[who[start]] = addr[start]
    return first


def _multi_input_fast(arr: TxArrays, first: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`_multi_input` of :func:`_first_input_address`'s arrays (the same edges in
    the same order), without building the input-to-tx column: each input is compared
    with its tx's first known address spread over the tx's inputs (one pass over the
    inputs in 32-bit ids, the masks combined in place)."""
    n_in = np.diff(arr.in_ptr)
    f = np.repeat(first, n_in)
    addr = arr.in_addr
    m = np.not_equal(addr, f)
    m &= np.minimum(f, addr) >= 0
    del n_in
    hits = np.zeros(len(m) + 1, dtype=id_dtype(len(m)))
    np.cumsum(m, out=hits[1:])
    per_tx = hits[arr.in_ptr[1:]]
    per_tx -= hits[arr.in_ptr[:-1]]
    del hits
    t = np.repeat(np.arange(arr.n_tx, dtype=id_dtype(arr.n_tx)), per_tx)
    return t, f[m], addr[m]


def _multi_input(first: np.ndarray, t: np.ndarray, addr: np.ndarray) -> tuple[np.ndarray, ...]:
    f = first[t]
    m = addr != f
    return t[m], f[m], addr[m]


def _change_candidates(arr: TxArrays, name: str, usable: np.ndarray, first: np.ndarray,
                       in_t: np.ndarray, in_a: np.ndarray, out_tx: np.ndarray,
                       n_out: np.ndarray, self_change: np.ndarray) -> np.ndarray:
    """Global output index chosen as change per tx (-1 where the heuristic is silent)."""
    ok_tx = usable & (first >= 0) & (n_out >= 2) & ~self_change
    choice = np.full(arr.n_tx, -1, dtype=np.int64)
    has_addr = arr.out_addr >= 0
    if name == "change_one_time":
        valid = np.nonzero(has_addr)[0]
        if arr.tx_order is not None:
            # "seen before" in chain order (height, position), not in the order files were
            # loaded, which gives tx ids (found by the money audit, M4: two load orders of
            # the same blocks gave different wallets)
            valid = valid[np.lexsort((valid, arr.tx_order[out_tx[valid]]))]
        _, idx = np.unique(arr.out_addr[valid], return_index=True)
        first_seen = np.full(arr.n_addr, -1, dtype=np.int64)
        first_seen[arr.out_addr[valid[idx]]] = out_tx[valid[idx]]
        new = has_addr & (first_seen[np.where(has_addr, arr.out_addr, 0)] == out_tx)
        cand = new
        counts = np.bincount(out_tx[new], minlength=arr.n_tx)
        # every other output must have an address seen before (no unknown scripts)
        addressed = np.bincount(out_tx[has_addr], minlength=arr.n_tx)
        ok_tx = ok_tx & (counts == 1) & (addressed == n_out)
    elif name == "change_address_type":
        in_tx_all = arr.in_tx
        known = arr.in_type > 0
        lo = np.full(arr.n_tx, 127, dtype=np.int64)
        hi = np.full(arr.n_tx, -1, dtype=np.int64)
        np.minimum.at(lo, in_tx_all[known], arr.in_type[known].astype(np.int64))
        np.maximum.at(hi, in_tx_all[known], arr.in_type[known].astype(np.int64))
        n_known = np.bincount(in_tx_all[known], minlength=arr.n_tx)
        same = (lo == hi) & (n_known == np.diff(arr.in_ptr))
        cand = has_addr & (arr.out_type.astype(np.int64) == lo[out_tx])
        counts = np.bincount(out_tx[cand], minlength=arr.n_tx)
        ok_tx = ok_tx & same & (counts == 1)
    elif name == "change_round_payment":
        rnd = (arr.out_value % ROUND_SATS == 0) & (arr.out_value > 0)
        n_round = np.bincount(out_tx[rnd], minlength=arr.n_tx)
        cand = has_addr & ~rnd
        counts = np.bincount(out_tx[cand], minlength=arr.n_tx)
        ok_tx = ok_tx & (n_out == 2) & (n_round == 1) & (counts == 1)
    else:
        raise BadInputError(f"unknown heuristic {name!r}; have {', '.join(HEURISTICS)}")
    pick = cand & ok_tx[out_tx]
    choice[out_tx[pick]] = np.nonzero(pick)[0]
    return choice


@dataclass
class MergeEdges:
    """The merge edges of some transactions, their CoinJoins, and seconds per phase."""

    edge_tx: np.ndarray
    edge_a: np.ndarray
    edge_b: np.ndarray
    edge_heur: np.ndarray
    coinjoin: CoinJoinFlags
    timings: dict[str, float]


def _check_heuristics(heuristics: tuple[str, ...] | list[str]) -> None:
    unknown = set(heuristics) - set(HEURISTICS)
    if unknown:
        raise BadInputError(
            f"unknown heuristic(s) {sorted(unknown)}; have {', '.join(HEURISTICS)}")


def cluster_arrays(arr: TxArrays, heuristics: tuple[str, ...] | list[str] = DEFAULT_HEURISTICS,
                   method: str = "scipy", skip_coinjoins: bool = True) -> ClusterResult:
    """Cluster the addresses of ``arr`` with the named heuristics.

    ``timings`` of the result holds the seconds of each phase: ``coinjoin_s``
    (detection), ``prep_s`` (each usable transaction's first input address),
    ``multi_input_s``, ``change_s`` (when a change heuristic is asked), ``union_s``.
    """
    e = merge_edges(arr, heuristics, skip_coinjoins)
    t = time.perf_counter()
    labels = components(arr.n_addr, e.edge_a, e.edge_b, method)
    e.timings["union_s"] = time.perf_counter() - t
    return ClusterResult(labels, e.edge_tx, e.edge_a, e.edge_b, e.edge_heur, e.coinjoin,
                         tuple(heuristics), e.timings)


PER_TRANSACTION = ("multi_input", "change_address_type", "change_round_payment")
"""The heuristics that decide from one transaction alone (:func:`cluster_chunks`)."""


def cluster_chunks(chunks: Iterable[TxArrays], n_addr: int,
                   heuristics: tuple[str, ...] | list[str] = DEFAULT_HEURISTICS,
                   method: str = "scipy") -> ClusterResult:
    """:func:`cluster_arrays` of a chain handed over in consecutive pieces of transactions.

    Each piece is a :class:`TxArrays` of the next transactions (its tx ids from 0; the
    result's count on from the previous pieces) over the same ``n_addr`` address ids.
    Only one piece, the merge edges and the CoinJoin flags are held at a time, so the
    chain itself never has to fit in memory, and the union runs on the addresses the
    edges touch only (``compact``, see :func:`components`). Edges come piece by piece
    (each piece's multi-input edges, then its change edges). The heuristics must be among
    :data:`PER_TRANSACTION`: ``change_one_time`` asks whether an address was seen
    anywhere before, which one piece cannot tell.
    """
    _check_heuristics(heuristics)
    if set(heuristics) - set(PER_TRANSACTION):
        raise BadInputError(f"{sorted(set(heuristics) - set(PER_TRANSACTION))} need the whole "
                            f"chain at once; by pieces: {', '.join(PER_TRANSACTION)}")
    # CoinJoin flags travel sparse (a transaction with an equal-output group of >= 2 is
    # rare; the others have n_equal 0 or 1 and no denomination) and are spread out only
    # after the union, whose peak they would otherwise add to
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "tx", "a", "b", "h", "kind", "has_out", "grp_tx", "grp_n", "grp_denom")}
    timings: dict[str, float] = {}
    offset = 0
    for arr in chunks:
        if arr.n_addr != n_addr:
            raise BadInputError(f"a piece has {arr.n_addr} address ids, not {n_addr}")
        e = merge_edges(arr, heuristics)
        for k, v in e.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        cols["tx"].append(e.edge_tx.astype(id_dtype(offset + arr.n_tx)) + offset)
        cols["a"].append(e.edge_a)
        cols["b"].append(e.edge_b)
        cols["h"].append(e.edge_heur)
        cj = e.coinjoin
        cols["kind"].append(cj.kind)
        cols["has_out"].append(cj.n_equal > 0)
        grp = np.flatnonzero(cj.n_equal >= 2)
        cols["grp_tx"].append(grp + offset)
        cols["grp_n"].append(cj.n_equal[grp].astype(np.int32))
        cols["grp_denom"].append(cj.denomination[grp])
        offset += arr.n_tx
        del arr, e, cj

    def cat(name: str, dtype: type[np.generic]) -> np.ndarray:
        parts = cols.pop(name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    ids = id_dtype(n_addr)
    e_tx, e_a, e_b, e_h = cat("tx", id_dtype(offset)), cat("a", ids), cat("b", ids), cat(
        "h", np.int8)
    t = time.perf_counter()
    labels = components(n_addr, e_a, e_b, method, compact=True)
    timings["union_s"] = time.perf_counter() - t
    n_equal = cat("has_out", np.bool_).astype(np.int32)
    grp = cat("grp_tx", np.int64)
    n_equal[grp] = cat("grp_n", np.int32)
    denomination = np.zeros(offset, dtype=np.int64)
    denomination[grp] = cat("grp_denom", np.int64)
    cj = CoinJoinFlags(cat("kind", np.int8), n_equal, denomination)
    return ClusterResult(labels, e_tx, e_a, e_b, e_h, cj, tuple(heuristics), timings)


def merge_edges(arr: TxArrays, heuristics: tuple[str, ...] | list[str] = DEFAULT_HEURISTICS,
                skip_coinjoins: bool = True) -> MergeEdges:
    """The merge edges of ``arr``'s transactions by the named heuristics, before the
    union (:func:`cluster_arrays` without :func:`components`)."""
    _check_heuristics(heuristics)
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - clock[0]
        clock[0] = now

    cj = detect_coinjoins(arr.n_tx, arr.in_ptr, arr.out_ptr, None, arr.out_value)
    usable = ~arr.tx_coinbase
    if skip_coinjoins:
        usable &= ~cj.is_coinjoin
    lap("coinjoin_s")
    change = [h for h in heuristics if h.startswith("change_")]
    if change:  # the change heuristics read the input and output columns
        out_tx = arr.out_tx
        first, in_t, in_a = _first_input_address(arr, usable)
    else:
        first = _first_known_input(arr, usable)
    lap("prep_s")
    parts_tx, parts_a, parts_b, parts_h = [], [], [], []
    if "multi_input" in heuristics:
        t, a, b = (_multi_input(first, in_t, in_a) if change else
                   _multi_input_fast(arr, first))
        parts_tx.append(t)
        parts_a.append(a)
        parts_b.append(b)
        parts_h.append(np.zeros(len(t), dtype=np.int8))
        del t, a, b
        lap("multi_input_s")
    if change:
        n_out = np.diff(arr.out_ptr)
        n_addr = max(arr.n_addr, 1)
        in_key = in_t.astype(np.int64) * n_addr + in_a
        has = arr.out_addr >= 0
        out_key = out_tx[has].astype(np.int64) * n_addr + arr.out_addr[has]
        self_change = np.zeros(arr.n_tx, dtype=bool)
        self_change[out_tx[has][np.isin(out_key, in_key)]] = True
        choices = np.stack([_change_candidates(arr, h, usable, first, in_t, in_a, out_tx, n_out,
                                               self_change) for h in change])
        fired = choices >= 0
        agreed_val = np.where(fired, choices, -1).max(axis=0)
        disagree = (fired & (choices != agreed_val)).any(axis=0)
        for k, h in enumerate(change):
            sel = np.nonzero(fired[k] & ~disagree)[0]
            b = arr.out_addr[choices[k, sel]]
            a = first[sel]
            m = a != b
            parts_tx.append(sel[m])
            parts_a.append(a[m])
            parts_b.append(b[m])
            parts_h.append(np.full(int(m.sum()), HEURISTICS.index(h), dtype=np.int8))
        del in_t, in_a, out_tx
    del first, usable

    def cat(xs: list[np.ndarray], dt: type[np.generic]) -> np.ndarray:
        if not xs:
            return np.zeros(0, dt)
        return (xs[0] if len(xs) == 1 else np.concatenate(xs)).astype(dt, copy=False)

    tx_ids, addr_ids = id_dtype(arr.n_tx), id_dtype(arr.n_addr)
    e_tx, e_a, e_b = cat(parts_tx, tx_ids), cat(parts_a, addr_ids), cat(parts_b, addr_ids)
    del parts_tx, parts_a, parts_b
    e_h = cat(parts_h, np.int8)
    if change:
        lap("change_s")
    return MergeEdges(e_tx, e_a, e_b, e_h, cj, timings)


class ClusterSummary(TypedDict):
    """What a clustering run did (``darkmap chain cluster`` prints it)."""

    run_id: str
    heuristics: list[str]
    method: str
    addresses: int
    transactions: int
    stale_transactions_left_out: int
    set_aside_transactions_left_out: int  # a coin spent twice: store.mark_conflicts
    clusters: int
    non_singleton_clusters: int
    largest_cluster: int
    merge_edges: int
    merge_edges_by_heuristic: dict[str, int]
    coinjoins: dict[str, int]
    seconds: float
    undone: NotRequired[str]
    clusters_before: NotRequired[int]
    evidence_tags: NotRequired[int]


class ExplainResult(TypedDict):
    """Why addresses share a cluster: every merge in it, or the path between two."""

    cluster_id: int
    merges: NotRequired[list[MergeEdge]]
    n_merges: NotRequired[int]
    same_cluster: NotRequired[bool]
    path: NotRequired[list[MergeEdge] | None]


def run_clustering(ws: Workspace, heuristics: tuple[str, ...] | list[str] = DEFAULT_HEURISTICS,
                   method: str = "scipy") -> ClusterSummary:
    """Cluster the workspace's chain; replace btc_clusters, merges and coinjoins."""
    t0 = time.perf_counter()
    stale = store.mark_stale(ws.con)  # a workspace loaded before the flags gets them here
    aside = store.mark_conflicts(ws.con)  # coins spent twice: losers set aside
    arr = load_arrays(ws.con)
    res = cluster_arrays(arr, tuple(heuristics), method)
    run_id = uuid.uuid4().hex[:12]
    clusters = pa.table({"address_id": np.arange(arr.n_addr, dtype=np.int64),
                         "cluster_id": res.labels})
    merges = pa.table({"tx_id": res.edge_tx, "heuristic": pa.array(
        [HEURISTICS[i] for i in res.edge_heur], pa.string()), "address_a": res.edge_a,
        "address_b": res.edge_b})
    cjm = res.coinjoin.is_coinjoin
    cjt = pa.table({"tx_id": np.nonzero(cjm)[0].astype(np.int64),
                    "kind": pa.array([KINDS[k] for k in res.coinjoin.kind[cjm]], pa.string()),
                    "n_equal": res.coinjoin.n_equal[cjm].astype(np.int32),
                    "denomination": res.coinjoin.denomination[cjm]})
    seconds = time.perf_counter() - t0
    stored = store.replace_clusters(ws.con, clusters, merges, cjt, store.ClusterRun(
        run_id, res.heuristics, arr.n_addr, res.n_clusters, int(len(res.edge_tx)),
        int(cjm.sum()), seconds))
    return {
        "run_id": run_id, "heuristics": list(res.heuristics), "method": method,
        "addresses": arr.n_addr,
        "transactions": arr.n_tx - stale["stale_txs"] - aside["set_aside_txs"],
        "stale_transactions_left_out": stale["stale_txs"],
        "set_aside_transactions_left_out": aside["set_aside_txs"], "clusters": res.n_clusters,
        "non_singleton_clusters": int((np.bincount(res.labels) > 1).sum())
        if arr.n_addr else 0,
        "largest_cluster": int(np.bincount(res.labels).max()) if arr.n_addr else 0,
        "merge_edges": sum(stored.values()),  # distinct, as stored and shown
        "merge_edges_by_heuristic": {h: stored.get(h, 0) for h in HEURISTICS
                                     if h in heuristics},
        "coinjoins": {k: int((res.coinjoin.kind == i).sum())
                      for i, k in enumerate(KINDS) if i and (res.coinjoin.kind == i).any()},
        "seconds": round(seconds, 3),
    }


def no_cluster(ws: Workspace, cluster_id: int) -> NotFoundError:
    """The error for a cluster id that names no cluster: what a cluster id is and how to
    find one, or that the chain is not clustered yet."""
    if store.last_cluster_heuristics(ws.con) is None:
        return NotFoundError(f"no cluster {cluster_id}: the chain is not clustered yet (run "
                             "`darkmap chain cluster` first)")
    return NotFoundError(
        f"no cluster {cluster_id}: a cluster's id is the id of its first address (the "
        "smallest), so most numbers name none; `darkmap wallet show ADDRESS` shows the "
        "cluster of an address, and `wallet show` and `trace` print the clusters they "
        "meet as cluster:N")


def last_heuristics(ws: Workspace) -> tuple[str, ...]:
    """Heuristics of the latest clustering run (the default when none ran)."""
    return store.last_cluster_heuristics(ws.con) or DEFAULT_HEURISTICS


def explain(ws: Workspace, address_a: int, address_b: int | None = None,
            limit: int = 1000) -> ExplainResult:
    """Why addresses share a cluster: the chain of merges linking ``a`` to ``b``.

    Without ``b``: every merge inside ``a``'s cluster (up to ``limit``), each with the
    transaction and heuristic that caused it. Address ids are those of ``btc_address``;
    a cluster's id is its smallest address id, so a cluster id names an address of it.
    """
    cid = store.cluster_of_address_id(ws.con, address_a)
    if cid is None:
        raise NotFoundError(
            f"address id {address_a} is not clustered (run `darkmap chain cluster`)")
    rows = store.cluster_merges(ws.con, cid)
    if address_b is None:
        return {"cluster_id": cid, "merges": rows[:limit], "n_merges": len(rows)}
    path = _merge_path(rows, address_a, address_b)
    if path is None:
        return {"cluster_id": cid, "path": None, "same_cluster": False}
    return {"cluster_id": cid, "same_cluster": True, "path": path}


def _merge_path(rows: list[MergeEdge], start: int, goal: int) -> list[MergeEdge] | None:
    """The merges on a shortest path from address id ``start`` to ``goal`` (breadth first),
    None when no merge chain joins them."""
    adj: dict[int, list[int]] = {}
    for k, e in enumerate(rows):
        adj.setdefault(e["address_id_a"], []).append(k)
        adj.setdefault(e["address_id_b"], []).append(k)

    def other(k: int, node: int) -> int:
        e = rows[k]
        return e["address_id_b"] if e["address_id_a"] == node else e["address_id_a"]

    prev: dict[int, int] = {start: -1}
    queue = deque([start])
    while queue and goal not in prev:
        node = queue.popleft()
        for k in adj.get(node, ()):
            nxt = other(k, node)
            if nxt not in prev:
                prev[nxt] = k
                queue.append(nxt)
    if goal not in prev:
        return None
    path, node = [], goal
    while prev[node] != -1:
        k = prev[node]
        path.append(rows[k])
        node = other(k, node)
    return list(reversed(path))


def explain_addresses(ws: Workspace, address: str, other: str | None = None,
                      limit: int = 1000) -> ExplainResult:
    """:func:`explain` for address strings (``darkmap chain explain``)."""
    ids = [_address_id(ws, a) for a in (address, other) if a]
    return explain(ws, ids[0], ids[1] if len(ids) > 1 else None, limit)


def _address_id(ws: Workspace, address: str) -> int:
    found = store.address_id(ws.con, btc_address_key(address))
    if found is None:
        shown = address if len(address) <= 80 else f"{address[:60]}... ({len(address)} chars)"
        if clean_btc_address(address) is None:
            raise NotFoundError(f"{shown!r} is not a Bitcoin address (nor in the loaded "
                                "chain data)")
        raise NotFoundError(f"address {shown} is not in the loaded chain data: no loaded "
                            "transaction pays or spends it")
    return found


def undo_heuristic(ws: Workspace, heuristic: str, method: str = "scipy") -> ClusterSummary:
    """Re-cluster without ``heuristic``; report how many clusters split."""
    current = last_heuristics(ws)
    if heuristic not in current:
        raise BadInputError(f"{heuristic!r} is not in the current run ({', '.join(current)})")
    before = store.cluster_count(ws.con)
    summary = run_clustering(ws, tuple(h for h in current if h != heuristic), method)
    summary["undone"] = heuristic
    summary["clusters_before"] = int(before)
    return summary
