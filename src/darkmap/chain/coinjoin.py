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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CoinJoinFlags", "KINDS", "detect_coinjoins", "equal_output_stats"]

KINDS = ("", "whirlpool", "wasabi1", "wasabi2", "joinmarket")
"""Kind names by code (0 = not a CoinJoin)."""

WHIRLPOOL_DENOMS = np.array([100_000, 1_000_000, 5_000_000, 50_000_000], dtype=np.int64)
_WASABI1_BASE = 10_000_000


@dataclass
class CoinJoinFlags:
    """Per-transaction detection results."""

    kind: np.ndarray          # int8 code into KINDS
    n_equal: np.ndarray       # size of the largest group of equal-value outputs
    denomination: np.ndarray  # the value of that group (0 if none)

    @property
    def is_coinjoin(self) -> np.ndarray:
        """Boolean mask of CoinJoins."""
        return self.kind > 0


def equal_output_stats(n_tx: int, out_tx: np.ndarray, out_value: np.ndarray,
                       min_outputs: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tx: size of the largest equal-value output group, its value, outputs in groups.

    Only transactions with at least ``min_outputs`` outputs are examined (no rule needs
    fewer), which skips most of a real chain. ``out_tx`` must be sorted.
    """
    n_equal = np.zeros(n_tx, dtype=np.int64)
    denom = np.zeros(n_tx, dtype=np.int64)
    grouped = np.zeros(n_tx, dtype=np.int64)
    if len(out_tx) == 0:
        return n_equal, denom, grouped
    n_out = np.bincount(out_tx, minlength=n_tx)
    sel = n_out[out_tx] >= min_outputs
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
    n_equal[:] = np.where(n_out > 0, 1, 0)
    n_equal[run_tx[top]] = lengths[top]
    np.maximum.at(denom, run_tx[top], run_val[top])
    return n_equal, denom, grouped


def detect_coinjoins(n_tx: int, in_ptr: np.ndarray, out_ptr: np.ndarray, out_tx: np.ndarray,
                     out_value: np.ndarray) -> CoinJoinFlags:
    """Flag CoinJoins by the rules in the module docstring."""
    n_in = np.diff(in_ptr)
    n_out = np.diff(out_ptr)
    k, denom, grouped = equal_output_stats(n_tx, out_tx, out_value)
    kind = np.zeros(n_tx, dtype=np.int8)
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
    return CoinJoinFlags(kind, k, denom)
