"""What a test of the workbench's HTTP surface found (2026-12-07), each against the real
application served by uvicorn on loopback, over a workspace and over the team server:
numbers written otherwise in a wallet id, a CSP report nested past Python's recursion
limit, a 500 without the security headers, a sign-out that left a ``__Host-`` cookie in
the browser, the audit page flooded by sign-ins under made-up names, the time a
sign-in took telling which names have one, and API tokens that could not be revoked
and outlived a reset of the sign-in."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import Request
from web_support import (
    PASSWORD,
    STORES,
    FakeClock,
    Served,
    World,
    csrf_of,
    login,
    next_clock,
    served_app,
    serving,
    shared_world,
)

from darkmap.ops.access import AccessDenied, add_user
from darkmap.store.workspace import Workspace
from darkmap.web import auth
from darkmap.web.app import CSP, create_app


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory, request.param, request)


@pytest.fixture(scope="module")
def duck_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world over a workspace only: for what does not depend on the store."""
    return shared_world(tmp_path_factory)


@pytest.fixture
def live(world: World) -> Iterator[tuple[httpx.Client, FakeClock, Served]]:
    clock = next_clock()
    with serving(world, clock) as srv, httpx.Client(base_url=srv.url) as client:
        yield client, clock, srv


def _secured(r: httpx.Response) -> None:
    assert r.headers.get("content-security-policy") == CSP, r.headers
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("cache-control") == "no-store"


