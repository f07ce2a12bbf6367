"""Personas from scored links: constrained greedy average-linkage merging.

Connected components over "probable match" links chain: one strong-looking link between
two vendors' accounts would fuse two whole personas. Here two clusters merge only when the
*mean* match probability over all their cross pairs (an unscored pair counts as 0) reaches
the threshold, so a single link between two groups of 10 weighs 1/100. Analyst
judgements are hard constraints: ``same`` pairs are merged first and ``different`` pairs
are never brought into one persona.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ClusterResult", "average_linkage"]


@dataclass
class ClusterResult:
    """Cluster label per account and the constraint conflicts met on the way."""

    labels: np.ndarray
    conflicts: list[tuple[int, int]] = field(default_factory=list)


def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def average_linkage(n: int, i: np.ndarray, j: np.ndarray, p: np.ndarray,
                    threshold: float = 0.5,
                    must: list[tuple[int, int]] | None = None,
                    cannot: list[tuple[int, int]] | None = None,
                    floor: float = 0.01) -> ClusterResult:
    """Cluster ``n`` items given scored pairs ``(i, j, p)``; see the module docstring."""
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    sums: dict[int, dict[int, float]] = {}
    keep = p >= floor
    for a, b, w in zip(i[keep].tolist(), j[keep].tolist(), p[keep].tolist()):
        if a == b:
            continue
        sums.setdefault(a, {})
        sums.setdefault(b, {})
        sums[a][b] = sums[a].get(b, 0.0) + w
        sums[b][a] = sums[b].get(a, 0.0) + w
    never: dict[int, set[int]] = {}
    for a, b in cannot or []:
        never.setdefault(a, set()).add(b)
        never.setdefault(b, set()).add(a)
    version = np.zeros(n, dtype=np.int64)
    conflicts: list[tuple[int, int]] = []

    def merge(a: int, b: int) -> int:
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        version[a] += 1
        version[b] += 1
        sa = sums.setdefault(a, {})
        for x, w in sums.pop(b, {}).items():
            sx = sums[x]
            sx.pop(b, None)
            if x == a:
                continue
            sa[x] = sa.get(x, 0.0) + w
            sx[a] = sx.get(a, 0.0) + w
        sa.pop(b, None)
        nb = never.pop(b, set())
        if nb:
            na = never.setdefault(a, set())
            for x in nb:
                na.add(x)
                never[x].discard(b)
                never[x].add(a)
        return a

    for a, b in must or []:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra == rb:
            continue
        if rb in never.get(ra, ()):
            conflicts.append((a, b))
            continue
        merge(ra, rb)

    heap: list[tuple[float, int, int, int, int]] = []

    def push(a: int) -> None:
        for x, w in sums.get(a, {}).items():
            avg = w / (size[a] * size[x])
            if avg >= threshold and x not in never.get(a, ()):
                heapq.heappush(heap, (-avg, a, x, int(version[a]), int(version[x])))

    for a in list(sums):
        if parent[a] == a:
            push(a)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b or version[a] != va or version[b] != vb:
            continue
        if b in never.get(a, ()):
            continue
        push(merge(a, b))
    labels = np.array([_find(parent, x) for x in range(n)], dtype=np.int64)
    return ClusterResult(labels, conflicts)
