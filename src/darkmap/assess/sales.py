"""Orders, revenue, buyers and active period per account and per persona, by month.

**Orders.** Feedback is the standard proxy for sales on darknet markets (Soska &
Christin, USENIX Security 2015): every feedback is one completed order, and because not
every buyer leaves feedback, counts are a *lower bound*. darkmap corrects them with
``orders = feedback / r`` where ``r`` is the share of orders that leave feedback. Its
default ``r = 0.8`` (correction factor ``c = 1.25``) with a range ``r = 0.625 .. 1.0``
(``c = 1.0 .. 1.6``) are darkmap's working assumptions for markets where feedback is
mandatory or strongly prompted, not figures quoted from the paper; change them with
``feedback_rate=`` / ``--feedback-rate``. The low estimate assumes every order left
feedback (c = 1.0).

**Revenue.** Each feedback is valued at the amount it shows (converted to USD at its
date), else at the USD pack price of the listing it names, else at the vendor's median
pack price. Each source carries a relative uncertainty (own USD/EUR amount 10%, own BTC
amount 20% because of the approximate fx table, listing price 30%, vendor median 50%);
``revenue_low = Σ v(1-u) * c_low`` and ``revenue_high = Σ v(1+u) * c_high``.

**Buyers.** Markets mask buyer handles ("a***b"). Two buyers can share a mask, so the
number of distinct masks is a *lower bound* on distinct buyers; fully masked or missing
handles ("anon", "***") cannot be counted at all and are reported as such.

**Feedback shown vs feedback read.** A profile often shows a total ("Feedback: 1,203")
while only recent feedback pages were captured. The summary uses the larger of the two
totals and says which; monthly figures use the dated feedback rows only.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import median
from typing import Any, TypedDict

from darkmap.assess.fx import FxTable, load_fx
from darkmap.errors import BadInputError
from darkmap.store import assessment as store
from darkmap.store.assessment import SalesMonthlyRow, SalesSummaryRow
from darkmap.store.personas import persona_map
from darkmap.store.workspace import Workspace

__all__ = ["FEEDBACK_RATE", "FEEDBACK_RATE_RANGE", "METHOD", "SalesCounts", "SalesParams",
           "compute_sales", "correct_orders", "informative_mask"]

FEEDBACK_RATE = 0.8
FEEDBACK_RATE_RANGE = (0.625, 1.0)
METHOD = "darkmap.sales-feedback@1"
_UNCERTAINTY = {"own_fiat": 0.10, "own_btc": 0.20, "listing_price": 0.30,
                "vendor_median": 0.50}
_PLACEHOLDERS = {"anon", "anonymous", "buyer", "unknown", "user", "customer", "guest",
                 "hidden", "private", "n a", "na"}

Entity = tuple[str, str]  # ("account" | "persona", id)


class SalesCounts(TypedDict):
    """Rows written by :func:`compute_sales`."""

    sales_monthly: int
    sales_summary: int


@dataclass(frozen=True, slots=True)
class SalesParams:
    """The feedback rate r (share of orders leaving feedback) and its range."""

    rate: float = FEEDBACK_RATE
    rate_low: float = FEEDBACK_RATE_RANGE[0]
    rate_high: float = FEEDBACK_RATE_RANGE[1]

    def __post_init__(self) -> None:
        if not (0 < self.rate_low <= self.rate <= self.rate_high <= 1.0):
            raise BadInputError("feedback rates must satisfy 0 < low <= rate <= high <= 1")


def correct_orders(feedback: float,
                   params: SalesParams = SalesParams()) -> tuple[float, float, float]:
    """(estimate, low, high) orders behind ``feedback`` feedback entries."""
    return (feedback / params.rate, feedback / params.rate_high, feedback / params.rate_low)


def informative_mask(mask: str | None) -> bool:
    """True when a masked buyer handle still tells buyers apart ("a***b", not "***")."""
    if not mask:
        return False
    visible = re.sub(r"[^0-9a-z]", "", mask.casefold())
    if len(visible) < 2:
        return False
    return re.sub(r"[^a-z]+", " ", mask.casefold()).strip() not in _PLACEHOLDERS


def _month(ts: datetime | date) -> date:
    return date(ts.year, ts.month, 1)


def _usd(amount: float, currency: str, when: Any, fx: FxTable) -> float | None:
    rate, _ = fx.rate(currency, when)
    return amount * rate if rate is not None else None


@dataclass
class _Month:
    """One entity's feedback in one month: count, value (mid, low, high parts), masks."""

    feedback: int = 0
    value: float = 0.0
    value_low: float = 0.0
    value_high: float = 0.0
    masks: set[str] = field(default_factory=set)


