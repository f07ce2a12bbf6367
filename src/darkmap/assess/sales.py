"""Orders, units, customers and revenue per account and persona, with intervals that hold.

**Orders.** Feedback is the standard proxy for sales on darknet markets (Soska &
Christin, USENIX Security 2015), but not every order leaves feedback, and how many do
differs by market. darkmap estimates orders per account from the best evidence its pages
show, in this order (``basis`` in the evidence):

1. ``counter``: the market displays the vendor's sales ("Sales 767", "Successful
   transactions (680)", "Seller Level 4 (767)"): orders = the counter (an interval only
   where the market rounds its counters, e.g. Dream's "5800");
2. ``feedback total shown``: the profile shows a feedback total F (larger than the rows
   read when only the newest pages were saved), as one number or per polarity (Hansa's
   "[+628|-9]");
3. ``extrapolated``: no total is shown and the rows are a partial capture (a page holding
   a whole page size of rows, the rows starting well after the vendor joined):
   F = rows x (active span / span the page covers)^u, u uniform in 0.5..1 (between a
   square-root and a linear extrapolation);
4. ``feedback rows``: the rows read;
5. ``not captured``: no profile, no feedback and no counter of the account was captured
   (an account seen only in a listings dataset or a seized seller table): orders 0, no
   range, and the evidence says so; the report shows "-". A counter of 0 is the
   ``counter`` basis: 0 orders, no range. A profile showing no feedback (F = 0) is
   evidence of few sales, not of none: its orders are NegBin(1, r), "0 (0-5)", and the
   evidence lists it under ``no_feedback``.

A sales bracket ("Orders 30+", Hansa's "Level 9 (800+)") is a lower bound, not a counter:
whatever the basis, no draw has fewer orders than it (nor than the rows read).

For 2-4, ``orders = F + NegBin(F, r)`` (the orders behind F successes at rate r), with the
account's rate ``r = sigmoid(m + e)``: ``m`` the market's logit rate drawn from its
calibration (:mod:`darkmap.assess.feedback_rate`: the market's own counters, or borrowed
from the other markets with a widened spread), ``e ~ N(0, sigma_v)`` the vendor's own
deviation. Everything is a Monte Carlo of ``draws`` joint draws (market rates shared by
all accounts of a market), so a persona's interval is the quantile of the sum of its
accounts' draws. The estimate is the median draw; the stated interval is the central
``COVERAGE`` (90%) of the draws.

**Units** (:mod:`darkmap.assess.units`) and **customers** (:mod:`darkmap.assess.customers`)
use the same order draws. **Revenue** values each row (its own amount, else its listing's
USD pack price, else the vendor's median; relative uncertainty 10/20/30/50%) and scales
the rows' value to the orders: ``revenue = value(rows) x orders / rows``.

Rows are deduplicated before counting: the same feedback shown on a listing page and on a
feedback page (two captures) is one feedback; rows repeated within one capture are kept.
"""

from __future__ import annotations

import html
import json
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from statistics import median
from typing import Any, TypedDict

import numpy as np

from darkmap.assess.customers import CustomerEstimate, collision_curve, estimate_customers
from darkmap.assess.feedback_rate import (
    COVERAGE,
    MarketRate,
    Population,
    calibrate,
    counter_pairs,
    level_sales,
    logit,
)
from darkmap.assess.fx import FxTable, load_fx
from darkmap.assess.listing import assess_listing
from darkmap.assess.units import UNIT_MEASURES, allocate_units, allocation_basis
from darkmap.errors import BadInputError
from darkmap.store import assessment as store
from darkmap.store import sales as sales_store
from darkmap.store.assessment import SalesMonthlyRow, SalesSummaryRow
from darkmap.store.personas import persona_map
from darkmap.store.sales import (
    AccountCounters,
    EstimateRow,
    FeedbackRateRow,
    FeedbackRow,
    ListingPack,
)
from darkmap.store.workspace import Workspace

__all__ = ["COVERAGE", "FEEDBACK_RATE", "FEEDBACK_RATE_RANGE", "METHOD", "SalesCounts",
           "SalesInputs", "SalesParams", "compute_sales", "correct_orders", "dedupe_rows",
           "informative_mask", "sales_inputs"]

FEEDBACK_RATE = 0.8  # the fixed assumption of darkmap before issue #22 (correct_orders)
FEEDBACK_RATE_RANGE = (0.625, 1.0)
METHOD = "darkmap.sales-mc@2"
_UNCERTAINTY = {"own_fiat": 0.10, "own_btc": 0.20, "listing_price": 0.30,
                "vendor_median": 0.50}
_PLACEHOLDERS = {"anon", "anonymous", "buyer", "unknown", "user", "customer", "guest",
                 "hidden", "private", "n a", "na"}
_PAGE_SIZES = (10, 20, 25, 30, 40, 50, 100)
_DAY = timedelta(days=1)
_PARTIAL_SPAN = 1.25  # rows covering less than 1/1.25 of the active span: partial
_MONTHLY_MEASURES = UNIT_MEASURES  # monthly orders are in sales_monthly
_Q = ((1 - COVERAGE) / 2 * 100, 50.0, (1 + COVERAGE) / 2 * 100)


