"""Personas from scored links: constrained correlation clustering.

Connected components over "probable match" links chain: one strong-looking link between
two vendors' accounts would fuse two whole personas. Here every pair carries a signed
weight, ``logit(p) - logit(threshold)`` (an unscored pair counts as a fixed negative
``missing`` weight), and clusters merge only when the *sum* of weights over all their
cross pairs is positive (greedy additive edge contraction), followed by single-account
moves that improve the same objective. A single link between two groups of 10 is
outweighed by the 99 pairs that are not alike.

Analyst judgements are hard constraints: ``same`` pairs are merged first and never
separated, ``different`` pairs are never brought into one persona.

A pair's own evidence against it is a constraint too: two accounts whose pair is marked
``apart`` (the linker marks pairs whose evidence makes a match clearly less likely than
no evidence at all, see :func:`darkmap.resolve.link.clustering_inputs`) are never put
into one persona through a chain of others, however strongly each is tied to the
accounts between them (a look-alike or an impersonator is close to one of a vendor's
accounts and unlike the rest). Analyst ``same`` judgements override it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from darkmap.model.arrays import distinct

__all__ = ["MISSING", "ClusterResult", "attracted", "correlation_clustering",
           "floored_probabilities", "pair_weights", "twin_sibling_pairs"]

MISSING = -2.0
"""What an unscored pair (one that blocking never proposed) weighs in the clustering."""


@dataclass
class ClusterResult:
    """Cluster label per item and the constraint conflicts met on the way."""

    labels: np.ndarray
    conflicts: list[tuple[int, int]] = field(default_factory=list)


def _find(parent: list[int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def correlation_clustering(n: int, i: np.ndarray, j: np.ndarray, p: np.ndarray,
                           threshold: float = 0.5,
                           must: list[tuple[int, int]] | None = None,
                           cannot: list[tuple[int, int]] | None = None,
                           missing: float = MISSING, sweeps: int = 4,
                           apart: np.ndarray | None = None) -> ClusterResult:
    """Cluster ``n`` items from scored pairs ``(i, j, p)``; see the module docstring.
    ``apart``: a mask of the pairs kept apart unless a judgement joins them."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    w_all = pair_weights(p, threshold)
    if missing <= 0:
        inside = attracted(n, i, j, w_all, must or [])
        nb = _neighbours(i[inside], j[inside], w_all[inside])
    else:
        nb = _neighbours(i, j, w_all)
    never: dict[int, set[int]] = {}
    for a, b in cannot or []:
        never.setdefault(a, set()).add(b)
        never.setdefault(b, set()).add(a)
    parent = list(range(n))
    members: dict[int, set[int]] = {}
    conflicts: list[tuple[int, int]] = []
    frozen: set[int] = set()

    def mem(c: int) -> set[int]:
        return members.get(c) or {c}

    def forbidden(ca: int, cb: int) -> bool:
        small, big = (ca, cb) if len(mem(ca)) <= len(mem(cb)) else (cb, ca)
        bigm = mem(big)
        return any(x in bigm for v in mem(small) for x in never.get(v, ()))

    # cluster-level sums and scored-pair counts between current clusters
    sums: dict[int, dict[int, list[float]]] = {
        a: {b: [w, 1] for b, w in d.items()} for a, d in nb.items()}

    def merge(a: int, b: int) -> int:
        if len(mem(a)) < len(mem(b)):
            a, b = b, a
        members[a] = mem(a) | mem(b)
        members.pop(b, None)
        parent[b] = a
        sa = sums.setdefault(a, {})
        for x, (w, c) in sums.pop(b, {}).items():
            sx = sums[x]
            sx.pop(b, None)
            if x == a:
                continue
            cur = sa.setdefault(x, [0.0, 0])
            cur[0] += w
            cur[1] += c
            sx[a] = cur
        sa.pop(b, None)
        return a

    for a, b in must or []:
        frozen.update((a, b))
        ra, rb = _find(parent, a), _find(parent, b)
        if ra == rb:
            continue
        if forbidden(ra, rb):
            conflicts.append((a, b))
            continue
        merge(ra, rb)
    if apart is not None:
        _keep_apart(never, parent, i, j, np.asarray(apart, bool), p > threshold)

    def gain(a: int, b: int) -> float:
        w, c = sums[a][b]
        return w + (len(mem(a)) * len(mem(b)) - c) * missing

    heap: list[tuple[float, int, int, int, int]] = []
    # the gain of two clusters is their summed weight plus ``missing`` per unscored pair
    # between them: with ``missing`` <= 0 a sum <= 0 never gains, and most sums are
    # negative (unlike candidates), so their gain is not worked out
    lossy = missing <= 0

    def push(a: int, put: Callable[[Any, Any], None] = heapq.heappush) -> None:
        na = len(mem(a))
        for x, (w, c) in sums.get(a, {}).items():
            if lossy and w <= 0:
                continue
            g = w + (na * len(mem(x)) - c) * missing
            if g > 0:
                put(heap, (-g, a, x, na, len(mem(x))))

    # the first entries are listed, then heapified: the heap pops the same entries in
    # the same order however it was built (its entries are totally ordered)
    for a in list(sums):
        if parent[a] == a:
            push(a, list.append)
    heapq.heapify(heap)
    while heap:
        _, a, b, sa_, sb_ = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b or b not in sums.get(a, {}):
            continue
        if len(mem(a)) != sa_ or len(mem(b)) != sb_:
            continue  # stale: one side grew since this entry was pushed
        if gain(a, b) <= 0 or forbidden(a, b):
            continue
        push(merge(a, b))
    labels = [_find(parent, x) for x in range(n)]
    _local_moves(labels, nb, never, frozen, missing, sweeps)
    return ClusterResult(np.asarray(labels, dtype=np.int64), conflicts)


