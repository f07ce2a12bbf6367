"""`darkmap link`: score candidate account pairs, cluster them into personas, store why.

Pipeline: profiles -> candidate blocks -> pairwise signals -> match model -> completion
(every pair inside a small group of probable matches is scored too, so clustering sees
the whole picture) -> constrained average-linkage clustering -> store personas, members
and every link with its signals and their contributions. Analyst judgements are
constraints throughout.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypedDict

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from darkmap.errors import BadInputError
from darkmap.resolve.adapt import fit_to_judgements
from darkmap.resolve.candidates import candidate_pairs
from darkmap.resolve.changes import RunChanges, compare_runs, first_run
from darkmap.resolve.features import (
    CLAIMED,
    IDENTIFIER_SIGNALS,
    SIGNALS,
    PairFeatures,
    claimed_pairs,
    compare,
)
from darkmap.resolve.judgements import active_judgements
from darkmap.resolve.match_model import (
    FREQUENCY_ADJUSTED,
    LinearModel,
    fit_em,
    load_model,
    tied_identifier,
    voice_against_name,
)
from darkmap.resolve.normalise import handle_skeleton, mixed_script
from darkmap.resolve.options import DEFAULT_THRESHOLD, METHODS, LinkOptions
from darkmap.resolve.partition import (
    MISSING,
    correlation_clustering,
    floored_probabilities,
    twin_sibling_pairs,
)
from darkmap.resolve.profiles import Profiles, Roster, load_profiles
from darkmap.resolve.review import JudgedPair, judged_sample
from darkmap.store.personas import (
    LinkTables,
    finish_link_run,
    judgements_since,
    previous_run,
    store_link_run,
)
from darkmap.store.workspace import Workspace, utcnow
from darkmap.store.writer import row_id

__all__ = ["AGAINST", "DEFAULT_THRESHOLD", "METHODS", "STAGES", "LinkOptions", "LinkResult",
           "LinkSummary", "Progress", "clustering_inputs", "evidence_against", "link",
           "pair_evidence",
           "resolve_signals", "score_pairs"]

# a pair whose own evidence puts a match at least e^2 (7x) less likely than no evidence
# at all is never joined through a chain of other accounts (docs/linking.md, "Chains")
AGAINST = -2.0


class LinkSummary(TypedDict):
    """What a link run did (stored in ``link_runs.summary``; ``darkmap link --json``)."""

    run_id: str
    personas: int
    multi_account_personas: int
    cross_market_personas: int
    links_stored: int
    model: str
    accounts: int
    candidate_pairs: int
    completion_pairs: int
    signals: list[str]
    method: str
    threshold: float
    judgement_conflicts: list[list[str]]
    judged_fit: dict[str, Any]
    changes: RunChanges
    timings: dict[str, float]
    seconds: float


class _Stored(TypedDict):
    """What :func:`_store` wrote."""

    run_id: str
    personas: int
    multi_account_personas: int
    cross_market_personas: int
    links_stored: int
    model: str
    changes: RunChanges


@dataclass
class LinkResult:
    """What a link run did, plus in-memory results for evaluation."""

    run_id: str
    summary: LinkSummary
    ids: list[str] = field(default_factory=list)
    labels: np.ndarray | None = None


def resolve_signals(signals: tuple[str, ...] | None, without: tuple[str, ...]) -> tuple[str, ...]:
    """Expand aliases (``identifiers``, ``text``) and validate signal names."""
    def expand(names: tuple[str, ...]) -> set[str]:
        out: set[str] = set()
        for n in names:
            n = n.strip()
            if n == "identifiers":
                out.update(IDENTIFIER_SIGNALS)
            elif n in SIGNALS:
                out.add(n)
            elif n:
                raise BadInputError(f"unknown signal {n!r}; known: identifiers, "
                                 + ", ".join(SIGNALS))
        return out
    use = expand(signals) if signals else set(SIGNALS)
    use -= expand(without)
    if not use:
        raise BadInputError("no signals left to link on")
    return tuple(s for s in SIGNALS if s in use)


def _shipped(use: tuple[str, ...]) -> LinearModel:
    """The shipped logistic model for the signals in ``use``."""
    model = load_model("all" if any(s in use for s in IDENTIFIER_SIGNALS) else "no_identifiers")
    model.weights = {s: w for s, w in model.weights.items() if s in use}
    return model


def _model_for(method: str, use: tuple[str, ...], f: PairFeatures,
               prof: Profiles) -> LinearModel:
    if method == "logistic":
        return _shipped(use)
    if method == "fellegi-sunter":
        # one M-step: m and u per level from this workspace's candidate pairs, weighted
        # by the shipped model's posteriors. Further EM steps drift: signals that are
        # not independent (two views of one text) inflate each other's posteriors and
        # the match class grows (seed 511: pairwise F1 0.903 / 0.889 / 0.867 / 0.796
        # after 0 / 1 / 3 / 8 further steps)
        return fit_em(f, use, init_post=_shipped(use).probability(f), fix_u=True,
                      iterations=0)
    raise BadInputError(f"unknown method {method!r}; one of {METHODS}")


def _learnt(model: LinearModel, f: PairFeatures, prof: Profiles, sample: list[JudgedPair],
            opts: LinkOptions) -> tuple[LinearModel, dict[str, Any]]:
    """``model`` refitted to the judgements when ``opts.learn`` asks for it."""
    if not opts.learn:
        return model, {"fitted": False, "why_not": "not asked (--learn)"}
    return fit_to_judgements(model, f, prof, sample)


def score_pairs(prof: Profiles, pairs: np.ndarray, model: LinearModel,
                use: tuple[str, ...]) -> tuple[PairFeatures, np.ndarray]:
    """Compare and score pairs."""
    f = compare(prof, pairs[:, 0], pairs[:, 1], use)
    return f, model.probability(f)


def pair_evidence(f: PairFeatures, use: tuple[str, ...]) -> np.ndarray:
    """Each pair's signals summed, as the shipped model weighs them: its log-odds of a
    match beside a pair with no evidence at all (0: none either way)."""
    model = _shipped(use)
    evidence: np.ndarray = model.logit(f) - model.intercept
    return evidence


def clustering_inputs(f: PairFeatures, p: np.ndarray, use: tuple[str, ...],
                      threshold: float,
                      market: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What the clustering weighs, on one machine and on Spark: the probabilities, each
    pair's raised to the floor its own evidence allows
    (:func:`~darkmap.resolve.partition.floored_probabilities`), and the pairs kept
    apart, whose signals speak against a match by more than :data:`AGAINST` in log-odds
    beside a pair with no evidence at all (different keys, unlike writing, the same
    market...): the clustering never joins those through other accounts. Both read the
    evidence as the shipped model weighs it (:func:`pair_evidence`): a Fellegi-Sunter
    model fitted on the workspace has no "no evidence" reference (its level 0 is a
    level like any other).

    With the accounts' ``market``, a twin's pair with its market sibling
    (:func:`~darkmap.resolve.partition.twin_sibling_pairs`) has no floor of an unscored
    pair: it weighs at least its evidence against a match, every signal that speaks
    against counted in full and none that speaks for, and never less than any other
    pair (docs/linking.md, "A twin beside a second account")."""
    evidence = pair_evidence(f, use)
    apart: np.ndarray = evidence < AGAINST
    missing: float | np.ndarray = MISSING
    floor_evidence = evidence
    twins = (np.flatnonzero(twin_sibling_pairs(f.i, f.j, p, market, threshold))
             if market is not None and len(f) else np.zeros(0, np.int64))
    if len(twins):
        missing = np.full(len(f), MISSING)
        missing[twins] = 0.0
        floor_evidence = evidence.copy()
        # never under the floor of any other pair
        floor_evidence[twins] = np.maximum(evidence_against(f.subset(twins), use),
                                           MISSING + np.minimum(evidence[twins], 0.0))
    return floored_probabilities(p, floor_evidence, threshold, missing), apart


