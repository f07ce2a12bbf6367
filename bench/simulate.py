"""Benchmark `darkmap simulate`: wall time and peak memory by world size.

Each size runs in a child process so its peak resident memory (ru_maxrss) is its own.
Prints JSON; never passes or fails. Sizes default to 300, 10,000 and 100,000 accounts
(the last takes several minutes and a few GB of disk); pass sizes as arguments to
choose others, e.g. ``python bench/simulate.py 300 2000``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from darkmap.simulate import SimParams, simulate
t0 = time.perf_counter()
summary = simulate(Path(sys.argv[1]), 1, SimParams(vendors=int(sys.argv[2])))
secs = time.perf_counter() - t0
print(json.dumps({"seconds": round(secs, 2), "summary": summary,
                  "maxrss_mb": round(
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def _disk(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(path):
        for n in names:
            files += 1
            size += os.path.getsize(os.path.join(root, n))
    return files, size


def run(size: int, base: Path) -> dict[str, object]:
    """Simulate ``size`` accounts in a child process; return its figures."""
    out = base / f"world-{size}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), str(size)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    files, nbytes = _disk(out)
    s = child["summary"]
    res = {
        "accounts": size, "seconds": child["seconds"], "process_seconds": round(wall, 2),
        "peak_rss_mb": child["maxrss_mb"], "files": files, "output_mb": round(nbytes / 2**20, 1),
        "listings": s["listings"], "orders": s["orders"], "transactions": s.get("transactions"),
        "pgp_keys": s["pgp_keys"], "pages": sum(s.get("pages", {}).values()),
        "accounts_per_second": round(size / child["seconds"], 1),
    }
    shutil.rmtree(out, ignore_errors=True)
    return res


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [300, 10_000, 100_000]
    base = Path(tempfile.mkdtemp(prefix="darkmap-bench-sim-"))
    try:
        results = [run(n, base) for n in sizes]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({"benchmark": "simulate", "cpu_count": os.cpu_count(),
                      "parent_maxrss_mb": round(
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
