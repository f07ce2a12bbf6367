"""Distinct customers of a vendor from masked buyer names: a lower bound and an estimate.

Markets show buyers masked ("j***4"): two buyers can share a mask, and a buyer who left no
feedback is not seen at all. Per account:

* **lower bound** = distinct informative masks seen (each is at least one buyer);
* **estimate**: the feedback rows are a thinned sample of the orders (each order leaves a
  visible row with the market's feedback rate; a partial capture keeps a time window,
  another random thinning when orders are spread over time). darkmap first undoes mask
  collisions among the rows: masks are modelled as independent first and last characters
  whose shares ``p_first``, ``p_last`` come from the market's distinct masks, so ``D``
  buyers show on average ``sum_k 1 - (1 - p_k)^D`` distinct masks (``p_k`` over every
  first x last pair); inverting that gives the buyers behind the rows, ``D_rows``. The
  share ``D_rows / rows`` (buyers per order among the rows) is carried to every order
  draw: ``customers = orders x D_rows / rows``, with the binomial uncertainty of the share;
* the estimate never exceeds the orders and never falls below the masks seen.

The share carried to all orders assumes the rows show repeat buying as often as the
orders do; a vendor whose buyers come back often is overestimated (more orders, more
repeats). The bias-corrected Chao1 (``S + f1(f1-1) / (2(f2+1))``, Chao 1987) is kept in the
evidence as the species-richness view. docs/sales.md has the simulator's figures.
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
    out: np.ndarray = np.interp(m, curve, np.arange(curve.size, dtype=np.float64))
    return out


def estimate_customers(counts: Counter[str], curve: np.ndarray | None,
                       orders: np.ndarray, rng: np.random.Generator) -> CustomerEstimate:
    """Customers of one account from its mask counts, as draws capped by ``orders`` draws.

    The buyers behind the ``n`` rows are the distinct masks with collisions undone
    (``D_rows``); each order draw ``N`` then has ``N x D_rows / n`` customers (the rows'
    share of first-time buyers carried to all orders), with the binomial uncertainty of
    that share. Chao1 (kept in the evidence) is the lower side when it is larger.
    """
    s = len(counts)
    n_rows = sum(counts.values())
    est, low, high, f1, f2 = chao1(counts)
    n = orders.shape[0]
    d_rows = float(_invert(curve, np.array([float(s)]))[0]) if curve is not None and \
        curve.size > 1 else float(s)
    d_rows = min(max(d_rows, float(s)), float(n_rows))
    share = d_rows / n_rows if n_rows else 1.0
    sd = math.sqrt(max(share * (1 - share), 0.25 / n_rows) / n_rows) if n_rows else 0.0
    shares = np.clip(share + rng.normal(0.0, sd, n), 1e-3, 1.0)
    buyers = np.maximum(orders * shares, float(s))
    return CustomerEstimate(s, np.minimum(buyers, np.maximum(orders, float(s))), f1, f2,
                            est, (low, high))
