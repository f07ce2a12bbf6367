"""The review queue and what analysts' judgements say about the linking (issue #16).

Every candidate pair ``darkmap link`` scored (``account_links``: probability at least the
storing floor, merged or not) falls in a *stratum*: merged or not, by score band
(:data:`BANDS`). Judgements (``darkmap judge``) are a sample of the pairs; within a stratum
the queue draws pairs **at random**, so each stratum's judged pairs estimate its match
rate without bias, whatever strata the queue favours.

*Estimate* (:func:`judged_estimate`). A stratum's match rate has a Beta posterior: a
prior mean worth :data:`PRIOR_WEIGHT` judgements, updated by the stratum's judgements
("same" 1, "different" 0; "unsure" is left out). The prior mean is the stratum's mean
probability *recalibrated on all the judgements* (:func:`calibration`): a logistic
regression of the verdicts on the model's log-odds, with its own intercept and slope for
each of three groups (:data:`GROUPS`: merged on their own evidence, merged through the
accounts around them, left apart), shrunk towards the model's own probabilities. A
merged pair is also backed by the accounts around it (a pair scored 0.06 inside a persona
is mostly one vendor's), and a pair left apart has lost its best matches to other
personas, so the model's probability misjudges both, in opposite directions; judgements
in any stratum correct the prior of every stratum of the same group. With no
judgements the prior is the model's own.
Drawing the recalibration's coefficients (from their posterior, by Laplace's
approximation), then the rates, then the unjudged pairs' outcomes given them (binomial),
gives the number of true matches among merged pairs and among all candidates; their ratios are
the **precision** of the merged candidate pairs and the **recall** of the candidate pairs
(pairs never scored, below the storing floor or outside the blocking, are outside both).
The intervals are the 2.5 and 97.5 percentiles of the draws.

*Queue* (:func:`review_queue`). Each next pair comes from the stratum where one more
judgement most reduces the variance of those two figures: a stratum of many pairs (its
judgement represents them) whose rate is uncertain (near the merge threshold, or never
judged). The pair within it is drawn at random (seeded), not the hardest-looking one, so
the estimate stays unbiased.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkmap.resolve.judgements import active_judgements
from darkmap.resolve.options import DEFAULT_THRESHOLD
from darkmap.store import personas as store
from darkmap.store.workspace import Workspace

__all__ = ["AS_JUDGED_SCORES", "BANDS", "PRIOR_WEIGHT", "Calibration", "JudgedEstimate",
           "JudgedPair", "QueuedPair", "Stratum", "calibration", "judged_estimate",
           "judged_sample", "left_apart_queue", "review_queue", "strata"]

BANDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)
"""Score bands (lower bounds; the last is past 1) that, with merged or not, make the strata."""
PRIOR_WEIGHT = 2.0
"""How many judgements the recalibrated probability is worth in a stratum's prior."""
_DRAWS = 4000
GROUPS = ("merged", "merged_through_others", "apart")
"""The recalibration's groups of pairs: merged and scored at least :data:`OWN_EVIDENCE`,
merged although scored under it (the clustering put them together for the accounts
around them), left apart."""
OWN_EVIDENCE = 0.3
"""The score from which a merged pair rests on its own evidence (the default merge
threshold)."""
_CAL_CENTRE = np.tile([0.0, 1.0], len(GROUPS))
"""The recalibration's prior centre: (intercept, slope) per group; (0, 1) is the model's
own probability."""
_CAL_SD = np.tile([2.0, 0.75], len(GROUPS))
"""How far the judgements may pull each coefficient before they must be many."""
_SLOPES = np.arange(len(_CAL_CENTRE)) % 2 == 1
AS_JUDGED_SCORES = (0.2, 0.5, 0.9)
"""The scores at which reports say what the judgements make of a score."""
_LOGIT_CLIP = 9.0
_RATE_CLIP = 1e-6


