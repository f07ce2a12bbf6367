"""Benchmark `darkmap link`: time and peak memory at growing numbers of accounts.

Prints JSON. Each size runs in a fresh child process (so peak RSS is that run's own):
a world is generated into a temporary workspace (``--generator synth``: the linker's
own generator; ``sim``: ``darkmap simulate`` folders given with ``--sim-dirs``), then
linked and scored against its truth.

    .venv/bin/python bench/link.py --sizes 10000,100000
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


def _child(accounts: int, seed: int, without: str, method: str) -> None:
    from darkmap.resolve.evaluate import eval_linking
    from darkmap.resolve.link import LinkOptions, link
    from darkmap.resolve.synthworld import WorldParams, make_world
    from darkmap.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        t = time.perf_counter()
        # about 2.2 accounts per actor at the default multi-account rate
        truth = make_world(ws, WorldParams(actors=max(10, int(accounts / 2.2)), seed=seed))
        gen_s = time.perf_counter() - t
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        res = link(ws, LinkOptions(method=method, without=tuple(x for x in without.split(",") if x)))
        link_s = time.perf_counter() - t
        ev = eval_linking(ws, truth)
        ws.close()
    print(json.dumps({
        "accounts": res.summary["accounts"], "generate_s": round(gen_s, 1),
        "link_s": round(link_s, 1), "timings": res.summary["timings"],
        "candidate_pairs": res.summary["candidate_pairs"],
        "peak_rss_mb_after_generation": round(rss_before / 1024),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "pairwise_f1": ev["pairwise_f1"], "bcubed_f1": ev["bcubed_f1"],
    }))


def main() -> None:
    """Run every size in a child process and print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--without", default="")
    ap.add_argument("--method", default="logistic")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child, a.seed, a.without, a.method)
        return
    runs = []
    for n in [int(x) for x in a.sizes.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--seed",
                              str(a.seed), "--without", a.without, "--method", a.method],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            runs.append({"accounts_requested": n, "error": out.stderr[-2000:]})
            continue
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ok = [r for r in runs if "link_s" in r]
    growth = None
    if len(ok) >= 2 and ok[0]["link_s"] > 0:
        growth = round(math.log(ok[-1]["link_s"] / ok[0]["link_s"])
                       / math.log(ok[-1]["accounts"] / ok[0]["accounts"]), 2)
    print(json.dumps({"generator": "synthworld", "method": a.method, "without": a.without,
                      "runs": runs, "time_exponent": growth}, indent=2))


if __name__ == "__main__":
    main()
