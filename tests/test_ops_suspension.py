"""A suspended user is refused everything: by the library over a workspace and the team
server, and on the team server by row-level security to their own login role in
``psql`` too, an open connection included (review of the Access page, M3: suspending
removed only the workbench sign-in, and the user's own login role kept reading and
writing). A new sign-in reinstates them. Against a real PostgreSQL on loopback."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from ops_backends import ServerDb, two_agencies
from web_support import PASSWORD

from darkmap.ops import access, audit, deconflict, records
from darkmap.ops.access import AccessDenied
from darkmap.ops.records import Case, Seizure
from darkmap.store.operations import PgOps, suspension
from darkmap.store.team import ANALYST_ROLE, open_ops_server
from darkmap.store.workspace import Workspace
from darkmap.web.access import suspend
from darkmap.web.auth import ServerSessions, Sessions, create_login

START = datetime(2027, 6, 1, 5, 0)


def _clock() -> datetime:
    return datetime(2027, 5, 30, 12, 0)


@pytest.fixture(scope="module")
def world(server: ServerDb) -> dict[str, Any]:
    """Agency ``a`` (admin ``root``, an officer with a login role of their own, holding a
    case and a planned arrest in ``a-own``), agency ``b`` (an officer whose arrest
    clashes with a's), and the workbench's service role."""
    out: dict[str, Any] = two_agencies(
        server, (("a_off", "a", "officer"), ("b_off", "b", "officer")), b_country="DE")
    out["service"] = server.role("svc", service=True)[1]
    a, b = out["a_off_name"], out["b_off_name"]
    with open_ops_server(out["a_off"]) as ops:
        access.add_compartment(ops.con, a, "agency", "a own", compartment_id="a-own")
        records.add_record(ops, a, Case("a's case"), compartment="a-own", provenance="t")
        out["a_event"], _ = deconflict.add_event(ops, a, "arrest", "a-own", START,
                                                 START + timedelta(hours=2), lat=52.37,
                                                 lon=4.89)
    with open_ops_server(out["b_off"]) as ops:
        access.add_compartment(ops.con, b, "agency", "b own", compartment_id="b-own")
        _, hits = deconflict.add_event(ops, b, "arrest", "b-own", START,
                                       START + timedelta(hours=1), lat=52.3701, lon=4.8901)
        assert [h.other_agency for h in hits] == ["a"]
    return out


@pytest.fixture
def service(world: dict[str, Any]) -> Iterator[PgOps]:
    """The workbench's own connection (the service role): it suspends and reinstates."""
    with open_ops_server(world["service"]) as ops:
        yield ops.con


def _member_sees(pg: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """What a member's login role reads in psql: its agency, its records, its notices,
    and whether comparing its own event answers."""
    row = pg.execute("SELECT ops_my_agency(), (SELECT count(*) FROM ops_records), "
                     "(SELECT count(*) FROM ops_notices), (SELECT count(*) FROM "
                     "ops_compartments)").fetchone()
    assert row is not None
    return tuple(row)


def test_a_suspended_login_role_reads_and_writes_nothing_until_reinstated(
        server: ServerDb, world: dict[str, Any], service: PgOps) -> None:
    a, a_dsn = world["a_off_name"], world["a_off"]
    with psycopg.connect(a_dsn, autocommit=True) as pg:     # open before the suspension
        clashes = pg.execute("SELECT * FROM ops_event_clashes(%s, 1000)",
                             [world["a_event"]]).fetchall()
        assert [c[1] for c in clashes] == ["b"]
        before = _member_sees(pg)
        assert before[0] == "a" and before[1] >= 1 and before[2] >= 1 and before[3] >= 1
        done = suspend(service, ServerSessions(service), "root", a, _clock)
        assert done["already_suspended"] is False and done["connections_ended"] == 1
        with pytest.raises(psycopg.OperationalError):   # the open connection was ended
            _member_sees(pg)
    with psycopg.connect(a_dsn, autocommit=True) as pg:     # the role still logs in
        assert _member_sees(pg) == (None, 0, 0, 0)
        assert pg.execute("SELECT * FROM ops_event_clashes(%s, 1000)",
                          [world["a_event"]]).fetchall() == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("INSERT INTO ops_compartments VALUES ('a-new', 'agency', 'x', 'a', "
                       "session_user, now())")
        assert pg.execute("UPDATE ops_notices SET acked_by = session_user, "
                          "acked_at = now()").rowcount == 0
        # the member reads its own suspension, and cannot lift it
        assert pg.execute("SELECT suspended_by FROM ops_suspended").fetchall() == [("root",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("DELETE FROM ops_suspended")
    # the library refuses them, and the refusal is on record under their login role
    with open_ops_server(a_dsn) as ops:
        with pytest.raises(AccessDenied, match=rf"user '{a}' is suspended \(by root, "):
            records.read_records(ops, a)
        with pytest.raises(AccessDenied, match="is suspended"):
            records.add_record(ops, a, Seizure(firearms=1), compartment="a-own",
                               provenance="t")
    assert server.sql("SELECT count(*) FROM ops_audit WHERE db_role = %s AND action = "
                      "'authenticate' AND entry LIKE '%%\"suspended\":true%%'", [a]) \
        == [(2,)]
    assert server.sql("SELECT count(*) FROM ops_records WHERE author = %s", [a]) == [(1,)]
    # a new sign-in from an admin of the agency reinstates them
    create_login(service, "root", a, PASSWORD, "analyst", _clock)
    assert suspension(service, a) is None
    with psycopg.connect(a_dsn, autocommit=True) as pg:
        assert _member_sees(pg) == before
    with open_ops_server(a_dsn) as ops:
        assert len(records.read_records(ops, a)) == 1
        assert audit.verify(ops.con)[1] is None


def test_only_the_front_end_suspends_and_another_agency_reads_none(
        server: ServerDb, world: dict[str, Any], service: PgOps) -> None:
    a = world["a_off_name"]
    with psycopg.connect(world["b_off"], autocommit=True) as pg:
        # a member suspends no one (not even another agency's officer), in psql
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("INSERT INTO ops_suspended VALUES (%s, session_user, now())", [a])
    suspend(service, ServerSessions(service), "root", a, _clock)
    try:
        with psycopg.connect(world["b_off"], autocommit=True) as pg:
            assert pg.execute("SELECT count(*) FROM ops_suspended").fetchone() == (0,)
            assert pg.execute("SELECT ops_my_agency()").fetchone() == ("b",)   # unaffected
        # another agency's admin may not suspend or reinstate a's users through the front end
        with pytest.raises(AccessDenied):
            suspend(service, ServerSessions(service), "b-root", a, _clock)
        with pytest.raises(AccessDenied):
            create_login(service, "b-root", a, PASSWORD, "analyst", _clock)
        # nor may the suspended user reinstate themself
        with pytest.raises(AccessDenied, match="is suspended"):
            create_login(service, a, a, PASSWORD, "analyst", _clock)
        assert suspension(service, a) is not None
    finally:
        create_login(service, "root", a, PASSWORD, "analyst", _clock)
    assert server.sql("SELECT count(*) FROM ops_suspended") == [(0,)]


def test_a_workspace_refuses_a_suspended_user_until_reinstated(tmp_path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        access.add_agency(ws.con, "setup", "aa", "Agency A", "DE", "a desk")
        access.add_user(ws.con, "setup", "ann", "aa", "admin")
        access.add_user(ws.con, "ann", "ben", "aa", "officer")
        access.add_compartment(ws.con, "ben", "agency", "own", compartment_id="own")
        records.add_record(ws, "ben", Case("ben's case"), compartment="own", provenance="t")
        with pytest.raises(AccessDenied, match="may not suspend"):
            suspend(ws.con, Sessions(), "ann", "ann", _clock)      # not oneself
        suspend(ws.con, Sessions(), "ann", "ben", _clock)
        for step in (lambda: records.read_records(ws, "ben"),
                     lambda: access.list_compartments(ws.con, "ben"),
                     lambda: deconflict.notices(ws, "ben")):
            with pytest.raises(AccessDenied, match=r"'ben' is suspended \(by ann, "
                                                   r"2027-05-30 12:00 UTC\)"):
                step()
        assert access.acting(ws.con, "ann").user_id == "ann"        # others act on
        create_login(ws.con, "ann", "ben", PASSWORD, "analyst", _clock)
        assert len(records.read_records(ws, "ben")) == 1
        entries = {e["action"]: e for e in audit.show(ws.con)}
        assert entries["web.login.set"]["reinstated"] == {
            "suspended_by": "ann", "suspended_at": "2027-05-30T12:00:00"}
        assert [e for e in audit.show(ws.con, actor="ben")
                if e["action"] == "authenticate"] != []


def _suspended(world: dict[str, Any], service: PgOps) -> Iterator[str]:
    """Suspend a's officer for the length of a test, reinstated after."""
    a = world["a_off_name"]
    done = suspend(service, ServerSessions(service), "root", a, _clock)
    try:
        yield a
    finally:
        create_login(service, "root", a, PASSWORD, "analyst", _clock)
    assert done["already_suspended"] is False


def test_a_repeatable_read_transaction_open_before_is_ended(
        server: ServerDb, world: dict[str, Any], service: PgOps) -> None:
    """A transaction of REPEATABLE READ or SERIALIZABLE reads its snapshot from before
    the suspension, in which the user had every power (review of the suspension, 1):
    the suspension ends the login role's open connections once it is committed."""
    a = world["a_off_name"]
    pg = psycopg.connect(world["a_off"])
    try:
        pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert pg.execute("SELECT ops_my_agency()").fetchone() == ("a",)
        done = suspend(service, ServerSessions(service), "root", a, _clock)
        assert done["connections_ended"] == 1 and done["connections_refused"] == 0
        with pytest.raises(psycopg.OperationalError):
            pg.execute("INSERT INTO ops_compartments VALUES ('a-late', 'agency', 'x', 'a', "
                       "session_user, now())")
    finally:
        pg.close()
        create_login(service, "root", a, PASSWORD, "analyst", _clock)
    assert server.sql("SELECT count(*) FROM ops_compartments WHERE compartment_id = "
                      "'a-late'") == [(0,)]
    assert server.sql("SELECT entry FROM ops_audit WHERE action = "
                      "'web.login.suspend.connections'") != []


def test_a_suspended_role_appends_only_refusals_and_reads_no_key_or_judgements(
        server: ServerDb, world: dict[str, Any], service: PgOps) -> None:
    a = world["a_off_name"]
    server.sql(f"GRANT {ANALYST_ROLE} TO {a}")
    for who in _suspended(world, service):
        with psycopg.connect(world["a_off"], autocommit=True) as pg:
            assert pg.execute("SELECT count(*) FROM ops_server_key").fetchone() == (0,)
            assert pg.execute("SELECT count(*) FROM team_judgements").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute("INSERT INTO team_judgements (judgement_id, a, b, verdict, note, "
                           "created_at) VALUES ('j-susp', 'x:a', 'x:b', 'same', 'n', now())")
            seq, head = pg.execute("SELECT seq, hash FROM ops_audit_head").fetchone()
            entry = json.dumps({"seq": seq + 1, "actor": who, "action": "record.read",
                                "outcome": "ok"})
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute("INSERT INTO ops_audit (seq, entry, prev_hash, hash) VALUES "
                           "(%s, %s, %s, %s)", [seq + 1, entry, head, _chain(head, entry)])
    with psycopg.connect(world["a_off"], autocommit=True) as pg:   # reinstated
        assert pg.execute("SELECT count(*) FROM ops_server_key").fetchone() == (1,)


@pytest.mark.parametrize("entry", ['"junk"', "[1]", '{"action": "note"}', '{"seq": "1"}',
                                   "not json"])
def test_no_member_appends_an_entry_verify_would_reject(
        server: ServerDb, world: dict[str, Any], entry: str) -> None:
    """A well-chained entry that is no JSON object stating its own number broke `audit
    verify` for every agency for good (review of the suspension, 2): refused now."""
    with psycopg.connect(world["b_off"], autocommit=True) as pg:
        seq, head = pg.execute("SELECT seq, hash FROM ops_audit_head").fetchone()
        text = entry.replace('"1"', f'"{seq + 1}"')
        with pytest.raises(psycopg.errors.CheckViolation, match="stating its own number"):
            pg.execute("INSERT INTO ops_audit (seq, entry, prev_hash, hash) VALUES "
                       "(%s, %s, %s, %s)", [seq + 1, text, head, _chain(head, text)])
    with open_ops_server(world["b_off"]) as ops:
        assert audit.verify(ops.con)[1] is None


def test_a_write_that_passed_acting_before_the_suspension_is_refused(
        world: dict[str, Any], service: PgOps) -> None:
    """The check a write makes inside its transaction (review of the suspension, 4)."""
    a = world["a_off_name"]
    before = access.acting(service, a)          # a request that got this far
    for _ in _suspended(world, service):
        with pytest.raises(AccessDenied, match="is suspended"):
            access.check_access(service, before, "a-own", "write")
        access.check_access(service, before, "a-own", "read")   # a read was checked


def _chain(prev: str, text: str) -> str:
    return hashlib.sha256((prev + text).encode()).hexdigest()
