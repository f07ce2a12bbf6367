"""Each market's feedback rate (share of orders that leave feedback), with its uncertainty.

**Evidence.** Markets display their own counters beside feedback: a vendor's sales count
next to its feedback total (Dream "Successful transactions (680)" beside "out of 640
ratings"; Apollon "Seller Level 4 (767)" beside its positive/neutral/negative totals; the
simulator's classic layout "Sales" beside "(N ratings)"), or list every order with "No
feedback left." where none was given (Cryptonia). Each such account is one pair
``(orders N, feedback F)``. :func:`counter_pairs` reads them through
:func:`darkmap.store.sales.account_counters` and the feedback rows; it is the one place to
change when the store gains more counters (per-polarity totals, sales beside the level).

**Model** (logit scale, a two-level random-effects model):

* account ``i`` of market ``j`` leaves feedback at rate ``r_i`` with
  ``logit r_i = m_j + e_i``, ``e_i ~ N(0, sigma_v^2)`` (vendors differ);
* ``logit((F+0.5)/(N+1))`` estimates ``logit r_i`` with binomial variance
  ``1/(N p (1-p))``; ``sigma_v^2`` is the DerSimonian-Laird between-account variance
  pooled over markets, ``m_j`` the precision-weighted mean of its accounts, with its
  standard error;
* markets differ: ``m_j ~ N(mu, tau^2)``; ``mu`` and ``tau`` come from the markets with
  counters (DerSimonian-Laird again; ``mu`` shrunk towards ``PRIOR_MU``, the middle of the
  real markets' rates, with the weight of ``PRIOR_WEIGHT`` markets). Three or four
  calibrated markets say little about ``tau``, so its estimate is pooled with a prior
  ``PRIOR_TAU`` worth ``PRIOR_TAU_DF`` degrees of freedom (a scaled inverse chi-square
  prior: ``tau^2 = (df0 tau0^2 + (k-1) tau_hat^2) / (df0 + k-1)`` over ``k`` markets). A
  market **without** counters borrows the predictive ``N(mu, tau^2 + se(mu)^2)``: the
  spread of a new market around the mean plus the uncertainty of the mean, added in
  quadrature (they are independent), not widened further.

:func:`calibrate` returns a :class:`MarketRate` per market: the logit mean and standard
deviation that the Monte Carlo of :mod:`darkmap.assess.sales` draws from, and the rate
with its stated interval.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from darkmap.store.sales import AccountCounters, FeedbackRow

__all__ = ["COVERAGE", "PRIOR_MU", "PRIOR_TAU", "PRIOR_TAU_DF", "PRIOR_WEIGHT", "CounterPair",
           "MarketRate", "Population", "calibrate", "counter_pairs", "level_sales", "logit",
           "sigmoid"]

COVERAGE = 0.9
Z = 1.6448536269514722  # two-sided 90%
PRIOR_MU = 0.94  # logit of 0.72: the middle of the real markets' rates (docs/sales.md)
PRIOR_WEIGHT = 2.0  # the prior counts as this many calibrated markets
PRIOR_TAU = 0.95  # prior logit spread between markets (chosen on training seeds 1-4)
PRIOR_TAU_DF = 4.0  # the prior's weight, in degrees of freedom (markets - 1)
SIGMA_V_PRIOR = 0.35  # between-vendor logit spread before enough pairs say otherwise
_LEVEL_SALES = re.compile(r"\((\d{1,9})\)")


def logit(p: float) -> float:
    """log(p / (1 - p)), p clipped to [0.001, 0.999]."""
    p = min(0.999, max(0.001, p))
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    """The inverse of :func:`logit`."""
    return 1 / (1 + math.exp(-x))


def level_sales(level: str | None) -> int | None:
    """The sales count a level text shows in brackets ("Seller Level 4 (767)" -> 767)."""
    if not level:
        return None
    m = _LEVEL_SALES.search(level[:200])
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class CounterPair:
    """One account's displayed orders and feedback, and where they come from."""

    market_id: str
    account_id: str
    orders: int
    feedback: int
    source: str  # "counters" | "order rows"


@dataclass(frozen=True, slots=True)
class Population:
    """The spread of feedback rates between markets and between vendors (logit scale)."""

    mu: float
    mu_se: float
    tau: float
    sigma_v: float
    n_markets: int


@dataclass(slots=True)
class MarketRate:
    """A market's feedback rate: logit mean and sd for the Monte Carlo, the stated rate."""

    market_id: str
    mean: float
    sd: float
    source: str  # counters | order rows | borrowed
    n_accounts: int = 0
    n_orders: int = 0
    n_feedback: int = 0
    pairs: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """The central rate."""
        return sigmoid(self.mean)

    @property
    def interval(self) -> tuple[float, float]:
        """The 90% interval of the market's rate."""
        return sigmoid(self.mean - Z * self.sd), sigmoid(self.mean + Z * self.sd)