def pair_weights(p: np.ndarray, threshold: float) -> np.ndarray:
    """Each pair's weight in the clustering: ``logit(p) - logit(threshold)``, bounded."""
    w: np.ndarray = np.clip(np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
                            - _logit(threshold), -12, 12)
    return w


def floored_probabilities(p: np.ndarray, evidence: np.ndarray, threshold: float,
                          missing: float | np.ndarray = MISSING) -> np.ndarray:
    """The probabilities the clustering weighs: ``p``, except that no pair weighs less
    than an unscored pair (``missing``) plus the part of its own ``evidence`` that speaks
    against a match (log-odds beside a pair with no evidence at all, below 0).

    A scored pair with little evidence either way (accounts that share a country and a
    few phrases, nothing else) has a probability near the model's base rate, whose weight
    (about -6 at the default threshold) counts three times what a pair that blocking
    never proposed counts. Within a persona a vendor's accounts need not all resemble
    each other: a new handle and a new way of writing tie to the old accounts only
    through the one that shares a key or a contact. Scored without evidence, the
    unlike pairs outweighed that tie (a vendor's fourth account, whose key matches
    one of the three, left out). Evidence against a match still counts in full, on top
    of ``missing``; a pair whose evidence is clearly against is kept apart anyway
    (``apart``). Pairs at or above the floor keep their own ``p``."""
    p = np.asarray(p, np.float64)
    w = pair_weights(p, threshold)
    floor = missing + np.minimum(np.asarray(evidence, np.float64), 0.0)
    raised = 1.0 / (1.0 + np.exp(-(floor + _logit(threshold))))
    out: np.ndarray = np.where(w >= floor, p, raised)
    return out


