"""Follow value through the transaction graph to tagged services, with amounts.

Taint methods (how a transaction passes taint from inputs to outputs):

- ``poison``: any tainted input taints every output in full (upper bound, spreads fast);
- ``haircut``: each output carries the tainted share of the inputs, pro rata by value;
- ``fifo``: first-in-first-out: input value is laid end to end and poured into the
  outputs in order, so taint lands where its satoshis would (Anderson et al. 2013).

Forward tracing starts from every output paid to the source addresses by someone else
and stops at tagged services (exchange, market, mixer...: ``SERVICE_CATEGORIES``),
resolving tags at cluster level when clusters exist. Backward tracing asks where the
money the source received came from; no amount it gives exceeds what the source
received (under ``poison`` each input of a transaction counts at most the value traced
back into that transaction). Peel chains (one small payment plus one large change,
repeated) are recognised among the traced transactions. Exchange hits are listed as
cash-out points an investigator can send a legal request to (forward), or as funding
sources, where the money came from (backward).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import numpy as np

from darkmap.chain import confidence as conf
from darkmap.chain.cluster import no_cluster
from darkmap.chain.coinjoin import KINDS, detect_coinjoins
from darkmap.chain.graph import TxArrays, group_roots, load_arrays
from darkmap.chain.tags import SERVICE_CATEGORIES
from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.values import btc_address_key
from darkmap.store import chain as store
from darkmap.store.workspace import Workspace

__all__ = ["METHODS", "PEEL_MIN_LENGTH", "PeelChain", "PeelStep", "TraceContext", "TraceHit",
           "TraceResult", "TraceTag", "UncertainTx", "resolve_target", "trace"]

METHODS = ("poison", "haircut", "fifo")
PEEL_MIN_LENGTH = 3
PEEL_RATIO = 3.0  # the change is at least this many times the payment


class TraceTag(TypedDict):
    """The tag a trace sees on an address (``via_cluster``: it is on another address of
    the same cluster)."""

    label: str
    category: str | None
    actor: str | None
    origin: str
    tagged_address: str
    confidence: NotRequired[str | None]
    source: NotRequired[str | None]
    tagged_id: NotRequired[int]
    via_cluster: NotRequired[bool]


class TraceHit(TypedDict):
    """Traced value reaching a tagged address (``tag_via_cluster``: the tag is on another
    address of the same cluster).

    ``amount_sat`` is what the known values prove; where the trail passes a transaction
    that spends a coin of unknown value (its earlier output not loaded) and the method
    reads values (haircut, fifo), the true figure may be higher, up to
    ``amount_max_sat``: the hit is ``uncertain`` and ``uncertain_reasons`` say why.

    How sure the step is (:mod:`darkmap.chain.confidence`): ``confidence_level``
    (high, medium, low), ``confidence_score`` (0..100, an ordinal heuristic score, not
    a probability) and ``confidence_reasons``; the facts behind them: the tag's
    ``tag_confidence`` and ``tag_source``, ``value_share`` (the output's value the
    haircut rule traces to the source, whatever the method), ``coinjoins_on_path`` and
    ``path_txids`` (one path from the source: at each transaction the input that
    carried the most taint when the output was first reached).
    """

    service: str
    category: str | None
    actor: str | None
    address: str | None
    amount_sat: int              # what the known values prove: never more than the truth
    amount_btc: float
    amount_max_sat: int          # the most it can be (equal unless ``uncertain``)
    uncertain: bool
    uncertain_reasons: list[str]
    txid: str | None
    vout: int
    time: str | None
    hop: int
    tag_via_cluster: bool
    tagged_address: str
    tag_confidence: str | None
    tag_source: str | None
    value_share: float
    coinjoins_on_path: int
    path_txids: list[str | None]
    confidence_level: str
    confidence_score: int
    confidence_reasons: list[str]


class PeelStep(TypedDict):
    """One step of a peel chain: a small payment out, the large change on."""

    txid: str | None
    time: str | None
    payment_address: str | None
    payment_sat: int
    payment_to: str | None
    change_sat: int


class PeelChain(TypedDict):
    """A run of peel steps among the traced transactions."""

    length: int
    start_txid: str | None
    peeled_sat: int
    steps: list[PeelStep]


class UncertainTx(TypedDict):
    """A transaction of the trail whose split rests on inputs of unknown value."""

    txid: str | None
    hop: int
    inputs_of_unknown_value: list[int]
    unknown_at_least_sat: int  # together, as the inputs cover the outputs (fee >= 0)
    reason: str


class TraceResult(TypedDict):
    """What a trace found (``darkmap trace --json`` prints it)."""

    start: str
    addresses: int
    direction: str
    method: str
    hops: int
    transactions_visited: int
    stale_transactions_left_out: int  # of the start's, found only in stale blocks
    set_aside_transactions_left_out: int  # of the start's: a coin spent twice
    # the trail's transactions (and the start's set aside): set aside, kept in a conflict,
    # in blocks whose proof of work fails, in no loaded block
    standing: store.TxStanding
    source_received_sat: int
    started_from_spends: int  # spends of coins whose paying tx is not loaded (forward)
    started_from_spends_sat: int
    spends_not_started: int  # the same of unknown value: the trace cannot start there
    start_notes: list[str]
    hits: list[TraceHit]
    by_service_sat: dict[str, int]        # proven amounts
    by_service_max_sat: dict[str, int]    # the most they can be
    cashouts: list[TraceHit]              # forward: exchanges the value reached
    funding_sources: list[TraceHit]       # backward: exchanges the value came from
    peel_chains: list[PeelChain]
    uncertain_transactions: list[UncertainTx]


@dataclass
class TraceContext:
    """Arrays and lookups a trace needs, loaded once per workspace state."""

    arr: TxArrays
    spent_by: np.ndarray
    cluster: np.ndarray            # cluster id per address (own id when unclustered)
    tag_of: dict[int, TraceTag]    # address id -> its own best tag
    coinjoin: np.ndarray | None = None  # CoinJoin kind code per tx (coinjoin.KINDS)
    cluster_tag: dict[int, TraceTag] | None = None  # cluster id -> tag its members borrow
    out_tx: np.ndarray | None = None    # the transaction of each output (arr.out_tx, kept)
    mi_roots: dict[int, tuple[np.ndarray, np.ndarray]] | None = None  # multi_input_roots
    # loaded outputs spent by two or more transactions the store has not resolved (a
    # workspace loaded before the conflict check, not loaded or clustered since)
    unresolved_spends: int = 0

    def tag(self, address: int) -> TraceTag | None:
        """The best tag of ``address``: its own, else its cluster's (``via_cluster``)."""
        own = self.tag_of.get(address)
        if own is not None or not self.cluster_tag:
            return own
        return self.cluster_tag.get(int(self.cluster[address]))

    def multi_input_roots(self, ws: Workspace, clusters: set[int]
                          ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """(addresses in a multi-input merge, ascending; the smallest address of each one's
        multi-input group) of every cluster of ``clusters`` that has multi-input merges;
        read once per cluster and context."""
        if self.mi_roots is None:
            self.mi_roots = {}
        missing = sorted(c for c in clusters if c not in self.mi_roots)
        if missing:
            for c in missing:
                self.mi_roots[c] = _NO_GROUPS
            nodes, root = group_roots(*store.cluster_multi_input_edges(ws.con, missing))
            if len(nodes):
                of_cluster = self.cluster[nodes]
                order = np.argsort(of_cluster, kind="stable")
                cut = np.flatnonzero(np.diff(of_cluster[order])) + 1
                for part in np.split(order, cut):
                    self.mi_roots[int(of_cluster[part[0]])] = (nodes[part], root[part])
        return {c: self.mi_roots[c] for c in clusters if len(self.mi_roots[c][0])}

    def output_tx(self) -> np.ndarray:
        """The transaction of each output, computed once (``TxArrays.out_tx`` repeats a
        pass over the whole chain at every call)."""
        if self.out_tx is None:
            self.out_tx = self.arr.out_tx
        return self.out_tx

    @classmethod
    def load(cls, ws: Workspace, cluster_tags: bool = True) -> TraceContext:
        """Load arrays, clusters and tags from the workspace."""
        arr = load_arrays(ws.con)
        cluster = np.arange(arr.n_addr, dtype=np.int64)
        cl = store.cluster_labels(ws.con)
        if len(cl["address_id"]):
            cluster[cl["address_id"]] = cl["cluster_id"]
        direct: dict[int, TraceTag] = {}
        for aid, label, cat, actor, origin, addr, tconf, tsrc in store.trace_tags(ws.con):
            tag: TraceTag = {"label": label, "category": (cat or "").lower() or None,
                             "actor": actor, "origin": origin, "tagged_address": addr,
                             "confidence": tconf, "source": tsrc, "tagged_id": int(aid)}
            prior = direct.get(aid)
            if prior is None or (_is_service(tag) and not _is_service(prior)):
                direct[aid] = tag
        # each cluster's tag is looked up when a trace reaches one of its addresses
        # (TraceContext.tag), not copied onto every member: an exchange's cluster may
        # hold millions of addresses
        by_cluster: dict[int, TraceTag] = {}
        if cluster_tags and direct:
            for aid, tag in direct.items():
                c = int(cluster[aid])
                if c not in by_cluster or (_is_service(tag) and not _is_service(by_cluster[c])):
                    by_cluster[c] = tag
        spent = arr.in_prev[arr.in_prev >= 0]
        return cls(arr, arr.spent_by(), cluster, direct, _coinjoin_kinds(ws, arr),
                   {c: {**tag, "via_cluster": True} for c, tag in by_cluster.items()},
                   arr.out_tx, unresolved_spends=int(len(spent) - len(np.unique(spent))))


def _coinjoin_kinds(ws: Workspace, arr: TxArrays) -> np.ndarray:
    """The CoinJoin kind code (:data:`~darkmap.chain.coinjoin.KINDS`) of every transaction:
    those the clustering run flagged and stored, the same rules on the same chain (10
    million transactions take seconds to test again); detected now when the chain was
    never clustered."""
    stored = store.stored_coinjoins(ws.con)
    if stored is None:
        return detect_coinjoins(arr.n_tx, arr.in_ptr, arr.out_ptr, None, arr.out_value).kind
    kind = np.zeros(arr.n_tx, dtype=np.int8)
    tx_ids, kinds = stored
    if tx_ids:
        kind[np.asarray(tx_ids, dtype=np.int64)] = [KINDS.index(k) for k in kinds]
    return kind


def _is_service(tag: TraceTag | None) -> bool:
    return tag is not None and (tag["category"] or "") in SERVICE_CATEGORIES


def resolve_target(ws: Workspace, target: str) -> tuple[str, list[int]]:
    """(description, address ids) of ``target``: an address, ``cluster:N`` or a cluster id."""
    t = target.strip()
    if t.lower().startswith("cluster:") or t.isdigit():
        num = t.split(":", 1)[-1].strip()
        if not (num.isascii() and num.isdigit() and len(num) <= 18):
            raise BadInputError(f"{target!r}: a cluster is named cluster:N (N a number of "
                                "up to 18 digits 0-9)")
        cid = int(num)
        ids = store.cluster_address_ids(ws.con, cid)
        if not ids:
            raise no_cluster(ws, cid)
        return f"cluster {cid}", ids
    addr = btc_address_key(t)
    found = store.address_id(ws.con, addr)
    if found is None:
        raise NotFoundError(f"address {t} does not appear in the loaded chain data")
    return f"address {addr}", [found]


def _split(method: str, in_vals: np.ndarray, in_taint: np.ndarray,
           out_vals: np.ndarray, bound: str = "high", reverse: bool = False) -> np.ndarray:
    """Taint of each output of one tx given its inputs' values and taint.

    A value of -1 is unknown (an input whose spent output is not loaded; on the output
    side when ``reverse``: a backward trace pours outputs into inputs). With every value
    known the figure is exact. Otherwise haircut and fifo depend on the unknown value:
    ``bound="low"`` gives what the known values prove (never more than the truth: the
    unknown input may hold any amount the fee allows, so the traced coins may come last in
    the line, or be a vanishing share), ``"high"`` the most it can be (the inputs hold at
    least the outputs). Poison does not read input values; backward (``reverse``) it
    counts each input at most the taint traced back into the transaction: an input cannot
    have given the source more than the source received through it (found by the money
    audit, M2: 119 BTC "from" an exchange into an address that received 0.013 BTC), and
    all its inputs together at most that taint, split pro rata to their values (review
    H2: k inputs each capped alone passed k times the taint back, hop after hop).
    """
    if method == "poison":
        if in_taint.sum() <= 0:
            return np.zeros(len(out_vals), dtype=np.float64)
        full: np.ndarray = np.clip(out_vals, 0, None).astype(np.float64)
        if reverse:
            cap, got = float(in_taint.sum()), float(full.sum())
            if got > cap:
                full = full * (cap / got)
        return full
    if (in_vals < 0).any() or (out_vals < 0).any():
        if method == "fifo":
            lo, hi = _fifo_bounds(in_vals, in_taint, out_vals, reverse)
            return lo if bound == "low" else hi
        if bound == "low":
            return np.zeros(len(out_vals), dtype=np.float64)
        out_vals = np.clip(out_vals, 0, None)
    known_in = float(np.where(in_vals >= 0, in_vals, 0).sum())
    total = max(known_in, float(out_vals.sum()), float(in_taint.sum()), 1.0)
    if method == "haircut":
        return out_vals * (float(in_taint.sum()) / total)
    # fifo: tainted intervals of the input line, poured into outputs in order
    vals = np.where(in_vals >= 0, in_vals, in_taint).astype(np.float64)
    starts = np.concatenate(([0.0], np.cumsum(vals)[:-1]))
    ostarts = np.concatenate(([0.0], np.cumsum(out_vals)[:-1])).astype(np.float64)
    oends = ostarts + out_vals
    out = np.zeros(len(out_vals), dtype=np.float64)
    for s, v, tnt in zip(starts, vals, in_taint, strict=True):
        if tnt <= 0:
            continue
        lo, hi = s, s + min(tnt, v)  # the tainted part of an input is taken as its front
        out += np.clip(np.minimum(oends, hi) - np.maximum(ostarts, lo), 0, None)
    return out


def _depends(method: str, in_vals: np.ndarray, in_taint: np.ndarray, out_vals: np.ndarray,
             reverse: bool = False, followed: np.ndarray | None = None) -> bool:
    """Whether the split of a transaction depends on values that are unknown, for the
    outputs ``followed`` (all when None; a backward walk follows only inputs whose spent
    output is loaded)."""
    if method == "poison" or not ((in_vals < 0).any() or (out_vals < 0).any()):
        return False
    out_f = out_vals.astype(np.float64)
    low = _split(method, in_vals, in_taint, out_f, "low", reverse)
    high = _split(method, in_vals, in_taint, out_f, "high", reverse)
    if followed is not None:
        low, high = low[followed], high[followed]
    return not np.allclose(low, high, rtol=0, atol=0.5)


_INF = float("inf")


def _shifts(vals: np.ndarray, floor: np.ndarray, other_total: float,
            is_inputs: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(known start, least and most unknown shift) of each segment of one FIFO line whose
    values may be unknown (-1): a segment after an unknown one starts somewhere past its
    known start. ``floor``: the least each unknown segment holds (its taint). On the
    transaction's inputs line the unknown values together hold at least what the outputs
    need beyond the known inputs (fee >= 0); nothing bounds them above."""
    unknown = vals < 0
    known = np.where(unknown, 0.0, vals).astype(np.float64)
    start = np.concatenate(([0.0], np.cumsum(known)[:-1]))
    n_before = np.concatenate(([0], np.cumsum(unknown)[:-1]))
    least = np.concatenate(([0.0], np.cumsum(np.where(unknown, floor, 0.0))[:-1]))
    if is_inputs and unknown.any():
        need = max(0.0, other_total - float(known.sum()))
        after_all = n_before == int(unknown.sum())  # every unknown segment is before it
        least = np.where(after_all, np.maximum(least, need), least)
    most = np.where(n_before > 0, _INF, 0.0)
    least = np.where(n_before > 0, least, 0.0)
    return start, least, most


def _overlap(a: float, t: float, b: float, n: float, d: float) -> float:
    """Overlap of [a + d, a + d + t] with [b, b + n] (0 when d is infinite)."""
    if d in (_INF, -_INF):
        return 0.0
    return max(0.0, min(a + d + t, b + n) - max(a + d, b))


def _fifo_bounds(in_vals: np.ndarray, in_taint: np.ndarray, out_vals: np.ndarray,
                 reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """(least, most) FIFO taint of each output when some values are unknown (-1).

    Each tainted segment of the input line may lie anywhere its unknown predecessors put
    it: its shift against an output segment ranges over an interval (unbounded above, as
    the fee is). The overlap is unimodal in the shift, so its least is at an end of the
    interval (0 at infinity) and its most is its plateau when the interval reaches it, else
    the value at the nearest end. Summing per pair is sound (never below the least, never
    above the most); each output is also capped by its value and the taint.
    """
    a_in, b_out = (not reverse), reverse  # which line holds the transaction's inputs
    known_out = float(np.where(out_vals >= 0, out_vals, 0).sum())
    known_in = float(np.where(in_vals >= 0, in_vals, 0).sum())
    a0, alo, ahi = _shifts(in_vals, in_taint, known_out if a_in else 0.0, a_in)
    b0, blo, bhi = _shifts(out_vals, np.zeros(len(out_vals)), known_in if b_out else 0.0,
                           b_out)
    lo = np.zeros(len(out_vals), dtype=np.float64)
    hi = np.zeros(len(out_vals), dtype=np.float64)
    for k, tnt in enumerate(in_taint):
        if tnt <= 0:
            continue
        t = float(min(tnt, in_vals[k])) if in_vals[k] >= 0 else float(tnt)
        for j, n in enumerate(out_vals):
            if n < 0:  # a segment of unknown length may take all of it, or none
                hi[j] += t
                continue
            a, b, n = float(a0[k]), float(b0[j]), float(n)
            dlo, dhi = float(alo[k] - bhi[j]), float(ahi[k] - blo[j])
            if dlo == -_INF and dhi == _INF:
                lo_kj = 0.0
            else:
                lo_kj = min(_overlap(a, t, b, n, dlo), _overlap(a, t, b, n, dhi))
            p0, p1 = min(b, b + n - t) - a, max(b, b + n - t) - a  # the plateau
            if dhi < p0:
                hi_kj = _overlap(a, t, b, n, dhi)
            elif dlo > p1:
                hi_kj = _overlap(a, t, b, n, dlo)
            else:
                hi_kj = min(t, n)
            lo[j] += lo_kj
            hi[j] += hi_kj
    total = float(np.clip(in_taint, 0, None).sum())
    cap = np.where(out_vals >= 0, out_vals, total).astype(np.float64)
    return np.minimum(lo, cap), np.minimum(np.minimum(hi, cap), total)


def trace(ws: Workspace, target: str, direction: str = "forward", hops: int = 10,
          method: str = "poison", ctx: TraceContext | None = None,
          stop_at_services: bool = True) -> TraceResult:
    """Trace value from (forward) or to (backward) ``target``; see the module docstring."""
    if method not in METHODS:
        raise BadInputError(f"unknown method {method!r}; have {', '.join(METHODS)}")
    if direction not in ("forward", "backward"):
        raise BadInputError("direction must be forward or backward")
    ctx = ctx or TraceContext.load(ws)
    label, ids = resolve_target(ws, target)
    source = np.zeros(ctx.arr.n_addr, dtype=bool)
    source[ids] = True
    walk = _forward if direction == "forward" else _backward
    spends, not_started = (_spend_seeds(ctx, source) if direction == "forward"
                           else ({}, []))
    seeds = _seeds(ctx, source, bool(spends))
    # the walk with the most each output can carry; where a split rests on an input value
    # that is not loaded (haircut, fifo), a second walk gives what the known values prove
    uncertain: dict[int, list[int]] = {}
    hits, visited, taint_out, parent = walk(ctx, source, hops, method, stop_at_services,
                                            seeds, "high", uncertain, spends)
    proven = {o: h["amount"] for o, h in hits.items()}
    if uncertain and hits:
        low = walk(ctx, source, hops, method, stop_at_services, seeds, "low", None,
                   spends)[0]
        proven = {o: (low[o]["amount"] if o in low else 0.0) for o in hits}
    # the haircut share of every output reached (poison and haircut reach the same ones;
    # fifo fewer): what the confidence reads, whatever the method; only the hits' shares
    # are read, so without hits there is no second walk
    haircut = taint_out if method == "haircut" or not hits else walk(
        ctx, source, hops, "haircut", stop_at_services, seeds, "high", None, spends)[2]
    return _report(ws, ctx, label, ids, source, direction, hops, method, hits, visited,
                   _Trail(parent, haircut, seeds, proven, uncertain, spends, not_started))


@dataclass
class _Trail:
    """What a walk leaves for the confidence: each reached output's parent (the output
    whose taint first reached it; -1 for a seed) and its haircut taint."""

    parent: dict[int, int]
    haircut: dict[int, float]
    seeds: dict[int, float]
    proven: dict[int, float]             # each hit's amount the known values prove
    uncertain: dict[int, list[int]]      # tx -> its inputs of unknown value (on the trail)
    spends: dict[int, float]             # spend seeds: input idx -> value
    not_started: list[int]               # the source's spends of unknown value


def _spend_seeds(ctx: TraceContext, source: np.ndarray) -> tuple[dict[int, float], list[int]]:
    """The source's spends of coins whose paying transaction is not loaded: (input index
    -> value, for those whose value is known from a UTXO file or JSON prevouts; the inputs
    whose value is unknown, which a trace cannot start from)."""
    arr = ctx.arr
    ia = arr.in_addr
    mine = np.nonzero((ia >= 0) & source[np.where(ia >= 0, ia, 0)] & (arr.in_prev < 0))[0]
    if len(mine):
        mine = mine[~arr.tx_coinbase[np.searchsorted(arr.in_ptr, mine, side="right") - 1]]
    known = mine[arr.in_value[mine] >= 0]
    return ({int(i): float(arr.in_value[i]) for i in known},
            mine[arr.in_value[mine] < 0].tolist())


def _seeds(ctx: TraceContext, source: np.ndarray,
           has_spends: bool = False) -> dict[int, float]:
    """Outputs paid to the source by transactions the source did not fund (when there are
    none and no spend seeds either, every output paid to the source)."""
    arr = ctx.arr
    out_tx = ctx.output_tx()
    mine = np.nonzero((arr.out_addr >= 0) & source[np.where(arr.out_addr >= 0, arr.out_addr, 0)])[0]
    in_src = np.zeros(arr.n_tx, dtype=bool)
    ia = arr.in_addr
    spent = np.nonzero((ia >= 0) & source[np.where(ia >= 0, ia, 0)])[0]
    in_src[np.searchsorted(arr.in_ptr, spent, side="right") - 1] = True
    seeds = mine[~in_src[out_tx[mine]]]
    if len(seeds) == 0 and not has_spends:  # only self-funded outputs (a coinbase miner)
        seeds = mine
    return {int(o): float(arr.out_value[o]) for o in seeds}


_Walk = tuple[dict[int, dict[str, Any]], dict[int, int], dict[int, float], dict[int, int]]
"""(hits by output, hop of each visited tx, taint per output, parent per output)."""


def _forward(ctx: TraceContext, source: np.ndarray, hops: int, method: str,
             stop: bool, seeds: dict[int, float] | None = None, bound: str = "high",
             uncertain: dict[int, list[int]] | None = None,
             spends: dict[int, float] | None = None) -> _Walk:
    """The forward walk; ``bound``: see :func:`_split`. ``uncertain`` (when given) is
    filled with the transactions whose split depends on unknown input values (their
    input positions). ``spends``: inputs tainted from the start (the source's spends of
    coins whose paying transaction is not loaded); an output whose taint first came from
    one has parent -2."""
    arr = ctx.arr
    taint_out: dict[int, float] = {}
    in_taint: dict[int, float] = {}      # global input idx -> taint
    hits: dict[int, dict[str, Any]] = {}  # output idx -> hit
    visited: dict[int, int] = {}          # tx -> hop at first visit
    parent: dict[int, int] = {}           # output idx -> output its taint first came from
    frontier = dict(_seeds(ctx, source) if seeds is None else seeds)
    for o, v in frontier.items():
        taint_out[o] = v
        parent[o] = -1
    spent_by, in_ptr, out_ptr = ctx.spent_by, arr.in_ptr, arr.out_ptr
    in_value, out_value, in_prev = arr.in_value, arr.out_value, arr.in_prev
    for level in range(1, hops + 1):
        touched: dict[int, None] = {}
        for i, v in (spends or {}).items() if level == 1 else ():
            in_taint[i] = in_taint.get(i, 0.0) + v
            touched[int(in_ptr.searchsorted(i, side="right")) - 1] = None
        for o, delta in frontier.items():
            i = int(spent_by[o])
            if i < 0 or delta <= 0:
                continue
            in_taint[i] = in_taint.get(i, 0.0) + delta
            touched[int(in_ptr.searchsorted(i, side="right")) - 1] = None
        nxt: dict[int, float] = defaultdict(float)
        for t in touched:
            visited.setdefault(t, level)
            i0, i1 = int(in_ptr[t]), int(in_ptr[t + 1])
            o0, o1 = int(out_ptr[t]), int(out_ptr[t + 1])
            tin = np.array([in_taint.get(i, 0.0) for i in range(i0, i1)])
            ivals = in_value[i0:i1]
            new = _split(method, ivals, tin, out_value[o0:o1].astype(np.float64),
                         bound).tolist()
            if uncertain is not None and _depends(method, ivals, tin, out_value[o0:o1]):
                uncertain[t] = np.flatnonzero(ivals < 0).tolist()
            came = int(in_prev[i0 + int(tin.argmax())])
            if came < 0:  # the most taint came from a spend seed
                came = -2
            for k, o in enumerate(range(o0, o1)):
                d = new[k] - taint_out.get(o, 0.0)
                if d <= 1e-9:
                    continue
                taint_out[o] = new[k]
                parent.setdefault(o, came)
                if _hit(ctx, source, hits, o, t, level, d) and stop:
                    continue
                nxt[o] += d
        frontier = nxt
        if not frontier:
            break
    return hits, visited, taint_out, parent


def _backward(ctx: TraceContext, source: np.ndarray, hops: int, method: str,
               stop: bool, seeds: dict[int, float] | None = None, bound: str = "high",
               uncertain: dict[int, list[int]] | None = None,
               spends: dict[int, float] | None = None) -> _Walk:
    """The backward walk; ``bound`` and ``uncertain`` as in :func:`_forward` (``spends``
    is not used: a coin whose paying transaction is not loaded has nowhere back to go)."""
    arr = ctx.arr
    out_tx = ctx.output_tx()
    explained: dict[int, float] = {}      # output idx -> amount traced back through it
    hits: dict[int, dict[str, Any]] = {}
    visited: dict[int, int] = {}
    frontier = dict(_seeds(ctx, source) if seeds is None else seeds)
    parent: dict[int, int] = dict.fromkeys(frontier, -1)
    for level in range(1, hops + 1):
        nxt: dict[int, float] = defaultdict(float)
        by_tx: dict[int, np.ndarray] = {}
        for o, amount in frontier.items():
            t = int(out_tx[o])
            o0, o1 = int(arr.out_ptr[t]), int(arr.out_ptr[t + 1])
            by_tx.setdefault(t, np.zeros(o1 - o0))[o - o0] += amount
        for t, want in by_tx.items():
            visited.setdefault(t, level)
            if arr.tx_coinbase[t]:
                continue
            i0, i1 = int(arr.in_ptr[t]), int(arr.in_ptr[t + 1])
            vals = arr.in_value[i0:i1].astype(np.float64)
            # reverse flow: outputs play the inputs' part, inputs the outputs'
            got = _split(method, arr.out_value[int(arr.out_ptr[t]):int(arr.out_ptr[t + 1])],
                         want, vals, bound, reverse=True)
            if uncertain is not None and _depends(
                    method, arr.out_value[int(arr.out_ptr[t]):int(arr.out_ptr[t + 1])], want,
                    vals, True, arr.in_prev[i0:i1] >= 0):
                uncertain[t] = np.flatnonzero(vals < 0).tolist()
            came = int(arr.out_ptr[t]) + int(np.argmax(want))
            for k, i in enumerate(range(i0, i1)):
                prev = int(arr.in_prev[i])
                if prev < 0 or got[k] <= 1e-9:
                    continue
                d = float(got[k]) - explained.get(prev, 0.0)
                if d <= 1e-9:
                    continue
                explained[prev] = float(got[k])
                parent.setdefault(prev, came)
                if _hit(ctx, source, hits, prev, int(out_tx[prev]), level, d) and stop:
                    continue
                nxt[prev] += d
        frontier = nxt
        if not frontier:
            break
    return hits, visited, explained, parent


def _hit(ctx: TraceContext, source: np.ndarray, hits: dict[int, dict[str, Any]], out: int,
         tx: int, level: int, amount: float) -> bool:
    """Record ``amount`` reaching output ``out`` if its address is tagged (and not a
    source address); True when that tag is a service, where a trace may stop."""
    a = int(ctx.arr.out_addr[out])
    if a < 0:
        return False
    tag = ctx.tag_of.get(a)
    if tag is None and ctx.cluster_tag:
        tag = ctx.cluster_tag.get(int(ctx.cluster[a]))
    if not tag or source[a]:
        return False
    h = hits.setdefault(out, {"tag": tag, "amount": 0.0, "hop": level, "tx": tx})
    h["amount"] += amount
    return _is_service(tag)


def _peel_chains(ctx: TraceContext, visited: dict[int, int]) -> list[list[int]]:
    """Maximal runs of peel steps (2 outputs, change >= PEEL_RATIO x payment) among visited."""
    arr = ctx.arr

    def step(t: int) -> int | None:
        o0, o1 = int(arr.out_ptr[t]), int(arr.out_ptr[t + 1])
        if o1 - o0 != 2 or arr.tx_coinbase[t]:
            return None
        v = arr.out_value[o0:o1]
        big = int(np.argmax(v))
        if v[big] < PEEL_RATIO * v[1 - big]:
            return None
        return o0 + big

    nxt: dict[int, int] = {}
    for t in visited:
        big = step(t)
        if big is None:
            continue
        i = int(ctx.spent_by[big])
        if i < 0:
            continue
        t2 = int(np.searchsorted(arr.in_ptr, i, side="right") - 1)
        if t2 in visited and step(t2) is not None:
            nxt[t] = t2
    heads = set(nxt) - set(nxt.values())
    chains = []
    for h in sorted(heads):
        chain = [h]
        while chain[-1] in nxt and len(chain) < 100_000:
            chain.append(nxt[chain[-1]])
        if len(chain) >= PEEL_MIN_LENGTH:
            chains.append(chain)
    return chains


def _path(ctx: TraceContext, parent: dict[int, int], out: int, direction: str) -> list[int]:
    """The transactions from the source to output ``out`` along the recorded parents: one
    path of the trail (the input carrying the most taint at each step)."""
    nodes = [out]
    while parent.get(nodes[-1], -1) >= 0 and len(nodes) < 100_000:
        nodes.append(parent[nodes[-1]])
    out_tx = ctx.output_tx()
    if direction == "forward":  # from a seed output, leave out the tx that paid it
        nodes = nodes if parent.get(nodes[-1], -1) == -2 else nodes[:-1]
    else:
        nodes = nodes[1:]
    txs = [int(out_tx[x]) for x in nodes]
    return list(reversed(txs))


class _Groups(TypedDict):
    """Multi-input groups of the clusters a trace's confidence asks about."""

    of: dict[int, int]           # address id -> its multi-input group (absent: its own)
    source: conf.Factor | None   # the source cluster's factor (None: no change merges)


