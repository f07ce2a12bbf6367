"""What each vendor account and actor truly sold: orders, feedback, units and customers.

The figures ``truth.json`` adds for scoring sales estimates (``darkmap eval sales``):

* ``true_orders`` (already in the contract), ``true_feedback`` (feedback left, hidden rows
  included: what a profile total counts), ``feedback_rows_shown`` (rows the pages show);
* ``true_customers``: distinct buyers (buyer ids, not masks);
* ``units``: ``pills``, ``counterfeit_pills``, ``fentanyl_risk_pills`` (pill listings only),
  ``grams`` by substance and ``grams_total``: orders x the listing's pack quantity.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from darkmap.simulate.world import Account, World

__all__ = ["account_sales_truth", "actor_sales_truth", "units_of"]


def _add_units(acc_units: dict[str, Any], kind: str, substance: str | None, counterfeit: bool,
               fentanyl: bool, qty: float) -> None:
    if kind == "pill":
        acc_units["pills"] += qty
        if counterfeit:
            acc_units["counterfeit_pills"] += qty
        if fentanyl:
            acc_units["fentanyl_risk_pills"] += qty
    elif kind == "gram":
        acc_units["grams_total"] += qty
        key = substance or "unknown"
        acc_units["grams"][key] = acc_units["grams"].get(key, 0.0) + qty


def _empty_units() -> dict[str, Any]:
    return {"pills": 0.0, "counterfeit_pills": 0.0, "fentanyl_risk_pills": 0.0,
            "grams_total": 0.0, "grams": {}}


def units_of(world: World, acc: Account) -> dict[str, Any]:
    """Units sold by ``acc``: every order is one pack of its listing's tier."""
    out = _empty_units()
    for li in acc.listings:
        lst = world.listings[li]
        _add_units(out, lst.line.unit_kind, lst.line.substance, lst.line.counterfeit_pill,
                   lst.fentanyl_risk, lst.true_orders * float(lst.units))
    out["grams"] = {k: round(v, 3) for k, v in sorted(out["grams"].items())}
    for k in ("pills", "counterfeit_pills", "fentanyl_risk_pills", "grams_total"):
        out[k] = round(out[k], 3)
    return out


def _buyers(world: World, acc: Account) -> set[int]:
    o = world.orders
    found: set[int] = set()
    for li in acc.listings:
        found.update(int(b) for b in np.unique(o.buyer[int(o.starts[li]):int(o.starts[li + 1])]))
    return found


def account_sales_truth(world: World, acc: Account) -> dict[str, Any]:
    """The sales figures of one account for ``truth.json``."""
    o = world.orders
    fb = shown = 0
    for li in acc.listings:
        s, e = int(o.starts[li]), int(o.starts[li + 1])
        rated = o.rating[s:e] > 0
        fb += int(rated.sum())
        shown += int((rated & ~o.hidden[s:e]).sum()) if o.hidden is not None else int(rated.sum())
    return {"true_feedback": fb, "feedback_rows_shown": shown,
            "true_customers": len(_buyers(world, acc)),
            "feedback_rate": round(acc.feedback_rate, 4), "units": units_of(world, acc)}


def actor_sales_truth(world: World, actor_idx: int) -> dict[str, Any]:
    """Orders, distinct customers (across all its accounts) and units of one actor."""
    actor = world.actors[actor_idx]
    buyers: set[int] = set()
    units = _empty_units()
    grams: dict[str, float] = defaultdict(float)
    orders = 0
    for ai in actor.accounts:
        acc = world.accounts[ai]
        orders += acc.true_orders
        buyers |= _buyers(world, acc)
        u = units_of(world, acc)
        for k in ("pills", "counterfeit_pills", "fentanyl_risk_pills", "grams_total"):
            units[k] = round(units[k] + u[k], 3)
        for k, v in u["grams"].items():
            grams[k] += v
    units["grams"] = {k: round(v, 3) for k, v in sorted(grams.items())}
    return {"true_orders": orders, "true_customers": len(buyers), "units": units}
