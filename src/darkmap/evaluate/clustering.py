"""Score clustering and tracing against the simulator's truth (``truth.json`` ``chain``).

- Pairwise precision / recall over addresses: a pair is predicted linked when both
  addresses share a cluster, truly linked when one wallet owns both. Computed from the
  contingency table (cluster x wallet), never by enumerating pairs.
- Purity: the share of addresses whose cluster's majority wallet is their own; and
  inverse purity (how whole each wallet is kept).
- Cash-outs: for each vendor cash-out, trace forward from the vendor's wallet (its
  largest predicted cluster, as an investigator would start from a known address) and
  count it traced when a hit lands on the deposit address labelled with the right
  exchange (``exact``), or anywhere on the right exchange (``exchange``).
- Cash-out confidence: every cash-out point those traces list is correct when it is a
  deposit address of one of the start's vendors' true cash-outs, incorrect otherwise
  (value that reached some other wallet's deposit: through a wrong merge, a pooled
  payment or a CoinJoin); ``auc`` is the chance that a correct one has a higher
  ``confidence_score`` than an incorrect one (ties count half), with precision per
  confidence level.
"""

from __future__ import annotations

import re
from typing import Any, Required, TypedDict

import numpy as np

from darkmap.chain.confidence import LEVELS
from darkmap.chain.trace import TraceContext, TraceResult, trace
from darkmap.errors import BadInputError
from darkmap.store.evaluations import address_clusters
from darkmap.store.workspace import Workspace

__all__ = ["CashoutDetail", "CashoutScores", "ChainEvalReport", "ClusterScores",
           "ConfidenceScores", "cluster_scores", "confidence_scores", "eval_chain"]


class ClusterScores(TypedDict, total=False):
    """Pairwise precision/recall/F1, purity and inverse purity (only ``addresses`` when
    there is nothing to score)."""

    addresses: Required[int]
    clusters: int
    wallets: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    purity: float
    inverse_purity: float


class CashoutDetail(TypedDict, total=False):
    """How one cash-out of the truth was (or was not) traced."""

    wallet: Required[Any]
    traced: bool
    why: str
    exchange: Any
    start: str
    deposit_hit: bool
    exchange_hit: bool


class LevelScore(TypedDict):
    """Cash-out points of one confidence level and how many of them are correct."""

    hits: int
    correct: int
    precision: float | None


class ConfidenceScores(TypedDict):
    """How well the cash-out confidence orders correct above incorrect cash-out points."""

    hits: int
    correct: int
    auc: float | None
    by_level: dict[str, LevelScore]


class CashoutScores(TypedDict, total=False):
    """Cash-outs traced to their deposit address and to the right exchange."""

    total: Required[int]
    traced_to_deposit: int
    traced_to_exchange: int
    share_traced: float
    share_right_exchange: float
    hops: int
    method: str
    details: list[CashoutDetail]
    confidence: ConfidenceScores


class ChainEvalReport(TypedDict):
    """What ``darkmap eval chain --json`` prints."""

    addresses_in_truth: int
    addresses_on_chain: int
    clustering: ClusterScores
    clustering_by_wallet_kind: dict[str, ClusterScores]
    cashouts: CashoutScores


def _pairs(counts: np.ndarray) -> int:
    c = counts.astype(np.int64)
    return int((c * (c - 1) // 2).sum())


def cluster_scores(pred: np.ndarray, true: np.ndarray) -> ClusterScores:
    """Pairwise precision/recall/F1, purity and inverse purity of integer labelings."""
    if len(pred) == 0:
        return {"addresses": 0}
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(true, return_inverse=True)
    joint = p.astype(np.int64) * (int(t.max()) + 1) + t
    _, cell = np.unique(joint, return_counts=True)
    tp = _pairs(cell)
    pp = _pairs(np.bincount(p))
    tt = _pairs(np.bincount(t))
    prec = tp / pp if pp else 1.0
    rec = tp / tt if tt else 1.0
    cells_p = np.unique(joint) // (int(t.max()) + 1)
    cells_t = np.unique(joint) % (int(t.max()) + 1)
    best_p = np.zeros(int(p.max()) + 1, dtype=np.int64)
    np.maximum.at(best_p, cells_p, cell)
    best_t = np.zeros(int(t.max()) + 1, dtype=np.int64)
    np.maximum.at(best_t, cells_t, cell)
    return {
        "addresses": int(len(pred)), "clusters": int(p.max()) + 1, "wallets": int(t.max()) + 1,
        "pairwise_precision": round(prec, 6), "pairwise_recall": round(rec, 6),
        "pairwise_f1": round(2 * prec * rec / (prec + rec), 6) if prec + rec else 0.0,
        "purity": round(float(best_p.sum()) / len(pred), 6),
        "inverse_purity": round(float(best_t.sum()) / len(pred), 6),
    }


def confidence_scores(scored: list[tuple[bool, int, str]]) -> ConfidenceScores:
    """AUC and per-level precision of (correct, confidence score, level) triples."""
    pos = np.array([sc for ok, sc, _ in scored if ok], dtype=np.float64)
    neg = np.array([sc for ok, sc, _ in scored if not ok], dtype=np.float64)
    auc: float | None = None
    if len(pos) and len(neg):  # Mann-Whitney U by ranks (ties get their mean rank)
        both = np.concatenate([pos, neg])
        _, inv, counts = np.unique(both, return_inverse=True, return_counts=True)
        mean_rank = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]
        u = mean_rank[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
        auc = round(float(u / (len(pos) * len(neg))), 6)
    by_level: dict[str, LevelScore] = {}
    for name, _ in LEVELS:
        oks = [ok for ok, _, lv in scored if lv == name]
        by_level[name] = {"hits": len(oks), "correct": int(sum(oks)),
                          "precision": round(sum(oks) / len(oks), 6) if oks else None}
    return {"hits": len(scored), "correct": int(sum(ok for ok, _, _ in scored)), "auc": auc,
            "by_level": by_level}


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name or "").casefold())


