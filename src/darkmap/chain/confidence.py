"""How sure a traced step is: the evidence behind a cluster and behind a trace's hit.

A heuristic ordinal score, not a probability (``docs/chain.md``, "How sure is a
trail"). A trace hit's score is 100 times the product of factors, one per thing
darkmap knows about the trail, each with the reason an analyst reads:

- the tag's own confidence: the TagPack ``confidence`` id mapped to GraphSense's level
  (:data:`TAG_LEVELS`, 5..100), factor ``0.3 + 0.7 * level / 100``; a tag from the
  evidence (an address a market account published) counts as level 50, a tag without
  a known confidence as ``unknown`` (5);
- how the tag reaches the address: on the address itself 1.0; on another address of
  its cluster joined to it by multi-input merges 0.95; joined only through a change
  heuristic (weaker: Meiklejohn et al. 2013, Möser & Narayanan 2022) 0.6;
- the share of the output's value the haircut rule traces to the source (whatever the
  method: ``poison`` counts the whole output), factor ``sqrt(share)`` (1 from 90 %,
  at least 0.1);
- CoinJoins on the path: 0.5 each (whose output was followed cannot be told);
- hops: 1 up to 3, then 0.9 per hop (at least 0.4);
- a source cluster (``cluster:N``) joined by change heuristics: 0.85 when its evidence
  is ``medium``, 0.35 when ``low`` (:func:`evidence_from_counts`): which of its multi-input
  groups is the wallet the analyst means cannot be told, so every trail from it is
  weaker.

Levels: ``high`` from 60, ``medium`` from 30, ``low`` below. A cluster's evidence
(:func:`evidence_from_counts`) says which heuristics merged it, how many multi-input groups
the change heuristics joined, and the CoinJoins its addresses spent in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypedDict

__all__ = [
    "EVIDENCE_TAG_LEVEL",
    "LEVELS",
    "TAG_LEVELS",
    "ClusterEvidence",
    "Factor",
    "evidence_from_counts",
    "level_of",
    "score",
    "tag_factor",
]

TAG_LEVELS = {
    "override": 100, "ownership": 100, "manual_transaction": 90, "service_api": 70,
    "authority_data": 60, "trusted_provider": 50, "service_data": 50, "forensic": 50,
    "untrusted_transaction": 40, "web_crawl": 20, "heuristic": 10, "unknown": 5,
}
"""GraphSense TagPack confidence ids and their levels (graphsense-tagpack-tool,
``confidence.csv``)."""
EVIDENCE_TAG_LEVEL = 50
"""Level of a tag darkmap made from the evidence: the account published the address
(its own claim, as scraped), like a tag retrieved from a known service."""
LEVELS = (("high", 60), ("medium", 30), ("low", 0))
"""A score's level: the first whose threshold it reaches."""
VIA_MULTI_INPUT = 0.95
VIA_CHANGE = 0.6
PER_COINJOIN = 0.5
SOURCE_FACTOR = {"high": 1.0, "medium": 0.85, "low": 0.35}
FREE_HOPS = 3
PER_HOP = 0.9
MIN_HOPS_FACTOR = 0.4
MIN_SHARE_FACTOR = 0.1
FULL_SHARE = 0.9


class Factor(TypedDict):
    """One thing that makes a trail more or less sure: its factor and the reason."""

    factor: float
    reason: str


def level_of(points: int) -> str:
    """``high``, ``medium`` or ``low`` for a score of ``points`` (0..100)."""
    return next(name for name, floor in LEVELS if points >= floor)


def score(factors: list[Factor]) -> tuple[int, str, list[str]]:
    """(score 0..100, level, reasons) of a trail: 100 times the product of its factors;
    the reasons in the order given."""
    product = math.prod(f["factor"] for f in factors)
    points = int(round(100 * product))
    return points, level_of(points), [f["reason"] for f in factors]


def tag_factor(label: str, confidence: str | None, origin: str,
               source: str | None) -> Factor:
    """The factor of a tag's own confidence (see the module docstring)."""
    key = (confidence or "").strip().lower()
    if origin == "evidence":
        level, said = EVIDENCE_TAG_LEVEL, "published by a market account (evidence)"
    elif key in TAG_LEVELS:
        level, said = TAG_LEVELS[key], f"TagPack confidence {key}"
    else:
        level = TAG_LEVELS["unknown"]
        said = (f"TagPack confidence {key!r} is not a GraphSense level: unknown" if key
                else "TagPack gives no confidence: unknown")
    src = f", source {source}" if source and origin != "evidence" else ""
    return {"factor": round(0.3 + 0.7 * level / 100, 4),
            "reason": f"tag {label}: {said} (level {level}){src}"}


