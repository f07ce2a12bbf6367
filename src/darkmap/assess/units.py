"""Units sold: orders x the pack each order bought, per listing, as Monte Carlo draws.

An order buys one pack of the listing it names (the listing's assessed ``units`` in its
``unit_kind``). The account's orders are spread over its listings:

* a listing whose page shows its own sales counter ("Sold 40 since ...") has that many
  orders;
* a feedback row (or an order row) that names a listing proves one order of it: each
  listing has at least the rows naming it;
* the orders left over are shared in proportion to the feedback rows that name each
  listing, with Dirichlet uncertainty (``rows + 1/2`` per listing: few rows, a wide
  share; a listing no row names still gets a small one). Only when no row names any of
  the listings is the split even (every listing the same expected share, Dirichlet
  ``1/2`` each). :func:`allocation_basis` says which.

The caller (:mod:`darkmap.assess.sales`) adds to the captured listings the items the
rows name that were never captured (Cryptonia's rows name "Xanax 1mg Pharma 20 tab BOX",
a listing not saved), each with the pack its title reads.

Measures: ``pills`` (unit_kind pill), ``counterfeit_pills`` and ``fentanyl_risk_pills``
(pills of listings with those flags), ``grams_total`` and ``grams:<substance>``. A listing
whose pack was not parsed sells orders but no units; their number is in the evidence.

**Counterfeit suspects.** Alprazolam "bars" sold on a drug market without the words that
raise the counterfeit flag ("pressed", "hulks", an impossible dose) and without a claim
of a pharmacy origin ("pharma", "Pfizer", "blister", "genuine") may be pressed or
diverted: "100 x Yellow Xanax bars R039" names a generic's imprint, which pressed bars
copy. The flag stays unraised (:mod:`darkmap.assess.flags`); the counterfeit-pill draws
count such a listing's pills in half of the draws (status unknown either way,
``SUSPECT_SHARE``), so the interval spans both readings and the estimate sits between.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from darkmap.store.sales import ListingPack

__all__ = ["SUSPECT_SHARE", "UNIT_MEASURES", "allocate_units", "allocation_basis",
           "counterfeit_suspect", "pack_measures"]

UNIT_MEASURES = ("pills", "counterfeit_pills", "fentanyl_risk_pills", "grams_total")
SUSPECT_SHARE = 0.5  # chance a suspect listing's pills are counterfeit: unknown either way
_BARS = re.compile(r"(?<![a-z])bars?(?![a-z])")
_PHARMACY = re.compile(r"pharma|pfizer|blister|genuine|authentic|prescription|(?<![a-z])rx"
                       r"(?![a-z])|(?<![a-z])(?:real|legit|original)(?![a-z])")


def counterfeit_suspect(pack: ListingPack) -> bool:
    """An unflagged alprazolam "bars" pill listing without a pharmacy claim."""
    if pack.counterfeit_pill or pack.unit_kind != "pill" or pack.substance != "alprazolam" \
            or not pack.title:
        return False
    t = pack.title[:300].casefold()
    return _BARS.search(t) is not None and _PHARMACY.search(t) is None


def pack_measures(pack: ListingPack) -> list[tuple[str, float]]:
    """(measure, quantity per order) of one listing's pack."""
    if pack.units is None or pack.units <= 0:
        return []
    q = float(pack.units)
    if pack.unit_kind == "pill":
        out = [("pills", q)]
        if pack.counterfeit_pill:
            out.append(("counterfeit_pills", q))
        if pack.fentanyl_risk:
            out.append(("fentanyl_risk_pills", q))
        return out
    if pack.unit_kind == "gram":
        return [("grams_total", q), (f"grams:{pack.substance}", q)]
    return []


def allocate_units(orders: np.ndarray, packs: Sequence[ListingPack], rows: Counter[str],
                   rng: np.random.Generator) -> tuple[dict[str, np.ndarray], int]:
    """Units drawn per measure for one account's order draws; and listings without a pack."""
    out: dict[str, np.ndarray] = {}
    if not packs:
        return out, 0
    n = orders.shape[0]
    counted = [p for p in packs if p.sales_shown is not None]
    rest = [p for p in packs if p.sales_shown is None]
    per_listing: list[tuple[ListingPack, np.ndarray]] = [
        (p, np.full(n, float(p.sales_shown or 0))) for p in counted]
    if rest:
        left = np.maximum(orders - sum(float(p.sales_shown or 0) for p in counted), 0.0)
        named = np.array([float(rows.get(p.listing_id, 0)) for p in rest])
        alpha = named + 0.5
        shares = rng.dirichlet(alpha, n) if len(rest) > 1 else np.ones((n, 1))
        # the rows naming a listing are orders of it; the rest is shared by the rows' shares
        proven = np.minimum(1.0, left / named.sum()) if named.any() else np.zeros(n)
        free = left - proven * named.sum()
        per_listing += [(p, proven * named[i] + free * shares[:, i])
                        for i, p in enumerate(rest)]
    no_pack = 0
    for p, o in per_listing:
        measures = pack_measures(p)
        no_pack += not measures
        for m, q in measures:
            out[m] = out.get(m, np.zeros(n)) + o * q
        if measures and counterfeit_suspect(p):
            pressed = rng.random(n) < SUSPECT_SHARE
            out["counterfeit_pills"] = out.get("counterfeit_pills", np.zeros(n)) \
                + o * measures[0][1] * pressed
    return out, no_pack


def allocation_basis(packs: Sequence[ListingPack], rows: Counter[str]) -> str:
    """How :func:`allocate_units` spreads an account's orders over ``packs``."""
    rest = [p for p in packs if p.sales_shown is None]
    if not packs:
        return "no listing"
    if not rest:
        return "listing sales counters"
    if len(rest) == 1:
        return "one listing"
    if any(rows.get(p.listing_id, 0) for p in rest):
        return "feedback rows naming listings"
    return "even: no feedback row names a listing"
