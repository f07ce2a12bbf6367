"""The workbench's authentication figures (issue #14): argon2id, TOTP against RFC 6238's
test vectors, TOTP replay refused, lockout after 5 failures in 15 minutes, idle lock
after 30 minutes, re-authentication after 12 hours (injected clock), cookies HttpOnly /
SameSite=Strict, CSRF refused, the audit trail of logons, failures and lockouts, and the
security headers. Against the real application served by uvicorn on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from web_support import (
    PASSWORD,
    STORES,
    FakeClock,
    Served,
    World,
    csrf_of,
    login,
    next_clock,
    serving,
    shared_world,
)

from darkmap.ops.audit import verify
from darkmap.store.workspace import Workspace
from darkmap.web.app import CSP
from darkmap.web.auth import hotp, totp, verify_totp

WRONG = "not the password"

# RFC 6238 appendix B: the SHA-1 seed is the ASCII string "12345678901234567890", 8 digits.
RFC6238_SHA1 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                (1234567890, "89005924"), (2000000000, "69279037"),
                (20000000000, "65353130")]
# RFC 4226 appendix D: HOTP values for counters 0..9, same secret, 6 digits.
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
           "399871", "520489"]
SEED = b"12345678901234567890"


@pytest.mark.parametrize(("t", "code"), RFC6238_SHA1)
def test_totp_matches_rfc6238_vectors(t: int, code: str) -> None:
    at = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
    assert totp(base64.b32encode(SEED).decode(), at, digits=8) == code


def test_hotp_matches_rfc4226_vectors() -> None:
    assert [hotp(SEED, c) for c in range(10)] == RFC4226


def test_totp_step_accepted_once_and_within_one_step() -> None:
    secret = base64.b32encode(SEED).decode()
    at = datetime(2026, 1, 1, 12, 0, 0)
    code = totp(secret, at)
    step = verify_totp(secret, code, at, None)
    assert step is not None
    assert verify_totp(secret, code, at, step) is None           # replay
    assert verify_totp(secret, "12345x", at, None) is None
    later = datetime(2026, 1, 1, 12, 2, 0)                         # 4 steps later
    assert verify_totp(secret, code, later, None) is None


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The test world, with users and records in the workspace (duckdb), then on the
    team server (postgres)."""
    return shared_world(tmp_path_factory, request.param, request)


@pytest.fixture
def live(world: World) -> Iterator[tuple[httpx.Client, FakeClock, Served]]:
    """A served workbench whose clock starts an hour after the previous test's."""
    clock = next_clock()
    with serving(world, clock) as srv, httpx.Client(base_url=srv.url) as client:
        yield client, clock, srv


def test_login_with_totp_sets_strict_httponly_cookie(live, world: World) -> None:
    client, clock, srv = live
    r = login(client, "alice", world.secrets["alice"], clock)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie            # plain HTTP on loopback; --tls-cookies sets it
    home = client.get("/")
    assert home.status_code == 200 and "Case and operation dashboard" in home.text
    assert home.headers["content-security-policy"] == CSP
    assert home.headers["x-content-type-options"] == "nosniff"
    assert home.headers["cache-control"] == "no-store"


def test_cookies_secure_and_host_prefixed_behind_tls(world: World) -> None:
    clock = next_clock()
    with serving(world, clock, tls=True) as srv, httpx.Client(base_url=srv.url) as c:
        form = c.get("/login")
        pre = form.headers["set-cookie"]
        token = csrf_of(form.text)
        # httpx keeps Secure cookies off plain HTTP: send the pre-session cookie by hand
        unprefixed = c.post("/login", headers={"Cookie": f"dm_pre={token}"}, data={
            "user": "bob", "password": PASSWORD, "csrf": token,
            "code": totp(world.secrets["bob"], clock())})
        r = c.post("/login", headers={"Cookie": f"__Host-dm_pre={token}"}, data={
            "user": "bob", "password": PASSWORD, "csrf": token,
            "code": totp(world.secrets["bob"], clock())})
    # the sign-in form's CSRF cookie is __Host- prefixed as the session's (it was not)
    assert pre.startswith("__Host-dm_pre=") and "Path=/;" in pre
    assert "Secure" in pre and "HttpOnly" in pre and "Domain" not in pre
    assert unprefixed.status_code == 403            # an unprefixed one is not taken
    cookies = r.headers.get_list("set-cookie")
    cookie = next(k for k in cookies if k.startswith("__Host-dm_session="))
    assert r.status_code == 303
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    gone = next(k for k in cookies if k.startswith("__Host-dm_pre="))
    assert "Max-Age=0" in gone and "Secure" in gone and "Path=/;" in gone