def _groups(ws: Workspace, ctx: TraceContext, ids: list[int], label: str,
            hits: dict[int, dict[str, Any]]) -> _Groups:
    """The multi-input groups of the source cluster (a ``cluster:N`` source) and of the
    clusters whose tag a hit borrows from another address.

    Only the ``multi_input`` merges are read (as numpy columns, their groups by scipy,
    kept in the context for the next trace); the source's change merges are counted by
    the database: an exchange's cluster may hold millions of merges.
    """
    via = [(int(ctx.arr.out_addr[o]), int(h["tag"].get("tagged_id", -1)))
           for o, h in hits.items() if h["tag"].get("via_cluster")]
    want = {int(ctx.cluster[a]) for a, _ in via}
    source = {int(ctx.cluster[i]) for i in ids} if label.startswith("cluster") else set()
    roots = ctx.multi_input_roots(ws, want | source)
    of: dict[int, int] = {}
    for addr in {x for pair in via for x in pair if x >= 0}:
        nodes, root = roots.get(int(ctx.cluster[addr]), _NO_GROUPS)
        k = int(np.searchsorted(nodes, addr))
        if k < len(nodes) and nodes[k] == addr:
            of[addr] = int(root[k])
    factor: conf.Factor | None = None
    by_heur, merged = store.cluster_merge_counts(ws.con, source)
    if any(h != "multi_input" for h in by_heur):
        sizes = np.concatenate([np.unique(roots[c][1], return_counts=True)[1]
                                for c in source if c in roots] or [np.zeros(0, np.int64)])
        ev = conf.evidence_from_counts(len(ids), by_heur, merged, sizes.tolist(), (), {})
        factor = {"factor": conf.SOURCE_FACTOR[ev["level"]],
                  "reason": f"the source {label} was joined by {ev['change_merges']} change-"
                            f"heuristic merges ({ev['level']}): its {ev['multi_input_groups']} "
                            "multi-input groups may be different owners"}
    return {"of": of, "source": factor}


