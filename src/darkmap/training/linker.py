"""Train and check the shipped logistic linker on labelled worlds.

``python -m darkmap.training.linker --out src/darkmap/resolve/models`` builds worlds (this
package's own generator, with varied realism knobs, plus ``darkmap simulate`` output
folders given with ``--sim``), takes the candidate pairs the linker would score, labels
them from the truth and fits one model per signal set. Held-out worlds are scored
separately by :func:`reliability` to check calibration.

The shipped models were trained on own-generator seeds 101-106 (800 actors, realism
knobs varied per seed) plus ``darkmap simulate`` seeds 201-204 (2,000 vendors) and 205
(10,000 vendors) at default knobs, all generated with ``--no-chain``::

    for s in 201 202 203 204; do
        darkmap simulate --seed $s --vendors 2000 --no-chain --out sim/$s
    done
    darkmap simulate --seed 205 --vendors 10000 --no-chain --out sim/205
    python -m darkmap.training.linker --out src/darkmap/resolve/models --sim sim/20? --cache ws/

Simulator seeds 200-299 are the *training range*: evaluate only on other seeds. The
simulator's true pairs carry ``--sim-share`` (0.75) of the fit, the own generator's the
rest (:func:`generator_weights`), and every evidence group real data often lacks is
also seen as unknown (:func:`with_missing_evidence`). The models were last retrained on
exactly these worlds when ``rare_phrases`` was added (docs/linking.md, "Rare phrases,
product words, generator balance, unknown evidence"), on a machine with 2 cores: the
text blocks' nearest-neighbour search sums in BLAS, and with another number of threads
a few near-tied neighbours change (seed 201: 67,525 candidate pairs on 2 cores, 67,532
on 1), so the refitted weights differ in the second decimal.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from darkmap.collect.ingest import ingest
from darkmap.resolve.candidates import candidate_pairs
from darkmap.resolve.features import IDENTIFIER_SIGNALS, SIGNALS, PairFeatures, compare
from darkmap.resolve.match_model import LinearModel, fit_logistic
from darkmap.resolve.profiles import load_profiles
from darkmap.store.workspace import Workspace
from darkmap.training.synthworld import WorldParams, make_world

__all__ = ["MISSING_GROUPS", "ReliabilityBin", "generator_weights", "labelled_pairs",
           "reliability", "sim_worlds", "train_models", "training_worlds",
           "with_missing_evidence"]

VARIANTS = {"all": tuple(SIGNALS),
            "no_identifiers": tuple(s for s in SIGNALS if s not in IDENTIFIER_SIGNALS)}


def labelled_pairs(ws: Workspace, truth: dict[str, Any],
                   use: tuple[str, ...]) -> tuple[PairFeatures, np.ndarray]:
    """The linker's candidate pairs in ``ws`` with same-actor labels from ``truth``."""
    prof = load_profiles(ws.con)
    pairs = candidate_pairs(prof, use_identifiers=any(s in use for s in IDENTIFIER_SIGNALS))
    f = compare(prof, pairs[:, 0], pairs[:, 1], use)
    actor = {a: v.get("actor") for a, v in truth.get("accounts", {}).items()}
    lab = np.array([actor.get(x) for x in prof.ids], dtype=object)
    ai, aj = lab[f.i], lab[f.j]
    y = np.array([a is not None and a == b for a, b in zip(ai, aj, strict=True)], dtype=np.int8)
    return f, y


class ReliabilityBin(TypedDict):
    """Predicted and observed match rate of the pairs in one probability bin."""

    bin: str
    pairs: int
    mean_predicted: float
    observed: float


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[ReliabilityBin]:
    """Predicted vs observed match rate per probability bin."""
    edges = np.linspace(0, 1, bins + 1)
    out: list[ReliabilityBin] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if m.sum():
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "pairs": int(m.sum()),
                        "mean_predicted": round(float(p[m].mean()), 3),
                        "observed": round(float(y[m].mean()), 3)})
    return out


def _concat(parts: list[PairFeatures]) -> PairFeatures:
    """The pairs of every part, in order."""
    return PairFeatures(np.concatenate([p.i for p in parts]), np.concatenate([p.j for p in parts]),
                        {k: np.concatenate([p.raw[k] for p in parts]) for k in parts[0].raw},
                        {k: np.concatenate([p.level[k] for p in parts]) for k in parts[0].level})


def training_worlds(seeds: list[int], actors: int,
                    base: Path) -> list[tuple[Workspace, dict[str, Any]]]:
    """Own-generator worlds with realism knobs varied by seed."""
    out = []
    rng = np.random.default_rng(12345)
    for s in seeds:
        params = WorldParams(actors=actors, seed=s,
                             style_noise=float(rng.choice([0.1, 0.3, 0.5])),
                             handle_change_rate=float(rng.choice([0.1, 0.3, 0.6])),
                             key_reuse_rate=float(rng.choice([0.3, 0.6, 0.9])))
        ws = Workspace.init(base / f"world-{s}")
        out.append((ws, make_world(ws, params)))
    return out


def sim_worlds(dirs: list[Path], base: Path) -> list[tuple[Workspace, dict[str, Any]]]:
    """Workspaces ingested from ``darkmap simulate`` output folders."""
    out = []
    for d in dirs:
        path = base / f"sim-{d.name}"
        if (path / "darkmap.duckdb").exists():  # ingested by an earlier run (--cache)
            ws = Workspace.open(path)
        else:
            ws = Workspace.init(path)
            parts = [d / x for x in ("pages", "listings", "seized") if (d / x).exists()]
            ingest(ws, parts)
        out.append((ws, json.loads((d / "truth.json").read_text(encoding="utf-8"))))
    return out


