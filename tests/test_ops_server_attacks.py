"""What a test of the team server found, a member's own login role in ``psql`` against
another agency (2026-12-07), each refused now: a temporary table standing in for
``ops_users`` inside the definer functions (a reader read all of another agency and
wrote in its name), an audit entry or head that does not extend the chain (the trail
broken for every agency, for good), a notice planted acknowledged before the match, an
event asked again with other radii (another agency's action located to metres), the
reported figures replaced by a reader, and the operational lock held in an idle session
(every writer hung). Against a real PostgreSQL on loopback."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from ops_backends import ServerDb, two_agencies

from darkmap.errors import WorkspaceStateError
from darkmap.ops import access, audit, deconflict, records, totals
from darkmap.ops.records import Case, Seizure
from darkmap.store import operations
from darkmap.store.audit import records_exist
from darkmap.store.operations import OPS_LOCK
from darkmap.store.team import open_ops_server

START = datetime(2027, 6, 1, 5, 0)


@pytest.fixture(scope="module")
def roles(server: ServerDb) -> dict[str, str]:
    """Agency ``a`` (an officer with a case, a seizure and a planned arrest in ``a-own``)
    and agency ``b`` (an officer and a reader): role name -> dsn, by part."""
    out = two_agencies(server, (("a_off", "a", "officer"), ("b_off", "b", "officer"),
                                ("b_read", "b", "reader")))
    with open_ops_server(out["a_off"]) as ops:
        a = out["a_off_name"]
        access.add_compartment(ops.con, a, "agency", "a own", compartment_id="a-own")
        records.add_record(ops, a, Case("a's case"), compartment="a-own", provenance="t")
        records.add_record(ops, a, Seizure(firearms=2), compartment="a-own", provenance="t")
        deconflict.add_event(ops, a, "arrest", "a-own", START, START + timedelta(hours=2),
                             lat=52.37, lon=4.89)
    with open_ops_server(out["b_off"]) as ops:
        access.add_compartment(ops.con, out["b_off_name"], "agency", "b own",
                               compartment_id="b-own")
    return out


def test_a_temporary_table_does_not_stand_in_for_the_users(server: ServerDb,
                                                           roles: dict[str, str]) -> None:
    with psycopg.connect(roles["b_read"]) as pg:
        pg.execute("CREATE TEMP TABLE ops_users (user_id text, agency_id text, role text)")
        pg.execute("INSERT INTO ops_users VALUES (session_user, 'a', 'admin')")
        assert pg.execute("SELECT count(*) FROM public.ops_records").fetchone() == (0,)
        assert pg.execute("SELECT count(*) FROM public.ops_seizure_items").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("INSERT INTO public.ops_grants VALUES ('a-own', 'user', session_user, "
                       "'write', session_user, now())")
    assert server.sql("SELECT count(*) FROM ops_grants WHERE compartment_id = 'a-own' AND "
                      "grantee_kind = 'user'") == [(0,)]


def test_an_entry_or_head_that_does_not_extend_the_chain_is_refused(
        server: ServerDb, roles: dict[str, str]) -> None:
    with psycopg.connect(roles["b_read"], autocommit=True) as pg:
        with pytest.raises(psycopg.errors.CheckViolation, match="does not follow the head"):
            pg.execute("INSERT INTO ops_audit (seq, entry, prev_hash, hash) SELECT seq + 1, "
                       "'{\"seq\":0}', 'junk', 'junk' FROM ops_audit_head")
        with pytest.raises(psycopg.errors.CheckViolation, match="its hash is not that of"):
            pg.execute("INSERT INTO ops_audit (seq, entry, prev_hash, hash) SELECT seq + 1, "
                       "'{}', hash, 'junk' FROM ops_audit_head")
        with pytest.raises(psycopg.errors.CheckViolation, match="names only the newest"):
            pg.execute("UPDATE ops_audit_head SET seq = seq + 1000, hash = repeat('0', 64)")
        with pytest.raises(psycopg.errors.CheckViolation, match="names only the newest"):
            pg.execute("UPDATE ops_audit_head SET seq = seq - 1")
        # a well-chained entry that states no number of its own is refused too (it broke
        # `audit verify` for every agency: review of the suspension, 2); one that states
        # it is taken: it is an entry, under its role
        head_seq, head_hash = pg.execute("SELECT seq, hash FROM ops_audit_head").fetchone()
        add = "INSERT INTO ops_audit (seq, entry, prev_hash, hash) VALUES (%s, %s, %s, %s)"
        bare = '{"action":"note","actor":"someone"}'
        with pytest.raises(psycopg.errors.CheckViolation, match="stating its own number"):
            pg.execute(add, [head_seq + 1, bare, head_hash,
                             hashlib.sha256((head_hash + bare).encode()).hexdigest()])
        text = json.dumps({"seq": head_seq + 1, "action": "note", "actor": "someone"})
        pg.execute(add, [head_seq + 1, text, head_hash,
                         hashlib.sha256((head_hash + text).encode()).hexdigest()])
    with open_ops_server(roles["a_off"]) as ops:
        records.read_records(ops, roles["a_off_name"])     # audited: appends after it
        n, problem = audit.verify(ops.con)
    assert problem is None
    assert server.sql("SELECT db_role FROM ops_audit WHERE entry = %s", [text]) == [
        (roles["b_read_name"],)]


def test_a_notice_is_not_planted_acknowledged(server: ServerDb, roles: dict[str, str]) -> None:
    b = roles["b_off_name"]
    with open_ops_server(roles["b_off"]) as ops:
        key = deconflict.taskforce_key(ops)
    subject = "wallet " + deconflict.hash_selector(key, "wallet", "cluster:7")[:12]
    plant = ("INSERT INTO ops_notices VALUES (ops_notice_id('selector', %s, 'a', 'b'), "
             "'selector', 'a', 'b', 'b desk', %s, now(), %s, %s)")
    with psycopg.connect(roles["b_off"], autocommit=True) as pg:
        # acknowledged in a's name, or under the true id with another subject
        for text, acked_by, acked_at in ((subject, roles["a_off_name"], datetime.now()),
                                         ("routine: nothing to deconflict", None, None)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(plant, [subject, text, acked_by, acked_at])
        # an open notice with its true content may go in (the server would write it)
        pg.execute(plant, [subject, subject, None, None])
    with psycopg.connect(roles["b_read"], autocommit=True) as pg:   # a reader acks nothing
        cur = pg.execute("UPDATE ops_notices SET acked_by = session_user, acked_at = now() "
                         "WHERE to_agency = 'b'")
        assert cur.rowcount == 0 or server.sql(
            "SELECT count(*) FROM ops_notices WHERE acked_by = %s", [b]) == [(0,)]


def test_an_event_answers_with_the_radius_of_its_first_comparison(
        server: ServerDb, roles: dict[str, str]) -> None:
    b = roles["b_off_name"]
    near = START + timedelta(minutes=30)
    with psycopg.connect(roles["b_off"], autocommit=True) as pg:
        pg.execute("INSERT INTO ops_events VALUES ('probe-1', 'arrest', 'b-own', 'b', 52.38, "
                   "4.89, NULL, %s, %s, %s, now())", [near, near, b])   # 1.1 km from a's
        clash = "SELECT agency_id FROM ops_event_clashes('probe-1', %s)"
        assert pg.execute(clash, [500]).fetchall() == []              # the radius: 500 m
        for wider in (1200, 2000, 5000):                              # asked again: no
            assert pg.execute(clash, [wider]).fetchall() == []
    assert server.sql("SELECT within_m FROM ops_events WHERE event_id = 'probe-1'") == [
        (500.0,)]


def test_a_reader_does_not_replace_the_reported_figures(server: ServerDb,
                                                        roles: dict[str, str]) -> None:
    server.sql("INSERT INTO ops_reported VALUES ('SpecTor', 'arrests', 288, 288, '288', 's')")
    with psycopg.connect(roles["b_read"], autocommit=True) as pg:
        assert pg.execute("DELETE FROM ops_reported").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("INSERT INTO ops_reported VALUES ('SpecTor', 'arrests', 1, 1, '1', 'x')")
        assert pg.execute("SELECT count(*) FROM ops_reported").fetchone() == (1,)
    with open_ops_server(roles["b_off"]) as ops:                      # an officer may
        assert totals.operation_report(ops, roles["b_off_name"], "SpecTor")["reported"]


def test_a_held_operational_lock_ends_a_writer_with_a_message(
        roles: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "OPS_LOCK_WAIT_S", 1)
    with psycopg.connect(roles["b_read"], autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [OPS_LOCK])
        with open_ops_server(roles["a_off"]) as ops, \
                pytest.raises(WorkspaceStateError, match="operational lock has been held"):
            records.read_records(ops, roles["a_off_name"])
        holder.execute("SELECT pg_advisory_unlock(%s)", [OPS_LOCK])
    with open_ops_server(roles["a_off"]) as ops:
        assert len(records.read_records(ops, roles["a_off_name"])) == 2


def test_an_id_differing_only_in_case_is_refused_past_the_library(
        server: ServerDb, roles: dict[str, str]) -> None:
    """An admin's own login role in ``psql`` adds agency ``B`` beside ``b`` or a user
    ``B-ROOT`` beside another agency's ``b-root``: the server refuses both (audit ops,
    finding 8), whatever the library checks."""
    name, dsn = server.role("a_adm")
    with open_ops_server(server.admin) as ops:
        access.add_user(ops.con, "root", name, "a", "admin")
    with psycopg.connect(dsn, autocommit=True) as pg:
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute("INSERT INTO ops_agencies VALUES ('B', 'B', 'NL', 'b desk', "
                       "session_user, now())")
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute("INSERT INTO ops_users VALUES ('B-ROOT', 'a', 'officer', "
                       "session_user, now())")
    assert server.sql("SELECT count(*) FROM ops_agencies WHERE agency_id = 'B'") == [(0,)]


def test_a_member_sees_its_agencys_records_changed_or_deleted(
        server: ServerDb, roles: dict[str, str]) -> None:
    """The owner role (or the DBA) changed a seizure of agency ``a`` and deleted its case
    on the server, and a member's `audit verify` said "intact" (audit ops, finding 1).
    A member checks its own agency's records against the digests of their entries
    (the server answers whether a record its entries name is gone); another agency's
    member, reading none of them, is told its check covered its own agency's only."""
    seizure = server.sql("SELECT record_id FROM ops_records WHERE kind = 'seizure'")[0][0]
    case = server.sql("SELECT record_id FROM ops_records WHERE kind = 'case'")[0][0]
    with open_ops_server(roles["a_off"]) as ops:
        check = audit.verify_records(ops.con)
        assert (check.checked, check.broken, check.own_agency_only) == (2, False, True)
    saved = server.sql("SELECT * FROM ops_records WHERE record_id = %s", [case])
    server.sql("UPDATE ops_seizure_items SET count = 200 WHERE record_id = %s", [seizure])
    server.sql("DELETE FROM ops_links WHERE record_id = %s", [case])
    server.sql("DELETE FROM ops_records WHERE record_id = %s", [case])
    try:
        with open_ops_server(roles["a_off"]) as ops:
            check = audit.verify_records(ops.con)
            assert check.changed == (seizure,) and check.deleted == (case,), check
        with open_ops_server(roles["b_off"]) as ops:
            check = audit.verify_records(ops.con)
            assert not check.broken and check.own_agency_only, check
            # the server names no record the member's entries do not name
            assert records_exist(ops.con, [case, seizure]) == set()
    finally:
        server.sql("UPDATE ops_seizure_items SET count = 2 WHERE record_id = %s", [seizure])
        server.sql("INSERT INTO ops_records VALUES (" + ", ".join(["%s"] * len(saved[0]))
                   + ")", list(saved[0]))