def twin_sibling_pairs(i: np.ndarray, j: np.ndarray, p: np.ndarray, market: np.ndarray,
                       threshold: float) -> np.ndarray:
    """The pairs of accounts on two markets that a third account ties together, the
    third on the same market as one of them, with links at or above ``threshold`` to
    both: ``hansa:x ~ dream:x`` and ``dream:x ~ dream:y`` make ``(hansa:x, dream:y)``
    one. A vendor's second account on a market need not resemble his account on
    another: that pair is no evidence against (docs/linking.md, "A twin beside a
    second account")."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    out = np.zeros(len(i), dtype=bool)
    strong = np.flatnonzero(np.asarray(p) >= threshold)
    near: dict[int, set[int]] = {}
    for a, b in zip(i[strong].tolist(), j[strong].tolist(), strict=True):
        if a != b:
            near.setdefault(a, set()).add(b)
            near.setdefault(b, set()).add(a)
    for r in np.flatnonzero(market[i] != market[j]).tolist():
        a, b = int(i[r]), int(j[r])
        via = near.get(a, set()) & near.get(b, set())
        out[r] = any(market[d] in (market[a], market[b]) for d in via)
    return out


def attracted(n: int, i: np.ndarray, j: np.ndarray, w: np.ndarray,
              must: list[tuple[int, int]]) -> np.ndarray:
    """The pairs whose two items are joined by a path of attracting pairs (weight > 0)
    and ``must`` judgements.

    With ``missing`` <= 0 no persona ever spans two such components: a merge needs a
    positive summed weight between two clusters, and a single item moves only to a
    cluster it fits better than alone, so each needs an attracting pair between them.
    The other pairs weigh only on choices that are never made, and a candidate set is
    mostly unlike pairs between items that attract nobody: clustering without them
    gives the same personas at a fraction of the work.
    """
    keep = w > 0
    mi = np.array([a for a, _ in must], np.int64)
    mj = np.array([b for _, b in must], np.int64)
    g = sp.coo_matrix((np.ones(int(keep.sum()) + len(mi)),
                       (np.concatenate([i[keep], mi]), np.concatenate([j[keep], mj]))),
                      shape=(n, n))
    _, comp = connected_components(g, directed=False)
    size = np.bincount(comp)
    inside: np.ndarray = (comp[i] == comp[j]) & (size[comp[i]] > 1)
    return inside


def _neighbours(i: np.ndarray, j: np.ndarray, w: np.ndarray) -> dict[int, dict[int, float]]:
    """Each item's scored neighbours and weights, in the order of the pairs (which
    breaks ties between equally good moves); a repeated pair keeps its last weight."""
    keep = i != j
    i, j, w = i[keep].astype(np.int64), j[keep].astype(np.int64), w[keep]
    nb: dict[int, dict[int, float]] = {}
    if not len(i):
        return nb
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * (int(max(hi.max(), 0)) + 1) + hi
    if len(distinct(key)) < len(key):  # a repeated pair: as the pairs come
        for a, b, x in zip(i.tolist(), j.tolist(), w.tolist(), strict=True):
            nb.setdefault(a, {})[b] = x
            nb.setdefault(b, {})[a] = x
        return nb
    # every pair once: per item, its neighbours by pair index (i0 j0 i1 j1 ...)
    src = np.stack([i, j], axis=1).ravel()
    order = np.argsort(src, kind="stable")   # by item, then by pair index
    dst = np.stack([j, i], axis=1).ravel()[order].tolist()
    wt = np.repeat(w, 2)[order].tolist()
    items, starts = np.unique(src[order], return_index=True)
    ends = np.append(starts[1:], len(order)).tolist()
    for v, a, b in zip(items.tolist(), starts.tolist(), ends, strict=True):
        nb[v] = dict(zip(dst[a:b], wt[a:b], strict=True))
    return nb


def _keep_apart(never: dict[int, set[int]], parent: list[int], i: np.ndarray,
                j: np.ndarray, apart: np.ndarray, attract: np.ndarray) -> None:
    """Add the ``apart`` pairs to ``never``, except those the analysts' ``same``
    judgements have already put into one persona. Only pairs that the
    attracting pairs (``attract``) and the judged merges connect can ever meet in one
    cluster; the others are left out (most candidate pairs are unlike)."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    low = np.flatnonzero(apart)
    if not len(low):
        return
    n = len(parent)
    root = np.fromiter((_find(parent, x) for x in range(n)), np.int64, count=n)
    pos = np.flatnonzero(attract)
    g = sp.coo_matrix((np.ones(len(pos) + n), (np.concatenate([root[i[pos]], root]),
                                                np.concatenate([root[j[pos]],
                                                                np.arange(n)]))),
                      shape=(n, n))
    _, comp = connected_components(g, directed=False)
    low = low[(comp[root[i[low]]] == comp[root[j[low]]]) & (root[i[low]] != root[j[low]])]
    for a, b in zip(i[low].tolist(), j[low].tolist(), strict=True):
        if a != b and _find(parent, a) != _find(parent, b):
            never.setdefault(a, set()).add(b)
            never.setdefault(b, set()).add(a)


def _fit(c: int, own: int, to: dict[int, list[float]], size: dict[int, int],
         missing: float) -> float:
    """How well an item (now in cluster ``own``) fits cluster ``c``: the summed weights of
    its scored pairs into ``c`` (``to[c]`` = [weight, pairs]), plus ``missing`` for every
    other member of ``c`` it has no scored pair with."""
    w, cnt = to.get(c, (0.0, 0))
    k = size[c] - (1 if c == own else 0)
    return w + (k - cnt) * missing


def _local_moves(labels: list[int], nb: dict[int, dict[int, float]],
                 never: dict[int, set[int]], frozen: set[int], missing: float,
                 sweeps: int) -> None:
    """Move single items to the cluster that most improves the objective."""
    size: dict[int, int] = {}
    for lab in labels:
        size[lab] = size.get(lab, 0) + 1
    next_label = len(labels)
    # an item alone whose scored pairs all weigh <= 0 fits no cluster better than none
    # (with ``missing`` <= 0), however its neighbours move: it is not worked out
    cold = ({v for v, d in nb.items() if max(d.values()) <= 0} if missing <= 0
            else set())
    order = sorted(nb)
    for _ in range(sweeps):
        moved = 0
        for v in order:
            if v in frozen or (v in cold and size[labels[v]] == 1):
                continue
            own = labels[v]
            to: dict[int, list[float]] = {}
            for u, w in nb[v].items():
                t = to.setdefault(labels[u], [0.0, 0])
                t[0] += w
                t[1] += 1
            stay = _fit(own, own, to, size, missing) if size[own] > 1 else 0.0
            # leaving for a persona of its own gains -stay: a cluster the item fits no
            # better than nothing (fit <= 0) is never the move, however bad its own is
            alone = -stay if size[own] > 1 else 0.0
            best, best_gain = None, max(1e-9, alone)
            for c in to:
                if c == own:
                    continue
                bad = never.get(v)
                if bad and any(labels[x] == c for x in bad):
                    continue
                g = _fit(c, own, to, size, missing) - stay
                if g > best_gain:
                    best, best_gain = c, g
            if best is None and alone > 1e-9:
                best = next_label   # better alone
                next_label += 1
                size[best] = 0
            if best is not None:
                size[own] -= 1
                size[best] = size.get(best, 0) + 1
                labels[v] = best
                moved += 1
        if not moved:
            break
