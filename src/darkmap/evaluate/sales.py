"""Score the sales estimates against a simulated world's truth (``darkmap eval sales``).

For every vendor account the truth names with at least one order, and for every persona
(scored against the sum of the truth of its member accounts, so linking mistakes do not
count here), per measure:

* ``median_rel_error``: median of ``|estimate - true| / true``;
* ``coverage``: share of entities whose stated interval (``coverage_stated``, 90%)
  contains the true value;
* ``bias``: median of ``(estimate - true) / true`` (negative: underestimates).

Measures: ``orders``, ``customers`` (personas: only those whose accounts are exactly one
actor's accounts, scored against that actor's distinct buyers), ``pills``,
``counterfeit_pills``, ``fentanyl_risk_pills``, ``grams_total`` (entities whose true value is
above zero). Orders are also broken down by the basis of the estimate (``counter``, the
market displayed the vendor's sales; or a feedback-based basis).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import median
from typing import Any, TypedDict

from darkmap.errors import BadInputError
from darkmap.evaluate.linking import load_truth
from darkmap.store.personas import persona_map
from darkmap.store.sales import EstimateRow, estimates
from darkmap.store.workspace import Workspace

__all__ = ["MEASURES", "Pairs", "SalesEvalReport", "Score", "eval_sales", "sales_pairs",
           "score"]

MEASURES = ("orders", "customers", "pills", "counterfeit_pills", "fentanyl_risk_pills",
            "grams_total")


class Score(TypedDict):
    """Accuracy of one measure over a set of entities."""

    n: int
    median_rel_error: float | None
    coverage: float | None
    bias: float | None


class SalesEvalReport(TypedDict):
    """Scores per entity kind and measure, and orders by basis."""

    coverage_stated: float | None
    accounts: dict[str, Score]
    personas: dict[str, Score]
    accounts_orders_by_basis: dict[str, Score]
    personas_orders_by_basis: dict[str, Score]
    accounts_scored: int
    personas_scored: int


def score(pairs: list[tuple[float, float, float, float]]) -> Score:
    """Score (estimate, low, high, true) tuples (true > 0)."""
    pairs = [p for p in pairs if p[3] > 0]
    if not pairs:
        return {"n": 0, "median_rel_error": None, "coverage": None, "bias": None}
    rel = [(e - t) / t for e, _, _, t in pairs]
    return {"n": len(pairs), "median_rel_error": round(median(abs(r) for r in rel), 4),
            "coverage": round(sum(lo <= t <= hi for _, lo, hi, t in pairs) / len(pairs), 4),
            "bias": round(median(rel), 4)}


def _true_value(truth_entry: dict[str, Any], measure: str) -> float | None:
    if measure == "orders":
        return float(truth_entry.get("true_orders", 0))
    if measure == "customers":
        v = truth_entry.get("true_customers")
        return float(v) if v is not None else None
    units = truth_entry.get("units") or {}
    return float(units.get(measure, 0.0))


def _persona_truth(accts: list[dict[str, Any]], measure: str) -> float | None:
    vals = [_true_value(a, measure) for a in accts]
    return None if any(v is None for v in vals) else sum(v or 0.0 for v in vals)


Pairs = dict[str, list[tuple[float, float, float, float]]]


def eval_sales(ws: Workspace, truth: dict[str, Any] | str | Path) -> SalesEvalReport:
    """Score the workspace's sales estimates against ``truth`` (a dict or truth.json).

    A truth of which no account has an estimate here is a :class:`BadInputError`: a score
    over no accounts would mean nothing."""
    if not isinstance(truth, dict):
        truth = load_truth(truth)
    p = sales_pairs(ws, truth)
    if not p["accounts_scored"] and not p["personas_scored"]:
        accounts = truth.get("accounts")
        named = sum(1 for v in accounts.values() if isinstance(v, dict) and v.get("true_orders")
                    ) if isinstance(accounts, dict) else 0
        raise BadInputError(
            f"the truth gives the sales of {named:,} accounts and none of them has a sales "
            "estimate in this workspace (wrong truth file or workspace, or `darkmap assess` "
            "not run): a score over no accounts would be meaningless")
    return {"coverage_stated": p["coverage_stated"],
            "accounts": {m: score(p["accounts"][m]) for m in MEASURES},
            "personas": {m: score(p["personas"][m]) for m in MEASURES},
            "accounts_orders_by_basis": {b: score(v)
                                         for b, v in sorted(p["account_basis"].items())},
            "personas_orders_by_basis": {b: score(v)
                                         for b, v in sorted(p["persona_basis"].items())},
            "accounts_scored": p["accounts_scored"], "personas_scored": p["personas_scored"]}


def sales_pairs(ws: Workspace, truth: dict[str, Any] | str | Path) -> dict[str, Any]:
    """The (estimate, low, high, true) tuples :func:`eval_sales` scores, by entity kind and
    measure (``accounts``, ``personas``) and by basis of the orders estimate (pooling the
    tuples of several worlds gives one score over all of them)."""
    if not isinstance(truth, dict):
        truth = load_truth(truth)
    t_acc: dict[str, Any] = truth.get("accounts", {})
    t_act: dict[str, Any] = truth.get("actors", {})
    rows = estimates(ws.con, None, "all")
    by: dict[tuple[str, str], dict[str, EstimateRow]] = defaultdict(dict)
    for r in rows:
        by[(r.entity_kind, r.entity_id)][r.measure] = r
    pmap = persona_map(ws.con)
    members: dict[str, list[str]] = defaultdict(list)
    for aid, pid in pmap.items():
        members[pid].append(aid)
    acc_pairs: Pairs = defaultdict(list)
    per_pairs: Pairs = defaultdict(list)
    acc_basis: Pairs = defaultdict(list)
    per_basis: Pairs = defaultdict(list)
    scored_acc = scored_per = 0
    for aid, entry in t_acc.items():
        est = by.get(("account", aid))
        if not est or not entry.get("true_orders"):
            continue
        scored_acc += 1
        _add(est, entry, acc_pairs, acc_basis)
    for pid, accs in members.items():
        est = by.get(("persona", pid))
        entries = [t_acc[a] for a in accs if a in t_acc]
        if not est or len(entries) != len(accs) or not sum(e.get("true_orders", 0)
                                                            for e in entries):
            continue
        scored_per += 1
        actors = {e.get("actor") for e in entries}
        whole = len(actors) == 1 and sorted(accs) == sorted(
            t_act.get(next(iter(actors)), {}).get("accounts", []))
        merged: dict[str, Any] = {"true_orders": sum(e.get("true_orders", 0) for e in entries),
                                  "units": {m: _persona_truth(entries, m) for m in MEASURES[2:]},
                                  "true_customers": (t_act[next(iter(actors))].get(
                                      "true_customers") if whole else None)}
        _add(est, merged, per_pairs, per_basis)
    return {"coverage_stated": rows[0].coverage if rows else None, "accounts": acc_pairs,
            "personas": per_pairs, "account_basis": acc_basis, "persona_basis": per_basis,
            "accounts_scored": scored_acc, "personas_scored": scored_per}


def _add(est: dict[str, EstimateRow], entry: dict[str, Any], pairs: Pairs,
         basis: Pairs) -> None:
    """Add one entity's (estimate, low, high, true) per measure."""
    for m in MEASURES:
        true = _true_value(entry, m)
        if true is None or true <= 0:
            continue
        r = est.get(m)
        e, lo, hi = (r.estimate, r.low, r.high) if r else (0.0, 0.0, 0.0)
        pairs[m].append((e, lo, hi, true))
        if m == "orders" and r is not None:
            b = "counter" if r.basis == "counter" else (
                "feedback" if r.basis != "mixed" else "mixed")
            basis[b].append((e, lo, hi, true))
