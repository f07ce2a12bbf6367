"""Benchmark: ``darkmap assess`` of a big workspace, stage by stage.

A scene world (``darkmap.training.sceneworld``: ``--actors`` vendors, their accounts,
listings, profiles and feedback written through the store writer) is built and linked
once; then each run assesses a fresh copy of it in a child process: every listing
classified and measured, sales estimated for every account and persona (Monte Carlo
draws, their medians and 90% intervals), jurisdictions inferred. With ``--src`` given
more than once, the trees' runs alternate on copies of the same workspace, so a change
can be measured against main in the same run (the first ``--src`` builds the world).

Each figure is the median of ``--runs`` runs: wall and CPU seconds of the whole
assessment, the CPU seconds of its three stages, and the child's peak memory. Prints
JSON; never passes or fails.

    .venv/bin/python bench/assess_scale.py [--actors 10000] [--runs 3] [--src A/src --src B/src]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"

BUILD = """
import sys
from pathlib import Path
from darkmap.resolve.link import link
from darkmap.store.workspace import Workspace
from darkmap.training.sceneworld import SceneParams, make_scene_world
ws = Workspace.init(Path(sys.argv[1]))
make_scene_world(ws, SceneParams(actors=int(sys.argv[2]), seed=int(sys.argv[3])))
link(ws)
ws.close()
"""

ASSESS = """
import json, resource, sys, time
from pathlib import Path
from darkmap.assess import stage
from darkmap.store.workspace import Workspace
cpu = {}
def timed(name):
    real = getattr(stage, name)
    def run(*a, **k):
        t = time.process_time()
        try:
            return real(*a, **k)
        finally:
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - t
    setattr(stage, name, run)
for name in ("assess_listing", "compute_sales", "compute_jurisdictions"):
    timed(name)
ws = Workspace.open(Path(sys.argv[1]))
t, c = time.perf_counter(), time.process_time()
summary = stage.assess_workspace(ws)
wall, total = time.perf_counter() - t, time.process_time() - c
ws.close()
print(json.dumps({"wall_s": wall, "cpu_s": total, "listings": summary["listings_assessed"],
                  "listings_cpu_s": cpu["assess_listing"], "sales_cpu_s": cpu["compute_sales"],
                  "jurisdictions_cpu_s": cpu["compute_jurisdictions"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(src: Path, code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, check=True,
                           capture_output=True, text=True).stdout


def main() -> None:
    """Build, link, then assess copies of the workspace; print JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--actors", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=952)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--src", action="append", default=None,
                    help="source tree(s) to measure (default: this checkout's src)")
    args = ap.parse_args()
    srcs = [Path(s).resolve() for s in (args.src or [str(SRC)])]
    out: dict[str, Any] = {"actors": args.actors, "seed": args.seed, "runs": args.runs,
                           "load_average": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "built"
        t = time.perf_counter()
        _child(srcs[0], BUILD, str(built), str(args.actors), str(args.seed))
        out["build_and_link_s"] = round(time.perf_counter() - t, 1)
        got: dict[Path, list[dict[str, float]]] = {s: [] for s in srcs}
        for _ in range(args.runs):
            for src in srcs:  # alternated: a change in the machine's load hits all alike
                copy = Path(tmp) / "copy"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(built, copy)
                got[src].append(json.loads(_child(src, ASSESS, str(copy))))
        for src, runs in got.items():
            keys = [k for k in runs[0] if k != "listings"]
            out[str(src)] = {"listings": int(runs[0]["listings"]),
                             **{f"{k}_median": round(statistics.median(r[k] for r in runs), 2)
                                for k in keys},
                             "wall_s_runs": [round(r["wall_s"], 2) for r in runs]}
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
