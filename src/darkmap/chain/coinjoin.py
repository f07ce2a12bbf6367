"""Detect CoinJoin transactions, vectorised over all transactions at once.

A CoinJoin spends inputs of many owners, so the multi-input heuristic must skip it.
Rules (each conservative: a false positive only withholds merges):

- ``whirlpool`` (Samourai): exactly 5 inputs and 5 outputs of one pool denomination
  (0.001, 0.01, 0.05 or 0.5 BTC).
- ``wasabi1`` (ZeroLink): >= 10 equal outputs of about 0.1 BTC or a doubling of it
  (2 % tolerance), at least as many inputs.
- ``wasabi2`` (WabiSabi): >= 50 inputs and >= 50 outputs, at least half of the outputs
  in groups of equal value.
- ``joinmarket``: the most common output value occurs k >= 3 times, there are at most
  2k + 1 outputs (one equal output plus at most one change per participant) and at
  least k inputs.

Every rule needs at least 3 inputs and 3 outputs (:data:`MIN_INPUTS`,
:data:`MIN_OUTPUTS`), and either at most ``2 * inputs + 1`` outputs (joinmarket: ``n_out
<= 2k + 1`` and ``k <= n_in``; whirlpool: 5 and 5) or at least 10 of each (wasabi1: ``k
>= 10`` equal outputs and as many inputs; wasabi2: 50 and 50). Only the transactions
passing that test on their counts (:func:`candidates`; about one in ten on a real chain)
have their outputs grouped by value: the others are never hashed or sorted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CoinJoinFlags", "KINDS", "MIN_INPUTS", "MIN_OUTPUTS", "candidates",
           "detect_coinjoins", "equal_output_stats"]

KINDS = ("", "whirlpool", "wasabi1", "wasabi2", "joinmarket")
"""Kind names by code (0 = not a CoinJoin)."""

WHIRLPOOL_DENOMS = np.array([100_000, 1_000_000, 5_000_000, 50_000_000], dtype=np.int64)
_WASABI1_BASE = 10_000_000
MIN_INPUTS = 3
"""Fewest inputs any rule accepts (joinmarket: k >= 3 inputs; the others more)."""
MIN_OUTPUTS = 3
"""Fewest outputs any rule accepts (joinmarket: k >= 3 equal outputs; the others more)."""


@dataclass
class CoinJoinFlags:
    """Per-transaction detection results."""

    kind: np.ndarray          # int8 code into KINDS
    n_equal: np.ndarray       # size of the largest group of equal-value outputs (examined
    #                           transactions; 1 for the others with an output, else 0)
    denomination: np.ndarray  # the value of that group (0 if none or not examined)

    @property
    def is_coinjoin(self) -> np.ndarray:
        """Boolean mask of CoinJoins."""
        return self.kind > 0


def equal_output_stats(n_tx: int, out_tx: np.ndarray, out_value: np.ndarray,
                       min_outputs: int = MIN_OUTPUTS, examine: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tx: size of the largest equal-value output group, its value, outputs in groups.

    Only transactions with at least ``min_outputs`` outputs, and among ``examine`` (a
    boolean mask per tx) when given, are examined; the others get 1 (0 without outputs),
    0 and 0. ``out_tx`` must be sorted.
    """
    n_equal = np.zeros(n_tx, dtype=np.int64)
    denom = np.zeros(n_tx, dtype=np.int64)
    grouped = np.zeros(n_tx, dtype=np.int64)
    if len(out_tx) == 0:
        return n_equal, denom, grouped
    n_out = np.bincount(out_tx, minlength=n_tx)
    n_equal[:] = n_out > 0
    cand = n_out >= min_outputs
    if examine is not None:
        cand &= examine
    sel = cand[out_tx]
    tx_sel, val_sel = out_tx[sel], out_value[sel]
    if len(tx_sel) == 0:
        return n_equal, denom, grouped
    # one sort on a mixed 64-bit key groups equal (tx, value) pairs together; a hash
    # collision between different pairs can only split a group (undercount), and runs
    # below are cut wherever tx or value differ, so no group is ever invented
    key = (tx_sel.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ val_sel.astype(np.uint64)
    order = np.argsort(key, kind="quicksort")
    t, v = tx_sel[order], val_sel[order]
    start = np.ones(len(t), dtype=bool)
    start[1:] = (t[1:] != t[:-1]) | (v[1:] != v[:-1])
    starts = np.nonzero(start)[0]
    lengths = np.diff(np.append(starts, len(t)))
    run_tx, run_val = t[starts], v[starts]
    multi = lengths >= 2
    grouped += np.bincount(run_tx[multi], weights=lengths[multi], minlength=n_tx).astype(np.int64)
    # the longest run per tx (ties: the largest value)
    best = np.zeros(n_tx, dtype=np.int64)
    np.maximum.at(best, run_tx[multi], lengths[multi])
    top = multi & (lengths == best[run_tx])
    n_equal[run_tx[top]] = lengths[top]
    np.maximum.at(denom, run_tx[top], run_val[top])
    return n_equal, denom, grouped


def _candidate_groups(cand: np.ndarray, out_ptr: np.ndarray, out_value: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the transactions ``cand`` (indices): largest equal-value output group, its
    value (the largest among ties) and outputs in groups of >= 2, as
    :func:`equal_output_stats` computes them.

    Only the outputs of ``cand`` are touched: their index ranges come from ``out_ptr``.
    """
    m = len(cand)
    k = np.ones(m, dtype=np.int64)
    denom = np.zeros(m, dtype=np.int64)
    grouped = np.zeros(m, dtype=np.int64)
    lens = out_ptr[cand + 1] - out_ptr[cand]
    total = int(lens.sum())
    if not total:
        return k, denom, grouped
    local = np.repeat(np.arange(m, dtype=np.int64), lens)
    ends = np.cumsum(lens)
    idx = np.arange(total, dtype=np.int64) + np.repeat(out_ptr[cand] - (ends - lens), lens)
    val = out_value[idx]
    # one sort on a mixed 64-bit key, as in equal_output_stats (a lexsort is 10x slower)
    order = np.argsort((local.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
                       ^ val.astype(np.uint64), kind="quicksort")
    t, v = local[order], val[order]
    start = np.ones(total, dtype=bool)
    start[1:] = (t[1:] != t[:-1]) | (v[1:] != v[:-1])
    starts = np.flatnonzero(start)
    run_len = np.diff(np.append(starts, total))
    run_tx, run_val = t[starts], v[starts]
    multi = run_len >= 2
    grouped += np.bincount(run_tx[multi], weights=run_len[multi], minlength=m).astype(np.int64)
    best = np.zeros(m, dtype=np.int64)
    np.maximum.at(best, run_tx[multi], run_len[multi])
    top = multi & (run_len == best[run_tx])
    k[run_tx[top]] = run_len[top]
    np.maximum.at(denom, run_tx[top], run_val[top])
    return k, denom, grouped


def candidates(n_in: np.ndarray, n_out: np.ndarray) -> np.ndarray:
    """Indices of the transactions some rule could flag, judged on their input and output
    counts alone (see the module docstring): >= 3 inputs and outputs, and at most
    ``2 * n_in + 1`` outputs or >= 10 inputs and outputs."""
    few = n_out <= 2 * n_in + 1
    few |= (n_in >= 10) & (n_out >= 10)
    few &= n_in >= MIN_INPUTS
    few &= n_out >= MIN_OUTPUTS
    return np.flatnonzero(few)


def detect_coinjoins(n_tx: int, in_ptr: np.ndarray, out_ptr: np.ndarray,
                     out_tx: np.ndarray | None, out_value: np.ndarray) -> CoinJoinFlags:
    """Flag CoinJoins by the rules in the module docstring.

    The rules run on the :func:`candidates` only (the others get ``n_equal`` 1, or 0
    without outputs, and no denomination); ``out_tx`` is not read (the outputs of a
    transaction are its range in ``out_ptr``; None is fine), it stays in the signature
    for callers.
    """
    n_in = np.diff(in_ptr)
    n_out = np.diff(out_ptr)
    cand = candidates(n_in, n_out)
    k_all = (n_out > 0).astype(np.int64)
    denom_all = np.zeros(n_tx, dtype=np.int64)
    kind_all = np.zeros(n_tx, dtype=np.int8)
    if len(cand):
        k, denom, grouped = _candidate_groups(cand, out_ptr, out_value)
        kind = _rules(n_in[cand], n_out[cand], k, denom, grouped)
        k_all[cand], denom_all[cand], kind_all[cand] = k, denom, kind
    return CoinJoinFlags(kind_all, k_all, denom_all)


def _rules(n_in: np.ndarray, n_out: np.ndarray, k: np.ndarray, denom: np.ndarray,
           grouped: np.ndarray) -> np.ndarray:
    """The kind code of each transaction from its counts and equal-output groups."""
    kind = np.zeros(len(k), dtype=np.int8)
    joinmarket = (k >= 3) & (n_out <= 2 * k + 1) & (n_in >= k) & (denom >= 10_000)
    wasabi2 = (n_in >= 50) & (n_out >= 50) & (2 * grouped >= n_out)
    ratio = np.where(denom > 0, denom / _WASABI1_BASE, 0.0)
    level = np.round(np.log2(np.where(ratio > 0, ratio, 1.0)))
    near = (level >= 0) & (level <= 6) & (np.abs(ratio / np.exp2(level) - 1.0) <= 0.02)
    wasabi1 = (k >= 10) & (n_in >= k) & near & (denom > 0)
    whirlpool = (n_in == 5) & (n_out == 5) & (k == 5) & np.isin(denom, WHIRLPOOL_DENOMS)
    # later rules win: most specific last
    kind[joinmarket] = 4
    kind[wasabi2] = 3
    kind[wasabi1] = 2
    kind[whirlpool] = 1
    return kind