def counter_pairs(counters: list[AccountCounters],
                  rows: list[FeedbackRow]) -> list[CounterPair]:
    """Every (orders, feedback) pair the pages show, one per account at most.

    A sales counter (or a level's bracketed sales) beside a feedback total is a pair;
    else an account whose rows list orders with "no feedback left" marks gives its rows.
    Pairs with more feedback than orders are left out (the counters disagree).
    """
    marks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        marks[r.account_id][0] += 1
        marks[r.account_id][1] += int(r.no_feedback)
    out = []
    marked = {c.market_id for c in counters if marks.get(c.account_id, [0, 0])[1] > 0}
    for c in counters:
        n = c.sales_shown if c.sales_shown is not None else level_sales(c.level)
        if n is not None and c.feedback_shown is not None and 0 < n and c.feedback_shown <= n:
            out.append(CounterPair(c.market_id, c.account_id, n, c.feedback_shown, "counters"))
        elif c.market_id in marked and marks.get(c.account_id, [0, 0])[0]:
            n_rows, n_none = marks[c.account_id]
            out.append(CounterPair(c.market_id, c.account_id, n_rows, n_rows - n_none,
                                   "order rows"))
    return out


def _pair_stats(p: CounterPair) -> tuple[float, float]:
    """(logit estimate, binomial variance) of one pair."""
    q = (p.feedback + 0.5) / (p.orders + 1)
    return logit(q), 1 / ((p.orders + 1) * q * (1 - q))


def _dl(ys: list[float], vs: list[float]) -> tuple[float, float, float]:
    """DerSimonian-Laird: (mean, its standard error, between-study variance)."""
    w = [1 / v for v in vs]
    sw = sum(w)
    mean_fixed = sum(wi * y for wi, y in zip(w, ys, strict=True)) / sw
    q = sum(wi * (y - mean_fixed) ** 2 for wi, y in zip(w, ys, strict=True))
    c = sw - sum(wi * wi for wi in w) / sw
    tau2 = max(0.0, (q - (len(ys) - 1)) / c) if c > 0 and len(ys) > 1 else 0.0
    wr = [1 / (v + tau2) for v in vs]
    mean = sum(wi * y for wi, y in zip(wr, ys, strict=True)) / sum(wr)
    return mean, math.sqrt(1 / sum(wr)), tau2


def _sigma_v(by_market: dict[str, list[CounterPair]]) -> float:
    """Between-vendor logit spread, pooled over markets with at least three pairs."""
    num = den = 0.0
    for pairs in by_market.values():
        if len(pairs) < 3:
            continue
        ys, vs = zip(*(_pair_stats(p) for p in pairs), strict=True)
        _, _, tau2 = _dl(list(ys), list(vs))
        num += tau2 * (len(pairs) - 1)
        den += len(pairs) - 1
    if den < 4:
        return SIGMA_V_PRIOR
    # shrink towards the prior when few pairs say otherwise
    return math.sqrt((num + 4 * SIGMA_V_PRIOR ** 2) / (den + 4))


def calibrate(markets: list[str], pairs: list[CounterPair]) -> tuple[dict[str, MarketRate],
                                                                      Population]:
    """Every market's rate: from its own pairs, else borrowed from the others."""
    by_market: dict[str, list[CounterPair]] = defaultdict(list)
    for p in pairs:
        by_market[p.market_id].append(p)
    sigma_v = _sigma_v(by_market)
    out: dict[str, MarketRate] = {}
    for mid, ps in sorted(by_market.items()):
        ys, vs = zip(*(_pair_stats(p) for p in ps), strict=True)
        mean, se, _ = _dl(list(ys), [v + sigma_v ** 2 for v in vs])
        out[mid] = MarketRate(mid, mean, se, ps[0].source if len({p.source for p in ps}) == 1
                              else "counters", len(ps), sum(p.orders for p in ps),
                              sum(p.feedback for p in ps),
                              [(p.account_id, p.orders, p.feedback) for p in ps])
    pop = _population(out, sigma_v)
    tau_b = math.sqrt(pop.tau ** 2 + pop.mu_se ** 2)
    for mid in markets:
        if mid not in out:
            out[mid] = MarketRate(mid, pop.mu, tau_b, "borrowed")
    return out, pop


def _population(rates: dict[str, MarketRate], sigma_v: float) -> Population:
    """mu and tau over the calibrated markets, or the prior when fewer than two."""
    if len(rates) < 2:
        if rates:
            only = next(iter(rates.values()))
            return Population(only.mean, only.sd, PRIOR_TAU, sigma_v, 1)
        return Population(PRIOR_MU, 0.0, PRIOR_TAU, sigma_v, 0)
    ys = [r.mean for r in rates.values()]
    vs = [max(r.sd, 1e-3) ** 2 for r in rates.values()]
    mu, se, tau2 = _dl(ys, vs)
    n = len(ys)
    mu = (n * mu + PRIOR_WEIGHT * PRIOR_MU) / (n + PRIOR_WEIGHT)  # shrunk to the real markets
    # few markets: tau is uncertain; pooled with the prior (scaled inverse chi-square)
    tau = math.sqrt((PRIOR_TAU_DF * PRIOR_TAU ** 2 + (n - 1) * tau2) / (PRIOR_TAU_DF + n - 1))
    return Population(mu, se, tau, sigma_v, len(rates))