def test_a_members_verify_prints_no_count_of_the_trail(server: ServerDb, roles: dict[str, str],
                                                      tmp_path: Path) -> None:
    """`audit verify` as a member printed the length of the whole chain, every agency's
    entries counted: run before and after another agency's work, it told how busy that
    agency was (audit ops, finding 7). A member is told only whether the chain holds;
    the owner role gets the count."""
    from click.testing import CliRunner

    from darkmap.cli import main
    from darkmap.store.workspace import Workspace
    Workspace.init(tmp_path / "ref").close()
    ref = ["-w", str(tmp_path / "ref")]
    member = CliRunner().invoke(main, ["audit", "verify", "--as", roles["b_off_name"], *ref],
                                env={"DARKMAP_OPS_SERVER": roles["b_off"]})
    # intact, or broken by the entry an earlier test of this module appended: either way
    # the member reads no length of the trail, and the owner does
    assert member.output.startswith(("audit trail intact\n", "Error: audit trail broken")), \
        member.output
    assert not re.search(r"\d+ entries", member.output), member.output
    owner = CliRunner().invoke(main, ["audit", "verify", *ref],
                               env={"DARKMAP_OPS_SERVER": server.admin})
    assert re.search(r"\d+ entries", owner.output), owner.output
    assert (member.exit_code == 0) == (owner.exit_code == 0), (member.output, owner.output)
