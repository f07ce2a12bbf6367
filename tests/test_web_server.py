"""The workbench on a team server (issue #14, ``darkmap serve --server``): several
workbench processes share one PostgreSQL server's users, sign-ins, lockout counters,
sessions, API tokens and audit trail, while each reads the workspace read-only. Two real
applications served by uvicorn on loopback, on a real PostgreSQL (``$DARKMAP_TEST_PG``),
and the CLI end to end in processes of its own."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from web_support import (
    PASSWORD,
    FakeClock,
    Served,
    World,
    csrf_of,
    free_port,
    login,
    next_clock,
    serving,
    shared_world,
)

from darkmap.store.team import TeamServerError, open_web_server
from darkmap.web.auth import LOCKOUT_FAILURES, totp, utc_clock

WRONG = "not the password"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory, "postgres", request)


@pytest.fixture
def pair(world: World) -> Iterator[tuple[Served, Served, FakeClock]]:
    """Two workbench applications on the same team server (one clock, moved by the
    test)."""
    clock = next_clock()
    with serving(world, clock) as a, serving(world, clock) as b:
        assert a.wb.server is not None and a.wb.con is not b.wb.con
        yield a, b, clock


def _session_cookie(c: httpx.Client) -> dict[str, str]:
    return {"dm_session": c.cookies["dm_session"]}


def test_a_session_started_on_one_process_is_served_and_ended_by_the_other(
        pair, world: World) -> None:
    a, b, clock = pair
    with httpx.Client(base_url=a.url) as ca:
        assert login(ca, "alice", world.secrets["alice"], clock).status_code == 303
        with httpx.Client(base_url=b.url, cookies=_session_cookie(ca)) as cb:
            home = cb.get("/")
            assert home.status_code == 200 and world.case_a in home.text
            # idle time is the shared session's: activity on b keeps a's cookie alive
            clock.advance(minutes=20)
            assert cb.get("/targets").status_code == 200
            clock.advance(minutes=20)
            assert ca.get("/targets").status_code == 200
            # signing out on b ends the session on a too
            assert cb.post("/logout", data={"csrf": csrf_of(home.text)}).status_code == 303
        r = ca.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        cookie = ca.cookies["dm_session"]
    # the session table holds hashes of cookie values, never the values
    assert world.server
    with psycopg.connect(world.server) as pg:
        stored = [r[0] for r in pg.execute("SELECT sid_sha256 FROM web_sessions")]
    assert all(len(s) == 64 for s in stored) and cookie not in stored


def test_five_failures_across_two_processes_lock_the_user_on_both(pair, world: World) -> None:
    a, b, clock = pair
    lockouts = sum(e["action"] == "web.lockout" for e in a.audit("bob"))
    with httpx.Client(base_url=a.url) as ca, httpx.Client(base_url=b.url) as cb:
        for i in range(LOCKOUT_FAILURES):
            c = ca if i % 2 == 0 else cb          # a, b, a, b, a
            assert login(c, "bob", world.secrets["bob"], clock,
                         password=WRONG).status_code == 401
            clock.advance(minutes=1)
        for c in (ca, cb):                        # right password and code: locked on both
            r = login(c, "bob", world.secrets["bob"], clock)
            assert r.status_code == 401 and "locked out" in r.text
        entries = b.audit("bob")
        assert sum(e["action"] == "web.lockout" for e in entries) == lockouts + 1
        clock.advance(minutes=16)
        assert login(cb, "bob", world.secrets["bob"], clock).status_code == 303


def test_four_failures_across_two_processes_do_not_lock(pair, world: World) -> None:
    a, b, clock = pair
    with httpx.Client(base_url=a.url) as ca, httpx.Client(base_url=b.url) as cb:
        for c in (ca, cb, ca, cb):
            login(c, "rita", world.secrets["rita"], clock, password=WRONG)
        assert login(cb, "rita", world.secrets["rita"], clock).status_code == 303


def test_a_totp_code_used_on_one_process_is_refused_on_the_other(pair, world: World) -> None:
    a, b, clock = pair
    code = totp(world.secrets["alice"], clock())
    with httpx.Client(base_url=a.url) as ca, httpx.Client(base_url=b.url) as cb:
        assert login(ca, "alice", world.secrets["alice"], clock, code=code).status_code == 303
        r = login(cb, "alice", world.secrets["alice"], clock, code=code)
        assert r.status_code == 401


def test_an_audit_entry_written_by_one_process_is_read_by_the_other(pair,
                                                                     world: World) -> None:
    a, b, clock = pair
    with httpx.Client(base_url=a.url) as ca:
        assert login(ca, "ana", world.secrets["ana"], clock).status_code == 303
        assert ca.post("/logout", data={"csrf": "forged"}).status_code == 403   # audited on a
        seq = max(e["seq"] for e in a.audit("ana") if e["action"] == "web.csrf")
        with httpx.Client(base_url=b.url, cookies=_session_cookie(ca)) as cb:
            page = cb.get("/audit")
    assert page.status_code == 200 and "the hash chain holds" in page.text
    assert "web.csrf" in page.text
    assert any(e["seq"] == seq and e["action"] == "web.csrf" for e in b.audit("ana"))


def test_api_tokens_and_grants_hold_on_both_processes(pair, world: World) -> None:
    a, b, _ = pair
    from darkmap.web.auth import create_token
    tok = a.wb.call(lambda: create_token(a.wb.con, "bob"))
    for srv in (a, b):
        with httpx.Client(base_url=srv.url) as c:
            got = c.get("/api/records", headers={"Authorization": f"Bearer {tok}"})
            ids = {r["record_id"] for r in got.json()["records"]}
        assert world.seizure_b in ids and world.case_a not in ids


def test_an_analysts_own_login_role_reads_no_credentials(world: World,
                                                          web_pg_db: Any) -> None:
    role, dsn = web_pg_db.role("alice-own")                # in darkmap_ops only
    with psycopg.connect(dsn) as pg:
        for table in ("web_logins", "web_sessions", "web_tokens", "web_failures"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(f"SELECT * FROM {table}")
            pg.rollback()
    with pytest.raises(TeamServerError, match="darkmap_ops_service"):
        open_web_server(dsn)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from darkmap.cli import main; main()",
                           *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_cli_serve_user_token_and_serve_on_the_team_server(world: World) -> None:
    """`darkmap ops user add`, `serve-user` and `serve-token` with the team server, then
    two `darkmap serve --server` processes over the one workspace (read-only) share the
    new user's session; real clock."""
    assert world.server
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("DARKMAP_OPS_SERVER", None)
    ws = str(world.path)
    add = _cli(["ops", "user", "add", "carl", "--agency", "t-nca", "--as", "ana", "-w", ws],
               {**env, "DARKMAP_OPS_SERVER": world.server})
    assert add.returncode == 0, add.stderr
    with psycopg.connect(world.server) as pg:
        row = pg.execute("SELECT compartment_id FROM ops_records WHERE record_id = %s",
                         [world.case_a]).fetchone()
    assert row
    granted = _cli(["ops", "grant", row[0], "--user", "carl", "--as", "ana", "-w", ws],
                   {**env, "DARKMAP_OPS_SERVER": world.server})
    assert granted.returncode == 0, granted.stderr
    made = _cli(["serve-user", "carl", "--by", "ana", "--password", PASSWORD,
                 "--server", world.server], env)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.split("TOTP secret ")[1].split()[0]
    token = _cli(["serve-token", "carl", "--server", world.server], env)
    assert token.returncode == 0, token.stderr
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-c", "from darkmap.cli import main; main()",
                               "serve", "-w", ws, "--server", world.server, "--port",
                               str(p), *(["--allowed-host", "workbench.internal"]
                                         if p == ports[0] else [])],
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for p in ports]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url, proc in zip(urls, procs, strict=True):
            for _ in range(300):
                try:
                    httpx.get(url + "/login", timeout=1)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.communicate()[1].decode()
                    time.sleep(0.1)
        # the Host names each process serves: its own, and the one given with
        # --allowed-host (web audit, finding 4: any Host was served)
        assert [httpx.get(u + "/login", headers={"Host": h}).status_code
                for u in urls for h in ("workbench.internal", "rebind.attacker.example")] \
            == [200, 400, 400, 400]
        with httpx.Client(base_url=urls[0]) as c0:
            assert login(c0, "carl", secret, utc_clock).status_code == 303
            with httpx.Client(base_url=urls[1], cookies=_session_cookie(c0)) as c1:
                cases = c1.get("/cases")
                assert cases.status_code == 200 and world.case_a in cases.text
                assert world.seizure_b not in cases.text
                api = c1.get("/api/records",
                             headers={"Authorization": "Bearer " + token.stdout.strip()})
                assert {r["record_id"] for r in api.json()["records"]} >= {world.case_a}
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=30)


