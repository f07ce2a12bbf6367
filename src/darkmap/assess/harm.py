"""Rank personas by a documented harm score, each row with its evidence.

For persona *p* (components are clipped to 0..1):

==============  ======  =====================================================
component       weight  definition
==============  ======  =====================================================
fentanyl          0.30  min(1, listings with fentanyl_risk / 3)
counterfeit       0.20  min(1, listings with counterfeit_pill / 3)
opioid_share      0.10  share of drug listings that are opioids or sedatives
volume            0.15  log10(1 + estimated orders) / 4   (10,000 orders -> 1)
revenue           0.10  log10(1 + estimated revenue USD) / 7  (10 M USD -> 1)
reach             0.10  0.7 * log10(1 + distinct buyers) / 3 + 0.3 * markets / 3
duration          0.05  active days / 730
==============  ======  =====================================================

Volume, revenue, reach and duration are multiplied by the persona's share of drug
listings (a vendor of stolen cards scores 0 however busy), then
``harm = 100 * Σ weight * component``. Fentanyl and counterfeit pills weigh most because
they drive overdose deaths; volume, reach and duration then separate large, long-lived
operations from small ones. A persona selling no drugs scores 0 on the first three
components, so fraud-only vendors sink to the bottom.

Caps: the fentanyl and counterfeit parts are full at 3 flagged listings (a persona with 30
scores as one with 3); volume at 10,000 orders, revenue at 10 M USD, the markets part of
reach at 3 markets (the distinct markets of the persona's accounts, one known only from a
seized seller table included), duration at two years. The weights are a stated judgement,
not fitted: there is no ground truth of harm to fit them to.

**What a score rests on.** Each row says how much of the score comes from the listings
(``harm_parts["listings"]``: fentanyl, counterfeit, opioid share) and how much from
activity (``harm_parts["activity"]``: volume, revenue, reach, duration), and whether any
account of the persona has sales evidence (``sales_evidence``: a counter, feedback or a
sales bracket). Without it volume and revenue are 0 and the score rests on the listings'
flags, drug share, markets and dates alone: a high rank then says what is sold, not how
much.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from darkmap.errors import BadInputError
from darkmap.store import assessment as store
from darkmap.store.assessment import AssessedListing, PersonaJurisdiction, PersonaSales
from darkmap.store.personas import persona_labels, persona_map
from darkmap.store.sales import account_bases, persona_bases, persona_measures
from darkmap.store.workspace import Workspace

__all__ = ["LISTING_PARTS", "NO_SALES", "NO_SALES_LEGEND", "NO_SALES_MARK", "WEIGHTS",
           "FlaggedExample", "TargetEvidence", "TargetRow", "check_limit", "harm_components",
           "harm_mark", "harm_parts", "harm_score", "rank_targets"]

WEIGHTS = {"fentanyl": 0.30, "counterfeit": 0.20, "opioid_share": 0.10, "volume": 0.15,
           "revenue": 0.10, "reach": 0.10, "duration": 0.05}
LISTING_PARTS = ("fentanyl", "counterfeit", "opioid_share")  # what is sold; the rest: activity
NO_SALES = "no sales evidence"
NO_SALES_MARK = "*"
"""What marks a harm score that rests on no sales evidence (:func:`harm_mark`)."""
NO_SALES_LEGEND = ("*: no sales evidence, the harm then rests on the listings' flags, drug"
                   " share, markets and dates alone and is no measure of volume")
"""What :data:`NO_SALES_MARK` means, for a table's legend."""


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def harm_components(n_fentanyl: int, n_counterfeit: int, n_drug: int, n_opioid_sedative: int,
                    orders: float, revenue_usd: float, buyers: int, markets: int,
                    active_days: int, n_listings: int | None = None) -> dict[str, float]:
    """The seven 0..1 components of the harm score."""
    share = _clip(n_drug / n_listings) if n_listings else (1.0 if n_drug else 0.0)
    comp = {
        "fentanyl": _clip(n_fentanyl / 3),
        "counterfeit": _clip(n_counterfeit / 3),
        "opioid_share": _clip(n_opioid_sedative / n_drug) if n_drug else 0.0,
        "volume": _clip(math.log10(1 + max(0.0, orders)) / 4),
        "revenue": _clip(math.log10(1 + max(0.0, revenue_usd)) / 7),
        "reach": _clip(0.7 * math.log10(1 + max(0, buyers)) / 3 + 0.3 * markets / 3),
        "duration": _clip(active_days / 730),
    }
    for k in ("volume", "revenue", "reach", "duration"):
        comp[k] *= share
    return comp