def generator_weights(groups: list[np.ndarray], shares: list[float]) -> np.ndarray:
    """Per-pair weights giving each generator's *matches* the share ``shares[g]`` of the
    fit, with a mean weight of one (so the L2 penalty keeps its strength).

    Pooled as they come, the generator with more labelled matches would decide every
    weight; its quirks would become the model's.
    """
    pos = [max(1.0, float(y.sum())) for y in groups]
    w = np.concatenate([np.full(len(y), sh / p)
                        for y, sh, p in zip(groups, shares, pos, strict=True)])
    return w * (len(w) / w.sum()) if w.sum() > 0 else w


# Evidence a real workspace often lacks and the training worlds always have: a dataset
# of titles has no free text, a seized table no listings, a page no shipping line or
# dates. Each group goes missing together, as it does in real data.
MISSING_GROUPS: dict[str, tuple[str, ...]] = {
    "no free text": ("style", "phrasing", "rare_phrases", "capitals", "symbols"),
    "no listings": ("products", "price"),
    "no shipping": ("ships_from", "ships_to"),
    "no dates": ("timing", "migration"),
    "no key": ("pgp",),
    "no feedback": ("feedback",),
}


def with_missing_evidence(f: PairFeatures, y: np.ndarray, weights: np.ndarray | None,
                          share: float = 0.1, seed: int = 0
                          ) -> tuple[PairFeatures, np.ndarray, np.ndarray | None]:
    """``f`` plus, per :data:`MISSING_GROUPS` group, a random ``share`` of its pairs
    again with that group's signals at level 0 ("not known").

    Without them the weight of "not known" is never fitted: it stays 0 while every
    known level of a text signal starts near -2.3, so two title-only accounts would
    score as if their texts had agreed. With them it is fitted to what an unknown
    value is worth: the average of the levels it hides.
    """
    rng = np.random.default_rng(seed)
    parts, ys = [f], [y]
    ws: list[np.ndarray] = [] if weights is None else [weights]
    for group in MISSING_GROUPS.values():
        names = [s for s in group if s in f.level]
        if not names or not len(f):
            continue
        k = np.sort(rng.choice(len(f), size=max(1, int(share * len(f))), replace=False))
        sub = f.subset(k)
        for s in names:
            sub.level[s] = np.zeros(len(sub), dtype=np.int8)
        parts.append(sub)
        ys.append(y[k])
        if weights is not None:
            ws.append(weights[k])
    return _concat(parts), np.concatenate(ys), np.concatenate(ws) if ws else None


def train_models(worlds: list[tuple[Workspace, dict[str, Any]]],
                 sim_share: float | None = None,
                 n_own: int = 0) -> dict[str, LinearModel]:
    """Fit one logistic model per signal-set variant.

    The first ``n_own`` worlds are this package's generator, the rest ``darkmap
    simulate`` worlds; with ``sim_share`` the simulator's matches carry that share of
    the fit (:func:`generator_weights`), otherwise every pair weighs the same.
    """
    models = {}
    for variant, use in VARIANTS.items():
        feats, ys = [], []
        for ws, truth in worlds:
            f, y = labelled_pairs(ws, truth, use)
            feats.append(f)
            ys.append(y)
        weights = None
        if sim_share is not None and 0 < n_own < len(worlds):
            own, sim = np.concatenate(ys[:n_own]), np.concatenate(ys[n_own:])
            weights = generator_weights([own, sim], [1.0 - sim_share, sim_share])
        f_all, y_all, weights = with_missing_evidence(_concat(feats), np.concatenate(ys),
                                                      weights)
        model = fit_logistic(f_all, y_all, use, "logistic", sample_weight=weights)
        model.meta.update({"variant": variant, "version": 3, "worlds": len(worlds),
                           "simulator_share": sim_share,
                           "missing_groups": list(MISSING_GROUPS)})
        models[variant] = model
    return models


def main() -> None:
    """Command-line entry: train and write the shipped models."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="101,102,103,104,105,106")
    ap.add_argument("--actors", type=int, default=800)
    ap.add_argument("--sim", type=Path, nargs="*", default=[])
    ap.add_argument("--sim-share", type=float, default=0.75,
                    help="share of the fit carried by the --sim worlds' matches")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the simulated worlds' workspaces here and reuse them")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        worlds = training_worlds([int(s) for s in a.seeds.split(",") if s], a.actors, Path(tmp))
        n_own = len(worlds)
        if a.cache:
            a.cache.mkdir(parents=True, exist_ok=True)
        worlds += sim_worlds(a.sim, a.cache or Path(tmp))
        models = train_models(worlds, a.sim_share, n_own)
        for ws, _ in worlds:
            ws.close()
    a.out.mkdir(parents=True, exist_ok=True)
    for variant, m in models.items():
        (a.out / f"linker_{variant}.json").write_text(
            json.dumps(m.to_json(), indent=1) + "\n", encoding="utf-8")
        print(variant, json.dumps(m.weights))  # noqa: T201 - output of this python -m entry


if __name__ == "__main__":
    main()