def test_the_team_servers_tls_rules_apply_to_the_workbench() -> None:
    """Off loopback only sslmode=verify-full: a weaker mode is refused before any
    connection is tried (docs/team-server.md)."""
    with pytest.raises(TeamServerError, match="sslmode=require is refused"):
        open_web_server("postgresql://workbench@192.0.2.10/darkmap?sslmode=require")


def test_sessions_long_past_use_are_forgotten_by_the_next_sign_in(pair, world: World) -> None:
    a, b, clock = pair
    assert world.server

    def stored(cookie: str) -> bool:
        with psycopg.connect(str(world.server)) as pg:
            return bool(pg.execute("SELECT count(*) FROM web_sessions WHERE sid_sha256 = %s",
                                   [hashlib.sha256(cookie.encode()).hexdigest()]).fetchone()[0])

    with httpx.Client(base_url=a.url) as ca, httpx.Client(base_url=b.url) as cb:
        assert login(ca, "alice", world.secrets["alice"], clock).status_code == 303
        cookie = ca.cookies["dm_session"]
        clock.advance(minutes=31)                 # idle: refused with why, then deleted
        r = ca.get("/", follow_redirects=False)
        assert r.headers["location"] == "/login?why=idle" and stored(cookie) is False
        assert login(ca, "alice", world.secrets["alice"], clock).status_code == 303
        cookie = ca.cookies["dm_session"]
        clock.advance(hours=13)                   # never asked for again: gone at the next sign-in
        assert stored(cookie)
        assert login(cb, "bob", world.secrets["bob"], clock).status_code == 303
        assert not stored(cookie)