@pytest.mark.parametrize("ident", ["²", "cluster:①", "9" * 5000, "٣", "cluster:" + "1" * 30])
def test_a_wallet_id_of_other_digits_is_not_found(live, world: World, ident: str) -> None:
    """``isdigit`` holds for ², ① and ٣ and for 5,000 digits, which ``int`` then refused
    or took: a 500 (and the keep-alive connection reset), or cluster 3 for ``٣``."""
    client, clock, _ = live
    assert login(client, "alice", world.secrets["alice"], clock).status_code == 303
    for path in (f"/wallet/{ident}", f"/api/wallet/{ident}"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert "not a clustered address or cluster id" in r.text
        _secured(r)
    assert client.get("/targets").status_code == 200     # the connection still serves


def test_a_csp_report_nested_deep_is_taken(live) -> None:
    """Deep nesting raised RecursionError in ``json.loads``: a 500 to anyone, without a
    sign-in. The report is now kept as unreadable, and only its first 20,000 bytes read."""
    client, _, srv = live
    before = len(srv.wb.csp_reports)
    for body in (b"[" * 5000, b'{"a":' * 5000, b'{"csp-report": "' + b"x" * 3_000_000 + b'"}'):
        r = client.post("/csp-report", content=body,
                        headers={"content-type": "application/csp-report"})
        assert r.status_code == 204, (r.status_code, r.text[:200])
        _secured(r)
    assert srv.wb.csp_reports[before:before + 2] == [{"unreadable": True}] * 2
    assert srv.wb.csp_reports[before + 2] == {"unreadable": True}   # cut: not JSON


@contextmanager
def _failing_app(world: World) -> Iterator[str]:
    """The workbench with one more route that fails with an exception no handler takes."""
    ws = Workspace.open(world.path, read_only=True)
    app = create_app(ws)

    @app.get("/boom")
    def boom(request: Request) -> None:
        raise RuntimeError("a fault the handlers do not know")

    try:
        with served_app(app, log_level="critical") as url:
            yield url
    finally:
        app.state.wb.close()
        ws.close()


def test_an_unhandled_fault_is_a_500_with_the_security_headers(duck_world: World) -> None:
    """Starlette makes the 500 of an exception no handler took outside the middleware that
    adds the headers: it went out without CSP, nosniff or no-store."""
    with _failing_app(duck_world) as url, httpx.Client(base_url=url) as client:
        r = client.get("/boom")
        assert (r.status_code, r.text) == (500, "Internal Server Error")
        _secured(r)
        assert "RuntimeError" not in r.text and client.get("/login").status_code == 200


def test_signing_out_deletes_the_host_cookie_with_its_flags(world: World) -> None:
    """A ``__Host-`` cookie deleted without ``Secure`` is ignored by browsers: sign-out
    left the old session cookie in the browser."""
    clock = next_clock()
    with serving(world, clock, tls=True) as srv, httpx.Client(base_url=srv.url) as c:
        form = c.get("/login")
        token = csrf_of(form.text)
        r = c.post("/login", headers={"Cookie": f"__Host-dm_pre={token}"}, data={
            "user": "bob", "password": PASSWORD, "csrf": token,
            "code": auth.totp(world.secrets["bob"], clock())})
        sid = r.headers["set-cookie"].split(";", 1)[0]
        page = c.get("/", headers={"Cookie": sid})
        out = c.post("/logout", headers={"Cookie": sid}, data={"csrf": csrf_of(page.text)})
    gone = out.headers["set-cookie"]
    assert out.status_code == 303 and gone.startswith('__Host-dm_session="";')
    for flag in ("secure", "httponly", "samesite=strict", "max-age=0", "path=/"):
        assert flag in gone.lower(), gone


def test_sign_ins_under_made_up_names_are_counted_apart_on_the_audit_page(
        live, world: World) -> None:
    """Anyone may try a name at the sign-in, each refusal audited under the name tried:
    60 of them pushed a supervisor's own entries off the page's 200 and read as actors
    ("CALL +1-555-0100 re case N"). They are now counted apart, and listed on request."""
    client, clock, srv = live
    names = [f"CALL +1-555-0100 re case {i} {clock.now:%j%H}" for i in range(12)]
    with httpx.Client(base_url=srv.url) as stranger:
        for n in names:
            assert login(stranger, n, "", clock, password="x" * 12,
                         code="000000").status_code == 401
    assert login(client, "ana", world.secrets["ana"], clock).status_code == 303
    page = client.get("/audit")
    assert page.status_code == 200
    assert not any(n in page.text for n in names)
    shown = int(page.text.split(" refused sign-ins under names that are no user")[0]
                .rsplit(">", 1)[-1].strip())
    assert shown >= len(names)
    listed = client.get("/audit", params={"strangers": "true"})
    assert all(n in listed.text for n in names)
    assert "web.logon" in listed.text and "web.login.set" not in listed.text


class _CountedHasher:
    """The workbench's argon2 hasher, counting the passwords it checks."""

    def __init__(self, real: Any) -> None:
        self.real, self.checked = real, []

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    def verify(self, hash_: str, password: str) -> bool:
        self.checked.append(hash_[:9])
        return bool(self.real.verify(hash_, password))


class _HeldHasher(_CountedHasher):
    """A counted hasher whose password check is held: it sets ``entered``, waits for
    ``release`` (10 s at most: a server stalled by the check fails the test, not hangs
    it), then notes "password checked" in ``order`` and checks the password."""

    def __init__(self, real: Any, order: list[Any]) -> None:
        super().__init__(real)
        self.order = order
        self.entered, self.release = threading.Event(), threading.Event()

    def verify(self, hash_: str, password: str) -> bool:
        self.entered.set()
        self.release.wait(10)
        self.order.append("password checked")
        return super().verify(hash_, password)


def test_an_unknown_name_costs_a_password_check_as_a_known_one(duck_world: World,
                                                                monkeypatch) -> None:
    """A name without a sign-in was refused before any password was checked (10 ms
    against 150-200 ms): the time told which names have one. One argon2 check runs
    either way (counted, not timed: timing never decides a test)."""
    hasher = _CountedHasher(auth._HASHER)
    monkeypatch.setattr(auth, "_HASHER", hasher)
    checks = hasher.checked
    clock = next_clock()
    with Workspace.open(duck_world.path) as ws:
        for name in ("alice", "nobody-at-all"):
            with pytest.raises(auth.LoginFailed, match="wrong user, password or code"):
                auth.sign_in(ws.con, name, "not the password", "000000", clock)
    assert checks == ["$argon2id", "$argon2id"]


def test_tokens_are_revoked_on_request_and_with_a_new_sign_in(live, world: World) -> None:
    """No command revoked a token, and a token outlived a reset of its user's password
    and TOTP secret."""
    client, clock, srv = live
    con = srv.wb.con
    user = f"tess{clock.now:%j%H}"
    srv.wb.call(lambda: add_user(con, "ana", user, "t-nca", "officer"))
    srv.wb.call(lambda: auth.create_login(con, "ana", user, PASSWORD, "analyst"))
    first, second, third = (srv.wb.call(lambda lb=lb: auth.create_token(con, user, lb))
                            for lb in ("nightly", "nightly", "adhoc"))

    def status(token: str) -> int:
        return client.get("/api/targets", headers={"Authorization": f"Bearer {token}"}
                          ).status_code

    assert [status(t) for t in (first, second, third)] == [200, 200, 200]
    with pytest.raises(AccessDenied, match="may not revoke the tokens"):
        srv.wb.call(lambda: auth.revoke_tokens(con, "bob", user))   # another agency's
    assert srv.wb.call(lambda: auth.revoke_tokens(con, user, user, "nightly")) == 2
    assert [status(t) for t in (first, second, third)] == [401, 401, 200]
    srv.wb.call(lambda: auth.create_login(con, "ana", user, PASSWORD + "!", "analyst"))
    assert status(third) == 401
    entries = srv.audit(user) + srv.audit("ana") + srv.audit("bob")
    assert any(e["action"] == "web.token.revoke" and e.get("revoked") == 2 for e in entries)
    assert any(e["action"] == "web.token.revoke" and e["outcome"] == "denied"
               for e in entries)
    assert any(e["action"] == "web.login.set" and e.get("tokens_revoked") == 1
               for e in entries)


def test_a_wallet_number_of_no_cluster_says_what_a_cluster_id_is(duck_world: World) -> None:
    """``/api/wallet/42`` said to run `darkmap chain cluster` on a clustered workspace: a
    cluster's id is one of its addresses' ids, so most numbers name no cluster."""
    clock = next_clock()
    with serving(duck_world, clock) as srv, httpx.Client(base_url=srv.url) as client:
        assert login(client, "alice", duck_world.secrets["alice"], clock).status_code == 303
        r = client.get("/api/wallet/987654321")
        assert r.status_code == 404, r.text[:200]
        assert "a cluster's id is the id of its first address" in r.text
        assert "darkmap wallet show ADDRESS" in r.text
        assert "chain cluster" not in r.text


def test_a_refused_verdict_logs_the_ids_it_was_sent_cut(live, world: World) -> None:
    """A reader's verdict was refused after ``a`` and ``b`` went whole into the
    permanent, hash-chained audit trail: 1.8 MB of trail per POST (web audit, finding 2).
    Each value a request sends is kept to its first 200 characters, the cut marked; the
    audit page's ``actor`` likewise."""
    client, clock, srv = live
    big_a, big_b = "A" * 900_000, "B" * 300
    assert login(client, "rita", world.secrets["rita"], clock).status_code == 303
    page = client.get("/review")
    r = client.post("/review", data={"csrf": csrf_of(page.text), "a": big_a, "b": big_b,
                                      "verdict": "confirm"})
    assert r.status_code == 403 and "reader" in r.text
    r = client.post("/api/judge", params={"a": "C" * 5000, "b": "x", "verdict": "reject"},
                    headers={"Authorization": "Bearer " + srv.wb.call(
                        lambda: auth.create_token(srv.wb.con, "rita"))})
    assert r.status_code == 403
    denied = [e for e in srv.audit("rita") if e["action"] == "web.judge"][-2:]
    assert [(e["a"], e["b"]) for e in denied] == [
        ("A" * 200 + "…[cut: 900,000 chars]", "B" * 200 + "…[cut: 300 chars]"),
        ("C" * 200 + "…[cut: 5,000 chars]", "x")]
    client.cookies.clear()
    assert login(client, "ana", world.secrets["ana"], clock).status_code == 303
    assert client.get("/audit", params={"actor": "r" * 10_000}).status_code == 200
    read = [e for e in srv.audit("ana") if e["action"] == "audit.read"][-1]
    assert read["of_actor"] == "r" * 200 + "…[cut: 10,000 chars]"


def test_a_sign_in_holds_up_no_other_request(duck_world: World, monkeypatch) -> None:
    """``POST /login`` checked the password (argon2id, some 100 ms) on the event loop: while
    it ran the server answered nothing, not even a static file, so anyone could stall
    it with made-up names (web audit, finding 1). The check is held here until another
    client's requests are answered: they are, before the sign-in ends (ordering, not
    timing, decides; the hold gives up after 10 s so the old code fails, not hangs)."""
    order: list[Any] = []
    held = _HeldHasher(auth._HASHER, order)
    monkeypatch.setattr(auth, "_HASHER", held)
    clock = next_clock()
    with serving(duck_world, clock) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as signing, \
            httpx.Client(base_url=srv.url, timeout=30) as other:
        def sign() -> None:
            r = login(signing, "alice", duck_world.secrets["alice"], clock)
            order.append(("sign-in", r.status_code))

        thread = threading.Thread(target=sign)
        thread.start()
        assert held.entered.wait(10)
        for path in ("/static/app.css", "/login", "/nowhere"):
            order.append((path, other.get(path).status_code))
        held.release.set()
        thread.join(30)
    assert order == [("/static/app.css", 200), ("/login", 200), ("/nowhere", 404),
                     "password checked", ("sign-in", 303)]


def test_a_password_check_holds_up_no_request_that_takes_the_lock(duck_world: World,
                                                                  monkeypatch) -> None:
    """The sign-in ran off the event loop but held the operational lock through the
    password check: a flood of made-up names stalled the dashboard and every API token
    call, which take that lock (review, M2). A check is held here until a signed-in
    page and a token call are answered: they are, before the sign-in ends (ordering, not
    timing; the hold gives up after 10 s so the old code fails, not hangs)."""
    order: list[Any] = []
    clock = next_clock()
    with serving(duck_world, clock) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as signing, \
            httpx.Client(base_url=srv.url, timeout=30) as other:
        assert login(other, "bob", duck_world.secrets["bob"], clock).status_code == 303
        token = srv.wb.call(lambda: auth.create_token(srv.wb.con, "rita", "m2"))
        held = _HeldHasher(auth._HASHER, order)
        monkeypatch.setattr(auth, "_HASHER", held)

        def sign() -> None:
            r = login(signing, "no-such-analyst", "x" * 12, clock)
            order.append(("sign-in", r.status_code))

        thread = threading.Thread(target=sign)
        thread.start()
        assert held.entered.wait(10)
        order.append(("/", other.get("/").status_code))
        order.append(("/api/targets", other.get(
            "/api/targets", headers={"Authorization": f"Bearer {token}"}).status_code))
        held.release.set()
        thread.join(30)
    assert order == [("/", 200), ("/api/targets", 200), "password checked", ("sign-in", 401)]


def test_failed_sign_ins_checked_at_once_all_count_and_lock_out_once(duck_world: World,
                                                                      monkeypatch) -> None:
    """With the password checked outside the lock, five wrong passwords checked at the
    same moment (all five inside the check together) are all counted, and lock the
    name out once (review, M2)."""
    together = threading.Barrier(auth.LOCKOUT_FAILURES, timeout=10)

    class _Together(_CountedHasher):
        def verify(self, hash_: str, password: str) -> bool:
            together.wait()
            return super().verify(hash_, password)

    clock = next_clock()
    name = "m2-guessed"
    with serving(duck_world, clock) as srv:
        monkeypatch.setattr(auth, "_HASHER", _Together(auth._HASHER))
        codes: list[int] = []

        def sign() -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                codes.append(login(c, name, "x" * 12, clock).status_code)

        threads = [threading.Thread(target=sign) for _ in range(auth.LOCKOUT_FAILURES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        rows = srv.sql(f"SELECT reason, count(*) FROM web_failures WHERE user_id = '{name}' "
                       "GROUP BY reason ORDER BY reason")
    assert codes == [401] * auth.LOCKOUT_FAILURES
    assert rows == [("lockout", 1), ("unknown user", auth.LOCKOUT_FAILURES)]


FOREIGN = {"Host": "rebind.attacker.example"}
"""The Host header of a page that rebound its own name to the workbench's address."""


def test_a_foreign_host_is_refused_so_rebinding_locks_no_one_out(live, world: World) -> None:
    """The workbench answered any Host header: a web page an analyst opened could rebind
    its name to 127.0.0.1, take its own pre-session CSRF cookie (same origin, to the
    browser) and lock a named analyst out with five wrong passwords (web audit,
    finding 4). Only the names the operator configured are served."""
    client, clock, srv = live
    port = srv.url.rsplit(":", 1)[1]
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{port}",
                 "127.0.0.1:1", "localhost.attacker.example", ""):
        r = client.get("/login", headers={"Host": host})
        assert r.status_code == 400, (host, r.status_code)
        assert "is not a name this workbench serves" in r.text and "--allowed-host" in r.text
        _secured(r)
    for host in (f"127.0.0.1:{port}", f"LOCALHOST:{port}", "localhost", "127.0.0.1"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host
    with httpx.Client(base_url=srv.url, headers=FOREIGN) as attacker:
        for _ in range(6):
            r = attacker.post("/login", data={"user": "alice", "password": "x" * 12,
                                              "csrf": "t", "code": "000000"},
                              headers={"Cookie": "dm_pre=t"})
            assert r.status_code == 400, r.status_code
    assert login(client, "alice", world.secrets["alice"], clock).status_code == 303


def test_the_operator_adds_the_names_it_is_reached_by(duck_world: World) -> None:
    """``darkmap serve --allowed-host NAME`` (``create_app(hosts=...)``): the TLS
    proxy's name is served, with or without the port; others still are not."""
    ws = Workspace.open(duck_world.path, read_only=True)
    app = create_app(ws, hosts=["Workbench.Internal", "::1", "proxy.internal:443"])
    try:
        with served_app(app) as url, httpx.Client(base_url=url) as c:
            port = url.rsplit(":", 1)[1]
            for host, status in (("workbench.internal", 200), (f"workbench.internal:{port}", 200),
                                 ("workbench.internal:444", 400), ("[::1]", 200),
                                 ("other.internal", 400), ("proxy.internal:443", 200),
                                 ("proxy.internal", 400), (f"proxy.internal:{port}", 400)):
                assert c.get("/login", headers={"Host": host}).status_code == status, host
    finally:
        app.state.wb.close()
        ws.close()


def test_a_flood_of_csp_reports_is_logged_20_a_minute_and_counted_whole(live, world: World,
                                                                          caplog) -> None:
    """Every anonymous ``/csp-report`` wrote a log line, with no limit: 500 posts, 500
    lines (review, L3). The first 20 of a minute are logged, then one line says more
    came; the first report of a later minute is preceded by how many were not logged.
    The audit page counts every one."""
    client, clock, srv = live
    caplog.set_level(logging.WARNING, logger="darkmap.web")
    start = clock()
    for i in range(25):
        r = client.post("/csp-report", content=json.dumps({"csp-report": {"n": i}}).encode(),
                        headers={"content-type": "application/csp-report"})
        assert r.status_code == 204
    clock.advance(minutes=1)
    r = client.post("/csp-report", content=b"late", headers={"content-type": "text/plain"})
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "darkmap.web"]
    assert lines[:20] == [f'CSP violation report {i + 1}: {{"csp-report": {{"n": {i}}}}}'
                          for i in range(20)]
    more = ("CSP violation reports: more than 20 in this minute; the rest are counted, "
            "not logged")
    held = (f"CSP violation reports: 5 not logged in the minute from "
            f"{start:%Y-%m-%d %H:%M} UTC (more than 20; the audit page counts them all)")
    assert lines[20:] == [more, held, 'CSP violation report 26: {"unreadable": true}']
    assert srv.wb.csp_count == 26
    assert login(client, "ana", world.secrets["ana"], clock).status_code == 303
    assert 'id="csp-reports">26 Content-Security-Policy violation reports since' in \
        client.get("/audit").text


def test_csp_reports_are_logged_and_counted_on_the_audit_page(live, world: World,
                                                              caplog) -> None:
    """CSP violation reports were kept in a list nothing read (the first 1,000; later
    ones dropped): the one sign of an injection tried reached no one (web audit,
    finding 9). Each is now one line of the server log, escaped and cut, and the audit
    page counts them and shows the newest, escaped."""
    client, clock, srv = live
    caplog.set_level(logging.WARNING, logger="darkmap.web")
    blocked = "inline\nCSP violation report 99: forged <script>alert(1)</script>\u202e"
    report = {"csp-report": {"document-uri": "http://127.0.0.1/persona/x",
                             "violated-directive": "script-src 'self'",
                             "blocked-uri": blocked + "x" * 5000}}
    for body in (json.dumps(report).encode(), b"not json"):
        r = client.post("/csp-report", content=body,
                        headers={"content-type": "application/csp-report"})
        assert r.status_code == 204
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "darkmap.web"]
    assert len(lines) == 2 and srv.wb.csp_count == 2
    assert lines[0].startswith(
        "CSP violation report 1: document-uri=http://127.0.0.1/persona/x violated-directive="
        "script-src 'self' blocked-uri=inline\\x0aCSP violation report 99: forged <script>"
        "alert(1)</script>\\u202exxx"), lines[0]
    # cut to 300 characters (then escaped: the newline and the override grow by 8)
    assert "\n" not in lines[0] and lines[0].endswith("…")
    assert len(lines[0]) == len("CSP violation report 1: ") + 300 + 8
    assert lines[1] == 'CSP violation report 2: {"unreadable": true}'
    assert login(client, "ana", world.secrets["ana"], clock).status_code == 303
    page = client.get("/audit").text
    assert 'id="csp-reports">2 Content-Security-Policy violation reports since' in page
    latest = page.split('id="csp-latest">')[1].split("</ul>")[0]
    assert latest.index("unreadable") < latest.index("forged")       # newest first
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\u202e" in latest
    assert "<script>" not in latest
