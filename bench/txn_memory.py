"""Benchmark: memory held by one DuckDB transaction of long rows, by row group size.

Why the seized dump's ingest memory grows with the file (#21): a file is ingested in one
transaction (its rows commit with its ``processed`` row), and DuckDB keeps a
transaction's appended rows in memory until a whole row group (122,880 rows by default)
is full, when it writes it to the database file ahead of the commit. A dump's tables
have few rows, each long (profiles, PGP blocks): 180,000 rows of a 1 GB dump never
fill the row groups, so the transaction holds them all.

This inserts ``--batches`` Arrow batches of ``--rows`` rows of ``--width`` characters
into one table in one transaction, for each row group size given (0: DuckDB's default),
and prints, per size, the process's RSS and DuckDB's own accounted memory
(``duckdb_memory()``) after every few batches, and the RSS after the commit. JSON;
never passes or fails.

    PYTHONPATH=src .venv/bin/python bench/txn_memory.py [--sizes 0,8192] [--batches 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def _rss_mb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def one(row_group: int, batches: int, rows: int, width: int) -> dict[str, Any]:
    """In a fresh process: the transaction's memory with ``row_group`` rows per group."""
    import duckdb
    import pyarrow as pa

    from darkmap.store.writer import insert_arrow

    with tempfile.TemporaryDirectory() as d:
        con = duckdb.connect()  # noqa: TID251 - DuckDB itself is what is measured
        opt = f" (ROW_GROUP_SIZE {row_group})" if row_group else ""
        con.execute(f"ATTACH '{Path(d) / 'x.duckdb'}' AS w{opt}")
        con.execute("USE w")
        con.execute("CREATE TABLE t (id VARCHAR, body VARCHAR)")
        con.execute("BEGIN TRANSACTION")
        steps = []
        for b in range(batches):
            tbl = pa.table({"id": [f"{b}-{k}" for k in range(rows)],
                            "body": ["x" * width + str(k) for k in range(rows)]})
            insert_arrow(con, "t", tbl)   # darkmap's bulk writer
            if (b + 1) % max(1, batches // 5) == 0:
                row = con.execute("SELECT sum(memory_usage_bytes) // 1048576 "
                                  "FROM duckdb_memory()").fetchone()
                steps.append({"rows": (b + 1) * rows, "rss_mb": _rss_mb(),
                              "duckdb_mb": int(row[0]) if row else 0})
        con.execute("COMMIT")
        out = {"row_group_size": row_group or "default (122,880)", "steps": steps,
               "rss_mb_after_commit": _rss_mb()}
        con.close()
    return out


def main() -> None:
    """Measure each row group size in its own process and print JSON."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(one(*map(int, sys.argv[2:6]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0,8192")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--width", type=int, default=1000)
    a = ap.parse_args()
    runs = []
    for size in (int(s) for s in a.sizes.split(",")):
        got = subprocess.run([sys.executable, __file__, "--child", str(size), str(a.batches),
                              str(a.rows), str(a.width)], capture_output=True, text=True,
                             check=True)
        runs.append(json.loads(got.stdout))
    print(json.dumps({"batches": a.batches, "rows_per_batch": a.rows, "width": a.width,
                      "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
