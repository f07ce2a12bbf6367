"""Benchmark the web workbench: concurrent analysts on loopback; prints JSON figures.

Builds the demo pipeline on a simulated world (``--vendors``, no real data) unless
``--workspace`` names one, gives ``--analysts`` users a sign-in, starts ``darkmap serve``
in its own process, signs every analyst in with password and TOTP, then for ``--seconds``
each analyst loops over a realistic mix (searches 40 %, persona pages 30 %, graph
expansions 20 %, review queue 10 %; reads only, so runs compare), pausing ``--think``
seconds on average between requests (default 0: a closed loop at saturation, where by
Little's law latency is analysts / throughput).
Reports requests/s, p50/p95/p99 latency per kind and overall, and errors (any status
but 200; a record made answers 303). ``--record-share P`` makes P % of the requests a
seizure recorded through the workbench's form (``POST /record``, in the bench agency's
compartment: a write, audited and deconflicted), the rest the mix above; 0 by default,
so that runs without it compare.

``--server URL`` runs the same load with users, sessions, operational records and the
audit trail on PostgreSQL (``darkmap serve --server``, the workspace read-only): the URL's
role must be allowed to create a database; the bench makes a throw-away one with the team
schema (``darkmap team init``), puts the bench users there and drops it afterwards.

Usage: .venv/bin/python bench/workbench.py [--analysts 50] [--seconds 60] [--vendors 120]
       [--think 0] [--workspace WS] [--server postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

PASSWORD = "bench password 123"  # noqa: S105 - the bench users' password
MIX = (("search", 40), ("persona", 30), ("graph", 20), ("review", 10))
BENCH_OPS = "bench-ops"
"""The bench agency's compartment, where its officers record seizures (``--record-share``)."""


def build(base: Path, vendors: int) -> Path:
    """The demo pipeline on a simulated world of ``vendors`` vendors."""
    from darkmap.pipeline import DemoContext, run_stages
    from darkmap.store.workspace import Workspace

    path = base / "ws"
    ws = Workspace.init(path)
    try:
        run_stages(ws, DemoContext(world=base / "world", real_data=None, seed=7,
                                   vendors=vendors))
    finally:
        ws.close()
    return path


def prepare(path: Path, analysts: int,
            server: str | None = None) -> tuple[dict[str, str], list[str], list[str]]:
    """Users with sign-ins (their TOTP secrets), persona ids and search terms; with
    ``server`` the users and sign-ins are made on the team server."""
    from darkmap.store.team import open_web_server
    from darkmap.store.workspace import Workspace

    with Workspace.open(path) as ws:
        if server:
            with open_web_server(server, ws) as ops:
                secrets = _users(ops.con, analysts)
        else:
            secrets = _users(ws.con, analysts)
        personas = [r[0] for r in ws.con.execute(
            "SELECT persona_id FROM personas ORDER BY n_accounts DESC, persona_id "
            "LIMIT 200").fetchall()]
        terms = [r[0] for r in ws.con.execute(
            "SELECT label FROM personas WHERE label IS NOT NULL ORDER BY persona_id "
            "LIMIT 100").fetchall()]
    return secrets, personas, [*terms, "pills", "mdma", "cocaine", "lsd"]


def _users(con: Any, analysts: int) -> dict[str, str]:
    """An agency, its admin and ``analysts`` officers with sign-ins: their TOTP secrets.
    Where the demo pipeline set up agencies of its own, one of their admins onboards the
    bench agency; on an empty server the bench admin sets it up."""
    from darkmap.ops.access import add_agency, add_compartment, add_user
    from darkmap.store.operations import user, users
    from darkmap.web.auth import create_login

    if user(con, "bench-admin") is None:
        by = next((u.user_id for u in users(con) if u.role == "admin"), "bench-admin")
        add_agency(con, by, "bench", "Bench agency", "GB", "desk")
        add_user(con, by, "bench-admin", "bench", "admin")
        add_compartment(con, "bench-admin", "agency", "bench ops", compartment_id=BENCH_OPS)
    secrets = {}
    for i in range(analysts):
        uid = f"analyst-{i:03d}"
        if user(con, uid) is None:
            add_user(con, "bench-admin", uid, "bench", "officer")
        secrets[uid] = create_login(con, "bench-admin", uid, PASSWORD)
    return secrets


@contextmanager
def team_database(url: str) -> Iterator[str]:
    """A throw-away database with the team schema on the server of ``url`` (its URL)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from darkmap.store.team import init_server

    db = f"darkmap_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {db}")
    try:
        dsn = make_conninfo(url, dbname=db)
        init_server(dsn)
        yield dsn
    finally:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def serve(path: Path, port: int, server: str | None = None) -> subprocess.Popen[bytes]:
    """``darkmap serve`` (``--server``) in its own process, once it listens."""
    proc = subprocess.Popen([sys.executable, "-c", "from darkmap.cli import main; main()",
                             "serve", "-w", str(path), "--port", str(port),
                             *(["--server", server] if server else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the workbench did not start")


async def sign_in(client: httpx.AsyncClient, uid: str, secret: str) -> str:
    """Sign one analyst in through the form; the session's CSRF token."""
    from darkmap.web.auth import totp, utc_clock

    form = (await client.get("/login")).text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    r = await client.post("/login", data={"user": uid, "password": PASSWORD, "csrf": csrf,
                                          "code": totp(secret, utc_clock())})
    if r.status_code != 303:
        raise SystemExit(f"{uid} could not sign in: {r.status_code}")
    page = (await client.get("/record?kind=seizure")).text
    return page.split('name="csrf" value="')[1].split('"')[0]