@dataclass
class Stratum:
    """Candidate pairs of one band and merge state, and their judgements."""

    merged: bool
    low: float
    high: float
    pairs: list[int] = field(default_factory=list)  # indices into the candidate lists
    mean_score: float = 0.0
    same: int = 0
    different: int = 0
    prior_mean: float = 0.0  # the recalibrated mean probability (:func:`calibration`)

    @property
    def judged(self) -> int:
        """Judged pairs of the stratum (same or different)."""
        return self.same + self.different

    def beta(self) -> tuple[float, float]:
        """The posterior Beta(a, b) of the stratum's match rate."""
        return (PRIOR_WEIGHT * self.prior_mean + self.same,
                PRIOR_WEIGHT * (1.0 - self.prior_mean) + self.different)

    def as_dict(self) -> dict[str, Any]:
        """The stratum as JSON: band, pairs, judgements, estimated match rate."""
        a, b = self.beta()
        return {"merged": self.merged, "score_from": self.low, "score_to": min(self.high, 1.0),
                "pairs": len(self.pairs), "mean_score": round(self.mean_score, 4),
                "recalibrated": round(self.prior_mean, 4), "judged_same": self.same,
                "judged_different": self.different,
                "match_rate": round(a / (a + b), 4)}


@dataclass(frozen=True)
class QueuedPair:
    """A pair the queue proposes, with the evidence of its stored link."""

    a: str
    b: str
    score: float
    merged: bool
    stratum: str
    evidence: list[tuple[str, float]]  # (signal, contribution), strongest first


def _group(logit: np.ndarray, merged: np.ndarray) -> np.ndarray:
    """Each pair's index in :data:`GROUPS`."""
    below = logit < math.log(OWN_EVIDENCE / (1.0 - OWN_EVIDENCE))
    return np.where(merged, np.where(below, 1, 0), 2)


@dataclass(frozen=True)
class Calibration:
    """The judgements' recalibration of the model: ``sigmoid(intercept + slope *
    logit(p))`` with an (intercept, slope) per group of :data:`GROUPS` (module
    docstring); ``judged``: the judged pairs of each group."""

    coef: tuple[tuple[float, float], ...] = ((0.0, 1.0),) * len(GROUPS)
    judged: tuple[int, ...] = (0,) * len(GROUPS)

    def probability(self, logit: np.ndarray, merged: np.ndarray) -> np.ndarray:
        """The recalibrated match probability of pairs with these model log-odds."""
        c = np.asarray(self.coef)[_group(logit, merged)]
        q = 1.0 / (1.0 + np.exp(-(c[:, 0] + c[:, 1] * logit)))
        return np.asarray(np.clip(q, _RATE_CLIP, 1.0 - _RATE_CLIP))  # a Beta needs a, b > 0

    def at(self, score: float, merged: bool) -> float:
        """The recalibrated probability of one pair the model scored ``score``."""
        clipped = min(max(score, 1e-9), 1.0 - 1e-9)
        logit = np.array([math.log(clipped / (1.0 - clipped))])
        return float(self.probability(logit, np.array([merged]))[0])

    def as_judged(self, scores: tuple[float, ...] = AS_JUDGED_SCORES) -> dict[str, Any]:
        """What the judgements make of these scores, for a merged pair and for one left
        apart, with the judged pairs each side rests on (as reports say it)."""
        apart = self.judged[GROUPS.index("apart")]
        return {"scores": list(scores),
                "merged": [round(self.at(x, True), 2) for x in scores],
                "apart": [round(self.at(x, False), 2) for x in scores],
                "judged_merged": sum(self.judged) - apart, "judged_apart": apart}

    def as_dict(self) -> dict[str, Any]:
        """Per group, the coefficients and the judgements they rest on, as JSON."""
        return {g: {"intercept": round(a, 4), "slope": round(b, 4), "judged": n}
                for g, (a, b), n in zip(GROUPS, self.coef, self.judged, strict=True)}


