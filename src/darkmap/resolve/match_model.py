"""Match models: evidence levels in, calibrated match probability and contributions out.

Both models are *additive in log-odds*: ``logit = intercept + sum_s w[s][level_s]`` with
``w[s][0] = 0`` (no evidence contributes nothing), so every link's explanation is exact:
each signal's contribution is the weight of its level.

* ``logistic``: logistic regression on one-hot levels, trained on labelled simulated
  worlds (``darkmap.training.linker``) and shipped as JSON in this package.
* ``fellegi-sunter``: m/u probabilities per level fitted by EM on the workspace's own
  candidate pairs (no labels); weights are ``log(m/u)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from darkmap.resolve.features import IDENTIFIER_SIGNALS, SIGNALS, TIED, PairFeatures

__all__ = ["FREQUENCY_ADJUSTED", "TIED_LEVEL", "VOICE_AGAINST", "VOICE_DISCOUNT",
           "VOICE_SIGNALS", "LinearModel", "fit_em", "fit_logistic", "frequency_penalty",
           "load_model", "tied_identifier", "voice_against_name"]

# Frequency-based agreement past the rare/common split of a level: at the levels listed
# ("same normalised handle, common", "same handle, common"), a shared name held by k
# accounts of the workspace weighs log(k / k0) less than the fitted weight, k0 being the
# smallest common count. As in record linkage with value-specific u-probabilities, the
# chance that two different vendors share a name grows with how many accounts use it:
# a handle twenty accounts go by is no longer the evidence a handle of four is.
# signal -> (raw value holding k, levels adjusted, k0)
FREQUENCY_ADJUSTED: dict[str, tuple[str, tuple[int, ...], int]] = {
    "handle": ("handle_holders", (4, 6), 4),
}


# The name against the voice: a shared or near-identical handle (same normalised handle
# or more) between accounts that share no key counts half when their writing habits
# disagree (style, capitals and symbols together below -3 in log-odds, with text on
# both sides): an impersonator or a look-alike copies a name, not a way of writing.
# Not for a successor across a market closure (the migration signal): a vendor who
# moves when his market closes may rewrite his texts; an impersonator works beside
# his victim. Measured on three generators (docs/linking.md, "The name against the
# voice").
VOICE_SIGNALS = ("style", "capitals", "symbols")
VOICE_AGAINST = -3.0
VOICE_DISCOUNT = 0.5


# Identifiers tied through other accounts: a different key, address or contact counts
# as no evidence (0) between two accounts that share no identifier themselves but that
# a chain of other accounts' shared identifiers ties
# (:func:`darkmap.resolve.features.tied_through_others`): whoever holds them is known to
# use more than one, so that these two differ says nothing about whether they are one
# vendor's. Measured on three generators (docs/linking.md, "Identifiers tied through
# other accounts"): every such pair of their development worlds was one actor's.
TIED_LEVEL = 1  # the level of an identifier signal the rule applies to ("different")


def tied_identifier(f: PairFeatures, signal: str) -> np.ndarray | None:
    """The pairs whose ``signal`` (an identifier signal) counts 0 under the rule above,
    or None when none does."""
    if signal not in IDENTIFIER_SIGNALS or TIED not in f.raw or signal not in f.level:
        return None
    tied: np.ndarray = (f.raw[TIED] > 0) & (f.level[signal] == TIED_LEVEL)
    return tied if tied.any() else None


def voice_against_name(f: PairFeatures, contrib: dict[str, np.ndarray]) -> np.ndarray:
    """The pairs whose handle evidence is discounted (see :data:`VOICE_AGAINST`)."""
    if "handle" not in contrib or "style" not in f.level:
        return np.zeros(len(f), dtype=bool)
    voice = sum((contrib[s] for s in VOICE_SIGNALS if s in contrib), start=np.zeros(len(f)))
    no_shared_key = f.level["pgp"] <= 1 if "pgp" in f.level else np.ones(len(f), bool)
    no_migration = f.level["migration"] == 0 if "migration" in f.level else np.ones(len(f),
                                                                                    bool)
    against: np.ndarray = ((f.level["handle"] >= 4) & no_shared_key & no_migration
                           & (f.level["style"] > 0) & (voice < VOICE_AGAINST)
                           & (contrib["handle"] > 0))
    return against


def frequency_penalty(f: PairFeatures, signal: str) -> np.ndarray | None:
    """The log-odds taken from ``signal``'s fitted weight for how common the shared value
    is (:data:`FREQUENCY_ADJUSTED`), or None when the signal has no such adjustment."""
    spec = FREQUENCY_ADJUSTED.get(signal)
    if spec is None or spec[0] not in f.raw or signal not in f.level:
        return None
    raw, levels, k0 = spec
    k = np.asarray(f.raw[raw], dtype=np.float64)
    at = np.isin(f.level[signal], levels)
    penalty: np.ndarray = np.where(at, np.log(np.maximum(1.0, k / k0)), 0.0)
    return penalty


@dataclass
class LinearModel:
    """An additive log-odds model over signal levels."""

    name: str
    intercept: float
    weights: dict[str, list[float]]
    calibration: dict[str, list[float]] | None = None   # isotonic: logit x -> prob y
    meta: dict[str, Any] = field(default_factory=dict)
    # a factor per signal on its contribution (fitted to analysts' judgements:
    # darkmap.resolve.adapt); absent signals count as fitted
    scales: dict[str, float] = field(default_factory=dict)
    # the name against the voice (:data:`VOICE_AGAINST`): its threshold is on the
    # logistic model's scale, so a Fellegi-Sunter model fitted by EM leaves it out
    voice_rule: bool = True

    @property
    def signals(self) -> tuple[str, ...]:
        """Signals this model reads."""
        return tuple(self.weights)

    def contributions(self, f: PairFeatures) -> dict[str, np.ndarray]:
        """Log-odds contribution of every signal for every pair."""
        out = {s: self._contribution(f, s) for s in self.weights}
        discount = self._discount(f, out)
        if discount is not None:
            out["handle"] = np.where(discount, out["handle"] * VOICE_DISCOUNT, out["handle"])
        return out

    def _contribution(self, f: PairFeatures, s: str) -> np.ndarray:
        """Signal ``s``'s log-odds contribution for every pair, before the voice rule."""
        lev = f.level.get(s)
        wa = np.asarray(self.weights[s], dtype=np.float64)
        c: np.ndarray = wa[lev] if lev is not None else np.zeros(len(f))
        penalty = frequency_penalty(f, s)
        if penalty is not None:
            c = c - penalty
        tied = tied_identifier(f, s)
        if tied is not None:
            c = np.where(tied, 0.0, c)
        if s in self.scales:
            c = c * self.scales[s]
        return c

    def _discount(self, f: PairFeatures, contrib: dict[str, np.ndarray]) -> np.ndarray | None:
        """The pairs whose handle counts at :data:`VOICE_DISCOUNT` (None: no pair), from
        the contributions of the handle and the voice signals in ``contrib``."""
        if not self.voice_rule:
            return None
        discount = voice_against_name(f, contrib)
        return discount if discount.any() else None

    def logit(self, f: PairFeatures) -> np.ndarray:
        """Raw log-odds of a match.

        The same sum as over :meth:`contributions`, in the same order, without holding
        every signal's array at once (over millions of pairs each is a float64 array):
        the handle and voice signals are read first for the voice rule, then each
        signal is added as it is computed.
        """
        voice = {s: self._contribution(f, s) for s in ("handle", *VOICE_SIGNALS)
                 if s in self.weights}
        discount = self._discount(f, voice)
        total = np.full(len(f), self.intercept, dtype=np.float64)
        for s in self.weights:
            c = voice.pop(s) if s in voice else self._contribution(f, s)
            if s == "handle" and discount is not None:
                c = np.where(discount, c * VOICE_DISCOUNT, c)
            total += c
            del c
        return total

    def probability(self, f: PairFeatures) -> np.ndarray:
        """Calibrated match probability."""
        return self.calibrate(self.logit(f))

    def calibrate(self, logit: np.ndarray) -> np.ndarray:
        """Map log-odds to probability (isotonic table if present, else logistic)."""
        if self.calibration:
            x = np.asarray(self.calibration["x"])
            y = np.asarray(self.calibration["y"])
            isotonic: np.ndarray = np.interp(logit, x, y)
            return isotonic
        logistic: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(logit, -40, 40)))
        return logistic

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {"name": self.name, "intercept": self.intercept, "weights": self.weights,
               "calibration": self.calibration, "meta": self.meta}
        if self.scales:
            out["scales"] = self.scales
        if not self.voice_rule:
            out["voice_rule"] = False
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LinearModel:
        """Inverse of :meth:`to_json`."""
        return cls(d["name"], float(d["intercept"]),
                   {k: [float(x) for x in v] for k, v in d["weights"].items()},
                   d.get("calibration"), d.get("meta", {}),
                   {k: float(v) for k, v in (d.get("scales") or {}).items()},
                   bool(d.get("voice_rule", True)))