async def analyst(client: httpx.AsyncClient, rng: random.Random, personas: list[str],
                  terms: list[str], until: float, think: float, record_share: float,
                  csrf: str, out: list[tuple[str, float, int | str]]) -> None:
    """One analyst's loop until ``until``: (kind, seconds, HTTP status or the transport
    error's name) per request, with an exponential pause of mean ``think`` seconds
    between requests (0: none); ``record_share`` % of them record a seizure."""
    kinds = [k for k, w in MIX for _ in range(w)]
    while time.perf_counter() < until:
        if think > 0:
            await asyncio.sleep(rng.expovariate(1 / think))
        kind = "record" if rng.random() * 100 < record_share else rng.choice(kinds)
        pid = rng.choice(personas)
        url = {"search": f"/search?q={quote(rng.choice(terms))}",
               "persona": f"/persona/{quote(pid, safe='')}",
               "graph": f"/api/graph/expand?node={quote('persona:' + pid)}",
               "review": "/review", "record": "/record"}[kind]
        t0 = time.perf_counter()
        status: int | str
        try:
            if kind == "record":
                r = await client.post(url, data={
                    "csrf": csrf, "kind": "seizure", "compartment": BENCH_OPS,
                    "drugs": f"fentanyl:{rng.randint(1, 5000)}", "provenance": "bench",
                    "links": f"persona:{pid}"})
                status = 200 if r.status_code == 303 else r.status_code
            else:
                status = (await client.get(url)).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        out.append((kind, time.perf_counter() - t0, status))


def pct(xs: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    return round(statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] * 1000, 1) \
        if len(xs) > 1 else round((xs or [0.0])[0] * 1000, 1)


async def run(url: str, secrets: dict[str, str], personas: list[str], terms: list[str],
              seconds: float, think: float,
              record_share: float = 0.0) -> list[tuple[str, float, int | str]]:
    """Sign everyone in, then run the analysts concurrently."""
    limits = httpx.Limits(max_connections=len(secrets) + 5)
    clients = [httpx.AsyncClient(base_url=url, limits=limits, timeout=30)
               for _ in secrets]
    tokens = [await sign_in(c, uid, secret)
              for c, (uid, secret) in zip(clients, secrets.items(), strict=True)]
    out: list[tuple[str, float, int | str]] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(analyst(c, random.Random(i), personas, terms, until, think,
                                   record_share, tokens[i], out)
                           for i, c in enumerate(clients)))
    for c in clients:
        await c.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--analysts", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--vendors", type=int, default=120)
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--port", type=int, default=8699)
    ap.add_argument("--think", type=float, default=0.0,
                    help="mean seconds an analyst reads a page before the next (0: none)")
    ap.add_argument("--record-share", type=float, default=0.0, metavar="P",
                    help="percent of requests that record a seizure through the form")
    ap.add_argument("--server", default=None, metavar="URL",
                    help="PostgreSQL server (a role that may create a database): users, "
                         "sessions and records there, as `darkmap serve --server`")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="darkmap-bench-web-") as tmp:
        path = args.workspace or build(Path(tmp), args.vendors)
        with (team_database(args.server) if args.server else _none()) as dsn:
            secrets, personas, terms = prepare(path, args.analysts, dsn)
            proc = serve(path, args.port, dsn)
            try:
                t0 = time.perf_counter()
                out = asyncio.run(run(f"http://127.0.0.1:{args.port}", secrets, personas,
                                      terms, args.seconds, args.think, args.record_share))
                wall = time.perf_counter() - t0
            finally:
                proc.terminate()
                proc.wait(30)
    lat = [s for _, s, _ in out]
    kinds = [k for k, _ in MIX] + (["record"] if args.record_share > 0 else [])
    by_kind = {k: {"requests": len(xs), "p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95)}
               for k in kinds for xs in [[s for kk, s, _ in out if kk == k]]}
    print(json.dumps({
        "bench": "workbench", "store": "postgresql" if args.server else "duckdb",
        "analysts": args.analysts,
        "seconds": args.seconds, "think_s": args.think, "personas": len(personas),
        "record_share_pct": args.record_share,
        "requests": len(out),
        "requests_per_s": round(len(out) / args.seconds, 1),
        "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "p99_ms": pct(lat, 99),
        "errors": sum(1 for *_, st in out if st != 200),
        "error_statuses": {f"{k} {st}": n for (k, st), n in sorted(Counter(
            (k, st) for k, _, st in out if st != 200).items(), key=str)},
        "wall_s": round(wall, 1),
        "by_kind": by_kind}, indent=2))


@contextmanager
def _none() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
