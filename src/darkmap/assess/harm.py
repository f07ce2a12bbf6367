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
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from darkmap.store.personas import persona_labels, persona_map

__all__ = ["WEIGHTS", "harm_components", "harm_score", "rank_targets"]

WEIGHTS = {"fentanyl": 0.30, "counterfeit": 0.20, "opioid_share": 0.10, "volume": 0.15,
           "revenue": 0.10, "reach": 0.10, "duration": 0.05}


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


def rank_targets(ws: Any, country: str | None = None, limit: int | None = 20) -> list[dict[str, Any]]:
    """Personas ranked by harm score (highest first), optionally only one country."""
    con = ws.con
    pmap = persona_map(con)
    labels = persona_labels(con)
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "n_listings": 0, "n_drug": 0, "n_fentanyl": 0, "n_counterfeit": 0,
        "n_opioid_sedative": 0, "substances": defaultdict(int), "examples": []})
    for aid, lid, cls, sub, cf, fr, title, ev in con.execute("""
            SELECT a.account_id, a.listing_id, a.drug_class, a.substance, a.counterfeit_pill,
                   a.fentanyl_risk, o.title, a.flag_evidence
            FROM listing_assessments a LEFT JOIN listing_observations o USING (obs_id)
            WHERE a.account_id IS NOT NULL""").fetchall():
        s = stats[pmap.get(aid, aid)]
        s["n_listings"] += 1
        if cls != "non_drug":
            s["n_drug"] += 1
            s["substances"][sub] += 1
        s["n_fentanyl"] += bool(fr)
        s["n_counterfeit"] += bool(cf)
        s["n_opioid_sedative"] += cls in ("opioid", "sedative")
        if (fr or cf) and len(s["examples"]) < 5:
            flags = [f for f, on in (("fentanyl_risk", fr), ("counterfeit_pill", cf)) if on]
            s["examples"].append({"listing_id": lid, "title": title, "flags": flags,
                                  "evidence": json.loads(ev or "{}")})
    sales = {r[0]: r[1:] for r in con.execute(
        "SELECT entity_id, orders_est, orders_low, orders_high, revenue_usd, revenue_usd_low,"
        " revenue_usd_high, buyers_distinct_min, n_markets, active_days, first_active,"
        " last_active, feedback_count FROM sales_summary WHERE entity_kind='persona'").fetchall()}
    juris = {r[0]: r[1:] for r in con.execute(
        "SELECT entity_id, country, confidence, evidence FROM jurisdictions"
        " WHERE entity_kind='persona'").fetchall()}
    members: dict[str, list[str]] = defaultdict(list)
    for aid, pid in pmap.items():
        members[pid].append(aid)
    rows = []
    for pid in set(stats) | set(sales):
        s = stats[pid]
        (orders, o_lo, o_hi, rev, r_lo, r_hi, buyers, n_mk, days, f_act, l_act,
         fb) = sales.get(pid, (0.0, 0.0, 0.0, None, None, None, 0, 1, 0, None, None, 0))
        cc, cconf, cev = juris.get(pid, (None, 0.0, "[]"))
        if country and (cc or "").upper() != country.upper():
            continue
        comp = harm_components(s["n_fentanyl"], s["n_counterfeit"], s["n_drug"],
                               s["n_opioid_sedative"], orders or 0.0, rev or 0.0,
                               buyers or 0, n_mk or 1, days or 0, s["n_listings"])
        top_subs = sorted(s["substances"].items(), key=lambda kv: -kv[1])[:5]
        rows.append({
            "persona_id": pid, "label": labels.get(pid) or labels.get(members[pid][0] if members[pid] else pid, pid),
            "harm_score": harm_score(comp), "components": {k: round(v, 3) for k, v in comp.items()},
            "country": cc, "country_confidence": cconf,
            "accounts": sorted(members.get(pid, [pid])),
            "listings": s["n_listings"], "drug_listings": s["n_drug"],
            "fentanyl_listings": s["n_fentanyl"], "counterfeit_listings": s["n_counterfeit"],
            "top_substances": dict(top_subs), "feedback": fb,
            "orders_est": round(orders or 0.0, 1),
            "orders_range": [round(o_lo or 0.0, 1), round(o_hi or 0.0, 1)],
            "revenue_usd": round(rev, 2) if rev else None,
            "revenue_usd_range": [round(r_lo, 2) if r_lo else None, round(r_hi, 2) if r_hi else None],
            "buyers_distinct_min": buyers, "active_from": f_act, "active_to": l_act,
            "active_days": days,
            "evidence": {"flagged_listings": s["examples"],
                         "jurisdiction": json.loads(cev or "[]")[:5]},
        })
    rows.sort(key=lambda r: (-r["harm_score"], -r["orders_est"], r["persona_id"]))
    return rows[:limit] if limit else rows
