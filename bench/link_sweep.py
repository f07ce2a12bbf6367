"""How calibrated the shipped model is on a kept world, and what another merge threshold
would have given there.

For each kept world (``bench/link_generators.py --keep DIR`` writes
``DIR/<generator>-<seed>-<actors>/ws`` and ``truth.json``), runs the stages of
``darkmap.resolve.link.link`` with default settings in this process, without storing
anything (as ``bench/link_missed.py`` does), and prints as JSON:

* ``calibration``: per probability band of the scored pairs (candidates and completion),
  how many there are, their mean probability and the share of them that are one actor's;
  ``calibrating_shift``, the shift of the model's intercept that would make it calibrated
  on this world (maximum likelihood, every other weight kept; 0 = calibrated, > 0 = the
  model is under-confident here). A workspace has no truth to measure it with: this is
  what a threshold chosen from the model's own expected precision would get wrong;
* ``thresholds``: pairwise precision / recall / F1 and B-cubed F1 of the personas the
  clustering makes at each merge threshold given (``--thresholds``; the default is 0.3);
* ``objective``: the clustering's objective at the default threshold (the summed weight
  of the pairs inside personas, an unscored pair at ``partition.MISSING``) for the
  personas found and for the true personas (the truth's pairs kept apart by their own
  evidence counted). When the truth scores lower, a better search would not find the
  missed pairs: the weights, not the search, keep them apart::

    python bench/link_sweep.py /tmp/lg/simulate-302-2000 [/tmp/lg/scene-900-2000 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

from darkmap.resolve.link import clustering_inputs, resolve_signals
from darkmap.resolve.partition import MISSING, correlation_clustering, pair_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from link_missed import ScoredWorld, scored_world, scores

BANDS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


def _same_actor(w: ScoredWorld) -> np.ndarray:
    """Per scored pair: its two accounts are one actor's (non-vendors are nobody's)."""
    a = np.array([w.actor.get(i, "") for i in range(len(w.ids))], dtype=object)
    ai, aj = a[w.f.i], a[w.f.j]
    same: np.ndarray = (ai == aj) & (ai != "")
    return same


def calibration(w: ScoredWorld) -> dict[str, Any]:
    """Predicted against observed match rate per band, and the calibrating shift."""
    y = _same_actor(w)
    bands = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True):
        m = (w.p >= lo) & ((w.p < hi) if hi < 1 else (w.p <= hi))
        if m.any():
            bands.append({"band": f"{lo:g}-{hi:g}", "pairs": int(m.sum()),
                          "mean_p": round(float(w.p[m].mean()), 3),
                          "observed": round(float(y[m].mean()), 3)})
    z = w.model.logit(w.f)

    def nll(t: float) -> float:
        q = np.clip(expit(z + t), 1e-12, 1 - 1e-12)
        return float(-(np.log(q[y]).sum() + np.log(1 - q[~y]).sum()))

    shift = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x
    return {"bands": bands, "calibrating_shift": round(float(shift), 2)}


def _objective(w: ScoredWorld, labels: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    inside = labels[w.f.i] == labels[w.f.j]
    sizes = np.unique(labels, return_counts=True)[1].astype(np.int64)
    unscored = int((sizes * (sizes - 1) // 2).sum() - inside.sum())
    return {"value": round(float(weights[inside].sum()) + MISSING * unscored, 1),
            "unscored_pairs_inside": unscored,
            "kept_apart_pairs_inside": int((inside & w.apart).sum())}


def sweep(base: Path, thresholds: list[float]) -> dict[str, Any]:
    """Everything the module docstring lists, for one kept world."""
    w = scored_world(base)
    runs = []
    for t in thresholds:
        if t == w.threshold:
            labels = w.labels
        else:
            weighed, apart = clustering_inputs(w.f, w.p, resolve_signals(None, ()), t)
            labels = correlation_clustering(len(w.ids), w.f.i, w.f.j, weighed, t, [], [],
                                            apart=apart).labels
        s = scores(w, labels)
        runs.append({"threshold": t, **{k: s[k] for k in (
            "pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1")}})
    # the truth as labels: each vendor row its actor, every other row alone
    names = {name: k for k, name in enumerate(sorted(set(w.actor.values())))}
    truth = np.array([names[w.actor[i]] if i in w.actor else len(names) + i
                      for i in range(len(w.ids))], dtype=np.int64)
    weights = pair_weights(w.weighed, w.threshold)
    return {"world": base.name, "accounts": len(w.ids), "scored_pairs": len(w.p),
            "calibration": calibration(w), "thresholds": runs,
            "objective": {"found": _objective(w, w.labels, weights),
                          "truth": _objective(w, truth, weights)}}


def main() -> None:
    """Print the figures of every world given, as JSON."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("worlds", nargs="+", help="kept world directories (ws/ and truth.json)")
    ap.add_argument("--thresholds", default="0.15,0.2,0.25,0.3,0.35,0.4,0.5",
                    help="merge thresholds, comma-separated")
    a = ap.parse_args()
    ts = [float(x) for x in a.thresholds.split(",") if x]
    print(json.dumps([sweep(Path(w), ts) for w in a.worlds], indent=2))


if __name__ == "__main__":
    main()
