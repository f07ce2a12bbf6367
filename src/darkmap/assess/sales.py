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
from dataclasses import dataclass
from datetime import date, datetime
from statistics import median
from typing import Any

from darkmap.assess.dbutil import insert_rows
from darkmap.assess.fx import FxTable, load_fx
from darkmap.store.personas import persona_map

__all__ = ["FEEDBACK_RATE", "FEEDBACK_RATE_RANGE", "SalesParams", "compute_sales",
           "correct_orders", "informative_mask"]

FEEDBACK_RATE = 0.8
FEEDBACK_RATE_RANGE = (0.625, 1.0)
METHOD = "darkmap.sales-feedback@1"
_UNCERTAINTY = {"own_fiat": 0.10, "own_btc": 0.20, "listing_price": 0.30,
                "vendor_median": 0.50}
_MONTHLY_COLS = ("entity_kind", "entity_id", "month", "feedback_count", "orders_est",
                 "orders_low", "orders_high", "revenue_usd", "revenue_usd_low",
                 "revenue_usd_high", "buyers_distinct_min", "method", "computed_at")
_SUMMARY_COLS = ("entity_kind", "entity_id", "n_accounts", "n_markets", "n_listings",
                 "feedback_count", "orders_est", "orders_low", "orders_high", "orders_reported",
                 "revenue_usd", "revenue_usd_low", "revenue_usd_high", "buyers_distinct_min",
                 "buyers_note", "first_active", "last_active", "active_days", "evidence",
                 "method", "computed_at")
_PLACEHOLDERS = {"anon", "anonymous", "buyer", "unknown", "user", "customer", "guest",
                 "hidden", "private", "n a", "na"}


@dataclass(frozen=True, slots=True)
class SalesParams:
    """The feedback rate r (share of orders leaving feedback) and its range."""

    rate: float = FEEDBACK_RATE
    rate_low: float = FEEDBACK_RATE_RANGE[0]
    rate_high: float = FEEDBACK_RATE_RANGE[1]

    def __post_init__(self) -> None:
        if not (0 < self.rate_low <= self.rate <= self.rate_high <= 1.0):
            raise ValueError("feedback rates must satisfy 0 < low <= rate <= high <= 1")


def correct_orders(feedback: float, params: SalesParams = SalesParams()) -> tuple[float, float, float]:
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


