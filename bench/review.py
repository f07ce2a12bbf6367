"""Benchmark: the review queue with simulated analysts (issue #16, item 2).

For each seed a ``darkmap simulate`` world is ingested and linked (or, with
``--generator scene``, a scene world of ``darkmap.training.sceneworld`` is written);
then, in batches, the review queue proposes pairs, a simulated analyst judges them from
the world's truth (``darkmap judge``), the linking is estimated from the judgements, and
(``--relink-each``) the world is linked again, the judgements hard constraints (with
``--learn`` the model refitted to them too: ``darkmap.resolve.adapt``). Without it the world is
linked again once, after all batches. Printed as JSON per seed: the judged estimate of
the precision of merged candidate pairs and of the recall of candidate pairs (with 95%
intervals) against their true values for the linking they estimate (which
``--relink-each`` changes from batch to batch), after each batch; pairwise and B-cubed
F1 before and after (and after each batch with ``--relink-each``), with the refit's
factors; seconds of the queue and the estimate; with ``--thresholds``, pairwise P / R /
F1 of the world linked again after the last batch at each of those merge thresholds, the
judgements as constraints. Never passes or fails.

    PYTHONPATH=src .venv/bin/python bench/review.py [--seeds 41 43] [--vendors 400]
        [--judgements 100] [--batch 20] [--generator simulate|scene] [--relink-each]
        [--thresholds 0.15,0.2,0.3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from darkmap.collect.ingest import ingest
from darkmap.evaluate.linking import eval_linking
from darkmap.resolve.judgements import judge
from darkmap.resolve.link import LinkOptions, link
from darkmap.resolve.review import judged_estimate, review_queue
from darkmap.simulate import SimParams, simulate
from darkmap.store.personas import link_scores
from darkmap.store.workspace import Workspace
from darkmap.training.sceneworld import SceneParams, make_scene_world


def _actors(truth: dict[str, Any]) -> dict[str, str]:
    return {a: str(v["actor"]) for a, v in truth["accounts"].items()
            if isinstance(v, dict) and v.get("actor")}


def true_figures(ws: Workspace, actor: dict[str, str]) -> tuple[float, float]:
    """The true precision of merged candidate pairs and recall of candidate pairs."""
    a, b, _, merged = link_scores(ws.con)
    same = [actor.get(x) is not None and actor.get(x) == actor.get(y)
            for x, y in zip(a, b, strict=True)]
    tp = sum(1 for s, m in zip(same, merged, strict=True) if s and m)
    n_merged = sum(merged)
    return (tp / n_merged if n_merged else 1.0), (tp / sum(same) if any(same) else 1.0)


def _world(generator: str, seed: int, vendors: int, tmp: Path
           ) -> tuple[Workspace, dict[str, Any]]:
    ws = Workspace.init(tmp / "ws")
    if generator == "scene":
        return ws, make_scene_world(ws, SceneParams(actors=vendors, seed=seed))
    world = tmp / "world"
    simulate(world, seed, SimParams(vendors=vendors, chain=False))
    ingest(ws, [world / "pages", world / "listings", world / "seized"])
    return ws, json.loads((world / "truth.json").read_text(encoding="utf-8"))


def _at_thresholds(ws: Workspace, truth: dict[str, Any], thresholds: tuple[float, ...],
                   learn: bool) -> dict[str, list[float]]:
    """Pairwise P / R / F1 of the world linked again at each merge threshold, the
    judgements as constraints: what the best threshold for these judgements would give."""
    out = {}
    for t in thresholds:
        link(ws, LinkOptions(learn=learn, threshold=t))
        ev = eval_linking(ws, truth)
        out[f"{t:g}"] = [round(ev[k], 4) for k in
                         ("pairwise_precision", "pairwise_recall", "pairwise_f1")]
    return out


def run_seed(seed: int, vendors: int, total: int, batch: int, generator: str = "simulate",
             relink_each: bool = False, learn: bool = False,
             thresholds: tuple[float, ...] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ws, truth = _world(generator, seed, vendors, Path(tmp))
        actor = _actors(truth)
        link(ws)
        before = eval_linking(ws, truth)
        true_p, true_r = true_figures(ws, actor)
        rounds = []
        queue_s = est_s = 0.0
        judged = 0
        while judged < total:
            t0 = time.perf_counter()
            queue = review_queue(ws, n=min(batch, total - judged), seed=seed)
            queue_s += time.perf_counter() - t0
            if not queue:
                break
            for q in queue:
                same = actor.get(q.a) is not None and actor.get(q.a) == actor.get(q.b)
                judge(ws, q.a, q.b, "same" if same else "different", author="sim-analyst")
            judged += len(queue)
            t0 = time.perf_counter()
            est = judged_estimate(ws, seed=seed)
            est_s += time.perf_counter() - t0
            now_p, now_r = true_figures(ws, actor)  # of the linking being estimated
            row = {"judged": judged, "precision": est.precision,
                   "precision_95": list(est.precision_interval),
                   "true_precision": round(now_p, 4),
                   "recall": est.recall, "recall_95": list(est.recall_interval),
                   "true_recall": round(now_r, 4)}
            if relink_each:
                res = link(ws, LinkOptions(learn=learn))
                ev = eval_linking(ws, truth)
                row.update({"pairwise_f1": round(ev["pairwise_f1"], 4),
                            "pairwise_precision": round(ev["pairwise_precision"], 4),
                            "judged_fit": res.summary["judged_fit"]})
            rounds.append(row)
        if not relink_each:
            link(ws, LinkOptions(learn=learn))
        after = eval_linking(ws, truth)
        at_t = _at_thresholds(ws, truth, thresholds, learn) if thresholds else None
        ws.close()
    return {"generator": generator, "seed": seed, "vendors": vendors,
            "candidates": est.candidates,
            "merged_candidates": est.merged,
            "true_precision_of_merged_candidates": round(true_p, 4),
            "true_recall_of_candidates": round(true_r, 4), "rounds": rounds,
            "precision_error": round(rounds[-1]["precision"] - rounds[-1]["true_precision"], 4)
            if rounds else None,
            "recall_error": round(rounds[-1]["recall"] - rounds[-1]["true_recall"], 4)
            if rounds else None,
            "pairwise_f1_before": round(before["pairwise_f1"], 4),
            "pairwise_f1_after": round(after["pairwise_f1"], 4),
            "pairwise_precision_before": round(before["pairwise_precision"], 4),
            "pairwise_precision_after": round(after["pairwise_precision"], 4),
            "bcubed_f1_before": round(before["bcubed_f1"], 4),
            "bcubed_f1_after": round(after["bcubed_f1"], 4),
            "queue_seconds": round(queue_s, 3), "estimate_seconds": round(est_s, 3),
            **({"after_at_thresholds": at_t} if at_t else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[41, 43])
    ap.add_argument("--vendors", type=int, default=400)
    ap.add_argument("--judgements", type=int, default=100)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--generator", choices=("simulate", "scene"), default="simulate")
    ap.add_argument("--relink-each", action="store_true",
                    help="link again after every batch")
    ap.add_argument("--learn", action="store_true",
                    help="relink with the model refitted to the judgements (link --learn)")
    ap.add_argument("--thresholds", default="",
                    help="after the last batch, also link at these merge thresholds "
                         "(e.g. 0.15,0.2,0.3,0.4) and give pairwise P / R / F1 at each")
    args = ap.parse_args()
    thresholds = tuple(float(t) for t in args.thresholds.split(",") if t.strip())
    out = [run_seed(s, args.vendors, args.judgements, args.batch, args.generator,
                    args.relink_each, args.learn, thresholds) for s in args.seeds]
    print(json.dumps({"bench": "review", "runs": out}, indent=2))


if __name__ == "__main__":
    main()
