"""Benchmark: listing datasets and the seized dump, parse-only and through full ingest.

Prints JSON: Hansa CSV listings/s parse-only and through ``ingest`` into a temp
workspace, and Dream dump rows/s (parse-only and ingest). Figures, never pass/fail.

    .venv/bin/python bench/ingest_datasets.py [--repeat N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

from darkmap.collect.csv_mapped import MappedCsvReader
from darkmap.collect.ingest import ingest
from darkmap.collect.mappings import mappings
from darkmap.collect.sqldump import SqlStats, read_dump
from darkmap.workspace import Workspace

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HANSA = DATA / "listings" / "hansa-2016-12.csv"
DREAM = DATA / "seized" / "dream-2016-sellers.sql"


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _parse_hansa() -> int:
    m = next(x for x in mappings("csv") if x.name == "hansa-2016-12")
    r = MappedCsvReader(HANSA, m)
    for _ in r:
        pass
    return r.stats.rows


def _parse_dream() -> int:
    st = SqlStats()
    for _ in read_dump(DREAM, stats=st):
        pass
    return st.rows


def _ingest_time(path: Path, repeat: int) -> float:
    """Best time of ``ingest`` alone (workspace creation is not timed)."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            ws = Workspace.init(Path(d) / "ws")
            try:
                t0 = time.perf_counter()
                [f] = ingest(ws, [path]).files
                times.append(time.perf_counter() - t0)
                assert f.error is None, f.error
            finally:
                ws.close()
    return min(times)


def _ingest(path: Path) -> int:
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace.init(Path(d) / "ws")
        try:
            [f] = ingest(ws, [path]).files
        finally:
            ws.close()
        return f.read


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile the Hansa ingest")
    args = ap.parse_args()
    rows = _parse_hansa()
    dream_rows = _parse_dream()
    out = {
        "hansa_rows": rows,
        "hansa_parse_listings_per_s": round(rows / _best(_parse_hansa, args.repeat)),
        "hansa_ingest_listings_per_s": round(rows / _ingest_time(HANSA, args.repeat)),
        "dream_rows": dream_rows,
        "dream_parse_rows_per_s": round(dream_rows / _best(_parse_dream, args.repeat)),
        "dream_ingest_rows_per_s": round(dream_rows / _ingest_time(DREAM, args.repeat)),
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
