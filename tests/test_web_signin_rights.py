"""Who may give a workbench sign-in (`darkmap serve-user`): an admin of the user's
agency, on both stores (the workspace, then the team server with the workbench's login
role). A user may not give themselves a sign-in or a higher role, an admin may not set
another agency's users; each refusal changes nothing and is audited. Set-up (the only
user of an empty workspace) and the demo's login still work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ops_backends import Backend
from web_support import PASSWORD

from darkmap.cli import main
from darkmap.ops import access
from darkmap.ops.access import AccessDenied
from darkmap.store.operations import Space
from darkmap.web.auth import create_login


@pytest.fixture
def team(space: Space, backend: Backend) -> Space:
    if backend.db is not None:
        backend.db.sql("TRUNCATE web_logins")
    con = space.con
    access.add_agency(con, "setup", "nca", "NCA", "GB", "NCA desk")
    access.add_user(con, "setup", "ana", "nca", "admin")
    access.add_user(con, "ana", "alice", "nca", "officer")
    access.add_agency(con, "ana", "bka", "BKA", "DE", "BKA desk")
    access.add_user(con, "ana", "bert", "bka", "admin")
    access.add_user(con, "bert", "bob", "bka", "officer")
    return space


def _serve_user(space: Space, backend: Backend, user: str, by: str, role: str):
    assert space.path is not None
    return CliRunner().invoke(main, ["serve-user", user, "--by", by, "--role", role,
                                     "--password", PASSWORD, "-w", str(space.path)],
                              env=backend.env)


def _logins(space: Space) -> dict[str, str]:
    return dict(space.con.execute("SELECT user_id, web_role FROM web_logins").fetchall())


def _login_entries(space: Space) -> list[tuple[str, str, str]]:
    rows = [json.loads(r[0]) for r in
            space.con.execute("SELECT entry FROM ops_audit ORDER BY seq").fetchall()]
    return [(e["actor"], e["outcome"], e.get("user")) for e in rows
            if e["action"] == "web.login.set"]


def test_a_user_may_not_give_themselves_a_sign_in_or_a_higher_role(team: Space,
                                                                   backend: Backend) -> None:
    refused = _serve_user(team, backend, "alice", "alice", "admin")
    assert refused.exit_code != 0 and "TOTP secret" not in refused.output, refused.output
    assert "only an admin of the user's agency" in refused.output
    assert "alice" not in _logins(team)
    ok = _serve_user(team, backend, "alice", "ana", "analyst")
    assert ok.exit_code == 0 and "TOTP secret" in ok.output, ok.output
    again = _serve_user(team, backend, "alice", "alice", "admin")     # raising: refused
    assert again.exit_code != 0 and _logins(team)["alice"] == "analyst"
    assert _login_entries(team) == [("alice", "denied", "alice"), ("ana", "ok", "alice"),
                                    ("alice", "denied", "alice")]


def test_an_admin_sets_only_their_own_agencys_users(team: Space, backend: Backend) -> None:
    cross = _serve_user(team, backend, "bob", "ana", "admin")
    assert cross.exit_code != 0 and "bob" not in _logins(team), cross.output
    assert "bka" not in cross.output                 # the user's agency is not named
    own = _serve_user(team, backend, "bob", "bert", "supervisor")
    assert own.exit_code == 0, own.output
    admin_self = _serve_user(team, backend, "bert", "bert", "admin")
    assert admin_self.exit_code == 0, admin_self.output
    assert _logins(team) == {"bob": "supervisor", "bert": "admin"}
    assert ("ana", "denied", "bob") in _login_entries(team)


def test_set_up_the_only_user_sets_their_own(space: Space, backend: Backend) -> None:
    """While the workspace has one user, that user gives themselves a sign-in (set-up,
    audited as such)."""
    if backend.db is not None:
        backend.db.sql("TRUNCATE web_logins")
    access.add_agency(space.con, "eve", "ag", "Agency", "GB", "desk")
    access.add_user(space.con, "eve", "eve", "ag", "officer")
    create_login(space.con, "eve", "eve", PASSWORD, "supervisor")
    entry = json.loads(space.con.execute(
        "SELECT entry FROM ops_audit ORDER BY seq DESC LIMIT 1").fetchone()[0])
    assert entry["action"] == "web.login.set" and entry.get("setup") is True
    assert _logins(space) == {"eve": "supervisor"}


def test_set_up_is_over_with_a_second_user(team: Space) -> None:
    """An officer among others is refused in the library too, whatever the role asked."""
    for role in ("analyst", "admin"):
        with pytest.raises(AccessDenied):
            create_login(team.con, "bob", "bob", PASSWORD, role)
    assert _logins(team) == {}


def test_the_demo_login_is_given_by_the_demo_agencys_admin(tmp_path: Path) -> None:
    from darkmap.store.workspace import Workspace
    from darkmap.web.demo import DEMO_ADMIN, DEMO_USER, demo_login

    with Workspace.init(tmp_path / "ws") as ws:
        first = demo_login(ws)
        second = demo_login(ws)                      # a reset works too
        assert first.totp_secret != second.totp_secret
        entries = [json.loads(r[0]) for r in ws.con.execute(
            "SELECT entry FROM ops_audit ORDER BY seq").fetchall()]
    assert [(e["actor"], e.get("user")) for e in entries
            if e["action"] == "web.login.set"] == [(DEMO_ADMIN, DEMO_USER)] * 2
