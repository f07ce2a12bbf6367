"""Candidate blocking: which account pairs are worth scoring at all.

All pairs of 100,000 accounts are 5e9; the blocks below keep a few per account and
none of them costs time quadratic in the number of accounts:

* shared identifier values, equal handles and equal normalised handles, in groups of
  2..30 accounts only (a market hot wallet shown on every profile links nobody);
  inside larger normalised-handle groups (up to 300 accounts, common at 100,000
  accounts) each account is paired with its 5 nearest group-mates in text only;
* handle n-gram neighbours: sparse products over the n-grams that are *rare enough to
  be specific* (an n-gram shared by more than ``max_df`` handles is left out, which
  bounds the work by ``n * max_df``), top-k per account;
* writing-style neighbours by sparse products over the phrasing shingles held by at
  most 400 accounts (top-k per account), like the handle n-grams;
* neighbours in three separate text spaces (writing style, products, buyer feedback),
  each reduced to dense vectors by a truncated SVD of its informative columns and
  searched with an inverted-file index: accounts are bucketed by k-means into about
  ``2 sqrt(n)`` cells and every cell is compared only with the accounts of its nearest
  cells (exact search below a few thousand accounts). Separate spaces matter: a vendor
  who rewrites their descriptions still sells the same products, and vice versa.

* migrations across a market closure: a market whose activity stops (its last
  observation, from the data) well before the data's end is taken as closed; each
  account active up to that closure is paired with its ``k`` nearest accounts, by
  products, among those of the same shipping origin on *other* markets whose activity
  starts within ``MIGRATION_WINDOW`` days after it (bounded k per account, products
  compared only inside one closure and one origin, so far below quadratic). A vendor
  who loses a market to a takedown or an exit scam reappears elsewhere, often under a
  new name and a new key, selling the same things from the same country.

Same-market pairs are kept: vendors run several accounts on one market.

:func:`blocking_plan` lays all of this out before anything is searched: the exact-key
blocks as account x key matrices, each neighbour search as a :class:`Search` cut into
independent units (blocks of rows, k-means cells, groups) over prepared matrices, and
the migration pairs. :func:`candidate_pairs` runs the plan in this process; the Spark
engine runs the same units as tasks and the key blocks as a self-join
(:func:`darkmap.resolve.spark.candidate_pairs_spark`), with the same pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from darkmap.model.arrays import distinct
from darkmap.resolve.normalise import as_latin, mixed_script
from darkmap.resolve.profiles import Profiles

__all__ = ["MAX_GROUP", "MIGRATION_WINDOW", "BlockingPlan", "Search", "blocking_plan",
           "candidate_pairs", "group_pairs", "knn_dense", "knn_ivf", "knn_sparse",
           "market_closures", "migration_pairs", "migration_successor",
           "mutual_best_successors", "one_thread", "unique_pairs"]

MAX_GROUP = 30        # identifier/handle groups larger than this are not specific
# phrasing shingles held by more accounts than this take no part in the phrasing block:
# they are boilerplate of a market or a genre, and they are what makes the sparse
# product cost grow faster than the number of accounts
_PHRASE_MAX_DF = 400
_CHUNK = 2048
_EXACT_MAX = 6000     # exact dense search up to this many accounts, IVF above
# Days: a market is "closed" when its last observation is this long before the data's
# end; an account "ends at" a closure when its own last activity is within this many
# days before it, and "starts after" it when its first activity is within this many
# days after it. A quarter of a year: wide enough for vendors who wait out a takedown
# before moving, narrow enough that most vendors of the other markets fall outside.
MIGRATION_WINDOW = 90.0
_MIGRATION_EARLY = 30.0   # a successor account may be opened shortly before the closure


def _no_pairs() -> np.ndarray:
    return np.zeros((0, 2), np.int64)


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and OpenMP on one thread for the blocking's SVDs, k-means and dense products.

    OpenBLAS splits a product differently over 1, 2 or 16 threads, and the last bits of
    a similarity move with it; near-tied neighbours then swap, and k-means cells move.
    With one thread the blocking gives the same pairs on any machine size and in a Spark
    task (whose Python workers run one BLAS thread per task core) as on the driver.
    On a shared machine it is also faster: threads that wait for a busy core spin. A
    10,000-account world's blocking plan, two cores with load average 3: 9.8-19.9 s
    wall (10.3-14.1 s CPU) with the default threads, 6.3-7.4 s (5.7 s CPU) with one.
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - off CLI start

    with threadpool_limits(limits=1):
        yield


@dataclass(frozen=True)
class Search:
    """One neighbour search cut into independent units of work.

    ``run(state, unit)`` gives the pairs of one unit (run with one BLAS thread), and the
    search's pairs are those of all its units, in any order. ``state`` is what every unit
    reads (matrices, cells) and ``run`` a module-level function, so both travel to other
    processes: on one machine the units run in a loop (:meth:`pairs`); on Spark each unit
    is a task and ``state`` a broadcast
    (:func:`darkmap.resolve.spark.candidate_pairs_spark`). Either way each unit runs the
    same arithmetic on the same arrays, so the pairs are the same.
    """

    name: str
    state: Any
    units: list[Any]
    run: Callable[[Any, Any], np.ndarray]

    def pairs(self) -> np.ndarray:
        """Every unit's pairs, run here (on one thread: :func:`one_thread`)."""
        with one_thread():
            out = [self.run(self.state, u) for u in self.units]
        return np.concatenate(out) if out else _no_pairs()


