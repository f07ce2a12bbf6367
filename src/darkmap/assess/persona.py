"""What the assessment says about one persona: where it ships from and how sure, its
estimated orders and revenue with their 90% ranges, and its listings with substance, dose
and prices, flagged ones first (`darkmap persona show`)."""

from __future__ import annotations

import json
from typing import TypedDict, cast

from darkmap.store import assessment as store
from darkmap.store.sales import persona_bases
from darkmap.store.workspace import Workspace

__all__ = ["AssessedListingView", "PersonaAssessment", "persona_assessment"]


class AssessedListingView(TypedDict):
    """One listing of the persona as assessed."""

    listing_id: str
    title: str | None
    substance: str
    fentanyl_risk: bool
    counterfeit_pill: bool
    units: float | None
    unit_kind: str
    dose_mg: float | None
    pack_price_usd: float | None
    unit_price_usd: float | None


class PersonaAssessment(TypedDict):
    """A persona's assessment (:func:`persona_assessment`)."""

    country: str | None
    country_confidence: float
    country_evidence: list[dict[str, object]]
    orders: list[float] | None
    revenue_usd: list[float | None] | None
    buyers_distinct_min: int | None
    sales_basis: str | None
    listings_total: int
    listings: list[AssessedListingView]


def persona_assessment(ws: Workspace, persona_id: str, account_ids: list[str],
                       limit: int | None = 20) -> PersonaAssessment | None:
    """The assessment of persona ``persona_id`` (whose accounts are ``account_ids``):
    country with confidence and evidence, orders and revenue as [estimate, low, high]
    (None when no sales were captured), and its first ``limit`` listings (all when
    ``limit`` is None), fentanyl-risk first, then counterfeit pills, then other drugs.
    None before `darkmap assess`."""
    con = ws.con
    total, rows = store.persona_listings(con, account_ids, limit)
    if not total:
        return None
    sale = store.one_persona_sales(con, persona_id)
    juris = store.one_persona_jurisdiction(con, persona_id)
    basis = persona_bases(con, persona_id).get(persona_id)
    captured = sale is not None and basis not in (None, "not captured")
    return {
        "country": juris.country if juris else None,
        "country_confidence": round(juris.confidence, 3) if juris else 0.0,
        "country_evidence": json.loads(juris.evidence) if juris and juris.evidence else [],
        "orders": ([sale.orders_est, sale.orders_low, sale.orders_high]
                   if sale is not None and captured else None),
        "revenue_usd": ([sale.revenue_usd, sale.revenue_usd_low, sale.revenue_usd_high]
                        if sale is not None and captured and sale.revenue_usd else None),
        "buyers_distinct_min": sale.buyers_distinct_min if sale is not None else None,
        "sales_basis": basis,
        "listings_total": total,
        "listings": [cast(AssessedListingView, r._asdict()) for r in rows],
    }
