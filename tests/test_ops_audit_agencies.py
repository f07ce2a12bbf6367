"""Whose an audit entry is on the team server: the agency of the member login role that
appended it, whatever its text says. A test of the server (2026-12) found a refused
``--as`` typo by one agency's officer (an actor that is no user) shown to the other
agency's admin, with the officer's login role (``connected_as``) and host:pid; and a
member refused an export was told how many of the trail's entries were other agencies'
(a running count of their activity). Against a real PostgreSQL on loopback, each
made as a real login role."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from ops_backends import ServerDb

from darkmap.errors import BadInputError
from darkmap.ops import access, audit
from darkmap.ops.access import AccessDenied
from darkmap.store import operations
from darkmap.store.team import open_ops_server


@pytest.fixture(scope="module")
def roles(server: ServerDb) -> dict[str, str]:
    """Agency ``bka`` (an admin) and ``fbi`` (an officer, an admin), each a login role of
    its own, and the workbench's service role: part -> dsn, ``part_name`` -> role."""
    out: dict[str, str] = {}
    with open_ops_server(server.admin) as ops:
        for agency, country in (("bka", "DE"), ("fbi", "US")):
            access.add_agency(ops.con, "setup", agency, agency.upper(), country, "desk")
        access.add_user(ops.con, "setup", "bka-root", "bka", "admin")
        access.add_user(ops.con, "bka-root", "fbi-root", "fbi", "admin")
    for part, agency, role in (("bka_admin", "bka", "admin"), ("fbi_ofc", "fbi", "officer"),
                               ("fbi_admin", "fbi", "admin")):
        name, dsn = server.role(part)
        with open_ops_server(server.admin) as ops:
            access.add_user(ops.con, f"{agency}-root", name, agency, role)
        out[part], out[f"{part}_name"] = dsn, name
    out["web_name"], out["web"] = server.role("web", service=True)
    return out


def _typos(roles: dict[str, str]) -> list[str]:
    """fbi_ofc's refused ``--as``: a name that is no user, and bka's admin's name."""
    typo = roles["fbi_ofc_name"] + "x"
    with open_ops_server(roles["fbi_ofc"]) as ops:
        for claimed in (typo, roles["bka_admin_name"]):
            with pytest.raises(AccessDenied):
                access.acting(ops.con, claimed)
    return [typo, roles["bka_admin_name"]]


def test_an_entry_is_the_agency_of_the_login_role_that_wrote_it(
        server: ServerDb, roles: dict[str, str]) -> None:
    claimed = _typos(roles)
    fbi_ofc = roles["fbi_ofc_name"]
    written = server.sql("SELECT count(*) FROM ops_audit WHERE db_role = %s AND action = "
                         "'authenticate'", [fbi_ofc])[0][0]
    assert written == 2
    # another agency's admin: not in psql, not through darkmap
    with psycopg.connect(roles["bka_admin"], autocommit=True) as pg:
        assert pg.execute("SELECT count(*) FROM ops_audit WHERE db_role = %s",
                          [fbi_ofc]).fetchone() == (0,)
        seen = {r[0] for r in pg.execute("SELECT actor FROM ops_audit")}
    assert not set(claimed) & seen and "setup" in seen      # set-up stays everyone's
    with open_ops_server(roles["bka_admin"]) as ops:
        viewer = access.acting(ops.con, roles["bka_admin_name"])
        shown = audit.entries_for(ops.con, viewer)
    assert shown and not [e for e in shown if e.get("connected_as") == fbi_ofc]
    assert not [e for e in shown if e["actor"] in claimed]
    # its own agency reads both
    with psycopg.connect(roles["fbi_admin"], autocommit=True) as pg:
        assert pg.execute("SELECT count(*) FROM ops_audit WHERE db_role = %s AND action = "
                          "'authenticate'", [fbi_ofc]).fetchone() == (2,)
    # the workbench (the service role reads all) shows each agency its own
    with open_ops_server(roles["web"]) as ops:
        for who, sees in (("bka_admin", False), ("fbi_admin", True)):
            viewer = operations.user(ops.con, roles[f"{who}_name"])
            assert viewer is not None
            mine = [e for e in audit.entries_for(ops.con, viewer)
                    if e.get("connected_as") == fbi_ofc]
            assert (len(mine) == 2) == sees and (not mine) == (not sees)


def test_archive_entries_stay_everyones_unless_a_member_wrote_one(
        server: ServerDb, roles: dict[str, str]) -> None:
    """An ``audit.archive`` entry (only the owner archives) is the custody of the whole
    trail: every agency reads it. One a member appends under that name is its agency's."""
    with open_ops_server(server.admin) as ops:
        audit.log(ops.con, "bka-root", "audit.archive", note="owner's")
    with open_ops_server(roles["fbi_ofc"]) as ops:
        audit.log(ops.con, roles["fbi_ofc_name"], "audit.archive", note="member's")
    for part, notes in (("bka_admin", {"owner's"}), ("fbi_admin", {"owner's", "member's"})):
        with psycopg.connect(roles[part], autocommit=True) as pg:
            got = {r[0] for r in pg.execute("SELECT entry::jsonb ->> 'note' FROM ops_audit "
                                            "WHERE action = 'audit.archive'")}
        assert got == notes, part


def test_a_member_is_refused_a_whole_trail_export_without_counts(
        server: ServerDb, roles: dict[str, str], tmp_path: Path) -> None:
    _typos(roles)
    with open_ops_server(roles["bka_admin"]) as ops:
        with pytest.raises(BadInputError, match="hidden from you") as refused:
            audit.export_trail(ops.con, tmp_path / "trail.jsonl")
        refusal = audit.whole_trail_refusal(ops.con)
    assert refusal is not None and not re.search(r"\d", refusal)
    assert not re.search(r"\d", str(refused.value).replace(str(tmp_path), ""))
    assert not (tmp_path / "trail.jsonl").exists()
    with open_ops_server(roles["web"]) as ops:
        assert audit.whole_trail_refusal(ops.con) is None
        assert audit.export_trail(ops.con, tmp_path / "whole.jsonl") == \
            server.sql("SELECT count(*) FROM ops_audit")[0][0]


def test_no_member_learns_another_agencys_user_from_the_rule(
        server: ServerDb, roles: dict[str, str]) -> None:
    """``ops_audit_agency`` answers a member only "everyone's", its own agency or
    nothing (a member reads no other agency's users); other roles may not call it."""
    with psycopg.connect(roles["bka_admin"], autocommit=True) as pg:
        got = pg.execute("SELECT ops_audit_agency(%s, 'x', NULL), "
                         "ops_audit_agency('nobody', 'x', NULL), "
                         "ops_audit_agency('x', 'x', %s)",
                         [roles["fbi_admin_name"], roles["fbi_ofc_name"]]).fetchone()
    assert got == (None, "*", None)
    name, dsn = server.role("outsider")
    server.sql(f"REVOKE darkmap_ops FROM {name}")
    with psycopg.connect(dsn, autocommit=True) as pg, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        pg.execute("SELECT ops_audit_agency('x', 'x', NULL)")
