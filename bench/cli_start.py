"""Benchmark: the command line as a user runs it, whole processes.

- ``darkmap --help`` (start-up: what every command pays before its work);
- ``darkmap ingest`` of the real Hansa CSV (14,773 rows) into a new workspace.

Each figure is the median of ``--runs`` runs (wall seconds, and peak memory from the
child's ``ru_maxrss``), with the source tree given by ``--src`` (default: this one) so a
checkout of main can be measured in the same run for comparison. Prints JSON.

    .venv/bin/python bench/cli_start.py [--runs 5] [--src /path/to/other/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
DATA = Path(os.environ.get("DARKMAP_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "data"))
HANSA = DATA / "listings" / "hansa-2016-12.csv"
ENTRY = "import sys; from darkmap.cli import main; sys.argv[0] = 'darkmap'; main()"


def _run(src: Path, args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak MiB of one ``darkmap ARGS`` process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", ENTRY, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
    secs = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"darkmap {' '.join(args)} exited {proc.returncode}")
    return secs, usage.ru_maxrss / 1024


def _median(src: Path, make_args: Any, runs: int) -> dict[str, Any]:
    times, peaks = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            secs, peak = _run(src, make_args(Path(d)))
        times.append(secs)
        peaks.append(peak)
    return {"median_s": round(statistics.median(times), 3),
            "runs_s": [round(t, 3) for t in times], "peak_mb_max": round(max(peaks))}


def main() -> None:
    """Time the commands and print JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--src", action="append", default=None,
                    help="source tree(s) to measure (default: this checkout's src)")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    for src in [Path(s) for s in (args.src or [str(SRC)])]:
        out[str(src)] = {
            "help": _median(src, lambda d: ["--help"], args.runs),
            "ingest_hansa_14773_rows": _median(
                src, lambda d: ["ingest", "--init", "-q", "-w", str(d / "ws"), str(HANSA)],
                args.runs),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
