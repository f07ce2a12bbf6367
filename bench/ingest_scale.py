"""Benchmark: a listing CSV of growing size through ``darkmap ingest``, against DuckDB's
own typed load of the same file, in the same run.

The file is the real Hansa CSV repeated with new listing ids (``id + copy * 10**7``) up
to each size. For each size: seconds and rows/s of darkmap's ingest (in a child process, a
fresh workspace, peak memory from ``VmHWM``), and of DuckDB ``read_csv`` into a typed
table (the same seven columns, the ", " delimiter given, timestamps parsed), each the
median of ``--runs`` runs. darkmap runs with the jobs ``darkmap ingest`` uses by default
(one per core; ``--jobs`` to choose): with two or more, the file is read in a process of
its own (:mod:`darkmap.collect.apart`), whose CPU is counted in ``darkmap_cpu_s`` (also
given alone) and whose peak memory is given beside the pipeline's. CPU seconds (user +
system, all threads, over the timed part) are given beside the wall time: on a shared
machine they are the steadier figure. Prints JSON; never passes or fails.

    .venv/bin/python bench/ingest_scale.py [--sizes 100000,1000000] [--runs 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(os.environ.get("DARKMAP_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "data"))
HANSA = DATA / "listings" / "hansa-2016-12.csv"


def make_csv(path: Path, rows: int) -> None:
    """The Hansa CSV repeated with new listing ids (id + copy * 10**7), ``rows`` lines."""
    lines = HANSA.read_bytes().splitlines(keepends=True)
    written = 0
    with open(path, "wb") as out:
        copy = 0
        while written < rows:
            for line in lines:
                if written >= rows:
                    break
                # the second field is the listing id: "... ", "18365", ...
                head, sep, rest = line.partition(b'", "')
                ref, sep2, tail = rest.partition(b'", "')
                new = int(ref) + copy * 10_000_000 if ref.isdigit() else ref
                out.write(head + sep + str(new).encode() + sep2 + tail)
                written += 1
            copy += 1


def _peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> float:
    """CPU seconds (user + system) this process has used, all its threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _children() -> tuple[float, float]:
    """CPU seconds and peak MB of this process's ended children (the file's reader)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def _darkmap(path: str, q: Any, jobs: int = 0) -> None:
    from darkmap.collect import ingest as ingest_mod
    from darkmap.collect.ingest import ingest
    from darkmap.collect.prefetch import default_jobs
    from darkmap.store.workspace import Workspace

    # the per-file time budget guards against hostile input; on a shared, loaded machine
    # a big honest file may need more, and this measures throughput, not the guard
    ingest_mod.FILE_SECONDS_PER_MB = 120.0

    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as d:
        ws = Workspace.init(Path(d) / "ws")
        t, c, (kids, _) = time.perf_counter(), _cpu(), _children()
        # the jobs `darkmap ingest` uses by default: with 2 or more, the file is read in
        # a process of its own while it is written
        [f] = ingest(ws, [Path(path)], jobs=jobs or default_jobs()).files
        secs, cpu = time.perf_counter() - t, _cpu() - c
        kids_after, reader_peak = _children()
        ws.close()
    q.put({"seconds": secs, "cpu_s": cpu + kids_after - kids, "reader_cpu_s": kids_after - kids,
           "read": f.read, "stored": f.stored, "quarantined": f.quarantined,
           "peak_mb": _peak_mb(), "reader_peak_mb": reader_peak, "error": f.error})


def _duckdb(path: str, q: Any) -> None:
    import duckdb

    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as d:
        con = duckdb.connect(str(Path(d) / "db.duckdb"))  # noqa: TID251 - the baseline
        t, c = time.perf_counter(), _cpu()
        # parsed and typed in one statement: timestamp, integer id, price and currency
        con.execute(
            "CREATE TABLE typed AS SELECT strptime(left(c0, 19), '%Y-%m-%d %H:%M:%S') AS "
            "scraped_at, c1::BIGINT AS listing_id, c2 AS title, c3 AS vendor, "
            "TRY_CAST(replace(split_part(c4, ' ', 2), ',', '') AS DOUBLE) AS price, "
            "split_part(c4, ' ', 1) AS currency, c5 AS category, c6 AS ship_from "
            "FROM read_csv(?, delim=', ', quote='\"', header=false, null_padding=true, "
            "all_varchar=true, names=['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6'])", [path])
        n = con.execute("SELECT count(*) FROM typed").fetchone()[0]
        secs, cpu = time.perf_counter() - t, _cpu() - c
        con.close()
    q.put({"seconds": secs, "cpu_s": cpu, "rows": n, "peak_mb": _peak_mb()})


def _guarded(fn: Any, path: str, q: Any, *args: Any) -> None:
    try:
        fn(path, q, *args)
    except Exception as exc:  # noqa: BLE001 - report it, never hang the parent
        q.put({"seconds": float("nan"), "cpu_s": float("nan"),
               "error": f"{type(exc).__name__}: {exc}"[:500], "peak_mb": 0, "read": 0,
               "stored": 0, "quarantined": 0})


def _child(fn: Any, path: Path, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_guarded, args=(fn, str(path), q, *args))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    """Run every size and print one JSON document."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="folder for the generated files")
    ap.add_argument("--jobs", type=int, default=0,
                    help="darkmap's --jobs (default: what `darkmap ingest` uses, one per core)")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_average_start": [round(x, 2) for x in os.getloadavg()],
                           "sizes": {}}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for size in (int(s) for s in args.sizes.split(",")):
            path = Path(d) / f"hansa-{size}.csv"
            make_csv(path, size)
            dm = [_child(_darkmap, path, args.jobs) for _ in range(args.runs)]
            db = [_child(_duckdb, path) for _ in range(args.runs)]
            dsec = statistics.median(r["seconds"] for r in dm)
            bsec = statistics.median(r["seconds"] for r in db)
            dcpu = statistics.median(r["cpu_s"] for r in dm)
            bcpu = statistics.median(r["cpu_s"] for r in db)
            out["sizes"][str(size)] = {
                "file_mb": round(path.stat().st_size / 2**20, 1),
                "darkmap_s": round(dsec, 2), "darkmap_rows_per_s": round(size / dsec),
                "darkmap_cpu_s": round(dcpu, 2),
                "darkmap_cpu_us_per_row": round(dcpu / size * 1e6, 2),
                "darkmap_peak_mb": round(max(r["peak_mb"] for r in dm)),
                "darkmap_reader_peak_mb": round(max(r.get("reader_peak_mb", 0) for r in dm)),
                "darkmap_reader_cpu_s": round(statistics.median(
                    r.get("reader_cpu_s", 0) for r in dm), 2),
                "darkmap_read_stored_quarantined": [dm[0]["read"], dm[0]["stored"],
                                                    dm[0]["quarantined"]],
                "darkmap_error": dm[0].get("error"),
                "duckdb_typed_load_s": round(bsec, 2),
                "duckdb_rows_per_s": round(size / bsec),
                "duckdb_peak_mb": round(max(r["peak_mb"] for r in db)),
                "duckdb_cpu_s": round(bcpu, 2),
                "ratio_to_duckdb": round(dsec / bsec, 2),
                "cpu_ratio_to_duckdb": round(dcpu / bcpu, 2),
                "runs_s": [round(r["seconds"], 2) for r in dm],
                "runs_cpu_s": [round(r["cpu_s"], 2) for r in dm],
            }
            path.unlink()
            print(json.dumps({size: out["sizes"][str(size)]}), flush=True)
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