@dataclass
class JudgedEstimate:
    """Precision and recall of the linking estimated from the judgements."""

    candidates: int
    merged: int
    judged: int
    precision: float
    precision_interval: tuple[float, float]
    recall: float
    recall_interval: tuple[float, float]
    strata: list[dict[str, Any]]
    by_threshold: list[dict[str, Any]]
    calibration: Calibration = field(default_factory=Calibration)

    def as_dict(self) -> dict[str, Any]:
        """The estimate as JSON."""
        return {"candidates": self.candidates, "merged": self.merged, "judged": self.judged,
                "precision": self.precision, "precision_95": list(self.precision_interval),
                "recall": self.recall, "recall_95": list(self.recall_interval),
                "strata": self.strata, "by_threshold": self.by_threshold,
                "calibration": self.calibration.as_dict()}


@dataclass(frozen=True)
class JudgedPair:
    """A judged candidate pair of the last link run."""

    a: str
    b: str
    same: bool


@dataclass
class _Pairs:
    a: list[str]
    b: list[str]
    score: np.ndarray
    merged: np.ndarray
    verdict: dict[int, str]
    """The pairs judged "same" or "different" (the estimate's sample)."""
    looked_at: set[int] = field(default_factory=set)
    """Every pair with a standing judgement, "unsure" included: never proposed again."""

    def logit(self) -> np.ndarray:
        """The model's log-odds of each pair, clipped (a stored 0 or 1 stays finite)."""
        p = np.clip(self.score, 1e-9, 1.0 - 1e-9)
        return np.asarray(np.clip(np.log(p / (1.0 - p)), -_LOGIT_CLIP, _LOGIT_CLIP))


def _load(ws: Workspace, judgements: Mapping[tuple[str, str], str] | None = None) -> _Pairs:
    """The last link run's scored pairs and, of them, the judged ones (``judgements``:
    the standing verdicts to count, by default the workspace's)."""
    a, b, score, merged = store.link_scores(ws.con)
    index = {(x, y): i for i, (x, y) in enumerate(zip(a, b, strict=True))}
    if judgements is None:
        judgements = active_judgements(ws)
    standing = {index[k]: v for k, v in judgements.items() if k in index}
    verdict = {i: v for i, v in standing.items() if v in ("same", "different")}
    return _Pairs(a, b, np.asarray(score, dtype=float), np.asarray(merged, dtype=bool),
                  verdict, set(standing))