@dataclass
class _Prices:
    """What values a feedback without its own amount, and when each vendor listed."""

    by_listing: dict[str, float] = field(default_factory=dict)
    by_account: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    listing_dates: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class _Tally:
    """Feedback of every account and persona, by month, with value sources and buyers."""

    monthly: dict[Entity, dict[date, _Month]] = field(default_factory=lambda: defaultdict(dict))
    first: dict[Entity, datetime] = field(default_factory=dict)
    last: dict[Entity, datetime] = field(default_factory=dict)
    sources: dict[Entity, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    rows_per_account: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unmasked_missing: dict[Entity, int] = field(default_factory=lambda: defaultdict(int))
    masks: dict[Entity, set[str]] = field(default_factory=lambda: defaultdict(set))


def _prices(ws: Workspace) -> _Prices:
    """USD pack prices per listing and per account, and listing dates per account."""
    out = _Prices()
    for p in store.assessed_prices(ws.con):
        if p.pack_price_usd is not None and p.pack_price_usd > 0:
            out.by_listing[p.listing_id] = p.pack_price_usd
            if p.account_id:
                out.by_account[p.account_id].append(p.pack_price_usd)
        if p.account_id and p.observed_at:
            out.listing_dates[p.account_id].append(p.observed_at)
    return out


def _tally(ws: Workspace, pmap: dict[str, str], prices: _Prices, fx: FxTable) -> _Tally:
    """Count and value every feedback for its account and its persona."""
    t = _Tally()
    for fb in store.sales_feedback(ws.con):
        aid, mask = fb.account_id, fb.buyer_masked
        when = fb.left_at or fb.observed_at
        t.rows_per_account[aid] += 1
        value, src = None, None
        if fb.amount is not None and fb.amount > 0 and fb.currency:
            value = _usd(float(fb.amount), fb.currency, when, fx)
            src = "own_btc" if fb.currency.upper() in ("BTC", "XMR") else "own_fiat"
        if value is None and fb.listing_id and fb.listing_id in prices.by_listing:
            value, src = prices.by_listing[fb.listing_id], "listing_price"
        if value is None and prices.by_account.get(aid):
            value, src = median(prices.by_account[aid]), "vendor_median"
        u = _UNCERTAINTY.get(src or "", 0.0)
        for key in (("account", aid), ("persona", pmap.get(aid, aid))):
            t.sources[key][src or "unvalued"] += 1
            if when is None:
                continue
            m = t.monthly[key].setdefault(_month(when), _Month())
            m.feedback += 1
            if value is not None:
                m.value += value
                m.value_low += value * (1 - u)
                m.value_high += value * (1 + u)
            if mask is not None and informative_mask(mask):
                m.masks.add(mask)
                t.masks[key].add(mask)
            else:
                t.unmasked_missing[key] += 1
            t.first[key] = min(t.first.get(key, when), when)
            t.last[key] = max(t.last.get(key, when), when)
    return t


def _monthly_rows(t: _Tally, params: SalesParams, now: datetime) -> list[SalesMonthlyRow]:
    """One ``sales_monthly`` row per entity and month with dated feedback."""
    c_mid, c_low, c_high = 1 / params.rate, 1 / params.rate_high, 1 / params.rate_low
    rows = []
    for (kind, eid), months in t.monthly.items():
        for mon, m in sorted(months.items()):
            est, lo, hi = correct_orders(m.feedback, params)
            v = m.value
            rows.append(SalesMonthlyRow(
                kind, eid, mon, m.feedback, est, lo, hi, v * c_mid if v else None,
                m.value_low * c_low if v else None, m.value_high * c_high if v else None,
                len(m.masks), METHOD, now))
    return rows


def compute_sales(ws: Workspace, params: SalesParams = SalesParams(),
                  fx: FxTable | None = None, now: datetime | None = None) -> SalesCounts:
    """Fill ``sales_monthly`` and ``sales_summary`` for every account and persona."""
    con = ws.con
    fx = fx or load_fx(workspace=ws.path)
    now = now or datetime.utcnow()
    pmap = persona_map(con)
    prices = _prices(ws)
    shown: dict[str, int] = {}
    reported: dict[str, int] = {}
    for tot in store.feedback_totals(con):
        if tot.feedback_count is not None:
            shown[tot.account_id] = int(tot.feedback_count)
        if tot.sales_count is not None:
            reported[tot.account_id] = int(tot.sales_count)
    acct_market = store.account_markets(con)
    n_listings = store.listings_per_account(con)
    tally = _tally(ws, pmap, prices, fx)
    mrows = _monthly_rows(tally, params, now)
    members: dict[str, list[str]] = defaultdict(list)
    for aid, pid in pmap.items():
        members[pid].append(aid)
    entities = [("account", a, [a]) for a in pmap] + [("persona", p, accs)
                                                        for p, accs in members.items()]
    srows = [_summary_row(kind, eid, accs, tally, prices, shown, reported, acct_market,
                          n_listings, params, now) for kind, eid, accs in entities]
    store.replace_sales(con, mrows, srows)
    return {"sales_monthly": len(mrows), "sales_summary": len(srows)}


def _summary_row(kind: str, eid: str, accs: list[str], t: _Tally, prices: _Prices,
                 shown: dict[str, int], reported: dict[str, int], acct_market: dict[str, str],
                 n_listings: dict[str, int], params: SalesParams,
                 now: datetime) -> SalesSummaryRow:
    """The ``sales_summary`` row of one account or persona (members ``accs``)."""
    c_mid, c_low, c_high = 1 / params.rate, 1 / params.rate_high, 1 / params.rate_low
    key = (kind, eid)
    rows_total = sum(t.rows_per_account.get(a, 0) for a in accs)
    shown_total = sum(max(shown.get(a, 0), t.rows_per_account.get(a, 0)) for a in accs)
    fb_total = max(rows_total, shown_total)
    est, lo, hi = correct_orders(fb_total, params)
    months = t.monthly.get(key, {})
    v = sum(m.value for m in months.values())
    vl = sum(m.value_low for m in months.values())
    vh = sum(m.value_high for m in months.values())
    dated = sum(m.feedback for m in months.values())
    # feedback shown on profiles but not captured: valued at the mean captured value
    scale = fb_total / dated if dated and fb_total > dated else 1.0
    dates = [d for a in accs for d in prices.listing_dates.get(a, [])]
    f_act = t.first.get(key) or (min(dates) if dates else None)
    l_act = t.last.get(key) or (max(dates) if dates else None)
    rep = [reported[a] for a in accs if a in reported]
    markets = sorted({acct_market.get(a) or a.split(":", 1)[0] for a in accs})
    ev = {"feedback_rows": rows_total, "feedback_shown_on_pages": shown_total,
          "feedback_used": fb_total,
          "feedback_basis": "shown on pages" if shown_total > rows_total else "rows read",
          "correction_factor": {"estimate": round(c_mid, 4), "low": round(c_low, 4),
                                "high": round(c_high, 4), "feedback_rate": params.rate},
          "value_sources": dict(t.sources.get(key, {})),
          "uncaptured_feedback_scale": round(scale, 4),
          "markets": markets}
    n_masked_out = t.unmasked_missing.get(key, 0)
    note = ("distinct masked handles: a lower bound (masks can collide)"
            + (f"; {n_masked_out} feedback without a usable handle not counted"
               if n_masked_out else ""))
    return SalesSummaryRow(
        kind, eid, len(accs), len(markets), sum(n_listings.get(a, 0) for a in accs),
        fb_total, est, lo, hi, max(rep) if len(rep) == 1 else (sum(rep) if rep else None),
        v * c_mid * scale if v else None, vl * c_low * scale if v else None,
        vh * c_high * scale if v else None, len(t.masks.get(key, ())), note, f_act, l_act,
        (l_act - f_act).days if f_act and l_act else None, json.dumps(ev), METHOD, now)