def harm_score(components: dict[str, float]) -> float:
    """0..100 weighted sum of the components."""
    return round(100 * sum(WEIGHTS[k] * components.get(k, 0.0) for k in WEIGHTS), 2)


def harm_parts(components: dict[str, float]) -> dict[str, float]:
    """The score split into what the listings give (fentanyl, counterfeit, opioid share)
    and what activity gives (volume, revenue, reach, duration), in score points."""
    listings = 100 * sum(WEIGHTS[k] * components.get(k, 0.0) for k in LISTING_PARTS)
    activity = 100 * sum(WEIGHTS[k] * components.get(k, 0.0) for k in WEIGHTS
                         if k not in LISTING_PARTS)
    return {"listings": round(listings, 2), "activity": round(activity, 2)}


def harm_mark(row: TargetRow) -> str:
    """:data:`NO_SALES_MARK` when the row's harm score rests on no sales evidence (no
    account of the persona shows a counter, feedback or a sales bracket), else ""."""
    return "" if row["sales_evidence"] else NO_SALES_MARK


class FlaggedExample(TypedDict):
    """A listing that raised a harm flag, with the words behind it."""

    listing_id: str
    title: str | None
    flags: list[str]
    evidence: dict[str, list[str]]


class TargetEvidence(TypedDict):
    """Why a persona ranks where it does."""

    flagged_listings: list[FlaggedExample]
    jurisdiction: list[dict[str, object]]


class TargetRow(TypedDict):
    """One persona of the harm-ranked target list (``darkmap targets --json``)."""

    persona_id: str
    label: str
    harm_score: float
    components: dict[str, float]
    country: str | None
    country_confidence: float
    accounts: list[str]
    listings: int
    drug_listings: int
    fentanyl_listings: int
    counterfeit_listings: int
    top_substances: dict[str, int]
    feedback: int
    orders_est: float
    orders_range: list[float]
    revenue_usd: float | None
    revenue_usd_range: list[float | None]
    buyers_distinct_min: int | None
    active_from: datetime | None
    active_to: datetime | None
    active_days: int | None
    evidence: TargetEvidence
    pills: list[float] | None  # [estimate, low, high] of the 90% interval (docs/sales.md)
    counterfeit_pills: list[float] | None
    fentanyl_risk_pills: list[float] | None
    customers: list[float] | None
    sales_basis: str | None  # what the orders rest on: counter, feedback ..., mixed
    sales_evidence: bool  # some account shows a counter, feedback or a sales bracket
    harm_parts: dict[str, float]  # score points from the listings and from activity
    harm_rests_on: str  # "listings and sales", or "no sales evidence: ..."
    markets: list[str]  # the distinct markets of its accounts (reach counts them)
    markets_account_only: list[str]  # of those, markets with no listing and no sales


@dataclass
class _ListingStats:
    """A persona's assessed listings: counts per flag and class, substances, examples."""

    n_listings: int = 0
    n_drug: int = 0
    n_fentanyl: int = 0
    n_counterfeit: int = 0
    n_opioid_sedative: int = 0
    substances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[FlaggedExample] = field(default_factory=list)

    def add(self, a: AssessedListing) -> None:
        """Count one assessed listing."""
        self.n_listings += 1
        if a.drug_class != "non_drug":
            self.n_drug += 1
            self.substances[a.substance] += 1
        fr, cf = a.fentanyl_risk, a.counterfeit_pill
        self.n_fentanyl += bool(fr)
        self.n_counterfeit += bool(cf)
        self.n_opioid_sedative += a.drug_class in ("opioid", "sedative")
        if (fr or cf) and len(self.examples) < 5:
            flags = [f for f, on in (("fentanyl_risk", fr), ("counterfeit_pill", cf)) if on]
            self.examples.append({"listing_id": a.listing_id, "title": a.title, "flags": flags,
                                  "evidence": json.loads(a.flag_evidence or "{}")})


_MEASURES = ("pills", "counterfeit_pills", "fentanyl_risk_pills", "customers")
_NO_SALES = PersonaSales(0.0, 0.0, 0.0, None, None, None, 0, 1, 0, None, None, 0)
_NO_JURISDICTION = PersonaJurisdiction(None, 0.0, "[]")


def check_limit(limit: int | None) -> None:
    """Raise :class:`BadInputError` unless ``limit`` is None or a count >= 0."""
    if limit is not None and limit < 0:
        raise BadInputError(f"limit must be 0 or more (0 or None: all), not {limit}")