def evidence_against(f: PairFeatures, use: tuple[str, ...]) -> np.ndarray:
    """Each pair's signals that speak against a match, summed as the shipped model
    weighs them (0: none against, whatever speaks for)."""
    total = np.zeros(len(f), dtype=np.float64)
    for c in _shipped(use).contributions(f).values():
        total += np.minimum(c, 0.0)
    return total


def _completion(n: int, pairs: np.ndarray, p: np.ndarray, must: list[tuple[int, int]],
                limit: int) -> np.ndarray:
    """Unscored pairs inside small components of probable links."""
    strong = pairs[p >= 0.5]
    if must:
        strong = np.concatenate([strong, np.array(must, dtype=np.int64).reshape(-1, 2)])
    if len(strong) == 0:
        return np.zeros((0, 2), np.int64)
    g = sp.coo_matrix((np.ones(len(strong)), (strong[:, 0], strong[:, 1])), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    sizes = np.bincount(lab)
    order = np.argsort(lab, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    new = []
    for c in np.nonzero((sizes >= 3) & (sizes <= limit))[0]:
        members = order[bounds[c]:bounds[c + 1]]
        ti, tj = np.triu_indices(len(members), k=1)
        new.append(np.stack([members[ti], members[tj]], axis=1))
    if not new:
        return np.zeros((0, 2), np.int64)
    allp = np.sort(np.concatenate(new), axis=1)
    # one int64 key per ordered pair (as given: a judged pair may come as (j, i))
    have = np.sort(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])
    want = allp[:, 0].astype(np.int64) * n + allp[:, 1]
    if len(have):
        keep = have[np.minimum(np.searchsorted(have, want), len(have) - 1)] != want
    else:
        keep = np.ones(len(want), dtype=bool)
    missing: np.ndarray = allp[keep]
    return missing


Progress = Callable[[str], None]
"""Told what a link run's next stage is about to do (:data:`STAGES`, with counts)."""
STAGES = ("loading the accounts' profiles", "finding candidate pairs",
          "scoring the candidate pairs", "clustering the scored pairs into personas",
          "storing personas and links")
"""A link run's stages, in order, as :data:`Progress` is told them (the first words)."""


def _quiet(_: str) -> None:
    return None


def link(ws: Workspace, opts: LinkOptions | None = None,
         progress: Progress | None = None) -> LinkResult:
    """Build personas from every account in ``ws`` and store them with their links.

    ``progress`` is called with a line saying what each stage is about to do (for a
    status line: a link of 100,000 accounts takes minutes). Raises
    :class:`~darkmap.errors.BadInputError` for invalid options (unknown method or
    signal, a threshold outside [0, 1])."""
    opts = opts or LinkOptions()
    opts.check()
    say = progress or _quiet
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    use = resolve_signals(opts.signals, opts.without)
    run_id = uuid.uuid4().hex[:12]
    started = utcnow()
    say(STAGES[0])
    prof = load_profiles(ws.con)
    n = len(prof)
    timings["profiles_s"] = time.perf_counter() - t0
    judged = _judgements(ws, prof, opts.learn)
    must, cannot, judged_pairs = judged.must, judged.cannot, judged.pairs
    blocking: dict[str, float] = {}
    say(f"{STAGES[1]} among {n:,} accounts")
    pairs = candidate_pairs(prof, use_identifiers=any(s in use for s in IDENTIFIER_SIGNALS),
                            timings=blocking)
    if judged_pairs:
        pairs = np.unique(np.concatenate([pairs, np.array(judged_pairs, np.int64)]), axis=0)
    pairs = _with_claimed(pairs, prof, use)
    timings["candidates_s"] = time.perf_counter() - t0 - sum(timings.values())
    say(f"{STAGES[2]}: {len(pairs):,}")
    f = compare(prof, pairs[:, 0], pairs[:, 1], use)
    model, judged_fit = _learnt(_model_for(opts.method, use, f, prof), f, prof,
                                judged.sample, opts)
    p = model.probability(f)
    extra = _completion(n, pairs, p, must, opts.complete_max)
    if len(extra):
        f2 = compare(prof, extra[:, 0], extra[:, 1], use)
        f = _concat(f, f2)
        p = np.concatenate([p, model.probability(f2)])
    timings["scoring_s"] = time.perf_counter() - t0 - sum(timings.values())
    # the evidence is scored: let its matrices go before clustering and storing
    roster = prof.roster()
    del prof
    say(STAGES[3])
    weighed, apart = clustering_inputs(f, p, use, opts.threshold, roster.market)
    res = correlation_clustering(n, f.i, f.j, weighed, opts.threshold, must, cannot,
                                 apart=apart)
    timings["clustering_s"] = time.perf_counter() - t0 - sum(timings.values())
    labels = res.labels
    say(STAGES[4])
    stored = _store(ws, run_id, started, roster, f, p, labels, model, use, opts,
                    judged.verdicts)
    timings["store_s"] = time.perf_counter() - t0 - sum(timings.values())
    summary = _summary(stored, roster, pairs, extra, use, opts, res.conflicts, judged_fit,
                       timings, blocking, t0)
    finish_link_run(ws.con, run_id, utcnow(), json.dumps(summary))
    return LinkResult(run_id, summary, roster.ids, labels)


@dataclass
class _Judged:
    """The standing judgements of a link run: ``verdicts`` by account ids; ``must`` and
    ``cannot`` (same / different) and every judged ``pairs`` as profile rows, ``a < b``;
    ``sample``: the last run's judged candidate pairs (only when learning)."""

    verdicts: dict[tuple[str, str], str]
    must: list[tuple[int, int]]
    cannot: list[tuple[int, int]]
    pairs: list[tuple[int, int]]
    sample: list[JudgedPair]


def _judgements(ws: Workspace, prof: Profiles, learn: bool) -> _Judged:
    verdicts = active_judgements(ws)
    # the last run's judged pairs: read before this run replaces its links
    sample = judged_sample(ws) if learn else []
    out = _Judged(verdicts, [], [], [], sample)
    for (a, b), v in verdicts.items():
        if a in prof.index and b in prof.index:
            ia, ib = sorted((prof.index[a], prof.index[b]))
            out.pairs.append((ia, ib))
            if v == "same":
                out.must.append((ia, ib))
            elif v == "different":
                out.cannot.append((ia, ib))
    return out


def _summary(stored: _Stored, prof: Roster, pairs: np.ndarray, extra: np.ndarray,
             use: tuple[str, ...], opts: LinkOptions, conflicts: list[tuple[int, int]],
             judged_fit: dict[str, Any], timings: dict[str, float],
             blocking: dict[str, float], t0: float) -> LinkSummary:
    """A link run's summary (either engine): what it stored, its options and timings."""
    return {
        "run_id": stored["run_id"], "personas": stored["personas"],
        "multi_account_personas": stored["multi_account_personas"],
        "cross_market_personas": stored["cross_market_personas"],
        "links_stored": stored["links_stored"], "model": stored["model"],
        "accounts": len(prof), "candidate_pairs": int(len(pairs)),
        "completion_pairs": int(len(extra)),
        "signals": list(use), "method": opts.method, "threshold": opts.threshold,
        "judgement_conflicts": [[prof.ids[a], prof.ids[b]] for a, b in conflicts],
        "judged_fit": judged_fit,
        "changes": stored["changes"],
        # the blocking's split: its plan (on the driver) and running it
        "timings": {**{k: round(v, 2) for k, v in timings.items()},
                    **{f"candidates_{k}": round(v, 2) for k, v in blocking.items()}},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _with_claimed(pairs: np.ndarray, prof: Profiles, use: tuple[str, ...]) -> np.ndarray:
    """``pairs`` and every pair one of whose accounts claims the other (docs/linking.md,
    "Claims"), when the contact signal is in ``use``: a claimed shop under another name
    (HollandDutch2.0's "HollandDutch") may be in no candidate block."""
    claimed = claimed_pairs(prof) if "contact" in use else np.zeros((0, 2), np.int64)
    if not len(claimed):
        return pairs
    out: np.ndarray = np.unique(np.concatenate([pairs.reshape(-1, 2), claimed]), axis=0)
    return out


def _concat(a: PairFeatures, b: PairFeatures) -> PairFeatures:
    return PairFeatures(np.concatenate([a.i, b.i]), np.concatenate([a.j, b.j]),
                        {k: np.concatenate([a.raw[k], b.raw[k]]) for k in a.raw},
                        {k: np.concatenate([a.level[k], b.level[k]]) for k in a.level})


def _flag_mixed_script(handle_sig: dict[str, Any], prof: Roster, i: int, j: int) -> None:
    """Say, in a link's handle signal, what its level does not: the accounts whose
    handle mixes Latin with Cyrillic or Greek letters (``mixed_script``: it prints like
    a Latin name it is not, a possible impersonation), and that a "same handle" is
    written differently (separators, accents, invisible characters: Bud_Central and
    BudCentral). Both are added to the level's text, which ``persona show`` prints."""
    mixed = sorted(prof.ids[k] for k in (i, j) if mixed_script(prof.handle[k]))
    if mixed:
        handle_sig["mixed_script"] = mixed
        handle_sig["level"] += ("; mixes Latin with Cyrillic or Greek letters: "
                                "possible impersonation")
    if (str(handle_sig["level"]).startswith("same handle")
            and prof.handle[i].casefold() != prof.handle[j].casefold()):
        handle_sig["level"] += "; written differently (separators, accents or invisible)"


def _say_claims(contact_sig: dict[str, Any], prof: Roster, i: int, j: int) -> None:
    """Say, in a link's contact signal, that the level "shared contact" rests on a
    claim: the level names it briefly, "shared contact (claim: hansa shop Toys-R-Us)"
    (``persona show`` prints it on a line of 100 columns), and ``claims`` says in full
    which account claimed what: "dream:toys-r-us's own text links its shop
    hansamkt2rr6nfg3.onion/vendor/Toys-R-Us"."""
    said, briefs = [], []
    for a, b in ((i, j), (j, i)):
        want = (str(prof.market[b]), handle_skeleton(prof.handle[b]))
        for c in (prof.claims[a] if prof.claims else ()):
            if (c.market, c.handle) == want:
                said.append(c.wording(prof.ids[a]))
                briefs.append(c.brief())
                break
    if said:
        contact_sig["claims"] = said
        contact_sig["level"] += f" (claim: {briefs[0]})"


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def _store(ws: Workspace, run_id: str, started: datetime, prof: Roster, f: PairFeatures,
           p: np.ndarray, labels: np.ndarray, model: LinearModel, use: tuple[str, ...],
           opts: LinkOptions, judged: dict[tuple[str, str], str]) -> _Stored:
    """Store the run's personas, members and links (replacing the previous run's)."""
    now = utcnow()
    n = len(prof)
    method = f"{model.name}@{model.meta.get('version', 1)}:" + ",".join(use)
    # personas
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=n) if n else np.zeros(0, np.int64)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    pid_of = np.empty(n, dtype=object)
    persona_rows: list[tuple[Any, ...]] = []
    member_rows: list[tuple[str, str]] = []
    same = labels[f.i] == labels[f.j] if len(f) else np.zeros(0, bool)
    coh_sum = np.bincount(labels[f.i][same], weights=p[same], minlength=n) if len(f) else None
    for c in np.nonzero(sizes)[0]:
        members = order[bounds[c]:bounds[c + 1]]
        ids = sorted(prof.ids[m] for m in members)
        pid = "p-" + row_id("persona", ids[0])[:12]
        pid_of[members] = pid
        handles = Counter(prof.handle[m] for m in members)
        starts = prof.start[members]
        ends = prof.end[members]
        k = len(members)
        cohesion = float(coh_sum[c] / (k * (k - 1) / 2)) if k > 1 and coh_sum is not None else None
        persona_rows.append((
            pid, handles.most_common(1)[0][0], k, len(set(prof.market[members].tolist())),
            _ts(np.nanmin(starts) if np.isfinite(starts).any() else None),
            _ts(np.nanmax(ends) if np.isfinite(ends).any() else None),
            cohesion, run_id, now))
        member_rows.extend((pid, a) for a in ids)
    # links: the pairs worth storing, explained (only those: the contributions of every
    # scored pair would take a float64 array per signal over millions of pairs)
    judged_idx = {(prof.index[a], prof.index[b]) for a, b in judged
                  if a in prof.index and b in prof.index}
    keep = (p >= opts.store_min) | same
    if judged_idx:
        keep |= np.array([(int(a), int(b)) in judged_idx or (int(b), int(a)) in judged_idx
                          for a, b in zip(f.i, f.j, strict=True)], dtype=bool)
    kept = np.flatnonzero(keep)
    fk = f.subset(kept)
    contrib = model.contributions(fk)
    voice = (voice_against_name(fk, contrib) if model.voice_rule
             else np.zeros(len(fk), dtype=bool))
    tied = {s: t for s in IDENTIFIER_SIGNALS
            if (t := tied_identifier(fk, s)) is not None}
    link_rows: list[tuple[Any, ...]] = []
    sig_names = list(fk.level)
    for r, k in enumerate(kept.tolist()):
        sig: dict[str, dict[str, Any]] = {"_base": {"contribution": round(model.intercept, 4)}}
        for s in sig_names:
            lev = int(fk.level[s][r])
            sig[s] = {"value": _num(float(fk.raw[s][r])), "level": SIGNALS[s][lev],
                      "contribution": round(float(contrib[s][r]), 4) if s in contrib else 0.0}
            spec = FREQUENCY_ADJUSTED.get(s)
            if spec is not None and lev in spec[1] and spec[0] in fk.raw:
                sig[s]["accounts_sharing_it"] = int(fk.raw[spec[0]][r])
            if s == "handle" and voice[r]:
                sig[s]["voice_disagrees"] = True
            if s == "handle":
                _flag_mixed_script(sig[s], prof, int(fk.i[r]), int(fk.j[r]))
            if s == "contact" and CLAIMED in fk.raw and fk.raw[CLAIMED][r]:
                _say_claims(sig[s], prof, int(fk.i[r]), int(fk.j[r]))
            if s in tied and tied[s][r]:
                sig[s]["tied_through_others"] = True
        a, b = prof.ids[fk.i[r]], prof.ids[fk.j[r]]
        if a > b:
            a, b = b, a
        link_rows.append((a, b, round(float(p[k]), 6), json.dumps(sig), method,
                          bool(same[k]), run_id, now))
    changes = _changes(ws, member_rows, judged)
    change_rows = [(run_id, ps["persona_id"], side, c["kind"], json.dumps(c))
                   for c in changes["changes"]
                   for side, personas in (("before", c["before"]), ("after", c["after"]))
                   for ps in personas]
    store_link_run(ws.con, run_id, started, json.dumps(asdict(opts)),
                   LinkTables(persona_rows, member_rows, link_rows, change_rows))
    multi = [r for r in persona_rows if r[2] > 1]
    return {"run_id": run_id, "personas": len(persona_rows),
            "multi_account_personas": len(multi),
            "cross_market_personas": sum(1 for r in multi if r[3] > 1),
            "links_stored": len(link_rows), "model": model.name, "changes": changes}


def _changes(ws: Workspace, member_rows: list[tuple[str, str]],
             judged: dict[tuple[str, str], str]) -> RunChanges:
    """What this run's personas change from the stored ones (read before they are
    replaced), compared by membership (:mod:`darkmap.resolve.changes`)."""
    prev = previous_run(ws.con)
    if prev is None:
        return first_run()
    after = {a: pid for pid, a in member_rows}
    return compare_runs(prev.run_id, prev.membership, after, judged,
                        judgements_since(ws.con, prev.started_at))


def _ts(days: float | None) -> datetime | None:
    """A day number as a (naive UTC) timestamp."""
    if days is None:
        return None
    out: datetime = np.datetime64(int(days), "D").astype("datetime64[us]").item()
    return out