class SalesCounts(TypedDict):
    """Rows written by :func:`compute_sales`."""

    sales_monthly: int
    sales_summary: int
    sales_estimates: int
    feedback_rates: int


@dataclass(frozen=True, slots=True)
class SalesParams:
    """Monte Carlo size and seed; optionally a fixed feedback rate (with its range) for the
    markets that show no counters (instead of borrowing from the markets that do)."""

    rate: float | None = None
    rate_low: float | None = None
    rate_high: float | None = None
    draws: int = 2000
    seed: int = 22

    def __post_init__(self) -> None:
        if self.rate is None:
            if self.rate_low is not None or self.rate_high is not None:
                raise BadInputError("a feedback rate range needs a feedback rate")
        else:
            lo = self.rate if self.rate_low is None else self.rate_low
            hi = self.rate if self.rate_high is None else self.rate_high
            if not 0 < lo <= self.rate <= hi <= 1.0:
                raise BadInputError("feedback rates must satisfy 0 < low <= rate <= high <= 1")
        if self.draws < 100:
            raise BadInputError("draws must be at least 100")

    def fixed(self, market_id: str) -> MarketRate | None:
        """The analyst's fixed rate as a market calibration, when one was given."""
        if self.rate is None:
            return None
        lo = self.rate if self.rate_low is None else self.rate_low
        hi = self.rate if self.rate_high is None else self.rate_high
        sd = max((logit(hi) - logit(lo)) / (2 * 1.6448536269514722), 1e-6)
        return MarketRate(market_id, logit(self.rate), sd, "analyst")


def correct_orders(feedback: float, rate: float = FEEDBACK_RATE,
                   rate_range: tuple[float, float] = FEEDBACK_RATE_RANGE,
                   ) -> tuple[float, float, float]:
    """(estimate, low, high) orders behind ``feedback`` at a fixed rate and range."""
    return feedback / rate, feedback / rate_range[1], feedback / rate_range[0]


def informative_mask(mask: str | None) -> bool:
    """True when a masked buyer handle still tells buyers apart ("a***b", not "***")."""
    if not mask:
        return False
    visible = re.sub(r"[^0-9a-z]", "", mask.casefold())
    if len(visible) < 2:
        return False
    return re.sub(r"[^a-z]+", " ", mask.casefold()).strip() not in _PLACEHOLDERS


@dataclass(frozen=True, slots=True)
class SalesInputs:
    """Everything the estimate reads from the store (see :func:`sales_inputs`)."""

    counters: list[AccountCounters]
    rows: list[FeedbackRow]
    packs: list[ListingPack]


def sales_inputs(ws: Workspace) -> SalesInputs:
    """The estimator's inputs: displayed counters per account, deduplicated feedback rows,
    listing packs. The one function to change when the store gains new counters
    (per-polarity feedback totals, sales beside a level)."""
    con = ws.con
    return SalesInputs(sales_store.account_counters(con),
                       dedupe_rows(sales_store.feedback_rows(con)),
                       sales_store.listing_packs(con))


def dedupe_rows(rows: Sequence[FeedbackRow]) -> list[FeedbackRow]:
    """One row per feedback: rows with the same account, buyer (first and last character),
    day and order/feedback kind seen in several captures count once (as often as the
    capture showing them most often)."""
    groups: dict[tuple[Any, ...], dict[str, list[FeedbackRow]]] = defaultdict(
        lambda: defaultdict(list))
    for r in rows:
        day = r.left_at.date() if r.left_at else None
        key = (r.account_id, _ends(r.buyer_masked), day, r.no_feedback)
        groups[key][r.capture_sha256].append(r)
    size = Counter((r.account_id, r.capture_sha256) for r in rows)
    out: list[FeedbackRow] = []
    for by_capture in groups.values():
        # ties go to the capture with the most rows of the account (its feedback page)
        best = max(by_capture.items(), key=lambda kv: (len(kv[1]), size[(
            kv[1][0].account_id, kv[0])], kv[0]))[1]
        out.extend(best)
    return out


def _ends(buyer: str | None) -> tuple[str, str] | None:
    """First and last letter or digit of a buyer name: a full name ("jake_1234", a seized
    database) and its mask ("j***4", a page) give the same pair."""
    if not buyer:
        return None
    chars = [c for c in buyer[:200].casefold() if c.isalnum()]
    return (chars[0], chars[-1]) if chars else None


# --- per-account evidence --------------------------------------------------------------------

