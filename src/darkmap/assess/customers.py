"""Distinct customers of a vendor from masked buyer names: a lower bound and an estimate.

Markets show buyers masked ("j***4"): two buyers can share a mask, and a buyer who left no
feedback is not seen at all. Per account:

* **lower bound** = distinct informative masks seen (each is at least one buyer);
* **estimate**: the feedback rows are a thinned sample of the orders (each order leaves a
  visible row with the market's feedback rate, and a partial capture keeps a time window,
  which is another random thinning when orders are spread over time), so the number of
  buyers behind them is a species-richness problem. darkmap uses the bias-corrected
  Chao1 estimator on the mask frequencies (``S + f1(f1-1) / (2(f2+1))``, Chao 1987) with its
  log-normal interval, then undoes mask collisions: with ``p_k`` the share of mask ``k``
  among the market's (vendor, mask) pairs, ``D`` buyers show on average
  ``sum_k 1 - (1 - p_k)^D`` distinct masks; darkmap inverts that for ``D``;
* the estimate never exceeds the orders (each customer placed at least one order).

Chao1 is a lower-bound estimator under heterogeneous buying (a few heavy buyers): the
evaluation on the simulator (docs/sales.md) says how far that carries.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = ["CustomerEstimate", "chao1", "collision_curve", "estimate_customers"]

_Z = 1.6448536269514722


@dataclass(frozen=True, slots=True)
class CustomerEstimate:
    """Lower bound, estimate and interval of one account's distinct customers."""

    lower_bound: int
    draws: np.ndarray  # Monte Carlo draws (for sums over a persona)
    f1: int
    f2: int
    chao1: float
    chao1_interval: tuple[float, float]


def chao1(counts: Counter[str]) -> tuple[float, float, float, int, int]:
    """(estimate, low, high) of the bias-corrected Chao1 with its 90% log-normal interval,
    and the singleton and doubleton counts f1, f2."""
    s = len(counts)
    freq = Counter(counts.values())
    f1, f2 = freq.get(1, 0), freq.get(2, 0)
    t = f1 * (f1 - 1) / (2 * (f2 + 1))
    if t <= 0:
        return float(s), float(s), float(s), f1, f2
    var = (f1 * (f1 - 1) / (2 * (f2 + 1)) + f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2)
           + f1 ** 2 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4))
    k = math.exp(_Z * math.sqrt(math.log(1 + var / (t * t))))
    return s + t, s + t / k, s + t * k, f1, f2


def collision_curve(p_mask: np.ndarray, max_buyers: int) -> np.ndarray:
    """Expected distinct masks for 0..max_buyers buyers drawn with mask shares ``p_mask``."""
    d = np.arange(max_buyers + 1, dtype=np.float64)
    if p_mask.size == 0:
        return d
    # sum_k 1 - (1-p_k)^D, evaluated for every D at once (chunks keep memory small)
    out = np.zeros_like(d)
    log_q = np.log1p(-np.clip(p_mask, 0.0, 1 - 1e-12))
    for i in range(0, p_mask.size, 512):
        out += (1 - np.exp(np.outer(d, log_q[i:i + 512]))).sum(axis=1)
    return out


def _invert(curve: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Buyers whose expected distinct masks equal ``masks`` (linear interpolation)."""
    top = float(curve[-1])
    m = np.minimum(masks, top)
    return np.interp(m, curve, np.arange(curve.size, dtype=np.float64))


def estimate_customers(counts: Counter[str], curve: np.ndarray | None,
                       orders: np.ndarray, rng: np.random.Generator) -> CustomerEstimate:
    """Customers of one account from its mask counts, as draws capped by ``orders`` draws."""
    s = len(counts)
    est, low, high, f1, f2 = chao1(counts)
    n = orders.shape[0]
    if est > s:
        sigma = math.log((high - s) / (est - s)) / _Z if high > est else 0.0
        masks = s + (est - s) * np.exp(rng.normal(0.0, sigma, n))
    else:
        masks = np.full(n, float(s))
    buyers = _invert(curve, masks) if curve is not None and curve.size > 1 else masks
    buyers = np.maximum(buyers, float(s))
    return CustomerEstimate(s, np.minimum(buyers, np.maximum(orders, float(s))), f1, f2,
                            est, (low, high))