def rank_targets(ws: Workspace, country: str | None = None,
                 limit: int | None = 20) -> list[TargetRow]:
    """Personas ranked by harm score (highest first), optionally only one country.

    ``limit`` rows at most (0 or None: all); a negative limit is a :class:`BadInputError`.
    """
    check_limit(limit)
    con = ws.con
    pmap = persona_map(con)
    labels = persona_labels(con)
    stats: dict[str, _ListingStats] = defaultdict(_ListingStats)
    for a in store.assessed_listings(con):
        stats[pmap.get(a.account_id, a.account_id)].add(a)
    sales = store.persona_sales(con)
    extra = persona_measures(con, _MEASURES)
    bases = persona_bases(con)
    acct_bases = account_bases(con)
    acct_market = store.account_markets(con)
    n_listings = store.listings_per_account(con)
    juris = store.persona_jurisdictions(con)
    members: dict[str, list[str]] = defaultdict(list)
    for aid, pid in pmap.items():
        members[pid].append(aid)
    rows = []
    for pid in set(stats) | set(sales):
        j = juris.get(pid, _NO_JURISDICTION)
        if country and (j.country or "").upper() != country.upper():
            continue
        label = labels.get(pid) or labels.get(members[pid][0] if members[pid] else pid, pid)
        accounts = sorted(members.get(pid, [pid]))
        active = {_market(a, acct_market) for a in accounts if n_listings.get(a)
                  or acct_bases.get(a, "not captured") not in ("", "not captured")}
        markets = sorted({_market(a, acct_market) for a in accounts})
        basis = bases.get(pid)
        row = _target_row(pid, label, stats[pid], sales.get(pid, _NO_SALES), j, accounts,
                          markets, basis not in (None, "", "not captured"))
        row["markets_account_only"] = [m for m in markets if m not in active]
        got = extra.get(pid, {})
        for m in _MEASURES:
            v = got.get(m)
            row[m] = [round(x, 1) for x in v] if v else None  # type: ignore[literal-required]
        row["sales_basis"] = basis
        rows.append(row)
    rows.sort(key=lambda r: (-r["harm_score"], -r["orders_est"], r["persona_id"]))
    return rows[:limit] if limit else rows


def _market(account_id: str, acct_market: dict[str, str]) -> str:
    return acct_market.get(account_id) or account_id.split(":", 1)[0]


def _target_row(pid: str, label: str, s: _ListingStats, sale: PersonaSales,
                j: PersonaJurisdiction, accounts: list[str], markets: list[str],
                sales_evidence: bool) -> TargetRow:
    """One persona's row: harm score and components, figures and evidence. Reach counts
    the distinct markets of the persona's accounts (two accounts on one market, or one
    account seen in two sources, count once)."""
    orders, rev = sale.orders_est, sale.revenue_usd
    r_lo, r_hi = sale.revenue_usd_low, sale.revenue_usd_high
    comp = harm_components(s.n_fentanyl, s.n_counterfeit, s.n_drug, s.n_opioid_sedative,
                           orders or 0.0, rev or 0.0, sale.buyers_distinct_min or 0,
                           max(len(markets), 1), sale.active_days or 0, s.n_listings)
    parts = harm_parts(comp)
    top_subs = sorted(s.substances.items(), key=lambda kv: -kv[1])[:5]
    return {
        "persona_id": pid, "label": label,
        "harm_score": harm_score(comp), "components": {k: round(v, 3) for k, v in comp.items()},
        "country": j.country, "country_confidence": j.confidence,
        "accounts": accounts,
        "listings": s.n_listings, "drug_listings": s.n_drug,
        "fentanyl_listings": s.n_fentanyl, "counterfeit_listings": s.n_counterfeit,
        "top_substances": dict(top_subs), "feedback": sale.feedback_count,
        "orders_est": round(orders or 0.0, 1),
        "orders_range": [round(sale.orders_low or 0.0, 1), round(sale.orders_high or 0.0, 1)],
        "revenue_usd": round(rev, 2) if rev else None,
        "revenue_usd_range": [round(r_lo, 2) if r_lo else None, round(r_hi, 2) if r_hi else None],
        "buyers_distinct_min": sale.buyers_distinct_min, "active_from": sale.first_active,
        "active_to": sale.last_active, "active_days": sale.active_days,
        "evidence": {"flagged_listings": s.examples,
                     "jurisdiction": json.loads(j.evidence or "[]")[:5]},
        "pills": None, "counterfeit_pills": None, "fentanyl_risk_pills": None,
        "customers": None, "sales_basis": None,
        "sales_evidence": sales_evidence, "harm_parts": parts,
        "harm_rests_on": "listings and sales" if sales_evidence else (
            f"{NO_SALES}: the listings' flags and drug share, markets and dates only "
            "(not a volume)"),
        "markets": markets, "markets_account_only": [],
    }