def share_factor(share: float) -> Factor:
    """The factor of the share of an output's value traced to the source (haircut)."""
    pct = f"{100 * share:.0f}%" if share >= 0.01 else f"{100 * share:.2g}%"
    if share >= FULL_SHARE:
        return {"factor": 1.0, "reason": f"{pct} of the output's value traced (haircut)"}
    return {"factor": round(max(MIN_SHARE_FACTOR, math.sqrt(max(share, 0.0))), 4),
            "reason": f"only {pct} of the output's value traced pro rata (haircut); "
                      "poison counts all of it"}


def hops_factor(hops: int) -> Factor:
    """The factor of the number of transactions between the source and the hit."""
    f = max(MIN_HOPS_FACTOR, PER_HOP ** max(hops - FREE_HOPS, 0))
    return {"factor": round(f, 4), "reason": f"{hops} hop{'s' if hops != 1 else ''}"}


class ClusterEvidence(TypedDict):
    """How a cluster was formed and how sure it is (``wallet show`` prints it)."""

    level: str
    reasons: list[str]
    heuristics_run: list[str]
    merges_by_heuristic: dict[str, int]
    change_merges: int
    multi_input_groups: int
    largest_multi_input_group: int
    coinjoins_spent_in: dict[str, int]


def evidence_from_counts(n_addresses: int, merges_by_heuristic: dict[str, int],
                         merged_addresses: int, multi_input_sizes: Iterable[int],
                         heuristics_run: Iterable[str],
                         coinjoins_spent_in: dict[str, int]) -> ClusterEvidence:
    """The evidence of one cluster of ``n_addresses`` from counts a query can aggregate
    without fetching every merge: the merges of each heuristic, the addresses in at
    least one merge and the sizes of the multi-input groups of two or more addresses.

    ``high``: one address, or merged by multi-input alone; ``medium``: change heuristics
    attached single addresses to one multi-input group (what a peel chain's change
    looks like; each such merge is one guess of which output was change); ``low``:
    change heuristics glued two or more multi-input groups of several addresses
    together (two wallets joined by a guess: a custodian and its user, say). CoinJoins
    the addresses spent in are listed: their inputs were not merged (a CoinJoin's inputs
    belong to different people).
    """
    by_heur = dict(merges_by_heuristic)
    change = sum(n for h, n in by_heur.items() if h != "multi_input")
    multi = sorted((int(n) for n in multi_input_sizes if n > 1), reverse=True)
    # addresses merged by change heuristics alone, and those in no merge, are groups of one
    n_groups = (len(multi) + merged_addresses - sum(multi)
                + max(n_addresses - merged_addresses, 0)) if n_addresses > 1 else 1
    largest = max(multi, default=1) if n_addresses > 1 else 1
    reasons: list[str] = []
    if n_addresses <= 1:
        level = "high"
        reasons.append("one address: nothing was merged")
    elif not change:
        level = "high"
        reasons.append(f"merged by multi-input alone ({by_heur.get('multi_input', 0)} "
                       "merges: addresses spent together in one transaction)")
    else:
        weak = ", ".join(f"{h} {n}" for h, n in sorted(by_heur.items()) if h != "multi_input")
        reasons.append(f"{change} merges by change heuristics ({weak}), weaker than "
                       f"multi-input ({by_heur.get('multi_input', 0)})")
        if len(multi) >= 2:
            level = "low"
            reasons.append(f"change heuristics glued {len(multi)} multi-input groups "
                           f"together (largest {multi[0]} and {multi[1]} addresses): "
                           f"without them it would be {n_groups} wallets")
        else:
            level = "medium"
            reasons.append(f"change heuristics attached {n_groups - 1} address"
                           f"{'es' if n_groups != 2 else ''} to one multi-input group of "
                           f"{largest} (as a peel chain's change would be)")
    if coinjoins_spent_in:
        n = sum(coinjoins_spent_in.values())
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(coinjoins_spent_in.items()))
        reasons.append(f"spent in {n} CoinJoin{'s' if n != 1 else ''} ({kinds}): their "
                       "inputs were not merged")
    return {"level": level, "reasons": reasons, "heuristics_run": list(heuristics_run),
            "merges_by_heuristic": dict(sorted(by_heur.items())), "change_merges": change,
            "multi_input_groups": n_groups, "largest_multi_input_group": largest,
            "coinjoins_spent_in": dict(coinjoins_spent_in)}
