"""Ingest the same files with two source trees of darkmap and compare what they store.

Usage: python scripts/same_store.py --src OLD/src [--src NEW/src] [--args A --args B] PATH...

Each tree (the second defaults to this checkout's src) runs ``darkmap ingest --init -q
--allow-unrecognised --json PATH...`` (the console script's entry, ``darkmap.cli:run``) in
a process of its own into a new workspace; the two are then compared: every table's rows
(:mod:`table_hashes`, volatile columns left out), the schema (tables, columns,
constraints, indexes, views, sequences, migrations applied) and the run's JSON summary
(without its run id). ``--args`` gives each side's further ingest options (e.g. the
same tree twice with ``--args=-j1 --args=-j2``). Prints what differs; exit 0 when nothing
does, 1 otherwise. Used to check that a refactor of the ingest path leaves the store
unchanged (#21).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_hashes import schema_catalog, table_hashes  # a sibling script, not a package

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
ENTRY = "import sys; from darkmap.cli import run; sys.argv[0] = 'darkmap'; run()"


def ingest_with(src: Path, ws: Path, paths: list[str], extra: list[str]) -> dict[str, object]:
    """Run ``darkmap ingest`` of ``paths`` into ``ws`` with the tree ``src`` (and the
    options ``extra``); its summary."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", ENTRY, "ingest", "--init", "-q",
                          "--allow-unrecognised", "--json", *extra, "-w", str(ws), *paths],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{src}: darkmap ingest exited {out.returncode}\n{out.stderr[-2000:]}")
    # trees before 2026-12-06 let DuckDB's progress bar into stdout (a commit over 2 s)
    summary: dict[str, object] = json.loads(out.stdout[out.stdout.find("{"):])
    summary.pop("run_id", None)
    return summary


def catalog(db: Path) -> dict[str, list[list[str]]]:
    """The schema of the DuckDB file ``db``, as text rows."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {k: [[str(v) for v in row] for row in rows]
                for k, rows in schema_catalog(con).items()}
    finally:
        con.close()


def main() -> int:
    """Compare the stores two trees make of the same files; 0 when identical."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", action="append", required=True,
                    help="source tree to compare (twice, or once to compare with this one)")
    ap.add_argument("--args", action="append", default=[],
                    help="further ingest options of one side, as one string (twice: "
                         "each side's; once: the first side's)")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    srcs = [Path(s) for s in args.src] + ([HERE_SRC] if len(args.src) == 1 else [])
    if len(srcs) != 2:
        ap.error("give one or two --src")
    extras = [a.split() for a in args.args] + [[]] * (2 - len(args.args))
    seen = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(srcs):
            ws = Path(tmp) / f"ws{i}"
            summary = ingest_with(src, ws, args.paths, extras[i])
            db = ws / "darkmap.duckdb"
            seen.append({"summary": summary, "schema": catalog(db),
                         "tables": table_hashes(db)})
    diffs = [k for k in ("summary", "schema", "tables") if seen[0][k] != seen[1][k]]
    for k in diffs:
        print(f"{k} differ:\n  {srcs[0]}: {json.dumps(seen[0][k])[:2000]}\n"
              f"  {srcs[1]}: {json.dumps(seen[1][k])[:2000]}")
    rows = {t: h["rows"] for t, h in seen[1]["tables"].items() if h["rows"]}
    print(json.dumps({"same": not diffs, "sources": [str(s) for s in srcs],
                      "paths": args.paths, "rows": rows}, indent=1))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