def group_pairs(groups: sp.csr_matrix, max_group: int = MAX_GROUP) -> np.ndarray:
    """All pairs of rows sharing a column, for columns with 2..max_group rows."""
    g = sp.csc_matrix(groups)
    size = np.diff(g.indptr)
    keep = np.nonzero((size >= 2) & (size <= max_group))[0]
    if keep.size == 0:
        return _no_pairs()
    sub = sp.csr_matrix(g[:, keep])
    co = sp.triu(sub @ sub.T, k=1).tocoo()
    return np.stack([co.row, co.col], axis=1).astype(np.int64)


def _large_groups(values: list[str], m: sp.csr_matrix, k: int, lo: int, hi: int) -> Search:
    """In every group of ``lo..hi`` accounts sharing a value, each account's ``k``
    nearest group-mates by the rows of ``m`` (all pairs of such a group would be too
    many, none too few); a unit is one group's accounts."""
    groups: dict[str, list[int]] = {}
    for idx, v in enumerate(values):
        if v:
            groups.setdefault(v, []).append(idx)
    units = [np.asarray(members, dtype=np.int64) for members in groups.values()
             if lo <= len(members) <= hi]
    return Search("large handle groups", (m, k), units, _group_nearest)


def _group_nearest(state: tuple[sp.csr_matrix, int], ids: np.ndarray) -> np.ndarray:
    m, k = state
    sims = (m[ids] @ m[ids].T).toarray()
    np.fill_diagonal(sims, -1.0)
    kk = min(k, len(ids) - 1)
    part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    return np.stack([np.repeat(ids, kk), ids[part.ravel()]], axis=1)


def _top_k_sparse(sims: sp.csr_matrix, k: int, offset: int) -> np.ndarray:
    counts = np.diff(sims.indptr)
    row = np.repeat(np.arange(sims.shape[0]), counts)
    order = np.lexsort((-sims.data, row))
    rank = np.arange(len(order)) - sims.indptr[row[order]]
    sel = order[rank < k + 1]
    a = row[sel] + offset
    b = sims.indices[sel]
    ok = a != b
    return np.stack([a[ok], b[ok]], axis=1)


