"""Candidate blocking: which account pairs are worth scoring at all.

All pairs of 100,000 accounts are 5e9; the blocks below keep a few per account:
shared identifier values (small groups only: a market hot wallet shown on every
profile links nobody), equal normalised handles, nearest neighbours of handle n-grams
(sparse products), and nearest neighbours of writing style and product profiles on
reduced dense vectors (chunked matrix products with a top-k per row). Same-market pairs
are kept: vendors run several accounts on one market.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from darkmap.resolve.profiles import Profiles

__all__ = ["candidate_pairs", "knn_dense", "knn_sparse"]

MAX_GROUP = 30        # identifier/handle groups larger than this are not specific
_CHUNK = 2048


def _pairs_from_groups(groups: sp.csr_matrix, max_group: int) -> np.ndarray:
    """All pairs of rows sharing a column, for columns with 2..max_group rows."""
    g = sp.csc_matrix(groups)
    size = np.diff(g.indptr)
    keep = np.nonzero((size >= 2) & (size <= max_group))[0]
    if keep.size == 0:
        return np.zeros((0, 2), np.int64)
    sub = sp.csr_matrix(g[:, keep])
    co = sp.triu(sub @ sub.T, k=1).tocoo()
    return np.stack([co.row, co.col], axis=1).astype(np.int64)


def knn_sparse(m: sp.csr_matrix, k: int, min_sim: float) -> np.ndarray:
    """Top-``k`` neighbours per row by sparse dot product, at least ``min_sim``."""
    out = []
    mt = sp.csr_matrix(m.T)
    for s in range(0, m.shape[0], _CHUNK):
        sims = sp.csr_matrix(m[s:s + _CHUNK] @ mt)
        sims.data[sims.data < min_sim] = 0
        sims.eliminate_zeros()
        counts = np.diff(sims.indptr)
        row = np.repeat(np.arange(sims.shape[0]), counts)
        order = np.lexsort((-sims.data, row))
        rank = np.arange(len(order)) - sims.indptr[row[order]]
        sel = order[rank < k + 1]
        a = row[sel] + s
        b = sims.indices[sel]
        ok = a != b
        out.append(np.stack([a[ok], b[ok]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def knn_dense(x: np.ndarray, k: int, min_sim: float, valid: np.ndarray) -> np.ndarray:
    """Top-``k`` cosine neighbours per row of L2-normalised dense ``x``."""
    idx = np.nonzero(valid)[0]
    if idx.size < 2:
        return np.zeros((0, 2), np.int64)
    xv = np.ascontiguousarray(x[idx], dtype=np.float32)
    kk = min(k + 1, idx.size)
    out = []
    for s in range(0, idx.size, _CHUNK):
        sims = xv[s:s + _CHUNK] @ xv.T
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(sims, part, axis=1)
        rows = np.repeat(np.arange(s, s + sims.shape[0]), kk)
        cols = part.ravel()
        ok = (vals.ravel() >= min_sim) & (rows != cols)
        out.append(np.stack([idx[rows[ok]], idx[cols[ok]]], axis=1))
    return np.concatenate(out)


def _reduce(m: sp.csr_matrix, dims: int, seed: int = 0) -> np.ndarray:
    # hashed spaces are wide and mostly empty: drop unused columns before the SVD,
    # whose random projection is dense in the number of columns
    used = np.unique(m.indices)
    m = sp.csr_matrix(m[:, used])
    n_comp = max(1, min(dims, m.shape[0] - 1, m.shape[1] - 1))
    svd = TruncatedSVD(n_components=n_comp, n_iter=4, random_state=seed)
    x = svd.fit_transform(m).astype(np.float32)
    norms = np.linalg.norm(x, axis=1)
    norms[norms == 0] = 1.0
    return x / norms[:, None]


def candidate_pairs(p: Profiles, use_identifiers: bool = True, k_style: int = 10,
                    k_handle: int = 8, dims: int = 96) -> np.ndarray:
    """Unique candidate pairs ``(i, j)`` with ``i < j`` as an (n, 2) int array."""
    n = len(p)
    blocks = []
    if use_identifiers:
        for m in p.idents.values():
            if m.nnz:
                blocks.append(_pairs_from_groups(m, MAX_GROUP))
    # equal normalised handles
    codes: dict[str, int] = {}
    key_col = np.array([codes.setdefault(k, len(codes)) if k else -1 for k in p.hkey],
                       dtype=np.int64)
    ok = key_col >= 0
    if ok.any():
        g = sp.csr_matrix((np.ones(ok.sum(), np.float32), (np.nonzero(ok)[0], key_col[ok])),
                          shape=(n, len(codes)))
        blocks.append(_pairs_from_groups(g, MAX_GROUP))
    if n > 1:
        blocks.append(knn_sparse(p.handle_grams, k_handle, 0.5))
        both = sp.hstack([p.style, p.products * 0.5, p.feedback * 0.5], format="csr")
        has = p.has_style | p.has_products | p.has_feedback
        if has.sum() > 2:
            x = _reduce(both[has], dims)
            full = np.zeros((n, x.shape[1]), np.float32)
            full[has] = x
            blocks.append(knn_dense(full, k_style, 0.3, has))
    if not blocks:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(blocks).astype(np.int64)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0)