@dataclass
class _Acct:
    """One account's rows, summarised."""

    account_id: str
    market_id: str
    counters: AccountCounters | None
    rows: int = 0  # rows with feedback
    order_rows: int = 0  # rows marked "no feedback left" (orders)
    first_row: datetime | None = None
    last_row: datetime | None = None
    crawl: datetime | None = None
    masks: Counter[str] = field(default_factory=Counter)
    unmasked: int = 0
    by_listing: Counter[str] = field(default_factory=Counter)
    by_title: Counter[str] = field(default_factory=Counter)  # rows naming an unlinked item
    per_capture: Counter[str] = field(default_factory=Counter)  # feedback rows per page
    capture_first: dict[str, datetime] = field(default_factory=dict)  # oldest row per page
    by_month: Counter[date] = field(default_factory=Counter)
    masks_by_month: dict[date, set[str]] = field(default_factory=lambda: defaultdict(set))
    value: dict[date, list[float]] = field(default_factory=dict)  # month: [v, v_lo, v_hi]
    sources: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How an account's orders are estimated."""

    basis: str
    counter: int | None
    feedback: int
    extrapolation: float
    min_orders: int
    rounding: int


def _month(ts: datetime | date) -> date:
    return date(ts.year, ts.month, 1)


def _collect(inputs: SalesInputs, acct_market: dict[str, str], fx: FxTable,
             prices: dict[str, float], vendor_median: dict[str, float]) -> dict[str, _Acct]:
    """Summarise every account's rows (counts, masks, months, values)."""
    counters = {c.account_id: c for c in inputs.counters}
    accts: dict[str, _Acct] = {}

    def get(aid: str) -> _Acct:
        if aid not in accts:
            accts[aid] = _Acct(aid, acct_market.get(aid) or aid.split(":", 1)[0],
                               counters.get(aid))
        return accts[aid]

    for aid in acct_market:
        get(aid)
    for r in inputs.rows:
        a = get(r.account_id)
        if r.no_feedback:
            a.order_rows += 1
        else:
            a.rows += 1
            a.per_capture[r.capture_sha256] += 1
            if r.buyer_masked is not None and informative_mask(r.buyer_masked):
                a.masks[r.buyer_masked] += 1
            else:
                a.unmasked += 1
        if r.listing_id:
            a.by_listing[r.listing_id] += 1
        elif r.listing_title and r.listing_title.strip():
            a.by_title[r.listing_title.strip()[:300]] += 1
        when = r.left_at or r.observed_at
        if r.observed_at and (a.crawl is None or r.observed_at > a.crawl):
            a.crawl = r.observed_at
        if when is None:
            continue
        if not r.no_feedback and (a.first_row is None or when < a.first_row):
            a.first_row = when
        if not r.no_feedback and when < a.capture_first.get(r.capture_sha256, when + _DAY):
            a.capture_first[r.capture_sha256] = when
        if a.last_row is None or when > a.last_row:
            a.last_row = when
        mon = _month(when)
        a.by_month[mon] += 1
        if r.buyer_masked and informative_mask(r.buyer_masked) and not r.no_feedback:
            a.masks_by_month[mon].add(r.buyer_masked)
        v, src = _value(r, fx, prices, vendor_median)
        a.sources[src or "unvalued"] += 1
        if v is not None:
            u = _UNCERTAINTY.get(src or "", 0.0)
            acc = a.value.setdefault(mon, [0.0, 0.0, 0.0])
            acc[0] += v
            acc[1] += v * (1 - u)
            acc[2] += v * (1 + u)
    return accts


def _value(r: FeedbackRow, fx: FxTable, prices: dict[str, float],
           vendor_median: dict[str, float]) -> tuple[float | None, str | None]:
    """USD value of one row and its source."""
    if r.amount is not None and r.amount > 0 and r.currency:
        rate, _ = fx.rate(r.currency, r.left_at or r.observed_at)
        if rate is not None:
            return float(r.amount) * rate, ("own_btc" if r.currency.upper() in ("BTC", "XMR")
                                             else "own_fiat")
    if r.listing_id and r.listing_id in prices:
        return prices[r.listing_id], "listing_price"
    if r.account_id in vendor_median:
        return vendor_median[r.account_id], "vendor_median"
    return None, None


def _rounded_markets(counters: list[AccountCounters]) -> set[str]:
    """Markets that round their sales counters (most counters of 100+ end in 0)."""
    big: dict[str, list[int]] = defaultdict(list)
    for c in counters:
        if c.sales_shown is not None and c.sales_shown >= 100:
            big[c.market_id].append(c.sales_shown)
    return {m for m, v in big.items()
            if len(v) >= 3 and sum(x % 10 == 0 for x in v) >= 0.8 * len(v)}


def _rounding(n: int) -> int:
    """The step a rounded counter was rounded to (5800 -> 100)."""
    step = 1
    while n >= 100 and n % (step * 10) == 0 and step < n // 10:
        step *= 10
    return step