def test_wrong_password_and_wrong_code_refused(live, world: World) -> None:
    client, clock, srv = live
    assert login(client, "alice", world.secrets["alice"], clock,
                 password=WRONG).status_code == 401
    assert login(client, "alice", world.secrets["alice"], clock, code="000000").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_totp_replay_refused(live, world: World) -> None:
    client, clock, srv = live
    code = totp(world.secrets["bob"], clock())
    assert login(client, "bob", world.secrets["bob"], clock, code=code).status_code == 303
    with httpx.Client(base_url=str(client.base_url)) as other:
        r = login(other, "bob", world.secrets["bob"], clock, code=code)
    assert r.status_code == 401 and "sign-in refused" in r.text
    assert any(e["action"] == "web.logon" and e.get("reason") == "totp"
               for e in srv.audit("bob"))


def test_lockout_after_five_failures_in_fifteen_minutes(live, world: World) -> None:
    client, clock, srv = live
    for _ in range(5):
        assert login(client, "rita", world.secrets["rita"], clock,
                     password=WRONG).status_code == 401
        clock.advance(minutes=2)
    # the right password and code are refused now: locked out
    r = login(client, "rita", world.secrets["rita"], clock)
    assert r.status_code == 401 and "locked out" in r.text
    entries = srv.audit("rita")
    assert sum(e["action"] == "web.lockout" for e in entries) == 1
    assert sum(e["action"] == "web.logon" and e["outcome"] == "denied" for e in entries) >= 6
    # the lock lasts 15 minutes from the fifth failure (at +8 min): still locked at +22
    clock.advance(minutes=12)
    assert "locked out" in login(client, "rita", world.secrets["rita"], clock).text
    clock.advance(minutes=2)
    assert login(client, "rita", world.secrets["rita"], clock).status_code == 303


def test_four_failures_spread_over_more_than_fifteen_minutes_do_not_lock(live,
                                                                         world: World) -> None:
    client, clock, srv = live
    for _ in range(6):
        login(client, "ana", world.secrets["ana"], clock, password=WRONG)
        clock.advance(minutes=4)          # never 5 inside one 15-minute window
    assert login(client, "ana", world.secrets["ana"], clock).status_code == 303


def test_idle_lock_after_thirty_minutes(live, world: World) -> None:
    client, clock, srv = live
    assert login(client, "alice", world.secrets["alice"], clock).status_code == 303
    clock.advance(minutes=29)
    assert client.get("/targets").status_code == 200      # activity resets the idle timer
    clock.advance(minutes=29)
    assert client.get("/targets").status_code == 200
    clock.advance(minutes=30)
    r = client.get("/targets", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?why=idle"
    assert client.get("/api/targets").status_code == 401


def test_reauthentication_after_twelve_hours(live, world: World) -> None:
    client, clock, srv = live
    start = clock.now
    assert login(client, "alice", world.secrets["alice"], clock).status_code == 303
    for _ in range(25):                   # active all along: every 29 minutes
        clock.advance(minutes=29)
        r = client.get("/", follow_redirects=False)
        if r.status_code != 200:
            break
    assert r.status_code == 303 and r.headers["location"] == "/login?why=reauth"
    assert clock.now - start >= timedelta(hours=12)


def test_csrf_refused_on_every_state_change(live, world: World) -> None:
    client, clock, srv = live
    assert login(client, "alice", world.secrets["alice"], clock).status_code == 303
    page = client.get("/review").text
    token = csrf_of(page)
    a, b = srv.sql("SELECT a, b FROM account_links LIMIT 1")[0]
    for bad in ({}, {"csrf": "forged"}, {"csrf": token[:-1]}):
        r = client.post("/review", data={"a": a, "b": b, "verdict": "confirm", **bad})
        assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/logout", data={"csrf": "forged"})
    assert r.status_code == 403
    # the login form has its own (pre-session) token
    r = client.post("/login", data={"user": "alice", "password": PASSWORD, "code": "1",
                                    "csrf": "forged"})
    assert r.status_code == 403
    assert any(e["action"] == "web.csrf" for e in srv.audit("alice"))
    # with the token it goes through, and signing out ends the session
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logons_go_to_a_valid_hash_chained_audit_trail(live, world: World) -> None:
    client, clock, srv = live
    login(client, "bob", world.secrets["bob"], clock)
    entries = srv.audit("bob")
    assert any(e["action"] == "web.logon" and e["outcome"] == "ok" for e in entries)
    n, problem = srv.wb.call(lambda: verify(srv.wb.con))
    assert problem is None and n > 10


def test_passwords_are_argon2id(world: World) -> None:
    if world.server:
        with psycopg.connect(world.server) as pg:
            hashes = [r[0] for r in pg.execute("SELECT password_hash FROM web_logins")]
    else:
        with Workspace.open(world.path, read_only=True) as ws:
            hashes = [r[0] for r in
                      ws.con.execute("SELECT password_hash FROM web_logins").fetchall()]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(PASSWORD in h for h in hashes)


def test_openapi_served_without_cdn_docs(live) -> None:
    client, _, _ = live
    spec = client.get("/api/openapi.json").json()
    assert "/api/persona/{ref}" in spec["paths"] and "/api/graph/expand" in spec["paths"]
    assert client.get("/docs").status_code == 404       # swagger UI would load a CDN
    assert "cdn" not in json.dumps(spec).lower()
