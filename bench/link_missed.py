"""Where a world's true pairs were lost: break down the pairs the linker missed.

For each kept world (``bench/link_generators.py --keep DIR`` writes
``DIR/<generator>-<seed>-<actors>/ws`` and ``truth.json``), runs the stages of
``darkmap.resolve.link.link`` with default settings in this process, without storing
anything (candidate pairs, scores, completion, clustering), and sorts every true
same-actor pair left in two personas by the first that applies:

* ``no_block``: never a candidate pair (no block proposed it, completion did not add it);
* ``kept_apart``: scored, and its own evidence is against a match (the chain guard:
  ``link.AGAINST``), so no chain of other accounts may join it;
* ``below_0.1`` / ``below_threshold``: scored under 0.1, or between 0.1 and the merge
  threshold, and not joined through others;
* ``cut``: scored at or above the threshold, and still left apart by the clustering
  (the other pairs between the two personas weigh more).

For the scored ones it also prints the mean contribution of each signal, and the
precision/recall/F1 of the run (the same figures as ``darkmap eval linking`` after
``darkmap link``)::

    python bench/link_missed.py /tmp/lg/simulate-302-2000 [/tmp/lg/scene-900-2000 ...]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkmap.evaluate.linking import score_clusters
from darkmap.resolve.candidates import candidate_pairs
from darkmap.resolve.features import PairFeatures, compare
from darkmap.resolve.link import (
    _completion,
    _concat,
    _shipped,
    clustering_inputs,
    resolve_signals,
)
from darkmap.resolve.match_model import LinearModel
from darkmap.resolve.options import LinkOptions
from darkmap.resolve.partition import correlation_clustering
from darkmap.resolve.profiles import load_profiles
from darkmap.store.workspace import Workspace


@dataclass
class ScoredWorld:
    """One kept world run through the stages of ``link`` with default settings, nothing
    stored: profile rows ``ids``, the scored pairs ``f`` (candidates, then completion)
    with their probabilities ``p``, what the clustering weighs (``weighed``, ``apart``),
    the personas found (``labels``, one per row) and each vendor row's true actor."""

    ids: list[str]
    candidate_pairs: int
    completion_pairs: int
    f: PairFeatures
    p: np.ndarray
    weighed: np.ndarray
    apart: np.ndarray
    labels: np.ndarray
    actor: dict[int, str]
    model: LinearModel
    threshold: float


def scored_world(base: Path) -> ScoredWorld:
    """Run the link stages on the kept world ``base`` (``ws/`` and ``truth.json``)."""
    truth = json.loads((base / "truth.json").read_text(encoding="utf-8"))
    ws = Workspace.open(base / "ws", read_only=True)
    try:
        prof = load_profiles(ws.con)
    finally:
        ws.close()
    n = len(prof)
    opts = LinkOptions()
    use = resolve_signals(None, ())
    model = _shipped(use)
    pairs = candidate_pairs(prof, use_identifiers=True)
    f = compare(prof, pairs[:, 0], pairs[:, 1], use)
    p = model.probability(f)
    extra = _completion(n, pairs, p, [], opts.complete_max)
    if len(extra):
        f2 = compare(prof, extra[:, 0], extra[:, 1], use)
        f = _concat(f, f2)
        p = np.concatenate([p, model.probability(f2)])
    weighed, apart = clustering_inputs(f, p, use, opts.threshold)
    labels = correlation_clustering(n, f.i, f.j, weighed, opts.threshold, [], [],
                                    apart=apart).labels
    actor = {prof.index[a]: str(v["actor"]) for a, v in truth["accounts"].items()
             if isinstance(v, dict) and v.get("role", "vendor") == "vendor"
             and v.get("actor") and a in prof.index}
    return ScoredWorld(list(prof.ids), int(len(pairs)), int(len(extra)), f, p, weighed,
                       apart, labels, actor, model, opts.threshold)


def scores(w: ScoredWorld, labels: np.ndarray) -> dict[str, Any]:
    """Pairwise and B-cubed scores of ``labels`` against the world's truth."""
    return score_clusters({w.ids[i]: str(labels[i]) for i in w.actor},
                          {w.ids[i]: name for i, name in w.actor.items()})


def missed_pairs(base: Path) -> dict[str, Any]:
    """The breakdown of one kept world (see the module docstring)."""
    w = scored_world(base)
    f, p, apart, labels, actor, model = w.f, w.p, w.apart, w.labels, w.actor, w.model
    threshold = w.threshold
    contrib = model.contributions(f)
    scored = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(f.i, f.j, strict=True))}
    by_actor: dict[str, list[int]] = defaultdict(list)
    for idx, name in actor.items():
        by_actor[name].append(idx)
    kinds: Counter[str] = Counter()
    rows: dict[str, list[int]] = defaultdict(list)
    for accounts in by_actor.values():
        accounts.sort()
        for x, a in enumerate(accounts):
            for b in accounts[x + 1:]:
                if labels[a] == labels[b]:
                    continue
                k = scored.get((a, b), scored.get((b, a)))
                if k is None:
                    kind = "no_block"
                elif apart[k]:
                    kind = "kept_apart"
                elif p[k] < 0.1:
                    kind = "below_0.1"
                elif p[k] < threshold:
                    kind = "below_threshold"
                else:
                    kind = "cut"
                kinds[kind] += 1
                if k is not None:
                    rows[kind].append(k)
    score = scores(w, labels)
    signals = {kind: {s: round(float(np.mean(contrib[s][ks])), 2) for s in contrib
                      if abs(float(np.mean(contrib[s][ks]))) >= 0.05}
               for kind, ks in rows.items()}
    return {"world": base.name, "accounts": len(w.ids), "candidate_pairs": w.candidate_pairs,
            "completion_pairs": w.completion_pairs,
            **{k: score[k] for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1",
                                     "bcubed_f1", "true_pairs")},
            "missed": sum(kinds.values()), "missed_by_kind": dict(sorted(kinds.items())),
            "mean_contribution_by_kind": signals}


def main() -> None:
    """Print the breakdown of every world given, as JSON."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("worlds", nargs="+", help="kept world directories (ws/ and truth.json)")
    a = ap.parse_args()
    print(json.dumps([missed_pairs(Path(w)) for w in a.worlds], indent=2))


if __name__ == "__main__":
    main()