def _top_k_rows(sims: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's ``k`` largest stored entries (rows and columns
    index different sets, so nothing is dropped as a self-match)."""
    counts = np.diff(sims.indptr)
    row = np.repeat(np.arange(sims.shape[0]), counts)
    order = np.lexsort((-sims.data, row))
    rank = np.arange(len(order)) - sims.indptr[row[order]]
    sel = order[rank < k]
    return row[sel], sims.indices[sel]


def _sparse_search(name: str, m: sp.csr_matrix, k: int, min_sim: float,
                   max_df: int | None = None) -> Search:
    """:func:`knn_sparse` as a search whose units are blocks of rows."""
    m = sp.csr_matrix(m)
    if max_df is not None:
        df = np.bincount(m.indices, minlength=m.shape[1])
        m = sp.csr_matrix(m @ sp.diags((df <= max_df).astype(np.float32)))
        m.eliminate_zeros()
    return Search(name, (m, sp.csr_matrix(m.T), k, min_sim),
                  list(range(0, m.shape[0], _CHUNK)), _sparse_rows)


def _sparse_rows(state: tuple[sp.csr_matrix, sp.csr_matrix, int, float], s: int
                 ) -> np.ndarray:
    m, mt, k, min_sim = state
    sims = sp.csr_matrix(m[s:s + _CHUNK] @ mt)
    sims.data[sims.data < min_sim] = 0
    sims.eliminate_zeros()
    return _top_k_sparse(sims, k, s)


def knn_sparse(m: sp.csr_matrix, k: int, min_sim: float, max_df: int | None = None) -> np.ndarray:
    """Top-``k`` neighbours per row by sparse dot product, at least ``min_sim``.

    With ``max_df``, columns present in more than ``max_df`` rows take no part in the
    search (they are not specific, and they are what makes sparse products quadratic);
    similarities are then computed on the remaining columns only.
    """
    return _sparse_search("sparse", m, k, min_sim, max_df).pairs()


def _top_k_dense(q: np.ndarray, c: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    sims = q @ c.T
    kk = min(kk, c.shape[0])
    part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    return part, np.take_along_axis(sims, part, axis=1)


def _dense_search(name: str, x: np.ndarray, k: int, min_sim: float,
                  valid: np.ndarray) -> Search:
    """:func:`knn_dense` as a search whose units are blocks of rows."""
    idx = np.nonzero(valid)[0]
    if idx.size < 2:
        return Search(name, None, [], _dense_rows)
    xv = np.ascontiguousarray(x[idx], dtype=np.float32)
    return Search(name, (xv, idx, k, min_sim), list(range(0, idx.size, _CHUNK)), _dense_rows)


def _dense_rows(state: tuple[np.ndarray, np.ndarray, int, float], s: int) -> np.ndarray:
    xv, idx, k, min_sim = state
    part, vals = _top_k_dense(xv[s:s + _CHUNK], xv, k + 1)
    rows = np.repeat(np.arange(s, s + part.shape[0]), part.shape[1])
    cols = part.ravel()
    ok = (vals.ravel() >= min_sim) & (rows != cols)
    return np.stack([idx[rows[ok]], idx[cols[ok]]], axis=1)


def knn_dense(x: np.ndarray, k: int, min_sim: float, valid: np.ndarray) -> np.ndarray:
    """Exact top-``k`` cosine neighbours per row of L2-normalised dense ``x``."""
    return _dense_search("dense", x, k, min_sim, valid).pairs()


def _ivf_search(name: str, x: np.ndarray, k: int, min_sim: float, valid: np.ndarray,
                probes: int = 12, seed: int = 0, exact_max: int | None = None) -> Search:
    """:func:`knn_ivf` as a search whose units are k-means cells (the cells are fitted
    here, once); up to ``exact_max`` rows (default ``_EXACT_MAX``) the exact search."""
    idx = np.nonzero(valid)[0]
    if idx.size <= (_EXACT_MAX if exact_max is None else exact_max):
        return _dense_search(name, x, k, min_sim, valid)
    xv = np.ascontiguousarray(x[idx], dtype=np.float32)
    cells = int(2 * np.sqrt(idx.size))
    from sklearn.cluster import MiniBatchKMeans  # noqa: PLC0415 - ~1 s import off CLI start

    km = MiniBatchKMeans(n_clusters=cells, batch_size=4096, n_init=1, max_iter=20,
                         random_state=seed)
    cell = km.fit_predict(xv)
    cent = km.cluster_centers_.astype(np.float32)
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-9)
    near = np.argsort(-(cent @ cent.T), axis=1)[:, :probes]
    order = np.argsort(cell, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(cell, minlength=cells))))
    units = [c for c in range(cells) if bounds[c + 1] > bounds[c]]
    return Search(name, (xv, idx, order, bounds, near, k, min_sim), units, _ivf_cell)


def _ivf_cell(state: tuple[Any, ...], c: int) -> np.ndarray:
    xv, idx, order, bounds, near, k, min_sim = state
    q = order[bounds[c]:bounds[c + 1]]
    cand = np.concatenate([order[bounds[d]:bounds[d + 1]] for d in near[c]])
    part, vals = _top_k_dense(xv[q], xv[cand], k + 1)
    rows = np.repeat(q, part.shape[1])
    cols = cand[part.ravel()]
    ok = (vals.ravel() >= min_sim) & (rows != cols)
    return np.stack([idx[rows[ok]], idx[cols[ok]]], axis=1)


def knn_ivf(x: np.ndarray, k: int, min_sim: float, valid: np.ndarray, probes: int = 12,
            seed: int = 0) -> np.ndarray:
    """Approximate top-``k`` cosine neighbours (inverted file over k-means cells).

    Cost about ``n * probes * n / cells`` dot products with ``cells ~ 2 sqrt(n)``, i.e.
    ``O(n^1.5)``, against ``O(n^2)`` for the exact search; below ``_EXACT_MAX`` rows the
    exact search is used.
    """
    return _ivf_search("ivf", x, k, min_sim, valid, probes, seed).pairs()


def _orth(y: np.ndarray) -> np.ndarray:
    """Orthonormal basis of ``y``'s columns via its small Gram matrix (no tall QR)."""
    w, v = np.linalg.eigh(y.T.astype(np.float64) @ y)
    keep = w > w.max() * 1e-10 if w.size else w > 0
    basis: np.ndarray = (y @ (v[:, keep] / np.sqrt(w[keep]))).astype(np.float32)
    return basis