def _plan(a: _Acct, rounded: set[str]) -> _Plan:
    """Which evidence estimates the account's orders. A sales bracket shown ("Orders
    30+", Hansa's "Level 9 (800+)") is not a counter: it raises the least number of
    orders, whatever the basis."""
    c = a.counters
    min_orders = max(a.rows + a.order_rows, (c.sales_floor or 0) if c is not None else 0)
    counter = None
    if c is not None:
        counter = c.sales_shown if c.sales_shown is not None else level_sales(c.level)
    if counter is not None:
        step = _rounding(counter) if a.market_id in rounded else 1
        return _Plan("counter", counter, max(a.rows, (c.feedback_shown or 0) if c else 0),
                     1.0, min_orders, step)
    shown = c.feedback_shown if c is not None else None
    if shown is None and not min_orders and (c is None or c.observed_at is None):
        # no profile, no feedback page, no counter: its sales were not captured at all
        return _Plan("not captured", None, 0, 1.0, 0, 1)
    if shown is not None:
        return _Plan("feedback total shown", None, max(shown, a.rows), 1.0, min_orders, 1)
    ratio = _partial_ratio(a)
    if ratio > 1.0:
        return _Plan("extrapolated", None, a.rows, ratio, min_orders, 1)
    return _Plan("feedback rows", None, a.rows, 1.0, min_orders, 1)


def _partial_ratio(a: _Acct) -> float:
    """Active span / span the rows cover, when the rows look like a partial capture (one
    page holds a whole page size of rows, and the rows start well after the vendor
    joined), else 1.0."""
    if not a.per_capture:
        return 1.0
    cap, page = max(a.per_capture.items(), key=lambda kv: (kv[1], kv[0]))  # fullest page
    if page < 20 or not any(page % pg == 0 for pg in _PAGE_SIZES):
        return 1.0
    joined = a.counters.joined_at if a.counters else None
    first = a.capture_first.get(cap)
    if joined is None or first is None or a.crawl is None:
        return 1.0
    covered = max((a.crawl - first).days, 1)
    active = max((a.crawl - joined).days, 1)
    ratio = active / covered
    return ratio if ratio > _PARTIAL_SPAN else 1.0


def _orders_draws(p: _Plan, market: np.ndarray, sigma_v: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Monte Carlo draws of one account's orders."""
    n = market.shape[0]
    if p.basis == "not captured":
        return np.zeros(n)
    if p.counter is not None:
        base = np.full(n, float(p.counter))
        if p.rounding > 1:
            base = base + rng.uniform(-p.rounding / 2, p.rounding / 2, n)
        counted: np.ndarray = np.maximum(base, float(p.min_orders))
        return counted
    f = np.full(n, float(p.feedback))
    if p.extrapolation > 1.0:
        f = np.round(f * p.extrapolation ** rng.uniform(0.5, 1.0, n))
    r = 1 / (1 + np.exp(-(market + rng.normal(0.0, sigma_v, n))))
    r = np.clip(r, 1e-3, 1.0 - 1e-9)
    orders = f + rng.negative_binomial(np.maximum(f, 1.0), r)
    # no feedback: the orders behind 0 feedback at rate r under a flat prior, NegBin(1, r)
    # ("0 (0-5)"), not NegBin(0, r) = 0: a vendor whose buyers left no feedback may still
    # have sold (docs/sales.md section 1; checked on the held-out simulated worlds)
    orders = np.where(f > 0, orders, rng.negative_binomial(1.0, r))
    return np.maximum(orders.astype(np.float64), float(p.min_orders))


# --- the stage ---------------------------------------------------------------------------------

@dataclass
class _Draws:
    """One entity's Monte Carlo draws and what they rest on."""

    orders: np.ndarray
    customers: np.ndarray | None
    lower_customers: int
    units: dict[str, np.ndarray]
    months: dict[date, float]  # month -> share of the entity's orders
    no_pack: int = 0
    revenue: tuple[float, float, float] | None = None
    plan: _Plan | None = None
    cust: CustomerEstimate | None = None
    allocation: dict[str, dict[str, Any]] = field(default_factory=dict)  # by account


@dataclass
class _Out:
    """Rows being built."""

    monthly: list[SalesMonthlyRow] = field(default_factory=list)
    summary: list[SalesSummaryRow] = field(default_factory=list)
    estimates: list[EstimateRow] = field(default_factory=list)


def _q(draws: np.ndarray) -> tuple[float, float, float]:
    """(estimate, low, high): median and the central COVERAGE interval of ``draws``.

    The same numbers as ``np.percentile(draws, _Q)`` (its default, linear method), bit
    for bit (tested): the order statistics it reads, by one partition, and its
    interpolation, with the positions and weights worked out once per sample size.
    ``np.percentile`` took 82 µs a call, most of it that preparation, this 38 µs; an
    assessment of 98,000 listings calls it 159,000 times."""
    n = draws.shape[0]
    if n == 0:
        lo, mid, hi = np.percentile(draws, _Q)  # its warning and NaNs
        return float(mid), float(lo), float(hi)
    prev, nxt, gamma, kth = _q_plan(n)
    part = np.partition(draws, kth)
    if part.dtype.kind == "f" and np.isnan(part[-1]):  # a NaN sorts last: percentile's NaNs
        lo, mid, hi = np.percentile(draws, _Q)
        return float(mid), float(lo), float(hi)
    a, b = part[prev], part[nxt]
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe",
                dtype=type(out.dtype))
    lo, mid, hi = out
    return float(mid), float(lo), float(hi)