@dataclass(frozen=True)
class _Fit:
    """The recalibration's coefficients as an array (intercept and slope of each group in
    turn), their posterior covariance (Laplace's approximation; 0 for a coefficient held
    at a bound or of a group never judged) and the judged pairs of each group."""

    theta: np.ndarray
    cov: np.ndarray
    judged: tuple[int, ...] = (0,) * len(GROUPS)

    @property
    def cal(self) -> Calibration:
        """The fitted coefficients as a :class:`Calibration`."""
        return Calibration(tuple((float(a), float(b)) for a, b in self.theta.reshape(-1, 2)),
                           self.judged)

    def draws(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of the coefficients from their posterior: shape (n, groups, 2); a
        slope drawn below 0 is held at 0, as in the fit."""
        k = len(self.theta)
        out = self.theta + rng.standard_normal((n, k)) @ _sqrt_psd(self.cov).T
        out[:, _SLOPES] = np.clip(out[:, _SLOPES], 0.0, None)
        return np.asarray(out).reshape(n, k // 2, 2)


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    return np.asarray(vecs * np.sqrt(np.clip(vals, 0.0, None)))


def _fit_calibration(p: _Pairs) -> _Fit:
    """Maximum a posteriori fit of :class:`Calibration` to the judged pairs: a logistic
    regression with a Gaussian prior at the model's own probabilities (:data:`_CAL_CENTRE`,
    :data:`_CAL_SD`) and slopes of at least 0 (a higher score never means a lower chance
    of a match: a slope that would fall below 0 is held at 0 and the rest refitted)."""
    k = len(_CAL_CENTRE)
    if not p.verdict:
        return _Fit(_CAL_CENTRE.copy(), np.zeros((k, k)))
    idx = np.fromiter(p.verdict, dtype=np.int64, count=len(p.verdict))
    y = np.array([p.verdict[int(i)] == "same" for i in idx], dtype=float)
    x = p.logit()[idx]
    group = _group(x, p.merged[idx])
    design = np.zeros((len(idx), k))
    rows = np.arange(len(idx))
    design[rows, 2 * group], design[rows, 2 * group + 1] = 1.0, x
    theta = _CAL_CENTRE.copy()
    free = np.repeat(np.bincount(group, minlength=len(GROUPS)) > 0, 2)  # a group never
    while True:                                                # judged keeps the model's own
        theta[free], hess = _map_logistic(design[:, free], y, _CAL_CENTRE[free],
                                          _CAL_SD[free], design[:, ~free] @ theta[~free])
        negative = free & (theta < 0) & _SLOPES
        if not negative.any():
            break
        theta[negative], free[negative] = 0.0, False
    cov = np.zeros((k, k))
    cov[np.ix_(free, free)] = np.linalg.inv(hess)
    return _Fit(theta, cov, tuple(int(n) for n in np.bincount(group, minlength=len(GROUPS))))


def _map_logistic(design: np.ndarray, y: np.ndarray, centre: np.ndarray, sd: np.ndarray,
                  offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coefficients of a logistic regression (with ``offset``) at the maximum of its
    posterior under independent Gaussian priors, and the negative Hessian of the log
    posterior there: Newton's method, each step halved until the posterior rises."""
    precision = 1.0 / sd ** 2

    def log_posterior(t: np.ndarray) -> float:
        eta = offset + design @ t
        return float(np.sum(y * eta - np.logaddexp(0.0, eta))
                     - 0.5 * np.sum(precision * (t - centre) ** 2))

    theta = centre.copy()
    current = log_posterior(theta)
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-(offset + design @ theta)))
        grad = design.T @ (y - mu) - precision * (theta - centre)
        hess = (design * (mu * (1.0 - mu))[:, None]).T @ design + np.diag(precision)
        step = np.linalg.solve(hess, grad)
        while log_posterior(theta + step) < current and float(np.abs(step).max()) > 1e-10:
            step = step / 2.0
        theta = theta + step
        current = log_posterior(theta)
        if float(np.abs(step).max()) < 1e-8:
            break
    mu = 1.0 / (1.0 + np.exp(-(offset + design @ theta)))
    return theta, (design * (mu * (1.0 - mu))[:, None]).T @ design + np.diag(precision)


def _strata(p: _Pairs, cal: Calibration | None = None) -> list[Stratum]:
    band = np.searchsorted(np.asarray(BANDS), p.score, side="right") - 1
    prob = (cal or _fit_calibration(p).cal).probability(p.logit(), p.merged)
    out: list[Stratum] = []
    for merged in (True, False):
        for k in range(len(BANDS) - 1):
            idx = np.flatnonzero((band == k) & (p.merged == merged))
            if not len(idx):
                continue
            s = Stratum(merged, BANDS[k], BANDS[k + 1], idx.tolist(),
                        float(p.score[idx].mean()), prior_mean=float(prob[idx].mean()))
            for i in s.pairs:
                v = p.verdict.get(i)
                if v == "same":
                    s.same += 1
                elif v == "different":
                    s.different += 1
            out.append(s)
    return out


def strata(ws: Workspace) -> list[dict[str, Any]]:
    """The strata of the workspace's candidate pairs with their judgements."""
    return [s.as_dict() for s in _strata(_load(ws))]


def calibration(ws: Workspace) -> Calibration:
    """The judgements' recalibration of the model's probabilities (module docstring)."""
    return _fit_calibration(_load(ws)).cal


def judged_sample(ws: Workspace) -> list[JudgedPair]:
    """The standing same/different judgements on the last run's candidate pairs."""
    p = _load(ws)
    return [JudgedPair(p.a[i], p.b[i], v == "same") for i, v in sorted(p.verdict.items())]