_NO_GROUPS = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def _factors(tag: TraceTag, addr: int, share: float, hop: int, coinjoins: list[str],
             groups: _Groups) -> list[conf.Factor]:
    """The factors of one hit's confidence (see :mod:`darkmap.chain.confidence`)."""
    out = [conf.tag_factor(tag["label"], tag.get("confidence"), tag["origin"],
                           tag.get("source"))]
    if not tag.get("via_cluster"):
        out.append({"factor": 1.0, "reason": "tag on this address"})
    else:
        tagged = int(tag.get("tagged_id", -1))
        of = groups["of"]
        if of.get(addr, addr) == of.get(tagged, tagged):
            out.append({"factor": conf.VIA_MULTI_INPUT,
                        "reason": f"tag on {tag['tagged_address']} of the same cluster, "
                                  "linked by multi-input merges"})
        else:
            out.append({"factor": conf.VIA_CHANGE,
                        "reason": f"tag on {tag['tagged_address']} of the same cluster, "
                                  "linked only through change-heuristic merges (weaker)"})
    out.append(conf.share_factor(share))
    out.append(conf.hops_factor(hop))
    if coinjoins:
        out.append({"factor": round(conf.PER_COINJOIN ** len(coinjoins), 4),
                    "reason": f"{len(coinjoins)} CoinJoin{'s' if len(coinjoins) > 1 else ''} "
                              f"on the path ({', '.join(coinjoins)}): whose output was "
                              "followed cannot be told"})
    if groups["source"] is not None:
        out.append(groups["source"])
    return out