def load_model(variant: str) -> LinearModel:
    """A shipped model: ``all`` signals or ``no_identifiers``."""
    ref = resources.files("darkmap.resolve").joinpath("models", f"linker_{variant}.json")
    return LinearModel.from_json(json.loads(ref.read_text(encoding="utf-8")))


# Signals whose levels are not ordered by agreement: no monotonicity constraint.
_UNORDERED = {"timing", "market"}
# Further views of evidence another signal already reads (phrasing, rare phrases: the
# same text as style): they may add agreement, never count the same disagreement twice.
_POSITIVE_ONLY = {"phrasing", "rare_phrases"}


def fit_logistic(f: PairFeatures, y: np.ndarray, signals: tuple[str, ...], name: str,
                 l2: float = 1.0, sample_weight: np.ndarray | None = None) -> LinearModel:
    """Logistic regression on cumulative level indicators, monotone in agreement.

    Level ``l`` of a signal scores ``sum_{k<=l} beta_k``; every step above the lowest
    informative level is constrained to be >= 0, so more agreement never lowers the
    score. That keeps weights sensible on worlds unlike the training ones (one-hot
    weights fitted freely pick up a generator's quirks and flip sign between bins).
    """
    from scipy.optimize import minimize  # noqa: PLC0415 - ~0.2 s import off every CLI start

    cols: list[tuple[str, int]] = []
    bounds: list[tuple[float | None, float | None]] = []
    for s in signals:
        for lv in range(1, len(SIGNALS[s])):
            cols.append((s, lv))
            free = (lv == 1 and s not in _POSITIVE_ONLY) or s in _UNORDERED
            bounds.append((None, None) if free else (0.0, None))
    x = np.zeros((len(f), len(cols)), dtype=np.float64)
    for c, (s, lv) in enumerate(cols):
        x[:, c] = f.level[s] >= lv if s not in _UNORDERED else f.level[s] == lv
    yy = y.astype(np.float64)
    sw = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    n = max(1.0, float(sw.sum()))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w[1:] + w[0]
        pz = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
        ll = np.sum(sw * (np.logaddexp(0, z) - yy * z)) / n + l2 * np.sum(w[1:] ** 2) / (2 * n)
        g = sw * (pz - yy)
        grad = np.concatenate(([g.sum()], x.T @ g)) / n
        grad[1:] += l2 * w[1:] / n
        return float(ll), grad

    w0 = np.zeros(len(cols) + 1)
    res = minimize(loss, w0, jac=True, method="L-BFGS-B",
                   bounds=[(None, None), *bounds], options={"maxiter": 2000})
    beta = res.x
    weights = {s: [0.0] * len(SIGNALS[s]) for s in signals}
    for c, (s, lv) in enumerate(cols):
        weights[s][lv] = float(beta[c + 1])
    for s in signals:
        if s not in _UNORDERED:
            weights[s] = [float(v) for v in np.cumsum(weights[s])]
        weights[s] = [round(v, 4) for v in weights[s]]
    return LinearModel(name, round(float(beta[0]), 4), weights,
                       meta={"trained_pairs": int(len(y)), "positives": int(y.sum()),
                             "fit": "monotone logistic (L-BFGS-B)", "l2": l2})