def _svd_rows(m: sp.csr_matrix, dims: int, power: int = 2, seed: int = 0) -> np.ndarray:
    """Rows of ``U S`` of a rank-``dims`` randomized SVD of sparse ``m``.

    Only small ``l x l`` eigenproblems are solved (``l = dims + 8``): LAPACK QR/SVD on
    the tall and the wide sides cost more than the sparse products on a loaded machine.
    """
    rng = np.random.default_rng(seed)
    m = sp.csr_matrix(m, dtype=np.float32)
    mt = sp.csr_matrix(m.T)
    y = m @ rng.standard_normal((m.shape[1], dims + 8)).astype(np.float32)
    for _ in range(power):
        y = m @ (mt @ _orth(y))
    q = _orth(y)
    z = mt @ q
    w, v = np.linalg.eigh(z.T.astype(np.float64) @ z)
    top = np.argsort(w)[::-1][:dims]
    rows: np.ndarray = (q @ (v[:, top] * np.sqrt(np.maximum(w[top], 0)))).astype(np.float32)
    return rows


def _reduce(m: sp.csr_matrix, dims: int, seed: int = 0) -> np.ndarray:
    """L2-normalised truncated-SVD vectors of ``m``'s rows.

    Only columns present in at least two rows (and at most half of them) can make two
    accounts neighbours; dropping the rest shrinks hashed n-gram spaces from ~10^6
    columns to a few 10^4, which is what the randomized SVD's cost depends on.
    """
    df = np.bincount(m.indices, minlength=m.shape[1])
    used = np.nonzero((df >= 2) & (df <= max(2, m.shape[0] // 2)))[0]
    if used.size < 2:
        return np.zeros((m.shape[0], 1), np.float32)
    m = sp.csr_matrix(m[:, used])
    n_comp = max(1, min(dims, m.shape[0] - 1, m.shape[1] - 1))
    x = _svd_rows(m, n_comp, seed=seed)
    norms = np.linalg.norm(x, axis=1)
    norms[norms == 0] = 1.0
    unit: np.ndarray = x / norms[:, None]
    return unit


def _text_search(name: str, m: sp.csr_matrix, has: np.ndarray, k: int, dims: int,
                 min_sim: float, exact_max: int | None = None) -> Search | None:
    """Nearest neighbours in one text space: the SVD is taken here, the search is cut
    into units (:func:`_ivf_search`); None when fewer than three accounts have text."""
    n = m.shape[0]
    if has.sum() <= 2:
        return None
    x = _reduce(sp.csr_matrix(m[has]), dims)
    full = np.zeros((n, x.shape[1]), np.float32)
    full[has] = x
    return _ivf_search(name, full, k, min_sim, has, exact_max=exact_max)


def _market_last(p: Profiles) -> dict[int, float]:
    """Market code -> its last day of activity, robust to a few absurd dates.

    Market text and timestamps are written by the people under investigation: one
    feedback dated years after a takedown must not keep a market "open". The 99th
    percentile of its accounts' last activity is used instead of the maximum.
    """
    # a market's end is read from activity proper (feedback) where it has any: the
    # capture date of a page or a seized dump is when *we* looked, not when it traded
    end = p.active_end if p.active_end is not None else p.end
    out = {}
    for m in np.unique(p.market_code):
        mine = p.market_code == m
        vals = end[mine & np.isfinite(end)]
        if vals.size == 0:
            vals = p.end[mine & np.isfinite(p.end)]
        if vals.size:
            out[int(m)] = float(np.quantile(vals, 0.99))
    return out


def _activity(p: Profiles) -> tuple[np.ndarray, np.ndarray]:
    """Activity window per account: joined/feedback dates where known, else observed."""
    if p.active_start is None or p.active_end is None:
        return p.start, p.end
    return (np.where(np.isfinite(p.active_start), p.active_start, p.start),
            np.where(np.isfinite(p.active_end), p.active_end, p.end))


def market_closures(p: Profiles, window: float = MIGRATION_WINDOW) -> dict[int, float]:
    """Market code -> day of its last observed activity, for markets that went quiet.

    Derived from the workspace only: a market whose last activity is at least ``window``
    days before the latest activity of any market is taken to have closed then.
    """
    last = _market_last(p)
    if not last:
        return {}
    data_end = max(last.values())
    return {m: d for m, d in last.items() if d <= data_end - window}


def _clipped_activity(p: Profiles, closures: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    act_start, act_end = _activity(p)
    end = act_end.copy()
    for m, close in closures.items():
        # nothing happens on a market after it closed: later dates are noise
        mine = p.market_code == m
        end[mine] = np.minimum(end[mine], close)
    return act_start, end


def migration_successor(p: Profiles, i: np.ndarray, j: np.ndarray,
                        window: float = MIGRATION_WINDOW) -> np.ndarray:
    """Days from a market closure to the successor's start, per pair (nan: no such pattern).

    A pair qualifies when one account's market closed (see :func:`market_closures`), that
    account was active within ``window`` days before the closure, and the other account,
    on another market, started between ``_MIGRATION_EARLY`` days before and ``window``
    days after it. Either order of the pair is checked.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.full(len(i), np.nan)
    closures = market_closures(p, window)
    if not closures or not len(i):
        return out
    start, end = _clipped_activity(p, closures)
    close = np.array([closures.get(int(m), np.nan) for m in range(int(p.market_code.max()) + 1)])
    for a, b in ((i, j), (j, i)):
        c = close[p.market_code[a]]
        with np.errstate(invalid="ignore"):
            ok = (np.isfinite(c) & (p.market_code[a] != p.market_code[b])
                  & (end[a] >= c - window) & (start[b] >= c - _MIGRATION_EARLY)
                  & (start[b] <= c + window))
        d = start[b] - c
        out = np.where(ok & ~(np.abs(d) >= np.abs(np.nan_to_num(out, nan=np.inf))), d, out)
    return out


def migration_pairs(p: Profiles, k: int = 5, window: float = MIGRATION_WINDOW,
                    min_sim: float = 0.05) -> np.ndarray:
    """Pairs (old account, successor candidate) across every market closure.

    For each closed market, accounts whose activity ends within ``window`` days before
    the closure are compared, by product cosine, with accounts of other markets that
    start between ``_MIGRATION_EARLY`` days before and ``window`` days after it and
    ship from the same origin (unknown origins only meet unknown origins); each side
    keeps its ``k`` nearest of the other side.
    """
    out = []
    closures = market_closures(p, window)
    act_start, act_end = _clipped_activity(p, closures)
    start = np.nan_to_num(act_start, nan=-1e9)
    end = np.nan_to_num(act_end, nan=-1e9)
    for m, close in closures.items():
        old = (p.market_code == m) & (end >= close - window) & p.has_products
        new = ((p.market_code != m) & (start >= close - _MIGRATION_EARLY)
               & (start <= close + window) & p.has_products)
        if not old.any() or not new.any():
            continue
        for o in np.unique(p.origin[old]):
            a = np.nonzero(old & (p.origin == o))[0]
            b = np.nonzero(new & (p.origin == o))[0]
            if a.size == 0 or b.size == 0:
                continue
            sims = sp.csr_matrix(p.products[a] @ p.products[b].T)
            sims.data[sims.data < min_sim] = 0
            sims.eliminate_zeros()
            if not sims.nnz:
                continue
            for mat, rows_idx, cols_idx in ((sims, a, b), (sp.csr_matrix(sims.T), b, a)):
                r, c = _top_k_rows(mat, k)
                out.append(np.stack([rows_idx[r], cols_idx[c]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def mutual_best_successors(p: Profiles, window: float = MIGRATION_WINDOW) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, each the other's nearest by products across a closure.

    A one-to-one reading of a closure: among the accounts that ended at it and those
    that started after it (same origin), two that pick each other as best product match
    are far likelier one vendor than two that are merely among each other's top ``k``.
    Computed once per profiles and window (every batch of pair comparison asks again).
    """
    return p.derive(("mutual_best_successors", window),
                    lambda: _mutual_best_successors(p, window))


def _mutual_best_successors(p: Profiles, window: float) -> np.ndarray:
    pr = migration_pairs(p, k=1, window=window)
    if not len(pr):
        return np.zeros((0, 2), np.int64)
    pr = np.sort(pr, axis=1)
    uniq, cnt = np.unique(pr, axis=0, return_counts=True)
    return uniq[cnt >= 2]


@dataclass(frozen=True)
class BlockingPlan:
    """Candidate blocking, laid out so that any engine can run it.

    ``groups``: exact-key blocks, each an account x key incidence matrix whose keys held
    by 2..:data:`MAX_GROUP` accounts pair all their holders (:func:`group_pairs`, or a
    self-join on the key); ``searches``: neighbour searches cut into units
    (:class:`Search`); ``done``: pairs already found while planning (migrations, small
    and bounded per closure and origin).
    """

    groups: list[tuple[str, sp.csr_matrix]]
    searches: list[Search]
    done: list[tuple[str, np.ndarray]]


def _key_matrix(values: list[str], n: int) -> sp.csr_matrix | None:
    codes: dict[str, int] = {}
    col = np.array([codes.setdefault(k, len(codes)) if k else -1 for k in values],
                   dtype=np.int64)
    ok = col >= 0
    if not ok.any():
        return None
    return sp.csr_matrix((np.ones(ok.sum(), np.float32), (np.nonzero(ok)[0], col[ok])),
                         shape=(n, len(codes)))


def blocking_plan(p: Profiles, use_identifiers: bool = True, k_text: int = 10,
                  k_handle: int = 8, dims: int = 64, k_style: int = 20,
                  exact_max: int | None = None) -> BlockingPlan:
    """Every block of :func:`candidate_pairs`, prepared (SVDs and k-means cells fitted)
    but not searched. ``exact_max``: most accounts of a text space searched exactly
    (default ``_EXACT_MAX``; an inverted file above). Runs on one thread
    (:func:`one_thread`)."""
    with one_thread():
        return _blocking_plan(p, use_identifiers, k_text, k_handle, dims, k_style,
                              exact_max)


def _lookalike_keys(handles: list[str]) -> list[str]:
    """Per account, its handle as it prints (:func:`as_latin`) where some handle that
    mixes Latin with Cyrillic or Greek letters prints the same, else "": a look-alike
    ("TheShоp") meets the name it copies, and the handle signal tells them apart."""
    mixed = {as_latin(h) for h in handles if mixed_script(h)}
    if not mixed:
        return [""] * len(handles)
    return [k if k in mixed else "" for k in map(as_latin, handles)]


def _blocking_plan(p: Profiles, use_identifiers: bool, k_text: int, k_handle: int,
                   dims: int, k_style: int, exact_max: int | None) -> BlockingPlan:
    n = len(p)
    groups: list[tuple[str, sp.csr_matrix]] = []
    if use_identifiers:
        groups += [(f"identifier {g}", m) for g, m in p.idents.items() if m.nnz]
    # equal handles (up to case and separators), and equal normalised handles; in a
    # large workspace a normalised key can be shared by dozens of accounts while the
    # exact handle is still specific, so both are blocks of their own
    for name, values in (("handle", p.skeleton), ("normalised handle", p.hkey)):
        g = _key_matrix(values, n)
        if g is not None:
            groups.append((name, g))
    g = _key_matrix(_lookalike_keys(p.handle), n)
    if g is not None:
        groups.append(("look-alike handle", g))
    text = sp.hstack([p.style, p.products], format="csr")
    searches = [_large_groups(p.hkey, text, 5, MAX_GROUP + 1, 10 * MAX_GROUP)]
    done: list[tuple[str, np.ndarray]] = []
    if n > 1:
        searches.append(_sparse_search("handle n-grams", p.handle_grams, k_handle, 0.5,
                                       max_df=max(200, int(4 * np.sqrt(n)))))
        for name, m, has in (("style", p.style, p.has_style),
                             ("products", p.products, p.has_products),
                             ("feedback", p.feedback, p.has_feedback)):
            s = _text_search(name, m, has, k_text, dims, 0.3, exact_max)
            if s is not None:
                searches.append(s)
        # writing style also on its specific phrases directly: 64 SVD dimensions blur
        # the rare shingles that tell two writers apart (of the true pairs no block
        # found on a 10,000-vendor world, half were among each other's ten nearest by
        # exact style cosine)
        searches.append(_sparse_search("phrasing", p.phrasing, k_style, 0.05,
                                       max_df=_PHRASE_MAX_DF))
        done.append(("migration", migration_pairs(p)))
    return BlockingPlan(groups, searches, done)


def unique_pairs(blocks: list[np.ndarray]) -> np.ndarray:
    """The distinct pairs ``(i, j)``, ``i < j``, of ``blocks`` (self-pairs dropped), sorted."""
    if not blocks:
        return _no_pairs()
    pairs = np.concatenate(blocks).astype(np.int64)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if not len(pairs):
        return _no_pairs()
    # one int64 key per pair sorts as (i, j) does: np.unique(pairs, axis=0) gives the
    # same rows in the same order, but sorts 16-byte records (several times slower)
    base = int(pairs[:, 1].max()) + 1
    if pairs[:, 0].min() < 0 or base > 3_000_000_000:
        return np.unique(pairs, axis=0)
    key = distinct(pairs[:, 0] * base + pairs[:, 1])
    return np.stack([key // base, key % base], axis=1)


def candidate_pairs(p: Profiles, use_identifiers: bool = True, k_text: int = 10,
                    k_handle: int = 8, dims: int = 64, k_style: int = 20,
                    exact_max: int | None = None,
                    timings: dict[str, float] | None = None) -> np.ndarray:
    """Unique candidate pairs ``(i, j)`` with ``i < j`` as an (n, 2) int array.
    ``timings`` receives the seconds of the plan (``plan_s``: SVDs, k-means cells,
    migrations) and of running it (``search_s``: key blocks and searches)."""
    t0 = time.perf_counter()
    plan = blocking_plan(p, use_identifiers, k_text, k_handle, dims, k_style, exact_max)
    t1 = time.perf_counter()
    blocks = [group_pairs(g, MAX_GROUP) for _, g in plan.groups]
    blocks += [s.pairs() for s in plan.searches]
    blocks += [pairs for _, pairs in plan.done]
    if timings is not None:
        timings.update(plan_s=t1 - t0, search_s=time.perf_counter() - t1)
    return unique_pairs(blocks)