def _draw_true(p: _Pairs, fit: _Fit, st: list[Stratum], rng: np.random.Generator,
               draws: int) -> np.ndarray:
    """Draws of the number of true matches per stratum: shape (draws, strata). Each draw
    takes the recalibration's coefficients from their posterior, so each stratum's prior
    mean varies with them, then the stratum's rate from its Beta posterior around that
    mean, then its unjudged pairs' outcomes."""
    coef = fit.draws(rng, draws)
    logit = p.logit()
    out = np.empty((draws, len(st)))
    for j, s in enumerate(st):
        # the stratum's log-odds by up to 33 quantiles: its mean probability per draw
        x = np.quantile(logit[s.pairs], np.linspace(0.0, 1.0, min(len(s.pairs), 33)))
        c = coef[:, _group(x, np.full(len(x), s.merged))]  # (draws, points, 2)
        mean = (1.0 / (1.0 + np.exp(-(c[:, :, 0] + c[:, :, 1] * x[None, :])))).mean(axis=1)
        mean = np.clip(mean, _RATE_CLIP, 1.0 - _RATE_CLIP)
        rate = rng.beta(PRIOR_WEIGHT * mean + s.same, PRIOR_WEIGHT * (1.0 - mean) + s.different)
        rest = len(s.pairs) - s.judged
        out[:, j] = s.same + rng.binomial(rest, rate)
    return out


