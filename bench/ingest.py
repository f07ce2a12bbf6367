"""Benchmark: real saved pages per second (parse+extract, and full ingest), one core.

Also times the Hansa CSV (listings/s) through ``darkmap.collect.ingest.ingest`` when the
``csv_mapped`` importer is installed. Prints JSON; never passes or fails.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from darkmap.extract.engine import extract_page, load_templates

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAGES = DATA / "pages"
HANSA_CSV = DATA / "listings" / "hansa-2016-12.csv"


def _pages() -> list[Path]:
    return [p for p in sorted(PAGES.rglob("*")) if p.is_file() and not p.name.startswith("LICENSE")]


def bench_extract(rounds: int = 3) -> dict[str, float]:
    """Decode + parse + template extraction of every real page, in memory."""
    blobs = [(str(p), p.read_bytes()) for p in _pages()]
    load_templates()
    best = float("inf")
    records = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        records = sum(len(extract_page(data, src).records) for src, data in blobs)
        best = min(best, time.perf_counter() - t0)
    return {"pages": len(blobs), "records": records, "seconds": round(best, 4),
            "pages_per_s": round(len(blobs) / best, 1),
            "mb_per_s": round(sum(len(d) for _, d in blobs) / best / 1e6, 2)}


def bench_ingest() -> dict[str, float]:
    """Full ``ingest`` (capture, sniff, extract, store) of all pages into a temp workspace."""
    from darkmap.collect.ingest import ingest
    from darkmap.workspace import Workspace

    load_templates()  # one-time start-up cost, not per page
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        t0 = time.perf_counter()
        summary = ingest(ws, [PAGES])
        dt = time.perf_counter() - t0
        totals = summary.totals()
        t1 = time.perf_counter()
        ingest(ws, [PAGES])
        rerun = time.perf_counter() - t1
        ws.con.close()
    files = totals.get("files", 0)
    return {"files": files, "units_read": totals.get("read", 0),
            "stored": totals.get("stored", 0), "skipped": totals.get("skipped", 0),
            "quarantined": totals.get("quarantined", 0), "seconds": round(dt, 3),
            "pages_per_s": round(files / dt, 1), "rerun_seconds": round(rerun, 3)}


def bench_hansa_csv() -> dict[str, object]:
    """Hansa CSV listings/s through ``ingest`` (needs ``darkmap.collect.csv_mapped``)."""
    try:
        import darkmap.collect.csv_mapped  # noqa: F401
    except ImportError:
        return {"skipped": "darkmap.collect.csv_mapped is not installed"}
    from darkmap.collect.ingest import ingest
    from darkmap.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hansa-2016-12.csv"
        shutil.copy(HANSA_CSV, src)
        ws = Workspace.init(Path(tmp) / "ws")
        t0 = time.perf_counter()
        summary = ingest(ws, [src])
        dt = time.perf_counter() - t0
        n = ws.con.execute("SELECT count(*) FROM listing_observations").fetchone()[0]
        ws.con.close()
    return {"listings": n, "units_read": summary.totals().get("read", 0),
            "importer": summary.files[0].importer if summary.files else None,
            "seconds": round(dt, 3), "listings_per_s": round(n / dt, 1) if dt else None}


def main() -> None:
    """Run every benchmark on one core and print the figures as JSON."""
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    out = {"extract": bench_extract(), "ingest": bench_ingest(), "hansa_csv": bench_hansa_csv()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
