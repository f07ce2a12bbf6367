"""The workbench's access page (``/access``): a user sees and stops their own sessions
and API tokens; an admin of the agency those of its users, ends a lockout and suspends a
sign-in, while the workbench runs (over a workspace the CLI cannot: the workbench holds
it). Every step checked and audited. Against the real application served by uvicorn on
loopback, over a workspace and over a real team server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from web_support import (
    PASSWORD,
    FakeClock,
    Served,
    World,
    csrf_of,
    login,
    signed_in,
)

from darkmap.ops.access import add_user
from darkmap.web.auth import LOCKOUT_FAILURES, create_login, create_token

WRONG = "not the password!"


def _new_user(store_srv: tuple[Served, FakeClock], stem: str) -> tuple[str, str]:
    """A new officer of t-nca with a sign-in (ana's doing): its id and TOTP secret."""
    wb, clock = store_srv[0].wb, store_srv[1]
    user = f"{stem}{clock.now:%j%H%M%S}"
    wb.call(lambda: add_user(wb.con, "ana", user, "t-nca", "officer"))
    return user, wb.call(lambda: create_login(wb.con, "ana", user, PASSWORD, "analyst"))


@contextmanager
def _signed(store_srv: tuple[Served, FakeClock], user: str, secret: str) -> Iterator[httpx.Client]:
    """A client signed in as ``user`` (a fresh TOTP step)."""
    store_srv[1].advance(seconds=31)
    with httpx.Client(base_url=store_srv[0].url, timeout=60) as c:
        assert login(c, user, secret, store_srv[1]).status_code == 303
        yield c


def _act(c: httpx.Client, action: str, user: str, label: str = "") -> httpx.Response:
    page = c.get("/access")
    assert page.status_code == 200
    return c.post("/access", data={"csrf": csrf_of(page.text.split("<main>")[1]),
                                   "action": action, "user": user, "label": label})


def _row(html: str, user: str) -> str:
    m = re.search(rf'<tr id="user-{re.escape(user)}">(.*?)</tr>', html, re.S)
    assert m is not None, f"no row of {user}"
    return m.group(1)


def _api(store_srv: tuple[Served, FakeClock], token: str) -> int:
    return httpx.get(store_srv[0].url + "/api/dashboard",
                     headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code


def test_an_analyst_sees_only_their_own_sign_in(store_srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "alice") as alice, \
            signed_in(store_srv, store_world, "alice"):
        html = alice.get("/access").text
        assert 'href="/access"' in html
        row = _row(html, "alice")
        assert row.count("<li>signed in") >= 2 and row.count("(this browser)") == 1
        ids = re.findall(r'<tr id="user-([^"]+)">', html)
        assert ids == ["alice"]       # not ana, rita (own agency) nor bob (another)
    assert any(e["action"] == "web.access.read" and e["users"] == 1
               for e in store_srv[0].audit("alice"))


def test_an_admin_sees_the_users_of_their_agency_only(store_srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "ana") as ana:
        ids = re.findall(r'<tr id="user-([^"]+)">', ana.get("/access").text)
    assert ids[0] == "ana" and {"alice", "rita"} <= set(ids)
    assert "bob" not in ids and "bert" not in ids


def test_a_user_revokes_a_leaked_token_while_the_workbench_runs(store_srv,
                                                                store_world: World) -> None:
    user, secret = _new_user(store_srv, "tok")
    wb = store_srv[0].wb
    leaked, kept = (wb.call(lambda lb=lb: create_token(wb.con, user, lb))
                    for lb in ("laptop", "nightly"))
    assert _api(store_srv, leaked) == _api(store_srv, kept) == 200
    with _signed(store_srv, user, secret) as c:
        row = _row(c.get("/access").text, user)
        assert "laptop: made" in row and "nightly: made" in row
        r = _act(c, "revoke-tokens", user, "laptop")
        assert r.status_code == 303 and r.headers["location"] == "/access?done=revoke-tokens"
        page = c.get("/access?done=revoke-tokens").text
        assert "API tokens revoked." in page
        assert re.search(r"laptop: made [^<]*, <span class=\"muted\">revoked", _row(page, user))
    assert _api(store_srv, leaked) == 401 and _api(store_srv, kept) == 200
    assert any(e["action"] == "web.token.revoke" and e.get("label") == "laptop"
               and e.get("revoked") == 1 for e in store_srv[0].audit(user))


def test_an_admin_signs_a_user_out_of_every_browser(store_srv, store_world: World) -> None:
    user, secret = _new_user(store_srv, "out")
    with _signed(store_srv, user, secret) as one, _signed(store_srv, user, secret) as two, \
            signed_in(store_srv, store_world, "ana") as ana:
        assert one.get("/").status_code == two.get("/").status_code == 200
        r = _act(ana, "end-sessions", user)
        assert r.status_code == 303
        for c in (one, two):
            gone = c.get("/")
            assert gone.status_code == 303 and gone.headers["location"] == "/login"
        assert ana.get("/").status_code == 200       # the admin's own session stays
        assert "<li>signed in" not in _row(ana.get("/access").text, user)
    assert any(e["action"] == "web.session.end" and e["user"] == user and e["ended"] == 2
               for e in store_srv[0].audit("ana"))


def test_signing_out_everywhere_ends_the_asking_browser_too(store_srv, store_world: World) -> None:
    user, secret = _new_user(store_srv, "all")
    with _signed(store_srv, user, secret) as one, _signed(store_srv, user, secret) as two:
        r = _act(one, "end-sessions", user)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert one.get("/").status_code == two.get("/").status_code == 303


def test_a_suspended_sign_in_stops_at_once_and_a_new_one_restores_it(store_srv,
                                                                      store_world: World) -> None:
    user, secret = _new_user(store_srv, "sus")
    wb = store_srv[0].wb
    token = wb.call(lambda: create_token(wb.con, user, "script"))
    with _signed(store_srv, user, secret) as victim, \
            signed_in(store_srv, store_world, "ana") as ana:
        assert _act(ana, "suspend", user).status_code == 303
        assert victim.get("/").status_code == 303          # the session ended
        assert _api(store_srv, token) == 401                     # the token revoked
        row = _row(ana.get("/access").text, user)
        assert "no sign-in" in row and "suspend" not in row
    store_srv[1].advance(seconds=31)
    with httpx.Client(base_url=store_srv[0].url, timeout=60) as again:
        assert login(again, user, secret, store_srv[1]).status_code == 401   # no sign-in now
    entry = next(e for e in store_srv[0].audit("ana") if e["action"] == "web.login.suspend"
                 and e["user"] == user)
    assert entry["tokens_revoked"] == 1 and entry["sessions_ended"] == 1
    assert entry["had_sign_in"] is True
    fresh = wb.call(lambda: create_login(wb.con, "ana", user, PASSWORD, "analyst"))
    with _signed(store_srv, user, fresh) as back:
        assert back.get("/").status_code == 200


def test_an_admin_ends_a_lockout(store_srv, store_world: World) -> None:
    user, secret = _new_user(store_srv, "lock")
    with httpx.Client(base_url=store_srv[0].url, timeout=60) as c:
        for _ in range(LOCKOUT_FAILURES):
            assert login(c, user, secret, store_srv[1], password=WRONG).status_code == 401
        store_srv[1].advance(seconds=31)
        assert "locked out" in login(c, user, secret, store_srv[1]).text
    with signed_in(store_srv, store_world, "ana") as ana:
        assert "locked out until" in _row(ana.get("/access").text, user)
        assert _act(ana, "unlock", user).status_code == 303
        assert "locked out" not in _row(ana.get("/access").text, user)
    with _signed(store_srv, user, secret) as c:
        assert c.get("/").status_code == 200
    assert any(e["action"] == "web.login.unlock" and e["user"] == user
               and e["locked"] is True for e in store_srv[0].audit("ana"))


@pytest.mark.parametrize(("who", "action", "target", "says"), [
    ("alice", "end-sessions", "ana", "may not end the sessions of ana"),   # not an admin
    ("alice", "suspend", "rita", "may not suspend the sign-in of rita"),
    ("bob", "revoke-tokens", "alice", "may not revoke the tokens of alice"),  # other agency
    ("bob", "end-sessions", "alice", "may not end the sessions of alice"),
    ("ana", "suspend", "ana", "may not suspend the sign-in of their own account"),
    ("alice", "unlock", "alice", "may not end the lockout of their own account"),
])
def test_what_may_not_be_done_is_refused_and_audited(store_srv, store_world: World, who: str,
                                                     action: str, target: str,
                                                     says: str) -> None:
    with signed_in(store_srv, store_world, who) as c:
        r = _act(c, action, target)
        assert r.status_code == 403 and says in r.text
        assert c.get("/").status_code == 200
    assert any(e["action"].startswith("web.") and e["outcome"] == "denied"
               and e.get("user") == target for e in store_srv[0].audit(who))


def test_a_change_without_the_csrf_token_or_of_no_known_kind_is_refused(
        store_srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "ana") as ana:
        r = ana.post("/access", data={"action": "suspend", "user": "alice"})
        assert r.status_code == 403 and "CSRF" in r.text
        csrf = csrf_of(ana.get("/access").text.split("<main>")[1])
        r = ana.post("/access", data={"csrf": csrf, "action": "drop-table", "user": "alice"})
        assert r.status_code == 400 and "one of revoke-tokens" in r.text
        # the page's notice is one of its own sentences, never text from the link
        page = ana.get("/access?done=%3Cb%3Ecall+this+number%3C%2Fb%3E").text
        assert "call this number" not in page and 'id="done"' not in page
    with signed_in(store_srv, store_world, "alice") as alice:
        assert alice.get("/").status_code == 200      # alice was not suspended


def test_the_cli_suspends_a_sign_in_and_ends_a_lockout(tmp_path) -> None:
    """``serve-user --suspend`` / ``--unlock`` over a workspace no workbench holds."""
    from click.testing import CliRunner

    from darkmap.cli import main
    from darkmap.ops.access import add_agency
    from darkmap.ops.audit import show
    from darkmap.store.workspace import Workspace
    from darkmap.web.auth import LoginFailed, sign_in, token_user

    path = tmp_path / "ws"
    with Workspace.init(path) as ws:
        add_agency(ws.con, "setup", "aa", "Agency A", "DE", "a desk")
        add_user(ws.con, "setup", "ann", "aa", "admin")
        add_user(ws.con, "ann", "ben", "aa", "officer")
        create_login(ws.con, "ann", "ben", PASSWORD)
        token = create_token(ws.con, "ben", "laptop")
        for _ in range(LOCKOUT_FAILURES):
            with pytest.raises(LoginFailed):
                sign_in(ws.con, "ben", WRONG, "000000")
        with pytest.raises(LoginFailed, match="locked out"):
            sign_in(ws.con, "ben", PASSWORD, "000000")

    def cli(*args: str) -> str:
        res = CliRunner().invoke(main, ["serve-user", "ben", "-w", str(path), *args],
                                 prog_name="darkmap")
        assert res.exit_code == 0, (args, res.output, res.exception)
        return res.output

    refused = CliRunner().invoke(main, ["serve-user", "ben", "-w", str(path), "--by", "ben",
                                        "--unlock"], prog_name="darkmap")
    assert refused.exit_code != 0 and "may not end the lockout" in refused.output
    assert "ben: lockout ended" in cli("--by", "ann", "--unlock")
    assert "ben: was not locked out" in cli("--by", "ann", "--unlock")
    said = cli("--by", "ann", "--suspend")
    assert "ben: sign-in suspended, 1 token(s) revoked, 0 session(s) ended" in said
    with Workspace.open(path) as ws:
        assert token_user(ws.con, token) is None
        with pytest.raises(LoginFailed):
            sign_in(ws.con, "ben", PASSWORD, "000000")
        actions = [e["action"] for e in show(ws.con, actor="ann")]
        assert actions.count("web.login.unlock") == 2 and "web.login.suspend" in actions