def _interval(x: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(x, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def judged_estimate(ws: Workspace, seed: int = 0, draws: int = _DRAWS,
                    judgements: Mapping[tuple[str, str], str] | None = None
                    ) -> JudgedEstimate:
    """Precision of the merged candidate pairs and recall of the candidate pairs, with
    95% intervals, from the standing judgements (module docstring; ``judgements``: the
    standing verdicts to count, by default the workspace's)."""
    p = _load(ws, judgements)
    fit = _fit_calibration(p)
    st = _strata(p, fit.cal)
    rng = np.random.default_rng(seed)
    true = _draw_true(p, fit, st, rng, draws) if st else np.zeros((draws, 0))
    is_merged = np.array([s.merged for s in st], dtype=bool)
    n_merged = sum(len(s.pairs) for s in st if s.merged)
    tp = true[:, is_merged].sum(axis=1)
    all_true = true.sum(axis=1)
    prec = tp / max(n_merged, 1)
    rec = np.divide(tp, all_true, out=np.zeros_like(tp), where=all_true > 0)
    by_t = []
    for t in (0.3, 0.5, 0.7, 0.9):
        cols = np.array([s.low >= t for s in st], dtype=bool)
        n = sum(len(s.pairs) for s in st if s.low >= t)
        if n:
            pt = true[:, cols].sum(axis=1) / n
            by_t.append({"score_at_least": t, "pairs": n,
                         "pairwise_precision": round(float(pt.mean()), 4),
                         "precision_95": list(_interval(pt))})
    return JudgedEstimate(
        candidates=len(p.a), merged=n_merged, judged=len(p.verdict),
        precision=round(float(prec.mean()), 4), precision_interval=_interval(prec),
        recall=round(float(rec.mean()), 4), recall_interval=_interval(rec),
        strata=[s.as_dict() for s in st], by_threshold=by_t, calibration=fit.cal)


def _gain(s: Stratum, n_merged: int, n_true: float, extra: int) -> float:
    """How much one more judgement in ``s`` (after ``extra`` already planned) reduces the
    variance of precision and recall."""
    if len(s.pairs) - s.judged - extra <= 0:
        return 0.0
    a, b = s.beta()
    m = a / (a + b)
    a, b = a + extra * m, b + extra * (1 - m)  # planned judgements, at the expected rate
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    shrink = var / (a + b + 1)  # what one more observation takes off a Beta's variance
    weight = (len(s.pairs) / max(n_true, 1.0)) ** 2
    if s.merged:
        weight += (len(s.pairs) / max(n_merged, 1)) ** 2
    return weight * shrink * (1 - (s.judged + extra) / len(s.pairs))


def review_queue(ws: Workspace, n: int = 20, seed: int = 0,
                 judgements: Mapping[tuple[str, str], str] | None = None
                 ) -> list[QueuedPair]:
    """The next ``n`` pairs to judge (module docstring): strata chosen greedily by the
    variance their next judgement removes, a random unjudged pair within each
    (``judgements``: the standing verdicts, by default the workspace's)."""
    p = _load(ws, judgements)
    st = _strata(p)
    if not st:
        return []
    n_merged = sum(len(s.pairs) for s in st if s.merged)
    n_true = sum(len(s.pairs) * s.beta()[0] / sum(s.beta()) for s in st)
    rng = np.random.default_rng(seed + len(p.looked_at))
    # a pair judged "unsure" is left out of the estimate and not proposed again either
    pools = {j: [i for i in s.pairs if i not in p.looked_at] for j, s in enumerate(st)}
    for pool in pools.values():
        rng.shuffle(pool)
    planned = dict.fromkeys(range(len(st)), 0)
    chosen: list[tuple[int, int]] = []
    for _ in range(max(n, 0)):
        open_ = [k for k in range(len(st)) if pools[k]]
        if not open_:
            break
        j = max(open_, key=lambda k: _gain(st[k], n_merged, n_true, planned[k]))
        chosen.append((j, pools[j].pop()))
        planned[j] += 1
    rows = {(r.a, r.b): r for r in store.links_between(
        ws.con, sorted({p.a[i] for _, i in chosen} | {p.b[i] for _, i in chosen}))}
    out = []
    for j, i in chosen:
        s = st[j]
        link = rows.get((p.a[i], p.b[i]))
        out.append(QueuedPair(p.a[i], p.b[i], round(float(p.score[i]), 4), bool(p.merged[i]),
                              f"{'merged' if s.merged else 'apart'} {s.low:g}-"
                              f"{min(s.high, 1.0):g}", _evidence(link.signals if link else None)))
    return out


def left_apart_queue(ws: Workspace, n: int = 20, seed: int = 0,
                     judgements: Mapping[tuple[str, str], str] | None = None
                     ) -> list[QueuedPair]:
    """Up to ``n`` unjudged pairs that the last run scored at or above its merge
    threshold and left apart (docs/linking.md, "Links left apart"), beside the queue:
    in a seeded random order, so that the ones judged are still a random sample of
    their strata, and the queue's own draw is left as it is."""
    p = _load(ws, judgements)
    run = store.last_run_id(ws.con)
    threshold = float(store.run_options(ws.con, run).get("threshold", DEFAULT_THRESHOLD)
                      if run else DEFAULT_THRESHOLD)
    pool = [i for i in np.flatnonzero(~p.merged & (p.score >= threshold)).tolist()
            if i not in p.looked_at]
    np.random.default_rng(seed + len(p.looked_at)).shuffle(pool)
    pool = pool[:max(n, 0)]
    rows = {(r.a, r.b): r for r in store.links_between(
        ws.con, sorted({p.a[i] for i in pool} | {p.b[i] for i in pool}))}
    out = []
    for i in pool:
        k = int(np.searchsorted(BANDS, p.score[i], side="right")) - 1
        link = rows.get((p.a[i], p.b[i]))
        out.append(QueuedPair(p.a[i], p.b[i], round(float(p.score[i]), 4), False,
                              f"apart {BANDS[k]:g}-{min(BANDS[k + 1], 1.0):g}",
                              _evidence(link.signals if link else None)))
    return out


def _evidence(signals: Any) -> list[tuple[str, float]]:
    """The signals of a stored link that moved its score, by the size of their
    contribution, as `darkmap persona show` lists them: not the model's base log-odds
    (``_base``, the same for every pair) nor signals that contributed nothing."""
    try:
        sig = json.loads(signals) if isinstance(signals, str) else dict(signals or {})
    except (TypeError, ValueError):
        return []
    items = [(str(k), float(v.get("contribution") or 0.0)) for k, v in sig.items()
             if isinstance(v, dict) and k != "_base" and v.get("contribution")]
    return sorted(items, key=lambda kv: -abs(kv[1]))[:5]