def _iso(ts: int | None) -> str | None:
    if ts is None or ts < 0:
        return None
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _report(ws: Workspace, ctx: TraceContext, label: str, ids: list[int], source: np.ndarray,
            direction: str,
            hops: int, method: str, hits: dict[int, dict[str, Any]], visited: dict[int, int],
            trail: _Trail) -> TraceResult:
    arr = ctx.arr
    chains = _peel_chains(ctx, visited) if direction == "forward" else []
    paths = {o: _path(ctx, trail.parent, o, direction) for o in hits}
    need_tx = ({h["tx"] for h in hits.values()} | {t for c in chains for t in c}
               | {t for p in paths.values() for t in p})
    need_addr = {int(arr.out_addr[o]) for o in hits} | {
        int(arr.out_addr[o]) for c in chains for t in c
        for o in range(int(arr.out_ptr[t]), int(arr.out_ptr[t + 1])) if arr.out_addr[o] >= 0}
    need_tx |= set(trail.uncertain)
    txids = store.txids_by_id(ws.con, need_tx)
    unc_rows = {t: _uncertain_row(ctx, t, pos, txids.get(t), visited.get(t, 0), method,
                                  direction)
                for t, pos in sorted(trail.uncertain.items(),
                                     key=lambda kv: (visited.get(kv[0], 0), kv[0]))}
    addrs = store.addresses_by_id(ws.con, need_addr)
    groups = _groups(ws, ctx, ids, label, hits)
    received = int(sum(trail.seeds.values()))
    hit_rows: list[TraceHit] = []
    for o, h in sorted(hits.items(), key=lambda kv: (kv[1]["hop"], kv[0])):
        t = h["tx"]
        tag = h["tag"]
        path = paths[o]
        cj = [f"{KINDS[int(ctx.coinjoin[x])]} {txids.get(x)}" for x in path
              if ctx.coinjoin is not None and ctx.coinjoin[x] > 0]
        share = min(1.0, trail.haircut.get(o, 0.0) / max(float(arr.out_value[o]), 1.0))
        factors = _factors(tag, int(arr.out_addr[o]), share, h["hop"], cj, groups)
        points, level, reasons = conf.score(factors)
        low = int(round(trail.proven.get(o, h["amount"])))
        most = int(round(h["amount"]))
        if direction == "backward":  # no source gave it more than it received (review H2)
            low, most = min(low, received), min(most, received)
        unsure = [unc_rows[x]["reason"] for x in path if x in unc_rows]
        if low != most and not unsure:
            unsure = [("the trail reaching it passes transactions that spend coins of "
                       "unknown value (uncertain_transactions)")]
        hit_rows.append({
            "service": tag["label"], "category": tag["category"], "actor": tag.get("actor"),
            "address": addrs.get(int(arr.out_addr[o])), "amount_sat": low,
            "amount_btc": round(low / 1e8, 8), "amount_max_sat": most,
            "uncertain": low != most, "uncertain_reasons": unsure if low != most else [],
            "txid": txids.get(t),
            "vout": int(o - arr.out_ptr[t]), "time": _iso(int(arr.tx_time[t])), "hop": h["hop"],
            "tag_via_cluster": bool(tag.get("via_cluster")),
            "tagged_address": tag["tagged_address"],
            "tag_confidence": tag.get("confidence"), "tag_source": tag.get("source"),
            "value_share": round(share, 6), "coinjoins_on_path": len(cj),
            "path_txids": [txids.get(x) for x in path],
            "confidence_level": level, "confidence_score": points,
            "confidence_reasons": reasons,
        })
    exchanges = [row for row in hit_rows if row["category"] == "exchange"]
    by_service: dict[str, int] = defaultdict(int)
    by_service_max: dict[str, int] = defaultdict(int)
    for row in hit_rows:
        by_service[row["service"]] += row["amount_sat"]
        by_service_max[row["service"]] += row["amount_max_sat"]
    aside = store.set_aside_txs_of(ws.con, ids)
    if direction == "backward":  # per-hit upper bounds may add up past what it received
        for k in by_service:
            by_service[k] = min(by_service[k], received)
            by_service_max[k] = min(by_service_max[k], received)
    peel: list[PeelChain] = []
    for c in chains:
        steps: list[PeelStep] = []
        for t in c:
            o0, o1 = int(arr.out_ptr[t]), int(arr.out_ptr[t + 1])
            v = arr.out_value[o0:o1]
            small = o0 + int(np.argmin(v))
            a = int(arr.out_addr[small])
            tag = ctx.tag(a) if a >= 0 else None
            steps.append({"txid": txids.get(t), "time": _iso(int(arr.tx_time[t])),
                          "payment_address": addrs.get(a), "payment_sat": int(arr.out_value[small]),
                          "payment_to": tag["label"] if tag else None,
                          "change_sat": int(v.max())})
        peel.append({"length": len(c), "start_txid": steps[0]["txid"],
                     "peeled_sat": sum(s["payment_sat"] for s in steps), "steps": steps})
    return {
        "start": label, "addresses": len(ids), "direction": direction, "method": method,
        "hops": hops, "transactions_visited": len(visited),
        "stale_transactions_left_out": store.stale_txs_of(ws.con, ids),
        "set_aside_transactions_left_out": len(aside),
        "standing": store.tx_standing(ws.con, set(visited) | set(aside)),
        "source_received_sat": received,
        "started_from_spends": len(trail.spends),
        "started_from_spends_sat": int(sum(trail.spends.values())),
        "spends_not_started": len(trail.not_started),
        "start_notes": _start_notes(trail, label, ctx.unresolved_spends),
        "hits": hit_rows,
        "by_service_sat": dict(sorted(by_service.items(), key=lambda kv: -kv[1])),
        "by_service_max_sat": {k: by_service_max[k] for k in sorted(
            by_service_max, key=lambda k: (-by_service[k], -by_service_max[k]))},
        "cashouts": exchanges if direction == "forward" else [],
        "funding_sources": exchanges if direction == "backward" else [],
        "peel_chains": peel,
        "uncertain_transactions": list(unc_rows.values()),
    }


