"""Benchmark: real saved pages per second (parse+extract, and full ingest), one core and
with worker processes (``--jobs``).

Also times the Hansa CSV (listings/s) through ``darkmap.collect.ingest.ingest``. Prints
JSON; never passes or fails.

The process is pinned to one core and DuckDB is told to use one thread (two DuckDB
threads sharing one core only contend). ``--jobs 1,2`` also times the full ingest of the
pages with two worker processes extracting ahead (``darkmap ingest --jobs 2``): that
measurement may use every core, and its rounds alternate with the one-process rounds
so that both see the same machine. One-time start-up (importing the plug-ins and
their libraries, loading templates and mappings, DuckDB's first Arrow scan) is timed
once and reported as ``startup_seconds``, not charged to the per-file figures. Each
ingest figure is the best of ``--rounds`` runs into a fresh workspace (``*_median``:
the median run), with wall and CPU seconds; the machine's load average is reported alongside,
since other processes on a shared machine slow the wall-clock figures.

    .venv/bin/python bench/ingest.py [--rounds N] [--duckdb-threads N] [--jobs 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from darkmap.extract.engine import extract_page, load_templates

DATA = Path(os.environ.get("DARKMAP_DATA", Path(__file__).resolve().parents[1].parent
                           / "shared" / "data"))
PAGES = DATA / "pages"
HANSA_CSV = DATA / "listings" / "hansa-2016-12.csv"


def _pages(folder: Path = PAGES) -> list[Path]:
    return [p for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith("LICENSE")]


def _startup() -> float:
    """Import and load everything a first ingest needs; return the seconds it took."""
    t0 = time.perf_counter()
    from darkmap.collect.ingest import ingest
    from darkmap.importers.mappings import mappings
    from darkmap.plugins import importers
    from darkmap.store.workspace import Workspace

    importers()
    mappings()
    load_templates()
    with tempfile.TemporaryDirectory() as tmp:  # DuckDB's first Arrow scan imports modules
        ws = Workspace.init(Path(tmp) / "ws")
        ingest(ws, [next(iter(_pages()))])
        ws.con.close()
    return time.perf_counter() - t0


def page_blobs(folder: Path = PAGES) -> list[tuple[str, bytes]]:
    """(path, bytes) of every real page under ``folder``, read once."""
    return [(str(p), p.read_bytes()) for p in _pages(folder)]


def timed_pages(run: Callable[[], Any], rounds: int,
                pages: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Call ``run`` (work on ``pages``) ``rounds`` times; best and median figures."""
    walls, cpus = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    n, best, med = len(pages), min(walls), statistics.median(walls)
    return {"pages": n, "seconds": round(best, 4), "median_seconds": round(med, 4),
            "cpu_seconds": round(min(cpus), 4), "pages_per_s": round(n / best, 1),
            "pages_per_s_median": round(n / med, 1), "pages_per_cpu_s": round(n / min(cpus), 1),
            "mb_per_s": round(sum(len(d) for _, d in pages) / best / 1e6, 2)}


def bench_extract(rounds: int = 3) -> dict[str, Any]:
    """Decode + parse + template extraction of every real page, in memory."""
    pages = page_blobs()
    load_templates()
    records = [0]

    def run() -> None:
        records[0] = sum(len(extract_page(data, src).records) for src, data in pages)

    return {**timed_pages(run, rounds, pages), "records": records[0]}


