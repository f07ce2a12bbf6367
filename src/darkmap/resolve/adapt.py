"""Refit the match model to the analysts' judgements (issue #16, learning from analysts).

The shipped model's weights fit the worlds it was trained on; a workspace's analysts
know better. Once enough pairs are judged (``darkmap judge``, proposed by ``darkmap
review``), ``darkmap link --learn`` refits a few interpretable corrections on them and
links with the corrected model (opt-in: on a scene world it gained recall and lost
precision, docs/linking.md "Learning from judgements"):

    logit = intercept + b0 + sum over groups g of (1 + b_g) * contribution_g

one shift ``b0`` of the base rate and one factor for the *handle* and one for the
*writing* (style, phrasing, rare phrases, capitals, symbols): whether, here, a shared
name or a shared way of writing says more or less than in the training worlds is what
look-alikes, impersonators and a scene's boilerplate change, and what a hundred
judgements can tell; a weight per signal level could not be learnt from so few. The
fit is a logistic regression on the judged pairs with the shipped model as its offset
and a Gaussian prior (sd :data:`PRIOR_SD`) pulling every correction towards none, the
factors bounded to :data:`FACTOR_RANGE`: the shipped model is where it starts, the
judgements move it as far as they agree. The pairs are not weighted by their strata:
the queue picks them by their scores, which the model is conditioned on, so an
unweighted fit is unbiased and far steadier (weighted by stratum size, a few pairs of
the big low-score strata decided it and pairwise precision fell by 2-5 points on a
scene world). Below :data:`MIN_JUDGED` judgements, or with fewer than :data:`MIN_EACH`
of either verdict, the model is left as shipped. Judgements stay hard constraints of
the clustering whatever the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import numpy as np

from darkmap.resolve.features import PairFeatures
from darkmap.resolve.match_model import LinearModel
from darkmap.resolve.profiles import Profiles
from darkmap.resolve.review import JudgedPair

__all__ = ["FACTOR_RANGE", "GROUPS", "MIN_EACH", "MIN_JUDGED", "PRIOR_SD",
           "fit_to_judgements"]

GROUPS: dict[str, tuple[str, ...]] = {
    "handle": ("handle",),
    "writing": ("style", "phrasing", "rare_phrases", "capitals", "symbols"),
}
MIN_JUDGED = 20
MIN_EACH = 5
PRIOR_SD = 0.5
FACTOR_RANGE = (0.5, 1.5)
_SHIFT_BOUNDS = (-3.0, 3.0)


def _judged_rows(prof: Profiles, f: PairFeatures, sample: Sequence[JudgedPair]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``f`` of the judged pairs and their verdicts (1 same)."""
    n = max(len(prof), 1)
    key = np.minimum(f.i, f.j) * n + np.maximum(f.i, f.j)
    where = {int(k): pos for pos, k in enumerate(key.tolist())}
    pos, y = [], []
    for jp in sample:
        a, b = prof.index.get(jp.a), prof.index.get(jp.b)
        if a is None or b is None:
            continue
        at = where.get(min(a, b) * n + max(a, b))
        if at is not None:
            pos.append(at)
            y.append(1.0 if jp.same else 0.0)
    return np.asarray(pos, np.int64), np.asarray(y)


def fit_to_judgements(model: LinearModel, f: PairFeatures, prof: Profiles,
                      sample: Sequence[JudgedPair]) -> tuple[LinearModel, dict[str, Any]]:
    """``model`` corrected to the judged pairs of ``sample`` that ``f`` holds (module
    docstring), and a summary of the fit for the run; ``model`` itself when there are
    too few judgements."""
    pos, y = _judged_rows(prof, f, sample)
    same, different = int(y.sum()), int(len(y) - y.sum())
    info: dict[str, Any] = {"judged_pairs": int(len(y)), "same": same, "different": different}
    if len(y) < MIN_JUDGED or min(same, different) < MIN_EACH:
        info["fitted"] = False
        info["why_not"] = (f"needs {MIN_JUDGED} judged scored pairs with at least "
                           f"{MIN_EACH} of each verdict")
        return model, info
    from scipy.optimize import minimize  # noqa: PLC0415 - ~0.2 s import off every CLI start

    contrib = model.contributions(f.subset(pos))
    groups = [g for g, names in GROUPS.items() if any(s in contrib for s in names)]
    x = np.stack([sum((contrib[s] for s in GROUPS[g] if s in contrib),
                      start=np.zeros(len(pos))) for g in groups], axis=1)
    offset = model.logit(f.subset(pos))
    ridge = 1.0 / PRIOR_SD ** 2

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + b[0] + x @ b[1:]
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
        value = float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * ridge * np.sum(b ** 2))
        g = p - y
        return value, np.concatenate(([g.sum()], x.T @ g)) + ridge * b

    lo, hi = FACTOR_RANGE
    bounds = [_SHIFT_BOUNDS] + [(lo - 1.0, hi - 1.0)] * len(groups)
    res = minimize(loss, np.zeros(1 + len(groups)), jac=True, method="L-BFGS-B",
                   bounds=bounds)
    b = res.x
    out = deepcopy(model)
    out.name = f"{model.name}+judged"
    out.intercept = round(model.intercept + float(b[0]), 4)
    out.scales = {s: round(1.0 + float(bg), 4) for g, bg in zip(groups, b[1:], strict=True)
                  for s in GROUPS[g] if s in model.weights}
    info.update({"fitted": True, "base_shift": round(float(b[0]), 4),
                 "group_factors": {g: round(1.0 + float(bg), 4)
                                   for g, bg in zip(groups, b[1:], strict=True)}})
    return out, info
