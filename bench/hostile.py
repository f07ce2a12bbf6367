"""Benchmark: the hostile corpus of issue 18, worst case per kind of input.

Builds every case of :mod:`darkmap.simulate.hostile` once in a temp folder, ingests each
one as ``tests/test_hostile.py`` does (the CLI in a subprocess, 4 GiB address-space cap,
timeout), and prints JSON: per case kind the worst-case wall seconds and peak memory (MB)
and the cases they come from, the cases over 10 s, every abort and hang, and each case's
problems against its expectation (counts and proposed summary fields; quarantine rows
are checked by the test only). A regression shows as a kind whose worst case grows.
Never passes or fails.

    PYTHONPATH=src .venv/bin/python bench/hostile.py [--kind KIND] [--only NAME ...]
        [--timeout S] [--cases-json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from darkmap.simulate import hostile


def _baselines(root: Path, names: set[str], timeout: float) -> dict[str, hostile.Outcome]:
    out = {}
    for name in sorted(names):
        folder, ws = root / "baselines" / name, root / "ws-baseline" / name
        folder.mkdir(parents=True)
        hostile.BASELINES[name].build(folder)
        run = hostile.run_ingest([folder], ws, timeout=timeout)
        keys = hostile.run_cli(["keys", "-w", str(ws), "--json"]).summary or {}
        if run.summary is None:
            raise SystemExit(f"baseline {name} did not ingest: {run.last_error_line()}")
        out[name] = hostile.Outcome(run.summary, None, keys.get("failed"))
        hostile.rmtree(ws)
    return out


def _build(cases: list[hostile.HostileCase], root: Path) -> dict[str, str]:
    """Build every case folder once; the cases that cannot be built here, with why."""
    unavailable = {}
    for case in cases:
        folder = root / "corpus" / case.name
        folder.mkdir(parents=True)
        try:
            case.build(folder)
        except hostile.CaseUnavailable as exc:
            unavailable[case.name] = str(exc)
    return unavailable


def _run_case(case: hostile.HostileCase, root: Path, base: hostile.Outcome | None,
              timeout: float) -> tuple[hostile.Run, list[hostile.Problem]]:
    folder, ws = root / "corpus" / case.name, root / "ws" / case.name
    allowed = hostile.regular_file_shas(folder)
    run = hostile.run_ingest([folder], ws, timeout=timeout)
    if case.between_runs is not None:
        case.between_runs(folder)
        allowed |= hostile.regular_file_shas(folder)
        run = hostile.run_ingest([folder], ws, timeout=timeout)
    keys = None
    if case.kind == "pgp":
        keys = (hostile.run_cli(["keys", "-w", str(ws), "--json"]).summary or {}).get("failed")
    facts = hostile.WsFacts(None, keys, hostile.capture_shas(ws))
    problems = hostile.check(case, case.expect(base), run, facts, allowed)
    hostile.rmtree(ws)
    return run, problems


def _kind_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for kind in hostile.KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        slow = max(mine, key=lambda r: r["seconds"])
        big = max(mine, key=lambda r: r["peak_mb"])
        table[kind] = {
            "cases": len(mine), "failed": sum(1 for r in mine if r["problems"]),
            "worst_seconds": slow["seconds"], "worst_seconds_case": slow["case"],
            "worst_cpu_seconds": max(r["cpu_seconds"] for r in mine),
            "peak_mb": big["peak_mb"], "peak_mb_case": big["case"],
        }
    return table


def main(argv: list[str] | None = None) -> int:
    """Build, ingest and measure; print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=hostile.KINDS, action="append", help="only these kinds")
    ap.add_argument("--only", nargs="+", default=None, help="only these case names")
    ap.add_argument("--timeout", type=float, default=hostile.TIMEOUT, help="seconds before a hang")
    ap.add_argument("--cases-json", action="store_true", help="also print every case's row")
    args = ap.parse_args(argv)
    cases = [c for c in hostile.cases() if (not args.kind or c.kind in args.kind)
             and (not args.only or c.name in args.only)]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="darkmap-hostile-") as tmp:
        root = Path(tmp)
        try:
            unavailable = _build(cases, root)
            bases = _baselines(root, {c.baseline for c in cases if c.baseline}, args.timeout)
            rows: list[dict[str, Any]] = []
            for case in cases:
                if case.name in unavailable:
                    continue
                run, problems = _run_case(case, root, bases.get(case.baseline or ""),
                                          args.timeout)
                rows.append({"case": case.name, "kind": case.kind, "issue": case.issue,
                             "seconds": round(run.seconds, 2),
                             "cpu_seconds": round(run.cpu_seconds, 2),
                             "peak_mb": round(run.peak_mb), "exit": run.exit_code,
                             "timed_out": run.timed_out,
                             "problems": [str(p) for p in problems]})
                print(f"{case.name:40s} {run.seconds:6.1f} s {run.peak_mb:6.0f} MB "
                      f"{'ok' if not problems else problems[0].what}", file=sys.stderr)
        finally:
            hostile.rmtree(root / "corpus")  # FIFOs, sockets and read-only captures included
    report: dict[str, Any] = {
        "cases": len(rows), "passed": sum(1 for r in rows if not r["problems"]),
        "seconds_total": round(time.monotonic() - t0, 1),
        "timeout_seconds": args.timeout, "memory_cap_mb": hostile.MEM_CAP >> 20,
        "by_kind": _kind_table(rows),
        "over_10s": [{"case": r["case"], "seconds": r["seconds"]} for r in rows
                     if r["seconds"] > hostile.MAX_SECONDS],
        "aborts": [{"case": r["case"], "problem": p} for r in rows for p in r["problems"]
                   if p.startswith("abort")],
        "hangs": [r["case"] for r in rows if r["timed_out"]],
        "unavailable": unavailable,
        "failures": {r["case"]: r["problems"] for r in rows if r["problems"]},
        "load_average": os.getloadavg(),
    }
    if args.cases_json:
        report["rows"] = rows
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
