"""Benchmark: the command line as a user runs it, whole processes.

- ``darkmap --help`` (start-up: what every command pays before its work);
- ``darkmap ingest`` of the real Hansa CSV (14,773 rows) into a new workspace;
- ``darkmap CMD --help`` of every command (``--commands``): the median of each, and the
  slowest (a command's help once imported its whole library: up to 1.5 s).

Each process runs ``darkmap.cli:run``, what the ``darkmap`` console script runs (it defers
pandas, which DuckDB would import on the first parameterised query; ``--entry main`` runs
the click group itself, as a library caller's process would). Each figure is the median of
``--runs`` runs (wall and CPU seconds, peak memory: the child's ``wait4``), with the source
tree given by ``--src`` (default: this one; may be repeated) so a checkout of main can be
measured in the same run for comparison, the runs interleaved. Prints JSON. Compile
the trees' bytecode first (``make bytecode``, or ``python -m compileall -q SRC``) where
``PYTHONDONTWRITEBYTECODE`` is set.

    .venv/bin/python bench/cli_start.py [--runs 5] [--src /path/to/other/src] [--commands]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from darkmap.cli import COMMANDS  # the list of commands only: no command module loads

SRC = Path(__file__).resolve().parents[1] / "src"
DATA = Path(os.environ.get("DARKMAP_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "data"))
HANSA = DATA / "listings" / "hansa-2016-12.csv"
ENTRY = "import sys; from darkmap.cli import {entry}; sys.argv[0] = 'darkmap'; {entry}()"


def _run(src: Path, args: list[str], entry: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak MiB of one ``darkmap ARGS``
    process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", ENTRY.format(entry=entry), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
    secs = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"darkmap {' '.join(args)} exited {proc.returncode}")
    return secs, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


CASES: dict[str, Callable[[Path], list[str]]] = {
    "help": lambda d: ["--help"],
    "ingest_hansa_14773_rows": lambda d: ["ingest", "--init", "-q", "-w", str(d / "ws"),
                                          str(HANSA)],
}


def _summary(times: list[float], cpus: list[float], peaks: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(times), 3),
            "runs_s": [round(t, 3) for t in times],
            "cpu_median_s": round(statistics.median(cpus), 3), "peak_mb_max": round(max(peaks))}


def _command_helps(src: Path, runs: int, entry: str) -> dict[str, Any]:
    """``darkmap CMD --help`` of every command ``runs`` times: each one's median wall
    seconds, and the slowest and the median of those medians."""
    medians = {}
    for name in sorted(COMMANDS):
        medians[name] = round(statistics.median(
            _run(src, [name, "--help"], entry)[0] for _ in range(runs)), 3)
    slowest = max(medians, key=lambda n: medians[n])
    return {"commands": len(medians), "median_s": round(statistics.median(medians.values()), 3),
            "slowest": [slowest, medians[slowest]], "each_median_s": medians}


def main() -> None:
    """Time the commands and print JSON (the trees' runs interleaved: round r runs every
    case of every tree once, so a change in the machine's load hits all of them alike)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--src", action="append", default=None,
                    help="source tree(s) to measure (default: this checkout's src)")
    ap.add_argument("--entry", choices=("run", "main"), default="run",
                    help="run: the console script (default); main: the click group")
    ap.add_argument("--commands", action="store_true",
                    help="also time every command's --help (per command: the median)")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()],
                           "entry": f"darkmap.cli:{args.entry}"}
    srcs = [Path(s) for s in (args.src or [str(SRC)])]
    got: dict[tuple[Path, str], tuple[list[float], list[float], list[float]]] = {
        (src, case): ([], [], []) for src in srcs for case in CASES}
    for _ in range(args.runs):
        for src in srcs:
            for case, make_args in CASES.items():
                with tempfile.TemporaryDirectory() as d:
                    secs, cpu, peak = _run(src, make_args(Path(d)), args.entry)
                for values, value in zip(got[src, case], (secs, cpu, peak), strict=True):
                    values.append(value)
    for src in srcs:
        out[str(src)] = {case: _summary(*got[src, case]) for case in CASES}
        if args.commands:
            out[str(src)]["command_help"] = _command_helps(src, args.runs, args.entry)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