# the cores this process may use when imported (main() then pins itself to the first)
_ALL_CORES: set[int] = set(os.sched_getaffinity(0))
_ONE_CORE: set[int] = {min(_ALL_CORES)}  # the core the one-process figures run on


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _timed_ingests(paths: list[Path], rounds: int, threads: int | None,
                   after: Callable[[Any, Any], dict[str, Any]],
                   jobs: tuple[int, ...] = (1,)) -> dict[int, dict[str, Any]]:
    """Ingest ``paths`` into a fresh workspace ``rounds`` times per number of jobs (the
    rounds of each alternate); best and median times per number of jobs. CPU seconds
    count the worker processes too."""
    from darkmap.collect.ingest import ingest
    from darkmap.store.workspace import Workspace

    walls: dict[int, list[float]] = {j: [] for j in jobs}
    cpus: dict[int, list[float]] = {j: [] for j in jobs}
    info: dict[int, dict[str, Any]] = {}
    for _ in range(rounds):
        for j in jobs:
            os.sched_setaffinity(0, _ONE_CORE if j == 1 else _ALL_CORES)
            with tempfile.TemporaryDirectory() as tmp:
                ws = Workspace.init(Path(tmp) / "ws")
                if threads:
                    ws.con.execute(f"SET threads = {int(threads)}")
                t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
                summary = ingest(ws, paths, jobs=j)
                walls[j].append(time.perf_counter() - t0)
                cpus[j].append(time.process_time() - c0 + _children_cpu() - k0)
                info[j] = {**after(ws, summary), "prepared_by_workers": summary.prepared_ahead}
                ws.con.close()
    os.sched_setaffinity(0, _ONE_CORE)
    return {j: {**info[j], "jobs": j, "seconds": round(min(walls[j]), 4),
                "median_seconds": round(statistics.median(walls[j]), 4),
                "cpu_seconds": round(min(cpus[j]), 4),
                "median_cpu_seconds": round(statistics.median(cpus[j]), 4),
                "runs_seconds": [round(w, 3) for w in walls[j]]} for j in jobs}


def bench_ingest(rounds: int, threads: int | None, jobs: tuple[int, ...] = (1,)
                 ) -> dict[str, Any]:
    """Full ``ingest`` (capture, sniff, extract, store) of all pages into a fresh workspace,
    per number of jobs (the first one's figures at the top level, all under ``by_jobs``)."""
    from darkmap.collect.ingest import ingest

    def after(ws: Any, summary: Any) -> dict[str, Any]:
        t = summary.totals()
        t1 = time.perf_counter()
        ingest(ws, [PAGES])
        return {"files": t.get("files", 0), "units_read": t.get("read", 0),
                "stored": t.get("stored", 0), "skipped": t.get("skipped", 0),
                "quarantined": t.get("quarantined", 0),
                "rerun_seconds": round(time.perf_counter() - t1, 3)}

    by = _timed_ingests([PAGES], rounds, threads, after, jobs)
    for out in by.values():
        out["pages_per_s"] = round(out["files"] / out["seconds"], 1)
        out["pages_per_s_median"] = round(out["files"] / out["median_seconds"], 1)
        out["pages_per_cpu_s"] = round(out["files"] / out["cpu_seconds"], 1)
    first = dict(by[jobs[0]])
    if len(jobs) > 1:
        first["by_jobs"] = {str(j): by[j] for j in jobs}
    return first


def bench_hansa_csv(rounds: int, threads: int | None) -> dict[str, Any]:
    """Hansa CSV listings/s through ``ingest`` (the ``csv`` importer)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hansa-2016-12.csv"
        shutil.copy(HANSA_CSV, src)

        def after(ws: Any, summary: Any) -> dict[str, Any]:
            n = ws.con.execute("SELECT count(*) FROM listing_observations").fetchone()[0]
            return {"listings": n, "units_read": summary.totals().get("read", 0),
                    "importer": summary.files[0].importer if summary.files else None}

        out = _timed_ingests([src], rounds, threads, after)[1]
    out["listings_per_s"] = round(out["listings"] / out["seconds"], 1)
    out["listings_per_s_median"] = round(out["listings"] / out["median_seconds"], 1)
    out["listings_per_cpu_s"] = round(out["listings"] / out["cpu_seconds"], 1)
    return out


def main() -> None:
    """Run every benchmark on one core and print the figures as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duckdb-threads", type=int, default=1,
                    help="DuckDB threads (0: DuckDB's default)")
    ap.add_argument("--jobs", default="1",
                    help="numbers of ingest jobs to time the pages with, e.g. 1,2")
    args = ap.parse_args()
    jobs = tuple(int(j) for j in args.jobs.split(","))
    os.sched_setaffinity(0, _ONE_CORE)
    load = os.getloadavg()
    startup = _startup()
    out = {"load_average": [round(x, 2) for x in load], "cpus": os.cpu_count(),
           "duckdb_threads": args.duckdb_threads or "default",
           "startup_seconds": round(startup, 3), "extract": bench_extract(),
           "ingest": bench_ingest(args.rounds, args.duckdb_threads or None, jobs),
           "hansa_csv": bench_hansa_csv(args.rounds, args.duckdb_threads or None)}
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