@lru_cache(maxsize=64)
def _q_plan(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a sample of ``n``: the positions below and above each of :data:`_Q` in the
    sorted sample, the interpolation weights, and the positions to partition at, as
    ``np.percentile`` computes them (``(n - 1) * q / 100``, clipped to the ends)."""
    virtual = (n - 1) * np.true_divide(_Q, 100)
    prev = np.floor(virtual)
    nxt = prev + 1
    above, below = virtual >= n - 1, virtual < 0
    prev[above] = nxt[above] = -1
    prev[below] = nxt[below] = 0
    prev_i, nxt_i = prev.astype(np.intp), nxt.astype(np.intp)
    gamma = np.asanyarray(virtual - prev_i, dtype=virtual.dtype)
    kth = np.unique(np.concatenate(([0, -1], prev_i, nxt_i)))
    for arr in (prev_i, nxt_i, gamma, kth):
        arr.flags.writeable = False  # shared by every call of this size
    return prev_i, nxt_i, gamma, kth


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def compute_sales(ws: Workspace, params: SalesParams = SalesParams(),
                  fx: FxTable | None = None, now: datetime | None = None) -> SalesCounts:
    """Fill ``feedback_rates``, ``sales_estimates``, ``sales_monthly`` and ``sales_summary``
    for every account and persona."""
    con = ws.con
    fx = fx or load_fx(workspace=ws.path)
    now = now or datetime.utcnow()
    inputs = sales_inputs(ws)
    pmap = persona_map(con)
    acct_market = store.account_markets(con)
    for aid in pmap:
        acct_market.setdefault(aid, aid.split(":", 1)[0])
    prices, vendor_median, listing_dates = _prices(ws)
    accts = _collect(inputs, acct_market, fx, prices, vendor_median)
    markets = sorted({a.market_id for a in accts.values()})
    rates, pop = calibrate(markets, counter_pairs(inputs.counters, inputs.rows))
    for mid, mr in list(rates.items()):
        fixed = params.fixed(mid) if mr.source == "borrowed" else None
        if fixed is not None:
            rates[mid] = fixed
    market_draws = {m: _rng(params.seed, "market:" + m).normal(r.mean, r.sd, params.draws)
                    for m, r in rates.items()}
    curves = _mask_curves(accts)
    packs: dict[str, list[ListingPack]] = defaultdict(list)
    for p in inputs.packs:
        if p.account_id:
            packs[p.account_id].append(p)
    rounded = _rounded_markets(inputs.counters)
    n_listings = store.listings_per_account(con)
    members: dict[str, list[str]] = defaultdict(list)
    for aid, pid in sorted(pmap.items()):
        members[pid].append(aid)
    out = _Out()
    ctx = _Ctx(params, rates, pop, market_draws, curves, packs, rounded, n_listings,
               listing_dates, now, _buyer_shares(accts), fx)
    for pid, accs in sorted(members.items()):
        drawn = []
        for aid in accs:
            a = accts[aid]
            d = _account_draws(a, ctx)
            drawn.append((a, d))
            _emit(out, "account", aid, [a], d, ctx)
        _emit(out, "persona", pid, [a for a, _ in drawn], _sum_draws([d for _, d in drawn],
                                                                      [a for a, _ in drawn]),
              ctx)
    rate_rows = _rate_rows(rates, pop, now)
    # the caller (assess.stage) holds the transaction that makes the rebuild atomic
    store.replace_sales(con, out.monthly, out.summary)
    sales_store.replace_estimates(con, out.estimates)
    sales_store.replace_feedback_rates(con, rate_rows)
    return {"sales_monthly": len(out.monthly), "sales_summary": len(out.summary),
            "sales_estimates": len(out.estimates), "feedback_rates": len(rate_rows)}


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What every entity's estimate shares."""

    params: SalesParams
    rates: dict[str, MarketRate]
    pop: Population
    market_draws: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    packs: dict[str, list[ListingPack]]
    rounded: set[str]
    n_listings: dict[str, int]
    listing_dates: dict[str, list[datetime]]
    now: datetime
    buyer_shares: dict[str, float]
    fx: FxTable | None = None
    titles: dict[str, ListingPack] = field(default_factory=dict)  # items named by rows


def _prices(ws: Workspace) -> tuple[dict[str, float], dict[str, float],
                                    dict[str, list[datetime]]]:
    """USD pack price per listing, median per account, listing dates per account."""
    by_listing: dict[str, float] = {}
    by_account: dict[str, list[float]] = defaultdict(list)
    dates: dict[str, list[datetime]] = defaultdict(list)
    for p in store.assessed_prices(ws.con):
        if p.pack_price_usd is not None and p.pack_price_usd > 0:
            by_listing[p.listing_id] = p.pack_price_usd
            if p.account_id:
                by_account[p.account_id].append(p.pack_price_usd)
        if p.account_id and p.observed_at:
            dates[p.account_id].append(p.observed_at)
    return by_listing, {a: median(v) for a, v in by_account.items()}, dates


def _buyer_shares(accts: dict[str, _Acct]) -> dict[str, float]:
    """Per market, distinct masks per masked row over its accounts: the buyers per order
    an account without a masked row of its own borrows."""
    seen: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for a in accts.values():
        if a.masks:
            seen[a.market_id][0] += len(a.masks)
            seen[a.market_id][1] += sum(a.masks.values())
    return {m: s / n for m, (s, n) in seen.items() if n}


def _mask_curves(accts: dict[str, _Acct]) -> dict[str, np.ndarray]:
    """Per market, the expected distinct masks of 0..N buyers (mask collisions), with
    masks modelled as independent first and last characters of the distinct masks."""
    distinct: dict[str, set[str]] = defaultdict(set)
    biggest: dict[str, int] = defaultdict(int)
    for a in accts.values():
        distinct[a.market_id].update(m.casefold() for m in a.masks)
        biggest[a.market_id] = max(biggest[a.market_id], sum(a.masks.values()))
    out = {}
    for mid, masks in distinct.items():
        ends = [e for e in (_ends(m) for m in masks) if e is not None]
        if len(ends) < 30:  # too few masks to know the mask space: no collision correction
            continue
        first = Counter(e[0] for e in ends)
        last = Counter(e[1] for e in ends)
        pf = np.array(list(first.values()), dtype=np.float64) / len(ends)
        pl = np.array(list(last.values()), dtype=np.float64) / len(ends)
        out[mid] = collision_curve(np.outer(pf, pl).ravel(), max(50, 2 * biggest[mid]))
    return out


def _account_draws(a: _Acct, ctx: _Ctx) -> _Draws:
    """Orders, customers and units draws of one account."""
    rng = _rng(ctx.params.seed, "account:" + a.account_id)
    plan = _plan(a, ctx.rounded)
    orders = _orders_draws(plan, ctx.market_draws[a.market_id], ctx.pop.sigma_v, rng)
    cust: CustomerEstimate | None = None
    borrowed: np.ndarray | None = None
    if a.masks:
        cust = estimate_customers(a.masks, ctx.curves.get(a.market_id), orders, rng)
    elif plan.basis != "not captured" and a.market_id in ctx.buyer_shares:
        # no masked row of its own: the market's buyers per order, between 1 and the orders
        borrowed = np.minimum(orders, np.maximum(np.minimum(orders, 1.0), np.round(
            orders * ctx.buyer_shares[a.market_id])))
    units: dict[str, np.ndarray] = {}
    no_pack = 0
    allocation: dict[str, dict[str, Any]] = {}
    if plan.basis != "not captured":
        packs, named = _items(a, ctx)
        units, no_pack = allocate_units(orders, packs, named, rng)
        if packs:
            allocation[a.account_id] = _allocation_evidence(packs, named)
    dated = sum(a.by_month.values())
    months = {m: n / dated for m, n in a.by_month.items()} if dated else {}
    return _Draws(orders, cust.draws if cust else borrowed, cust.lower_bound if cust else 0,
                  units, months, no_pack, _revenue(a, orders), plan, cust, allocation)


def _title_key(title: str) -> str:
    """A title compared across pages: entities decoded, case and spacing ignored."""
    return " ".join(html.unescape(title).casefold().split())


def _items(a: _Acct, ctx: _Ctx) -> tuple[list[ListingPack], Counter[str]]:
    """What the account's orders bought: its captured listings, and the items its rows
    name by title only. A row's title that is one of the account's captured listings
    counts for that listing; another title ("Xanax 1mg Pharma 20 tab BOX" on a Cryptonia
    order row, a listing never saved) is an item of its own, with the pack, substance and
    flags its title reads (no price). Returns the packs and the rows naming each."""
    packs = list(ctx.packs.get(a.account_id, []))
    named: Counter[str] = Counter(a.by_listing)
    if not a.by_title:
        return packs, named
    captured: dict[str, str] = {}
    for p in packs:
        if p.title:
            captured.setdefault(_title_key(p.title), p.listing_id)
    for title, n in sorted(a.by_title.items()):
        key = _title_key(title)
        lid = captured.get(key)
        if lid is None:
            item = _named_item(a.account_id, title, ctx)
            lid = item.listing_id
            captured[key] = lid
            packs.append(item)
        named[lid] += n
    return packs, named


def _named_item(account_id: str, title: str, ctx: _Ctx) -> ListingPack:
    """The pack a title names (assessed once per title and run)."""
    got = ctx.titles.get(title)
    if got is None:
        x = assess_listing(title, fx=ctx.fx)
        got = ListingPack(f"title:{title}", None, x.unit_kind, x.units, x.substance,
                          x.counterfeit_pill, x.fentanyl_risk, None, title)
        ctx.titles[title] = got
    return got._replace(account_id=account_id)


_NAMED_SHOWN = 10  # listings named in an estimate's evidence, most rows first


def _allocation_evidence(packs: list[ListingPack], named: Counter[str]) -> dict[str, Any]:
    """How an account's orders were spread over its listings, for the evidence."""
    ids = {p.listing_id for p in packs}
    naming = sorted(((lid, n) for lid, n in named.items() if lid in ids and n),
                    key=lambda kv: (-kv[1], kv[0]))
    ev: dict[str, Any] = {
        "basis": allocation_basis(packs, named), "listings": len(packs),
        "not_captured_named": sum(p.listing_id.startswith("title:") for p in packs),
        "rows_naming": dict(naming[:_NAMED_SHOWN])}
    if len(naming) > _NAMED_SHOWN:
        ev["rows_naming_others"] = sum(n for _, n in naming[_NAMED_SHOWN:])
    return ev


def _revenue(a: _Acct, orders: np.ndarray) -> tuple[float, float, float] | None:
    """Revenue (est, low, high): the rows' value scaled to the orders."""
    n = sum(a.by_month.values())
    if not n or not a.value:
        return None
    v = [sum(x[i] for x in a.value.values()) for i in range(3)]
    valued = sum(a.sources.values()) - a.sources.get("unvalued", 0)
    est, lo, hi = _q(orders)
    per = 1 / max(valued, 1)
    return v[0] * est * per, v[1] * lo * per, v[2] * hi * per


def _sum_draws(ds: list[_Draws], accs: list[_Acct]) -> _Draws:
    """A persona's draws: the sum of its accounts' (same draw index: shared market rates)."""
    orders = sum((d.orders for d in ds), np.zeros_like(ds[0].orders))
    with_c = [d.customers for d in ds if d.customers is not None]
    customers = sum(with_c, np.zeros_like(orders)) if with_c else None
    units: dict[str, np.ndarray] = {}
    for d in ds:
        for measure, v in d.units.items():
            units[measure] = units.get(measure, np.zeros_like(orders)) + v
    months: dict[date, float] = defaultdict(float)
    dated = [d for d in ds if d.months]  # accounts without dated rows spread like the rest
    total = sum(float(np.median(d.orders)) for d in dated) or 1.0
    for d in dated:
        share_of_persona = float(np.median(d.orders)) / total
        for m, s in d.months.items():
            months[m] += s * share_of_persona
    revs = [d.revenue for d in ds if d.revenue is not None]
    revenue = (sum(r[0] for r in revs), sum(r[1] for r in revs), sum(r[2] for r in revs)) \
        if revs else None
    allocation = {k: v for d in ds for k, v in d.allocation.items()}
    return _Draws(orders, customers, sum(d.lower_customers for d in ds), units, dict(months),
                  sum(d.no_pack for d in ds), revenue, allocation=allocation)


def _est_row(kind: str, eid: str, measure: str, period: str, q: tuple[float, float, float],
             lower: float | None, basis: str | None, evidence: dict[str, Any] | None,
             now: datetime) -> EstimateRow:
    return EstimateRow(kind, eid, measure, period, round(q[0], 3), round(q[1], 3),
                       round(q[2], 3), lower, COVERAGE, basis,
                       json.dumps(evidence, default=str) if evidence is not None else None,
                       METHOD, now)


def _emit(out: _Out, kind: str, eid: str, accs: list[_Acct], d: _Draws, ctx: _Ctx) -> None:
    """Summary, monthly and estimate rows of one account or persona."""
    now = ctx.now
    est, lo, hi = _q(d.orders)
    plans = [_plan(a, ctx.rounded) for a in accs] if d.plan is None else [d.plan]
    rows = sum(a.rows for a in accs)
    fb_used = sum(p.feedback for p in plans)
    counters = [p.counter for p in plans if p.counter is not None]
    markets = sorted({a.market_id for a in accs})
    bases = Counter(p.basis for p in plans)
    basis = next(iter(bases)) if len(bases) == 1 else "mixed"
    ev = {"basis": dict(bases), "feedback_rows": rows, "feedback_used": fb_used,
          "order_rows": sum(a.order_rows for a in accs),
          "counters_shown": counters, "markets": markets,
          "sales_floors": {a.account_id: a.counters.sales_floor for a in accs
                           if a.counters is not None and a.counters.sales_floor},
          "feedback_rates": {m: _rate_ev(ctx.rates[m]) for m in markets},
          "extrapolation": {a.account_id: round(p.extrapolation, 3)
                            for a, p in zip(accs, plans, strict=True) if p.extrapolation > 1},
          "no_feedback": [a.account_id for a, p in zip(accs, plans, strict=True)
                          if p.counter is None and p.basis != "not captured"
                          and p.feedback == 0],
          "coverage": COVERAGE, "draws": int(d.orders.shape[0]),
          "value_sources": dict(sum((a.sources for a in accs), Counter()))}
    masks = d.lower_customers
    unmasked = sum(a.unmasked for a in accs)
    note = ("distinct masked handles: a lower bound (masks can collide)"
            + (f"; {unmasked} feedback without a usable handle not counted" if unmasked else ""))
    firsts = [a.first_row for a in accs if a.first_row]
    lasts = [a.last_row for a in accs if a.last_row]
    dates = [x for a in accs for x in ctx.listing_dates.get(a.account_id, [])]
    f_act = min(firsts) if firsts else (min(dates) if dates else None)
    l_act = max(lasts) if lasts else (max(dates) if dates else None)
    rev = d.revenue
    out.summary.append(SalesSummaryRow(
        kind, eid, len(accs), len(markets), sum(ctx.n_listings.get(a.account_id, 0)
                                                for a in accs),
        fb_used, est, lo, hi,
        (counters[0] if len(counters) == 1 else sum(counters)) if counters else None,
        rev[0] if rev else None, rev[1] if rev else None, rev[2] if rev else None, masks,
        note, f_act, l_act, (l_act - f_act).days if f_act and l_act else None,
        json.dumps(ev, default=str), METHOD, now))
    out.estimates.append(_est_row(kind, eid, "orders", "all", (est, lo, hi),
                                  float(sum(p.min_orders for p in plans)), basis, ev, now))
    if d.customers is not None:
        cev: dict[str, Any] = {"masks_seen": masks, "method": "chao1 + mask collisions",
                               "note": note}
        if kind == "account" and d.cust is None:
            cev.update(method="market's buyers per order (no masked row of the account)",
                       buyer_share=round(ctx.buyer_shares.get(accs[0].market_id, 0.0), 4))
        if d.cust is not None:
            cev.update(f1=d.cust.f1, f2=d.cust.f2, chao1=round(d.cust.chao1, 2))
        if kind == "persona" and len(accs) > 1:
            cev["persona"] = "sum over accounts (a buyer of two accounts counts twice)"
        out.estimates.append(_est_row(kind, eid, "customers", "all", _q(d.customers),
                                      float(masks), "masked buyers", cev, now))
    for m, v in sorted(d.units.items()):
        out.estimates.append(_est_row(kind, eid, m, "all", _q(v), None, basis,
                                      {"listings_without_pack": d.no_pack,
                                       "allocation": d.allocation}, now))
    _monthly(out, kind, eid, accs, d, ctx, (est, lo, hi))


def _rate_ev(r: MarketRate) -> dict[str, Any]:
    lo, hi = r.interval
    return {"rate": round(r.rate, 4), "low": round(lo, 4), "high": round(hi, 4),
            "source": r.source, "accounts_with_counters": r.n_accounts}


def _monthly(out: _Out, kind: str, eid: str, accs: list[_Acct], d: _Draws, ctx: _Ctx,
             orders: tuple[float, float, float]) -> None:
    """``sales_monthly`` rows (orders, revenue), and monthly estimates of the units a
    persona sold (pills, counterfeit and fentanyl-risk pills, grams).

    ``orders`` is :func:`_q` of ``d.orders``, and each measure's quantiles are taken once,
    not once a month: a month's figure is the whole's times the month's share (a persona
    of 40 months and 4 measures took 160 percentiles of the same draws)."""
    est, lo, hi = orders
    n_dated = sum(sum(a.by_month.values()) for a in accs)
    measures = {} if kind != "persona" else {
        m: _q(v) for m in _MONTHLY_MEASURES
        if (v := d.units.get(m)) is not None and v.any()}
    for mon, share in sorted(d.months.items()):
        fb = sum(a.by_month.get(mon, 0) for a in accs)
        val = [sum(a.value.get(mon, [0.0, 0.0, 0.0])[i] for a in accs) for i in range(3)]
        scale = (est / n_dated) if n_dated else 0.0
        buyers = len(set().union(*(a.masks_by_month.get(mon, set()) for a in accs)))
        out.monthly.append(SalesMonthlyRow(
            kind, eid, mon, fb, est * share, lo * share, hi * share,
            val[0] * scale if val[0] else None,
            val[1] * (lo / n_dated) if val[0] and n_dated else None,
            val[2] * (hi / n_dated) if val[0] and n_dated else None,
            buyers, METHOD, ctx.now))
        period = f"{mon:%Y-%m}" if measures else ""
        for m, q in measures.items():
            out.estimates.append(_est_row(kind, eid, m, period,
                                          (q[0] * share, q[1] * share, q[2] * share), None,
                                          "monthly share of dated feedback", None, ctx.now))


def _rate_rows(rates: dict[str, MarketRate], pop: Population,
               now: datetime) -> list[FeedbackRateRow]:
    """``feedback_rates`` rows."""
    rows = []
    for mid, r in sorted(rates.items()):
        lo, hi = r.interval
        ev = {"logit_mean": round(r.mean, 4), "logit_sd": round(r.sd, 4),
              "pairs": r.pairs[:50], "population": {
                  "mu_rate": round(1 / (1 + math.exp(-pop.mu)), 4), "tau": round(pop.tau, 4),
                  "sigma_vendor": round(pop.sigma_v, 4), "markets_calibrated": pop.n_markets}}
        rows.append(FeedbackRateRow(mid, round(r.rate, 4), round(lo, 4), round(hi, 4),
                                    COVERAGE, r.source, r.n_accounts, r.n_orders, r.n_feedback,
                                    json.dumps(ev), METHOD, now))
    return rows