def test_a_verdict_given_on_the_server_reaches_an_analysts_workspace(
        pair, world: World, web_pg_db: Any, tmp_path: Path) -> None:
    """alice confirms a proposed link in a workbench on the team server; an analyst's own
    workspace takes it at its next `team sync`, under alice's name; the analyst's own
    role still cannot name another author."""
    import shutil

    from darkmap.store.team import ANALYST_ROLE, sync_judgements
    from darkmap.store.workspace import Workspace

    a_srv, _, clock = pair
    with httpx.Client(base_url=a_srv.url) as c:
        assert login(c, "alice", world.secrets["alice"], clock).status_code == 303
        page = c.get("/review").text
        # a scored pair (the queue itself may have been emptied by earlier tests' verdicts
        # on the shared world)
        a, b = a_srv.sql("SELECT a, b FROM account_links ORDER BY score, a, b LIMIT 1")[0]
        r = c.post("/review", data={"csrf": csrf_of(page), "a": a, "b": b,
                                    "verdict": "reject", "note": "different keys"})
        assert r.status_code == 303, r.text
    role, dsn = web_pg_db.role("sync_analyst")
    web_pg_db.sql(f"GRANT {ANALYST_ROLE} TO {role}")
    copy = tmp_path / "analyst-ws"
    shutil.copytree(world.path, copy)
    with Workspace.open(copy) as ws:
        res = sync_judgements(ws, dsn)
        assert res.pulled >= 1
        got = ws.con.execute("SELECT verdict, author, note FROM judgements WHERE a = ? AND b = ?",
                             [min(a, b), max(a, b)]).fetchall()
    assert ("different", "alice", "different keys") in got
    with psycopg.connect(dsn) as pg, pytest.raises(psycopg.errors.InsufficientPrivilege):
        pg.execute("INSERT INTO team_judgements (judgement_id, a, b, verdict, author, "
                   "created_at) VALUES ('forged', 'm:a', 'm:b', 'same', 'alice', now())")