def fit_em(f: PairFeatures, signals: tuple[str, ...], u_init: PairFeatures | None = None,
           prior: float = 0.05, iterations: int = 40, fix_u: bool = False,
           init_post: np.ndarray | None = None) -> LinearModel:
    """Fellegi-Sunter m/u probabilities by EM on unlabelled candidate pairs.

    ``init_post`` (a match probability per pair, e.g. from the shipped logistic model)
    starts EM from that partition instead of from a generic agreement ramp: blocked
    pairs are all alike in some respect, and from the ramp EM can settle on "sells
    the same products" as its match class.
    """
    n = len(f)
    lam = prior
    m: dict[str, np.ndarray] = {}
    u: dict[str, np.ndarray] = {}
    for s in signals:
        k = len(SIGNALS[s])
        src = u_init if u_init is not None and len(u_init) else f
        cnt = np.bincount(src.level[s], minlength=k).astype(float) + 0.5
        u[s] = cnt / cnt.sum()
        ramp = np.arange(k, dtype=float) ** 2 + 0.5
        ramp[0] = cnt[0] / cnt.sum() * ramp[1:].sum() if k > 2 else ramp[0]
        m[s] = ramp / ramp.sum()
    if init_post is not None and n:
        post = np.clip(np.asarray(init_post, dtype=np.float64), 1e-6, 1 - 1e-6)
        lam = float(np.clip(post.mean(), 1e-4, 0.999))
        for s in signals:
            k = len(SIGNALS[s])
            m[s] = np.bincount(f.level[s], weights=post, minlength=k) + 1e-3
            m[s] /= m[s].sum()
            u[s] = np.bincount(f.level[s], weights=1 - post, minlength=k) + 1e-3
            u[s] /= u[s].sum()
    for _ in range(iterations):
        lm = np.full(n, np.log(lam))
        lu = np.full(n, np.log(1 - lam))
        for s in signals:
            lm += np.log(m[s][f.level[s]])
            lu += np.log(u[s][f.level[s]])
        post = 1.0 / (1.0 + np.exp(np.clip(lu - lm, -50, 50)))
        lam = float(np.clip(post.mean(), 1e-4, 0.999))
        for s in signals:
            k = len(SIGNALS[s])
            m[s] = np.bincount(f.level[s], weights=post, minlength=k) + 1e-3
            m[s] /= m[s].sum()
            if not fix_u:
                u[s] = np.bincount(f.level[s], weights=1 - post, minlength=k) + 1e-3
                u[s] /= u[s].sum()
    weights = {}
    intercept = float(np.log(lam / (1 - lam)))
    for s in signals:
        w = np.log(m[s] / u[s])
        intercept += float(w[0])
        weights[s] = [round(float(x - w[0]), 4) for x in w]
    return LinearModel("fellegi-sunter", round(intercept, 4), weights,
                       meta={"lambda": lam, "m": {s: m[s].round(5).tolist() for s in signals},
                             "u": {s: u[s].round(5).tolist() for s in signals}},
                       voice_rule=False)
