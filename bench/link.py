"""Benchmark `darkmap link`: time and peak memory at growing numbers of accounts.

Prints JSON. Every run links in a fresh child process, so peak RSS is that run's own.

* ``--workspaces WS[,WS...]`` (with ``--truths T[,T...]``): workspaces already ingested
  from ``darkmap simulate`` folders (ingest once, e.g. with ``darkmap ingest``); only
  ``link`` is timed. This is how the figures in docs/linking.md are made:

      darkmap simulate --seed 900 --vendors 100000 --no-chain --out /tmp/w100k
      darkmap ingest -w /tmp/ws100k /tmp/w100k/pages /tmp/w100k/listings /tmp/w100k/seized
      .venv/bin/python bench/link.py --workspaces /tmp/ws10k,/tmp/ws100k \\
          --truths /tmp/w10k/truth.json,/tmp/w100k/truth.json

* otherwise ``--sizes N[,N...]``: a world of the linker's own generator
  (``resolve/synthworld.py``) is generated into a temporary workspace per size.

``time_exponent`` is the slope of log(link seconds) against log(accounts) between the
smallest and the largest run.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _link_and_score(ws: Any, truth: dict[str, Any] | None, method: str,
                    without: str) -> dict[str, Any]:
    from darkmap.evaluate.linking import eval_linking
    from darkmap.resolve.link import LinkOptions, link

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    res = link(ws, LinkOptions(method=method,
                               without=tuple(x for x in without.split(",") if x)))
    link_s = time.perf_counter() - t
    out = {"accounts": res.summary["accounts"], "link_s": round(link_s, 1),
           "timings": res.summary["timings"],
           "candidate_pairs": res.summary["candidate_pairs"],
           "completion_pairs": res.summary["completion_pairs"],
           "peak_rss_mb_before_link": round(rss_before / 1024),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if truth is not None:
        ev = eval_linking(ws, truth)
        out.update({k: ev[k] for k in ("pairwise_precision", "pairwise_recall",
                                       "pairwise_f1", "bcubed_f1")})
    return out


def _child_synth(accounts: int, seed: int, without: str, method: str) -> dict[str, Any]:
    from darkmap.store.workspace import Workspace
    from darkmap.training.synthworld import WorldParams, make_world

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        t = time.perf_counter()
        # about 2.2 accounts per actor at the default multi-account rate
        truth = make_world(ws, WorldParams(actors=max(10, int(accounts / 2.2)), seed=seed))
        gen_s = time.perf_counter() - t
        out = _link_and_score(ws, truth, method, without)
        ws.close()
    return {"generate_s": round(gen_s, 1), **out}


def _child_ws(path: str, truth_path: str, without: str, method: str) -> dict[str, Any]:
    from darkmap.store.workspace import Workspace

    truth = json.loads(Path(truth_path).read_text(encoding="utf-8")) if truth_path else None
    ws = Workspace.open(Path(path))
    try:
        return {"workspace": path, **_link_and_score(ws, truth, method, without)}
    finally:
        ws.close()


def main() -> None:
    """Run every size in a child process and print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--workspaces", default="")
    ap.add_argument("--truths", default="")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--without", default="")
    ap.add_argument("--method", default="logistic")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--child-truth", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        if a.child.isdigit():
            out = _child_synth(int(a.child), a.seed, a.without, a.method)
        else:
            out = _child_ws(a.child, a.child_truth, a.without, a.method)
        print(json.dumps(out))
        return
    if a.workspaces:
        wss = [x for x in a.workspaces.split(",") if x]
        truths = [x for x in a.truths.split(",") if x] or [""] * len(wss)
        jobs = list(zip(wss, truths, strict=True))
    else:
        jobs = [(x, "") for x in a.sizes.split(",") if x]
    runs = []
    for job, truth in jobs:
        out = subprocess.run([sys.executable, __file__, "--child", job, "--child-truth", truth,
                              "--seed", str(a.seed), "--without", a.without,
                              "--method", a.method],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            runs.append({"run": job, "error": out.stderr[-2000:]})
            continue
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ok = [r for r in runs if "link_s" in r]
    growth = None
    if len(ok) >= 2 and ok[0]["link_s"] > 0 and ok[-1]["accounts"] != ok[0]["accounts"]:
        growth = round(math.log(ok[-1]["link_s"] / ok[0]["link_s"])
                       / math.log(ok[-1]["accounts"] / ok[0]["accounts"]), 2)
    print(json.dumps({"generator": "workspaces" if a.workspaces else "synthworld",
                      "method": a.method, "without": a.without, "runs": runs,
                      "time_exponent": growth}, indent=2))


if __name__ == "__main__":
    main()