def _start_notes(trail: _Trail, label: str, unresolved: int = 0) -> list[str]:
    """What a forward trace started from beyond the outputs paid to the source, what it
    could not start from, and (``unresolved``) coins spent twice the store has not
    resolved."""
    notes = []
    if unresolved:
        notes.append(f"{unresolved} loaded output(s) are spent by two or more transactions "
                     "that this workspace has not resolved (loaded before the double-spend "
                     "check): the last loaded spender is followed; run `darkmap chain "
                     "cluster` to set the losers aside")
    if trail.spends:
        notes.append(f"started also from {len(trail.spends)} spend(s) by {label} of coins "
                     "whose paying transaction is not loaded (values from a UTXO file or "
                     f"JSON prevouts): {int(sum(trail.spends.values())):,} sat")
    if trail.not_started:
        notes.append(f"could not start from {len(trail.not_started)} spend(s) by {label} of "
                     "coins whose earlier output is not loaded and whose value is unknown "
                     "(load the blocks or UTXO set holding them)")
    return notes


def _uncertain_row(ctx: TraceContext, t: int, positions: list[int], txid: str | None,
                   hop: int, method: str, direction: str) -> UncertainTx:
    """Why transaction ``t`` of the trail leaves the amounts past it uncertain."""
    arr = ctx.arr
    vals = arr.in_value[int(arr.in_ptr[t]):int(arr.in_ptr[t + 1])]
    outs = int(arr.out_value[int(arr.out_ptr[t]):int(arr.out_ptr[t + 1])].sum())
    need = max(0, outs - int(vals[vals >= 0].sum()))
    which = ", ".join(str(p) for p in positions)
    what = ("where the traced coins fall in the line of inputs" if method == "fifo"
            else "the traced share of the inputs")
    if direction == "backward":
        what = ("which inputs the traced coins came from" if method == "fifo"
                else "each input's share")
    return {"txid": txid, "hop": hop, "inputs_of_unknown_value": positions,
            "unknown_at_least_sat": need,
            "reason": f"{method} at {txid}: input{'s' if len(positions) > 1 else ''} {which} "
                      f"spend{'' if len(positions) > 1 else 's'} an output not loaded (value "
                      f"unknown, together at least {need:,} sat as the inputs cover the "
                      f"outputs' {outs:,} sat); {what} depends on it: amounts past it are the "
                      "least they can be (amount_sat), with the most (amount_max_sat)"}