def eval_chain(ws: Workspace, truth: dict[str, Any], hops: int = 10,
               method: str = "poison") -> ChainEvalReport:
    """Cluster precision/recall/purity and the share of cash-outs traced to the right exchange.

    ``truth`` is the whole truth.json document or its ``chain`` section (anything else is
    a :class:`BadInputError`).
    """
    if not isinstance(truth, dict):
        raise BadInputError(f"truth must be a truth.json document, not {type(truth).__name__}")
    chain = truth.get("chain", truth)
    owner = chain.get("address_owner") or {}
    wallets = chain.get("wallets") or {}
    cluster_of = address_clusters(ws.con)
    known = [a for a in owner if a in cluster_of]
    wallet_ids = {w: i for i, w in enumerate(sorted(set(owner.values())))}
    pred = np.array([cluster_of[a] for a in known], dtype=np.int64)
    true = np.array([wallet_ids[owner[a]] for a in known], dtype=np.int64)
    by_kind: dict[str, ClusterScores] = {}
    for kind in sorted({str(w.get("kind")) for w in wallets.values()}):
        sel = np.array([str(wallets.get(owner[a], {}).get("kind")) == kind for a in known])
        if sel.any():
            by_kind[kind] = cluster_scores(pred[sel], true[sel])
    return {"addresses_in_truth": len(owner), "addresses_on_chain": len(known),
            "clustering": cluster_scores(pred, true), "clustering_by_wallet_kind": by_kind,
            "cashouts": _score_cashouts(ws, chain, owner, cluster_of, hops, method)}


def _score_cashouts(ws: Workspace, chain: dict[str, Any], owner: dict[str, str],
                    cluster_of: dict[str, int], hops: int, method: str) -> CashoutScores:
    cashouts = chain.get("cashouts") or []
    if not cashouts:
        return {"total": 0}
    ctx = TraceContext.load(ws)
    traces: dict[str, TraceResult] = {}
    exact = exchange = 0
    details: list[CashoutDetail] = []
    for co in cashouts:
        wallet = co.get("wallet")
        addrs = [a for a, w in owner.items() if w == wallet and a in cluster_of]
        if not addrs:
            details.append({"wallet": wallet, "traced": False, "why": "wallet not on chain"})
            continue
        ids, counts = np.unique([cluster_of[a] for a in addrs], return_counts=True)
        start = f"cluster:{int(ids[np.argmax(counts)])}"
        if start not in traces:
            try:
                traces[start] = trace(ws, start, "forward", hops, method, ctx)
            except KeyError:  # not clustered: the cluster id is the address id
                addr = next(a for a in addrs if cluster_of[a] == int(ids[np.argmax(counts)]))
                traces[start] = trace(ws, addr, "forward", hops, method, ctx)
        hits = traces[start]["hits"]
        want = _norm(co.get("exchange"))
        right = [h for h in hits if want and want in (_norm(h["service"]), _norm(h["actor"]))]
        hit_exact = any(h["address"] == co.get("deposit_address") for h in right)
        exact += hit_exact
        exchange += bool(right)
        details.append({"wallet": wallet, "exchange": co.get("exchange"), "start": start,
                        "deposit_hit": hit_exact, "exchange_hit": bool(right)})
    n = len(cashouts)
    deposits: dict[str, set[str]] = {}
    for d, co in zip(details, cashouts, strict=True):
        if "start" in d:
            deposits.setdefault(d["start"], set()).add(str(co.get("deposit_address")))
    scored = [(h["address"] in deposits[start], h["confidence_score"], h["confidence_level"])
              for start, res in traces.items() for h in res["cashouts"]]
    return {"total": n, "traced_to_deposit": exact, "traced_to_exchange": exchange,
            "share_traced": round(exact / n, 6), "share_right_exchange": round(exchange / n, 6),
            "hops": hops, "method": method, "details": details[:200],
            "confidence": confidence_scores(scored)}
