"""Benchmark: listing datasets and the seized dump, parse-only and through full ingest.

Prints JSON: Hansa CSV listings/s parse-only (row by row, and column by column as the
``csv`` importer reads it) and through ``ingest`` into a temp workspace, and Dream dump
rows/s (parse-only and ingest). One core, one DuckDB thread, start-up (imports, first
Arrow scan) done before timing; wall and CPU figures with the load average, since the
machine may be shared. Figures, never pass/fail.

    .venv/bin/python bench/ingest_datasets.py [--repeat N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from darkmap.collect.ingest import ingest
from darkmap.importers.csv_mapped import MappedCsvReader
from darkmap.importers.mappings import mappings
from darkmap.importers.sqldump import SqlStats, read_dump
from darkmap.store.workspace import Workspace

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HANSA = DATA / "listings" / "hansa-2016-12.csv"
DREAM = DATA / "seized" / "dream-2016-sellers.sql"


def _best(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best wall and best CPU seconds of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def _parse_hansa(columnar: bool = False) -> int:
    m = next(x for x in mappings("csv") if x.name == "hansa-2016-12")
    r = MappedCsvReader(HANSA, m, columnar=columnar)
    for _ in r:
        pass
    return r.stats.rows


def _parse_dream() -> int:
    st = SqlStats()
    for _ in read_dump(DREAM, stats=st):
        pass
    return st.rows


def _ingest_time(path: Path, repeat: int) -> tuple[float, float]:
    """Best wall and CPU time of ``ingest`` alone (workspace creation is not timed)."""
    walls, cpus = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            ws = Workspace.init(Path(d) / "ws")
            ws.con.execute("SET threads = 1")
            try:
                t0, c0 = time.perf_counter(), time.process_time()
                [f] = ingest(ws, [path]).files
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                assert f.error is None, f.error
            finally:
                ws.close()
    return min(walls), min(cpus)


def _ingest(path: Path) -> int:
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace.init(Path(d) / "ws")
        try:
            [f] = ingest(ws, [path]).files
        finally:
            ws.close()
        return f.read


def _rates(n: int, times: tuple[float, float]) -> dict[str, float]:
    return {"per_s": round(n / times[0]), "per_cpu_s": round(n / times[1])}


def main() -> None:
    """Run the dataset benchmarks on one core and print JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile the Hansa ingest")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    load = os.getloadavg()
    rows = _parse_hansa()
    _parse_hansa(columnar=True)
    dream_rows = _parse_dream()
    _ingest(DREAM)  # start-up: DuckDB's first Arrow scan imports modules
    out = {
        "load_average": [round(x, 2) for x in load],
        "hansa_rows": rows,
        "hansa_parse_rows": _rates(rows, _best(_parse_hansa, args.repeat)),
        "hansa_parse_columnar": _rates(rows, _best(lambda: _parse_hansa(True), args.repeat)),
        "hansa_ingest": _rates(rows, _ingest_time(HANSA, args.repeat)),
        "dream_rows": dream_rows,
        "dream_parse": _rates(dream_rows, _best(_parse_dream, args.repeat)),
        "dream_ingest": _rates(dream_rows, _ingest_time(DREAM, args.repeat)),
        "python": sys.version.split()[0],
    }
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(_ingest, HANSA)
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        print(s.getvalue(), file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
