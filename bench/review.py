"""Benchmark: the review queue with simulated analysts (issue #16, item 2).

For each seed a ``darkmap simulate`` world is ingested and linked; then, in batches, the
review queue proposes pairs, a simulated analyst judges them from the world's truth
(``darkmap judge``), and the linking is estimated from the judgements. After all
batches the world is linked again (the judgements are hard constraints). Printed as JSON
per seed: the judged estimate of the precision of merged candidate pairs and of the
recall of candidate pairs (with 95% intervals) against their true values, after each
batch; pairwise and B-cubed F1 before and after; seconds of the queue and the estimate.
Never passes or fails.

    PYTHONPATH=src .venv/bin/python bench/review.py [--seeds 41 43] [--vendors 400]
        [--judgements 100] [--batch 20]
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
from darkmap.resolve.link import link
from darkmap.resolve.review import judged_estimate, review_queue
from darkmap.simulate import SimParams, simulate
from darkmap.store.personas import link_scores
from darkmap.store.workspace import Workspace


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


def run_seed(seed: int, vendors: int, total: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        simulate(world, seed, SimParams(vendors=vendors, chain=False))
        truth = json.loads((world / "truth.json").read_text(encoding="utf-8"))
        actor = _actors(truth)
        ws = Workspace.init(Path(tmp) / "ws")
        ingest(ws, [world / "pages", world / "listings", world / "seized"])
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
            rounds.append({"judged": judged, "precision": est.precision,
                           "precision_95": list(est.precision_interval),
                           "recall": est.recall, "recall_95": list(est.recall_interval)})
        link(ws)
        after = eval_linking(ws, truth)
        ws.close()
    return {"seed": seed, "vendors": vendors, "candidates": est.candidates,
            "merged_candidates": est.merged,
            "true_precision_of_merged_candidates": round(true_p, 4),
            "true_recall_of_candidates": round(true_r, 4), "rounds": rounds,
            "precision_error": round(rounds[-1]["precision"] - true_p, 4) if rounds else None,
            "recall_error": round(rounds[-1]["recall"] - true_r, 4) if rounds else None,
            "pairwise_f1_before": round(before["pairwise_f1"], 4),
            "pairwise_f1_after": round(after["pairwise_f1"], 4),
            "pairwise_precision_before": round(before["pairwise_precision"], 4),
            "pairwise_precision_after": round(after["pairwise_precision"], 4),
            "bcubed_f1_before": round(before["bcubed_f1"], 4),
            "bcubed_f1_after": round(after["bcubed_f1"], 4),
            "queue_seconds": round(queue_s, 3), "estimate_seconds": round(est_s, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[41, 43])
    ap.add_argument("--vendors", type=int, default=400)
    ap.add_argument("--judgements", type=int, default=100)
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args()
    out = [run_seed(s, args.vendors, args.judgements, args.batch) for s in args.seeds]
    print(json.dumps({"bench": "review", "runs": out}, indent=2))


if __name__ == "__main__":
    main()