def compute_sales(ws: Any, params: SalesParams = SalesParams(), fx: FxTable | None = None,
                  now: datetime | None = None) -> dict[str, int]:
    """Fill ``sales_monthly`` and ``sales_summary`` for every account and persona."""
    con = ws.con
    fx = fx or load_fx(workspace=getattr(ws, "path", None))
    now = now or datetime.utcnow()
    pmap = persona_map(con)
    prices: dict[str, float] = {}
    per_account_prices: dict[str, list[float]] = defaultdict(list)
    listing_dates: dict[str, list[datetime]] = defaultdict(list)
    listing_market: dict[str, str] = {}
    for lid, aid, usd, obs in con.execute(
            "SELECT listing_id, account_id, pack_price_usd, observed_at FROM listing_assessments"
    ).fetchall():
        if usd is not None and usd > 0:
            prices[lid] = usd
            if aid:
                per_account_prices[aid].append(usd)
        if aid and obs:
            listing_dates[aid].append(obs)
    for lid, mid in con.execute("SELECT listing_id, market_id FROM listings").fetchall():
        listing_market[lid] = mid
    shown: dict[str, int] = {}
    reported: dict[str, int] = {}
    for aid, fb, sc in con.execute(
            "SELECT account_id, max(feedback_count), max(sales_count) FROM account_observations"
            " GROUP BY account_id").fetchall():
        if fb is not None:
            shown[aid] = int(fb)
        if sc is not None:
            reported[aid] = int(sc)
    acct_market = dict(con.execute("SELECT account_id, market_id FROM accounts").fetchall())
    n_listings: dict[str, int] = defaultdict(int)
    for (aid,) in con.execute("SELECT account_id FROM listings WHERE account_id IS NOT NULL").fetchall():
        n_listings[aid] += 1

    # entity -> month -> [feedback, value_mid, value_low_part, value_high_part, masks]
    monthly: dict[tuple[str, str], dict[date, list[Any]]] = defaultdict(dict)
    first: dict[tuple[str, str], datetime] = {}
    last: dict[tuple[str, str], datetime] = {}
    sources: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows_per_account: dict[str, int] = defaultdict(int)
    unmasked_missing: dict[tuple[str, str], int] = defaultdict(int)
    masks: dict[tuple[str, str], set[str]] = defaultdict(set)
    for aid, lid, mask, left, obs, amount, cur in con.execute(
            "SELECT account_id, listing_id, buyer_masked, left_at, observed_at, amount, currency"
            " FROM feedback WHERE account_id IS NOT NULL").fetchall():
        when = left or obs
        rows_per_account[aid] += 1
        value, src = None, None
        if amount is not None and amount > 0 and cur:
            value = _usd(float(amount), cur, when, fx)
            src = "own_btc" if cur.upper() in ("BTC", "XMR") else "own_fiat"
        if value is None and lid and lid in prices:
            value, src = prices[lid], "listing_price"
        if value is None and per_account_prices.get(aid):
            value, src = median(per_account_prices[aid]), "vendor_median"
        u = _UNCERTAINTY.get(src or "", 0.0)
        for key in (("account", aid), ("persona", pmap.get(aid, aid))):
            sources[key][src or "unvalued"] += 1
            if when is None:
                continue
            m = monthly[key].setdefault(_month(when), [0, 0.0, 0.0, 0.0, set()])
            m[0] += 1
            if value is not None:
                m[1] += value
                m[2] += value * (1 - u)
                m[3] += value * (1 + u)
            if informative_mask(mask):
                m[4].add(mask)
                masks[key].add(mask)
            else:
                unmasked_missing[key] += 1
            first[key] = min(first.get(key, when), when)
            last[key] = max(last.get(key, when), when)

    c_mid, c_low, c_high = 1 / params.rate, 1 / params.rate_high, 1 / params.rate_low
    con.execute("DELETE FROM sales_monthly")
    con.execute("DELETE FROM sales_summary")
    mrows = []
    for (kind, eid), months in monthly.items():
        for mon, (n, v, vl, vh, ms) in sorted(months.items()):
            est, lo, hi = correct_orders(n, params)
            mrows.append((kind, eid, mon, n, est, lo, hi, v * c_mid if v else None,
                          vl * c_low if v else None, vh * c_high if v else None,
                          len(ms), METHOD, now))
    insert_rows(con, "sales_monthly", _MONTHLY_COLS, mrows)

    members: dict[str, list[str]] = defaultdict(list)
    for aid, pid in pmap.items():
        members[pid].append(aid)
    srows = []
    entities = [("account", a, [a]) for a in pmap] + [("persona", p, accs)
                                                        for p, accs in members.items()]
    for kind, eid, accs in entities:
        key = (kind, eid)
        rows_total = sum(rows_per_account.get(a, 0) for a in accs)
        shown_total = sum(max(shown.get(a, 0), rows_per_account.get(a, 0)) for a in accs)
        fb_total = max(rows_total, shown_total)
        est, lo, hi = correct_orders(fb_total, params)
        months = monthly.get(key, {})
        v = sum(m[1] for m in months.values())
        vl = sum(m[2] for m in months.values())
        vh = sum(m[3] for m in months.values())
        dated = sum(m[0] for m in months.values())
        # feedback shown on profiles but not captured: valued at the mean captured value
        scale = fb_total / dated if dated and fb_total > dated else 1.0
        dates = [d for a in accs for d in listing_dates.get(a, [])]
        f_act = first.get(key) or (min(dates) if dates else None)
        l_act = last.get(key) or (max(dates) if dates else None)
        rep = [reported[a] for a in accs if a in reported]
        ev = {"feedback_rows": rows_total, "feedback_shown_on_pages": shown_total,
              "feedback_used": fb_total,
              "feedback_basis": "shown on pages" if shown_total > rows_total else "rows read",
              "correction_factor": {"estimate": round(c_mid, 4), "low": round(c_low, 4),
                                    "high": round(c_high, 4), "feedback_rate": params.rate},
              "value_sources": dict(sources.get(key, {})),
              "uncaptured_feedback_scale": round(scale, 4),
              "markets": sorted({acct_market.get(a) or a.split(":", 1)[0] for a in accs})}
        n_masked_out = unmasked_missing.get(key, 0)
        note = ("distinct masked handles: a lower bound (masks can collide)"
                + (f"; {n_masked_out} feedback without a usable handle not counted"
                   if n_masked_out else ""))
        srows.append((
            kind, eid, len(accs), len(ev["markets"]), sum(n_listings.get(a, 0) for a in accs),
            fb_total, est, lo, hi, max(rep) if len(rep) == 1 else (sum(rep) if rep else None),
            v * c_mid * scale if v else None, vl * c_low * scale if v else None,
            vh * c_high * scale if v else None, len(masks.get(key, ())), note, f_act, l_act,
            (l_act - f_act).days if f_act and l_act else None, json.dumps(ev), METHOD, now))
    insert_rows(con, "sales_summary", _SUMMARY_COLS, srows)
    return {"sales_monthly": len(mrows), "sales_summary": len(srows)}
