"""Benchmark the operational layer; prints JSON figures (never pass/fail).

A task force of three agencies in two countries with ``--cases`` cases (default 1,000,
each a record in a case compartment, audited) holding ``--selectors`` selectors (default
100,000, spread over the cases' compartments of two agencies); then a third agency
submits ``--submission`` new selectors (default 10,000, 1% of them already held) and the
deconfliction (keyed hashes, match, notices to both sides, audit) is timed: seconds, peak
Python memory of the submission (tracemalloc) and the process's peak resident memory.
The issue's target is under 2 s. DuckDB writes the set-up's backlog to the database file
(``CHECKPOINT``) before the timing, so the submission's commit pays for itself only.
``--store postgres`` runs the same on the team server
(a throw-away database made on ``--server``, default ``$DARKMAP_TEST_PG`` or the local
test server, dropped afterwards). With ``--login-role`` the submission is made by an
officer connecting as its own login role (a member of ``darkmap_ops``: the server's
row-level security and its deconfliction functions apply, as for a real user), not by
the server's owner.

Usage: .venv/bin/python bench/operations.py [--store duckdb|postgres] [--cases 1000]
       [--selectors 100000] [--submission 10000] [--server postgresql://...]
       [--login-role]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from darkmap.ops import access, audit, deconflict, records
from darkmap.ops.records import Case
from darkmap.store.operations import OPS_ROLE, Space
from darkmap.store.team import init_server, open_ops_server
from darkmap.store.workspace import Workspace

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:55432/postgres"


@contextmanager
def space(store: str, path: Path, server: str) -> Iterator[tuple[Space, str | None]]:
    """A new workspace, or a new database on the server (dropped afterwards, with the
    login roles made on it: :func:`login_role`); and the server's URL, if any."""
    ws = Workspace.init(path)
    if store == "duckdb":
        try:
            yield ws, None
        finally:
            ws.close()
        return
    db = f"darkmap_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {db}")
    try:
        dsn = make_conninfo(**{**conninfo_to_dict(server), "dbname": db})
        init_server(dsn)
        with open_ops_server(dsn, ws) as ops:
            yield ops, dsn
    finally:
        ws.close()
        with psycopg.connect(server, autocommit=True) as pg:
            pg.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            pg.execute(f"DROP ROLE IF EXISTS {db}_officer")


def login_role(dsn: str) -> tuple[str, str]:
    """A login role in ``darkmap_ops`` for the database of ``dsn``: (role, its URL)."""
    params = conninfo_to_dict(dsn)
    role = f"{params['dbname']}_officer"
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f"CREATE ROLE {role} LOGIN")
        pg.execute(f"GRANT {OPS_ROLE} TO {role}")
    params.pop("password", None)
    return role, make_conninfo(**{**params, "user": role})


def build(ws: Space, cases: int, selectors: int) -> tuple[list[str], float]:
    """The task force, its cases and their selectors; (compartments, seconds)."""
    t0 = time.perf_counter()
    for agency, country in (("bka", "DE"), ("lka", "DE"), ("fbi", "US")):
        access.add_agency(ws.con, "setup" if agency == "bka" else "bka-admin", agency,
                          agency.upper(), country, f"{agency} desk")
        access.add_user(ws.con, "setup" if agency == "bka" else "bka-admin",
                        f"{agency}-admin", agency, "admin")
    comps = []
    for i in range(cases):
        user = ("bka-admin", "fbi-admin")[i % 2]
        row = records.add_record(ws, user, Case(f"case {i}"), provenance=f"bench {i}")
        comps.append((user, row.compartment_id))
    per_case = selectors // cases
    batch: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for i in range(cases * per_case):
        # bare handles: one hash each (a market:handle registers two, docs/operations.md)
        batch.setdefault(comps[i // per_case], []).append(("handle", f"vendor{i}"))
    for (user, comp), sel in batch.items():
        deconflict.submit(ws, user, comp, sel)
    return [c for _, c in comps], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--selectors", type=int, default=100_000)
    ap.add_argument("--submission", type=int, default=10_000)
    ap.add_argument("--store", choices=("duckdb", "postgres"), default="duckdb")
    ap.add_argument("--server", default=os.environ.get("DARKMAP_TEST_PG", DEFAULT_SERVER))
    ap.add_argument("--login-role", action="store_true",
                    help="postgres: submit as an officer's own login role")
    args = ap.parse_args()
    if args.login_role and args.store != "postgres":
        ap.error("--login-role needs --store postgres")
    with tempfile.TemporaryDirectory() as tmp, \
            space(args.store, Path(tmp) / "ws", args.server) as (ws, dsn):
        _comps, setup_s = build(ws, args.cases, args.selectors)
        if args.store == "duckdb":   # the set-up's backlog is written now, not in the timing
            ws.con.execute("CHECKPOINT")
        who, submitter = "lka-admin", ws
        if args.login_role and dsn is not None:
            who, officer_dsn = login_role(dsn)
            access.add_user(ws.con, "lka-admin", who, "lka", "officer")
            submitter = open_ops_server(officer_dsn)
        access.add_compartment(submitter.con, who, "agency", "lka", compartment_id="lka-own")
        overlap = args.submission // 100
        held = args.cases * (args.selectors // args.cases)
        new = [("handle", f"vendor{i * (held // max(overlap, 1))}") for i in range(overlap)]
        new += [("handle", f"other{i}") for i in range(args.submission - overlap)]
        tracemalloc.start()
        t0 = time.perf_counter()
        out = deconflict.submit(submitter, who, "lka-own", new)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if submitter is not ws:
            submitter.close()
        t1 = time.perf_counter()
        n, problem = audit.verify(ws.con)
        verify_s = time.perf_counter() - t1
    print(json.dumps({
        "store": args.store,
        "submitted_as": "officer's login role (row-level security)" if args.login_role
        else "owner" if args.store == "postgres" else "workspace",
        "cases": args.cases, "selectors_held": held,
        "submission": args.submission, "matches_expected": overlap,
        "notices_sent": out.notices, "deconflict_seconds": round(seconds, 3),
        "deconflict_python_peak_mb": round(peak / 2**20, 1),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                     / 1024, 1),
        "setup_seconds": round(setup_s, 1), "audit_entries": n,
        "audit_verify_seconds": round(verify_s, 3), "audit_intact": problem is None,
        "target_seconds": 2.0}, indent=2))


if __name__ == "__main__":
    main()
