"""The workbench's access page (``/access``): a user sees and stops their own sessions
and API tokens; an admin of the agency those of its users, ends a lockout and suspends a
sign-in, while the workbench runs (over a workspace the CLI cannot: the workbench holds
it). Every step checked and audited. Against the real application served by uvicorn on
loopback, over a workspace and over a real team server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256

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

from darkmap.errors import BadInputError
from darkmap.ops.access import add_user
from darkmap.store.web import login as login_row
from darkmap.web.auth import LOCKOUT_FAILURES, create_login, create_token

WRONG = "not the password!"


def _new_user(store_srv: tuple[Served, FakeClock], stem: str,
              role: str = "officer") -> tuple[str, str]:
    """A new user of t-nca (an officer) with a sign-in (ana's doing): its id and TOTP
    secret."""
    wb, clock = store_srv[0].wb, store_srv[1]
    user = f"{stem}{clock.now:%j%H%M%S}"
    wb.call(lambda: add_user(wb.con, "ana", user, "t-nca", role))
    return user, wb.call(lambda: create_login(wb.con, "ana", user, PASSWORD, "analyst"))


@contextmanager
def _signed(store_srv: tuple[Served, FakeClock], user: str, secret: str) -> Iterator[httpx.Client]:
    """A client signed in as ``user`` (a fresh TOTP step)."""
    store_srv[1].advance(seconds=31)
    with httpx.Client(base_url=store_srv[0].url, timeout=60) as c:
        assert login(c, user, secret, store_srv[1]).status_code == 303
        yield c


def _act(c: httpx.Client, action: str, user: str, token: str = "") -> httpx.Response:
    page = c.get("/access")
    assert page.status_code == 200
    return c.post("/access", data={"csrf": csrf_of(page.text.split("<main>")[1]),
                                   "action": action, "user": user, "token": token})


def _token_ids(row: str) -> dict[str, str]:
    """The tokens a user's row lists: label (as shown) -> the id the page names it by."""
    return {label: tid for tid, label in re.findall(
        r'<li id="token-([0-9a-f]{16})">([^<]*?) <span class="muted">id', row)}


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
    # two tokens of one label, one of no label: each is revoked alone, by its id
    leaked, twin, bare = (wb.call(lambda lb=lb: create_token(wb.con, user, lb))
                          for lb in ("laptop", "laptop", ""))
    assert {_api(store_srv, t) for t in (leaked, twin, bare)} == {200}
    with _signed(store_srv, user, secret) as c:
        row = _row(c.get("/access").text, user)
        ids = re.findall(r'<li id="token-([0-9a-f]{16})">', row)
        assert len(ids) == 3 and row.count("laptop <span") == 2 and "(no label)" in row
        mine = sha256(leaked.encode()).hexdigest()[:16]
        assert mine in ids
        r = _act(c, "revoke-tokens", user, mine)
        assert r.status_code == 303
        assert r.headers["location"] == "/access?done=revoke-tokens&n=1"
        page = c.get(r.headers["location"]).text
        assert "1 API token revoked." in page
        assert re.search(rf'<li id="token-{mine}">[^\n]*?<span class="muted">revoked',
                         _row(page, user))
        bare_id = _token_ids(_row(page, user))["(no label)"]
        assert _act(c, "revoke-tokens", user, bare_id).headers["location"].endswith("n=1")
        bad = _act(c, "revoke-tokens", user, "laptop")          # a label is no token id
        assert bad.status_code == 400 and "not a token id" in bad.text
    assert [_api(store_srv, t) for t in (leaked, twin, bare)] == [401, 200, 401]
    assert any(e["action"] == "web.token.revoke" and e.get("token") == mine
               and e.get("revoked") == 1 for e in store_srv[0].audit(user))


def test_a_token_label_too_long_to_show_is_refused_when_the_token_is_made(
        store_srv, store_world: World) -> None:
    user, _ = _new_user(store_srv, "long")
    wb = store_srv[0].wb
    with pytest.raises(BadInputError, match="at most 200 characters"):
        wb.call(lambda: create_token(wb.con, user, "x" * 201))
    assert wb.call(lambda: create_token(wb.con, user, "x" * 200)).startswith("dm_")


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
        assert "no sign-in" in row and 'value="suspend"' not in row
        assert "suspended" in row and "by ana" in row
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
    # a name that is no user answers as another agency's user does (review, M2)
    ("bob", "end-sessions", "nosuchuser42", ("may not end the sessions of nosuchuser42: the "
     "user or an admin of the user")),
    ("ana", "suspend", "nosuchuser42", ("may not suspend the sign-in of nosuchuser42: an "
     "admin of the user")),
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
    assert "ben: suspended: sign-in removed (workbench role analyst), 1 token(s) revoked, " \
        "0 session(s) ended" in said
    assert "database login role" not in said          # a workspace has none
    assert "ben: suspended (was already suspended): sign-in removed (there was none)" in cli(
        "--by", "ann", "--suspend")
    listed = CliRunner().invoke(main, ["ops", "user", "list", "--as", "ben", "-w", str(path)],
                                prog_name="darkmap")
    assert listed.exit_code != 0 and "user 'ben' is suspended (by ann, " in listed.output
    mixed = CliRunner().invoke(main, ["serve-user", "ben", "-w", str(path), "--by", "ann",
                                      "--suspend", "--role", "admin"], prog_name="darkmap")
    assert mixed.exit_code == 2 and "go with a new sign-in" in mixed.output
    with Workspace.open(path) as ws:
        assert token_user(ws.con, token) is None
        with pytest.raises(LoginFailed):
            sign_in(ws.con, "ben", PASSWORD, "000000")
        actions = [e["action"] for e in show(ws.con, actor="ann")]
        assert actions.count("web.login.unlock") == 2 and "web.login.suspend" in actions
    back = cli("--by", "ann", "--password", PASSWORD)       # a new sign-in reinstates
    assert "ben: reinstated (suspended by ann at " in back and "TOTP secret" in back
    listed = CliRunner().invoke(main, ["ops", "user", "list", "--as", "ben", "-w", str(path)],
                                prog_name="darkmap")
    assert listed.exit_code == 0 and "ann" in listed.output


def test_a_session_whose_sign_in_is_gone_is_no_session(store_srv, store_world: World) -> None:
    """A sign-in that finished while its user was suspended kept a session for 12 hours
    (review of the Access page, M1): a session is served only while its sign-in stands."""
    from darkmap.store.web import delete_login

    user, secret = _new_user(store_srv, "gone")
    wb = store_srv[0].wb
    with _signed(store_srv, user, secret) as c:
        assert c.get("/").status_code == 200
        wb.call(lambda: delete_login(wb.con, user))     # the sign-in alone, as a race leaves
        if store_world.store == "postgres":             # the stored session goes with it
            r = c.get("/")
            assert r.status_code == 303 and r.headers["location"] == "/login"
        store_srv[1].advance(seconds=31)
        again = login(c, user, secret, store_srv[1])    # and no new one starts
        assert again.status_code == 401 and "sign-in refused" in again.text


def test_a_suspended_admin_acts_no_more(store_srv, store_world: World) -> None:
    """Two admins suspending each other both succeeded: the second's request had passed
    its session check before the first suspension (review of the Access page, L2)."""
    from darkmap.store.web import delete_login

    wb = store_srv[0].wb
    admin, secret = _new_user(store_srv, "adm", "admin")
    victim, _ = _new_user(store_srv, "vic")
    with _signed(store_srv, admin, secret) as c:
        csrf = csrf_of(c.get("/access").text.split("<main>")[1])
        wb.call(lambda: delete_login(wb.con, admin))    # suspended after the page loaded
        r = c.post("/access", data={"csrf": csrf, "action": "suspend", "user": victim})
        if store_world.store == "postgres":              # the session is gone already
            assert r.status_code == 303 and r.headers["location"] == "/login"
        else:
            assert r.status_code == 403 and "has no sign-in now" in r.text
    assert wb.call(lambda: login_row(wb.con, victim)) is not None


def test_a_suspension_is_audited_with_the_role_it_removed(store_srv,
                                                          store_world: World) -> None:
    user, _ = _new_user(store_srv, "role")
    wb = store_srv[0].wb
    with signed_in(store_srv, store_world, "ana") as ana:
        r = _act(ana, "suspend", user)
        assert r.headers["location"] == "/access?done=suspend&n=0"
        assert "User suspended: sign-in removed, API tokens revoked, 0 sessions ended;" in \
            ana.get(r.headers["location"]).text
    entry = next(e for e in store_srv[0].audit("ana")
                 if e["action"] == "web.login.suspend" and e["user"] == user)
    assert entry["web_role"] == "analyst" and wb.call(lambda: login_row(wb.con, user)) is None


def test_a_verdict_waiting_while_its_user_was_suspended_is_refused(
        store_srv, store_world: World) -> None:
    """A judgement posted before the suspension and run after it (its request waited for
    the lock) was stored (review of the suspension, 5): refused now, audited."""
    from darkmap.ops.access import AccessDenied, acting
    from darkmap.web.access import suspend
    from darkmap.web.app import _judge

    user, _ = _new_user(store_srv, "late")
    wb = store_srv[0].wb
    row = wb.call(lambda: acting(wb.con, user))          # the request's user, looked up
    wb.call(lambda: suspend(wb.con, wb.sessions, "ana", user, store_srv[1]))
    with pytest.raises(AccessDenied, match="is suspended"):
        _judge(wb, row, "hansa:a", "hansa:b", "confirm", "")
    assert any(e["action"] == "authenticate" and e.get("suspended")
               for e in store_srv[0].audit(user))
