"""Benchmark: seconds and peak memory of each export format. Prints JSON; never fails.

Each format runs in a fresh process (``--child``), so its peak resident memory
(``VmHWM``, interpreter and libraries included) is its own; the import of the
exporter and its libraries is timed apart (``import_seconds``) from the export itself.

Workspaces: ``demo`` is the demo pipeline (``darkmap demo``: simulate 300 vendors,
ingest, link, assess, money) unless ``--workspace`` names one. ``big`` (``--big N``,
default 100,000 accounts; 0 skips it) is the demo workspace's evidence and analysis
replicated under new ids until it holds N accounts: simulating, ingesting and linking
a 100,000-vendor world takes hours, and an exporter's cost depends on how many rows it
maps, not on what their text says. The captures are shared, not copied.

    .venv/bin/python bench/export.py [--workspace WS] [--big N] [--formats ftm,stix]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FORMATS = ["ftm", "ftm-extended", "gexf", "graphml", "stix", "misp", "csv", "parquet"]
OUT_NAMES = {"ftm": "e.ftm.json", "ftm-extended": "x.ftm.json", "gexf": "g.gexf",
             "graphml": "g.graphml", "stix": "bundle.json", "misp": "event.json",
             "csv": "csv", "parquet": "parquet"}

# Columns holding an id (or a selector value) that a replica must make unique.
ID_COLUMNS = {"account_id", "listing_id", "obs_id", "persona_id", "a", "b", "fingerprint",
              "key_id", "ident_id", "feedback_id", "entity_id", "judgement_id", "value",
              "handle", "listing_ref", "tag_id", "address"}
REPLICATED = ["accounts", "account_observations", "listings", "listing_observations",
              "feedback", "identifiers", "pgp_keys", "personas", "persona_members",
              "account_links", "listing_assessments", "sales_monthly", "sales_summary",
              "jurisdictions"]


def peak_rss_mib() -> int:
    """This process's peak resident memory in MiB: VmHWM (Linux), which a new program
    starts afresh, where ``ru_maxrss`` keeps the parent's peak across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def child(fmt: str, workspace: Path, out: Path) -> dict[str, Any]:
    """Run one format in this process; its timings and peak memory."""
    t0 = time.perf_counter()
    from darkmap.export import ExportOptions, run_export
    from darkmap.plugins import exporters
    from darkmap.store.workspace import Workspace

    name = "ftm" if fmt == "ftm-extended" else fmt
    exporter = exporters()[name]
    if name in {"ftm", "gexf", "graphml", "stix", "misp"}:  # import the heavy libraries
        __import__({"ftm": "followthemoney.model", "gexf": "networkx",
                    "graphml": "networkx", "stix": "json", "misp": "json"}[name])
    t1 = time.perf_counter()
    options = ExportOptions(extended=fmt == "ftm-extended",
                            all_tables=name in {"csv", "parquet"})
    ws = Workspace.open(workspace, read_only=True)
    written = run_export(exporter, ws, out, options)
    ws.close()
    t2 = time.perf_counter()
    size = (sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir()
            else out.stat().st_size)
    return {"import_seconds": round(t1 - t0, 2), "seconds": round(t2 - t1, 2),
            "peak_rss_mib": peak_rss_mib(),
            "bytes": size, "written": written}


def run_formats(workspace: Path, formats: list[str], tmp: Path) -> dict[str, Any]:
    """Each format in its own process."""
    out: dict[str, Any] = {}
    for fmt in formats:
        target = tmp / f"{workspace.name}-{OUT_NAMES[fmt]}"
        done = subprocess.run([sys.executable, __file__, "--child", fmt, str(workspace),
                               str(target)], capture_output=True, text=True, check=False)
        out[fmt] = (json.loads(done.stdout) if done.returncode == 0
                    else {"error": done.stderr.strip().splitlines()[-1:]})
    return out


def build_demo(path: Path) -> float:
    """The demo pipeline into ``path``; seconds."""
    import darkmap

    t0 = time.perf_counter()
    with darkmap.init_workspace(path) as ws:
        darkmap.run_demo_pipeline(ws, world=path.parent / "world", vendors=300, seed=7)
    return time.perf_counter() - t0


def build_big(demo: Path, path: Path, accounts: int) -> dict[str, Any]:
    """``demo``'s evidence and analysis replicated under new ids up to ``accounts``."""
    import darkmap
    from darkmap.store.workspace import Workspace

    t0 = time.perf_counter()
    ws = darkmap.init_workspace(path)
    con = ws.con
    con.execute(f"ATTACH '{demo / 'darkmap.duckdb'}' AS src (READ_ONLY)")
    n_demo = con.execute("SELECT count(*) FROM src.accounts").fetchone()[0]
    copies = max(1, -(-accounts // n_demo))
    for table in ["markets", "captures", "link_runs"]:
        con.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    for table in REPLICATED:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND "
            "table_catalog = 'src' ORDER BY ordinal_position", [table]).fetchall()]
        exprs = [f"CASE WHEN k = 0 THEN {c} ELSE {c} || '~' || k END" if c in ID_COLUMNS
                 else c for c in cols]
        con.execute(f"INSERT INTO {table} SELECT {', '.join(exprs)} FROM src.{table}, "
                    f"range({copies}) r(k)")
    con.execute("DETACH src")
    counts = {t: ws.table_counts()[t] for t in ("accounts", "listings", "identifiers",
                                                 "personas", "account_links")}
    ws.close()
    Workspace.open(path, read_only=True).close()
    return {"copies": copies, "counts": counts,
            "build_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    """Parse the arguments; run the benchmark or one child."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("FORMAT", "WORKSPACE", "OUT"),
                   help=argparse.SUPPRESS)
    p.add_argument("--workspace", type=Path, help="an existing workspace (default: demo)")
    p.add_argument("--big", type=int, default=100_000,
                   help="accounts in the replicated world (0: skip it)")
    p.add_argument("--formats", default=",".join(FORMATS))
    args = p.parse_args()
    if args.child:
        fmt, ws, out = args.child
        print(json.dumps(child(fmt, Path(ws), Path(out))))
        return
    formats = [f for f in args.formats.split(",") if f]
    result: dict[str, Any] = {"cores": len(os.sched_getaffinity(0)),
                              "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="darkmap-bench-export-") as tmp_name:
        tmp = Path(tmp_name)
        demo = args.workspace
        if demo is None:
            demo = tmp / "demo" / "ws"
            demo.parent.mkdir()
            result["demo_build_seconds"] = round(build_demo(demo), 1)
        result["demo"] = run_formats(demo, formats, tmp)
        if args.big:
            big = tmp / "big" / "ws"
            big.parent.mkdir()
            result["big_build"] = build_big(demo, big, args.big)
            result["big"] = run_formats(big, formats, tmp)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
