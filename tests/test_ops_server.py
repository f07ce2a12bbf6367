"""The operational layer on the team server (issue #13, storage): two users of two
agencies, each a real PostgreSQL login role in its own process, write at once; nothing
is lost, every shared selector is deconflicted, and the audit chain stays one valid
chain. The server, not the client, decides who acts: a role acts only as itself, and
no one may change or delete an audit entry or a record."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from ops_backends import ServerDb

from darkmap.errors import BadInputError, NotFoundError
from darkmap.ops import access, audit, records
from darkmap.ops.access import AccessDenied
from darkmap.ops.records import Case
from darkmap.store.team import open_ops_server

N = 30  # records each user writes
SHARED = 10  # of which the first SHARED link a persona both agencies hold

_WORKER = r"""
import json, os, sys, time
from pathlib import Path
from darkmap.ops import deconflict, records
from darkmap.ops.records import Parcel
from darkmap.store.team import open_ops_server

dsn, user, compartment, n, shared, go = sys.argv[1:7]
while not Path(go).exists():
    time.sleep(0.01)
ids = []
with open_ops_server(dsn) as ops:
    for i in range(int(n)):
        links = [("persona", f"shared-{i}" if i < int(shared) else f"{user}-{i}")]
        row = records.add_record(ops, user, Parcel("DHL", f"TRK-{user}-{i}"),
                                 compartment=compartment, operation="Both",
                                 provenance=f"worker {user}", links=links)
        ids.append(row.record_id)
    deconflict.submit(ops, user, compartment, [("email", "both@example.org")])
print(json.dumps(ids))
"""


@pytest.fixture(scope="module")
def two(server: ServerDb) -> dict[str, str]:
    """Two login roles, each an officer of its own agency: user id -> dsn."""
    out = {}
    with open_ops_server(server.admin) as ops:
        for agency, country in (("bka", "DE"), ("fbi", "US")):
            access.add_agency(ops.con, "setup", agency, agency.upper(), country,
                              f"{agency} desk")
        access.add_user(ops.con, "setup", "root-admin", "bka", "admin")
    for agency in ("bka", "fbi"):
        role, dsn = server.role(f"{agency}_officer")
        with open_ops_server(server.admin) as ops:
            access.add_user(ops.con, "root-admin", role, agency, "officer")
        with open_ops_server(dsn) as ops:
            access.add_compartment(ops.con, role, "agency", f"own {agency}",
                                   compartment_id=f"own-{agency}")
        out[role] = dsn
    return out


def test_two_users_writing_at_once_lose_nothing(server: ServerDb, two: dict[str, str],
                                                tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = {}
    for user, dsn in two.items():
        comp = "own-bka" if "bka" in user else "own-fbi"
        procs[user] = subprocess.Popen(
            [sys.executable, "-c", _WORKER, dsn, user, comp, str(N), str(SHARED), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(0.5)   # both connected and waiting (the outcome does not depend on it)
    go.touch()
    written = {}
    for user, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        written[user] = json.loads(out)
        assert len(written[user]) == N
    seqs = [r[0] for r in server.sql("SELECT seq FROM ops_audit ORDER BY seq")]
    with open_ops_server(server.admin) as ops:
        n, problem = audit.verify(ops.con)
        assert problem is None, problem
        assert seqs == list(range(1, n + 1))
        for user, ids in written.items():
            mine = {r.row.record_id for r in records.read_records(ops, user)}
            assert set(ids) <= mine
            added = [e for e in audit.show(ops.con, user) if e["action"] == "record.add"]
            assert sorted(e["record"] for e in added) == sorted(ids)
    stored = server.sql("SELECT author, count(*) FROM ops_records WHERE kind = 'parcel' "
                        "GROUP BY 1 ORDER BY 1")
    assert stored == sorted((u, N) for u in two)
    # every shared persona and the shared email: one notice to each agency
    subjects = server.sql("SELECT to_agency, count(DISTINCT subject) FROM ops_notices "
                          "WHERE kind = 'selector' GROUP BY 1 ORDER BY 1")
    assert subjects == [("bka", SHARED + 1), ("fbi", SHARED + 1)]


def test_a_role_acts_only_as_itself(server: ServerDb, two: dict[str, str]) -> None:
    alice, bob = sorted(two)
    with open_ops_server(two[alice]) as ops:
        with pytest.raises(AccessDenied, match="may not act as"):
            records.read_records(ops, bob)
        with pytest.raises(AccessDenied):
            records.add_record(ops, bob, Case("forged"), compartment="own-fbi",
                               provenance="forged")
        assert records.read_records(ops, alice)
    with open_ops_server(server.admin) as ops:
        denied = [e for e in audit.show(ops.con, bob) if e["outcome"] == "denied"]
        assert denied and denied[-1]["role"] == alice
        assert audit.verify(ops.con)[1] is None


def test_each_audit_entry_names_the_role_the_server_authenticated(
        server: ServerDb, two: dict[str, str], tmp_path: Path) -> None:
    """An entry's text says whom darkmap acted for (or whom a refused caller claimed to
    be); the server keeps beside it the login role that appended it, which no member
    sets: a court reads who connected, not only what the client wrote."""
    alice, bob = sorted(two)
    with open_ops_server(two[alice]) as ops:
        with pytest.raises(AccessDenied):
            records.read_records(ops, bob)
        mine = records.add_record(ops, alice, Case("whose entry"), compartment="own-bka",
                                  provenance="audit role test")
    with psycopg.connect(two[alice], autocommit=True) as pg:   # no member rewrites it
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("UPDATE ops_audit SET db_role = 'someone-else'")
    with open_ops_server(two[alice]) as ops:
        shown = audit.show(ops.con, alice)
    assert [e["connected_as"] for e in shown if e.get("record") == mine.record_id] == [alice]
    with open_ops_server(server.admin) as ops:
        claimed = [e for e in audit.show(ops.con, bob) if e["outcome"] == "denied"
                   and e.get("role") == alice]
        assert claimed and {e["connected_as"] for e in claimed} == {alice}
        assert audit.export_trail(ops.con, tmp_path / "trail.jsonl") > 0
    lines = [json.loads(x) for x in (tmp_path / "trail.jsonl").read_text().splitlines()]
    assert {x["connected_as"] for x in lines if "seq" in x} >= {alice}
    rows, head = audit.read_export(tmp_path / "trail.jsonl")
    assert audit.verify_chain(rows, head) is None
    # bka's admin reviewing the entries under bob's name reads who really connected;
    # fbi's reads none of them: the entry is bka's, whose login role wrote it (it named
    # alice's role and host to another agency)
    from click.testing import CliRunner

    from darkmap.cli import main
    from darkmap.cli.cmd_ops import SERVER_ENV
    server.sql("INSERT INTO ops_users VALUES ('fbi-chief', 'fbi', 'admin', 'test', now())")
    import darkmap
    darkmap.init_workspace(tmp_path / "ws").close()
    for chief, sees in (("root-admin", True), ("fbi-chief", False)):
        res = CliRunner().invoke(main, ["audit", "show", "--user", bob, "--as", chief,
                                        "-w", str(tmp_path / "ws")],
                                 env={SERVER_ENV: server.admin})
        assert res.exit_code == 0, res.output
        assert (f"(connected as {alice})" in res.output) == sees, chief


def test_a_raw_append_cannot_name_another_role() -> None:
    """The role beside an entry is set by the server on every append, whatever the
    inserted row says (a throw-away database: a raw entry that extends the chain)."""
    db = ServerDb()
    try:
        role, dsn = db.role("raw")
        genesis = "0" * 64
        entry = '{"seq":1}'
        digest = hashlib.sha256((genesis + entry).encode()).hexdigest()
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute("INSERT INTO ops_audit (seq, entry, prev_hash, hash, db_role) "
                       "VALUES (1, %s, %s, %s, 'someone-else')", [entry, genesis, digest])
        assert db.sql("SELECT db_role FROM ops_audit") == [(role,)]
    finally:
        db.drop()


def test_a_service_role_acts_for_any_user(server: ServerDb, two: dict[str, str]) -> None:
    _, dsn = server.role("web", service=True)
    with open_ops_server(dsn) as ops:
        for user in two:
            assert records.read_records(ops, user)


def test_no_one_changes_the_trail_or_the_records(server: ServerDb,
                                                 two: dict[str, str]) -> None:
    alice = sorted(two)[0]
    for sql in ("UPDATE ops_audit SET entry = '{}' WHERE seq = 1",
                "DELETE FROM ops_audit WHERE seq = 1",
                "UPDATE ops_records SET provenance = 'x'", "DELETE FROM ops_records",
                "DELETE FROM ops_selectors", "UPDATE ops_server_key SET key = 'x'"):
        with psycopg.connect(two[alice], autocommit=True) as pg:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(sql)
    with psycopg.connect(two[alice], autocommit=True) as pg:
        assert pg.execute("SELECT count(*) FROM ops_audit").fetchone()[0] > 0


def test_a_server_without_the_ops_schema_is_refused(server: ServerDb) -> None:
    from darkmap.store.team import TeamServerError
    db = f"{server.db}_bare"
    with psycopg.connect(server.server, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {db}")
    try:
        from ops_backends import with_db
        with pytest.raises(TeamServerError, match="team init"):
            open_ops_server(with_db(server.server, db))
    finally:
        with psycopg.connect(server.server, autocommit=True) as pg:
            pg.execute(f"DROP DATABASE {db} WITH (FORCE)")


def test_row_level_security_repeats_the_grants(server: ServerDb, two: dict[str, str]) -> None:
    """Straight to the server with psql-like SQL, bypassing darkmap: a role reads the
    records (and their links, items, lab results) its grants give and its own agency's
    notices, nothing else."""
    alice, bob = sorted(two)
    with open_ops_server(two[bob]) as ops:
        secret = records.add_record(ops, bob, Case("bob only"), compartment="own-fbi",
                                    provenance="rls test", links=[("persona", "p-secret")])
    counts = dict(server.sql("SELECT compartment_id, count(*) FROM ops_records GROUP BY 1"))
    for me, own in ((alice, "own-bka"), (bob, "own-fbi")):
        with psycopg.connect(two[me], autocommit=True) as pg:
            seen = dict(pg.execute("SELECT compartment_id, count(*) FROM ops_records "
                                   "GROUP BY 1").fetchall())
            assert seen == {own: counts[own]}
            links = {r[0] for r in pg.execute("SELECT ref_id FROM ops_links").fetchall()}
            assert ("p-secret" in links) == (me == bob)
            agencies = {r[0] for r in pg.execute("SELECT to_agency FROM ops_notices")}
            assert agencies == {"bka" if me == alice else "fbi"}
    with psycopg.connect(two[alice], autocommit=True) as pg:
        assert pg.execute("SELECT count(*) FROM ops_records WHERE record_id = %s",
                          [secret.record_id]).fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):   # forging an author
            pg.execute("INSERT INTO ops_records VALUES ('r-x', 'case', 'own-bka', 'bka', "
                       "%s, now(), NULL, NULL, NULL, 'DE', 'p', '{}')", [bob])
    _, web = server.role("web2", service=True)
    with psycopg.connect(web, autocommit=True) as pg:
        assert pg.execute("SELECT count(*) FROM ops_records").fetchone()[0] == sum(
            counts.values())


def test_compartments_grants_selectors_and_events_are_need_to_know(
        server: ServerDb, two: dict[str, str]) -> None:
    """Straight to the server: a member reads the compartments (and grants, selectors,
    planned events) it holds a grant on or its agency owns, no other; a case's title is
    not its compartment's name; an id another agency took is still answered "taken"."""
    from darkmap.ops import deconflict
    alice, bob = sorted(two)
    title = "Operation Kestrel: informant 7 names the courier"
    start = datetime(2027, 3, 1, 6, 0)
    with open_ops_server(two[bob]) as ops:
        case = records.add_record(ops, bob, Case(title), provenance="rls test")
        deconflict.submit(ops, bob, case.compartment_id, [("phone", "+31 6 5550 1234")])
        deconflict.add_event(ops, bob, "search_warrant", case.compartment_id, start,
                             start + timedelta(hours=2), lat=52.37, lon=4.89)
    for me in (alice, bob):
        with psycopg.connect(two[me], autocommit=True) as pg:
            ids = {r[0] for r in pg.execute("SELECT compartment_id FROM ops_compartments")}
            granted = {r[0] for r in pg.execute("SELECT compartment_id FROM ops_grants")}
            chosen = {r[0] for r in pg.execute("SELECT compartment_id FROM ops_selectors")}
            planned = {r[0] for r in pg.execute("SELECT compartment_id FROM ops_events")}
            names = [r[0] for r in pg.execute("SELECT name FROM ops_compartments")]
        assert not [n for n in names if "Kestrel" in n], names
        if me == alice:
            assert ids == granted == {"own-bka"} and chosen | planned <= {"own-bka"}
        else:
            assert {"own-fbi", case.compartment_id} <= ids and "own-bka" not in ids
            assert case.compartment_id in granted & chosen & planned
    with open_ops_server(two[alice]) as ops:
        with pytest.raises(BadInputError, match="is taken"):
            access.add_compartment(ops.con, alice, "agency", "mine",
                                   compartment_id=case.compartment_id)
    with open_ops_server(two[bob]) as ops:
        assert records.show_record(ops, bob, case.record_id).row.data["title"] == title


def test_a_member_reads_its_own_agencys_users_and_still_names_a_partners(
        server: ServerDb, two: dict[str, str]) -> None:
    """Straight to the server a member reads its own agency's users only (which users and
    roles another agency has is that agency's); through darkmap it still puts a
    partner's user on a case team, and a taken user id is still refused."""
    alice, bob = sorted(two)
    with psycopg.connect(two[alice], autocommit=True) as pg:
        seen = pg.execute("SELECT user_id, agency_id FROM ops_users").fetchall()
    assert seen and {a for _, a in seen} == {"bka"} and bob not in {u for u, _ in seen}
    with open_ops_server(two[alice]) as ops:
        team = access.add_compartment(ops.con, alice, "case", "joint case", members=[bob])
        [mine] = [c for c in access.list_compartments(ops.con, alice)
                  if c.compartment_id == team.compartment_id]
        assert set(mine.grants) == {f"user:{alice}:write", f"user:{bob}:write"}
        with pytest.raises(NotFoundError, match="no user of that id"):
            access.add_compartment(ops.con, alice, "case", "x", members=["nobody-at-all"])
    with open_ops_server(server.admin) as ops:
        with pytest.raises(BadInputError, match="exists already"):
            access.add_user(ops.con, "root-admin", bob, "bka", "officer")


_FORGERIES = {
    "a grant on another agency's compartment":
        "INSERT INTO ops_grants VALUES ('own-fbi', 'user', %(me)s, 'write', %(me)s, now())",
    "a grant on one's own compartment by its officer, after it was made":
        "INSERT INTO ops_grants VALUES ('own-bka', 'agency', 'fbi', 'read', %(me)s, now())",
    "a compartment owned by another agency":
        "INSERT INTO ops_compartments VALUES ('x-1', 'agency', 'x', 'fbi', %(me)s, now())",
    "a record in another agency's compartment":
        "INSERT INTO ops_records VALUES ('r-x', 'case', 'own-fbi', 'bka', %(me)s, now(), "
        "NULL, NULL, NULL, 'DE', 'p', '{}')",
    "a record in the name of another agency":
        "INSERT INTO ops_records VALUES ('r-y', 'case', 'own-bka', 'fbi', %(me)s, now(), "
        "NULL, NULL, NULL, 'DE', 'p', '{}')",
    "a link on another user's record":
        "INSERT INTO ops_links VALUES (%(theirs)s, 'persona', 'p-planted')",
    "a selector of another agency":
        "INSERT INTO ops_selectors VALUES ('ab', 'phone', 'own-fbi', 'fbi', NULL, %(me)s, "
        "now())",
    "an event in another agency's compartment":
        "INSERT INTO ops_events VALUES ('e-x', 'arrest', 'own-fbi', 'fbi', 52.0, 4.0, NULL, "
        "now(), now(), %(me)s, now())",
    "a notice between two other agencies":
        "INSERT INTO ops_notices VALUES ('n-1', 'event', 'fbi', 'fbi', 'fbi desk', 's', "
        "now(), NULL, NULL)",
    "a notice naming a contact that is not the agency's":
        "INSERT INTO ops_notices VALUES ('n-2', 'selector', 'fbi', 'bka', 'call +1 555', "
        "'s', now(), NULL, NULL)",
    "an acknowledgement in another user's name":
        "UPDATE ops_notices SET acked_by = 'someone-else', acked_at = now()",
    "an agency, by an officer":
        "INSERT INTO ops_agencies VALUES ('evil', 'E', 'DE', 'c', %(me)s, now())",
    "a user, by an officer":
        "INSERT INTO ops_users VALUES ('dm_other', 'bka', 'admin', %(me)s, now())",
}


@pytest.mark.parametrize("what", sorted(_FORGERIES))
def test_no_member_writes_past_the_library(server: ServerDb, two: dict[str, str],
                                           what: str) -> None:
    """Straight to the server: every write the library would refuse, the server refuses
    too (an officer of bka, in psql)."""
    alice, bob = sorted(two)
    theirs = server.sql("SELECT record_id FROM ops_records WHERE author = %s LIMIT 1",
                        [bob])
    params = {"me": alice, "theirs": theirs[0][0] if theirs else "none"}
    with psycopg.connect(two[alice], autocommit=True) as pg:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            pg.execute(_FORGERIES[what], params)


def test_no_member_changes_or_removes_another_agencys_grants(
        server: ServerDb, two: dict[str, str]) -> None:
    """An officer changes no grant, not even on its agency's compartment; an admin only
    on its agency's."""
    alice = sorted(two)[0]
    admin, admin_dsn = server.role("bka_admin")
    with open_ops_server(server.admin) as ops:
        access.add_user(ops.con, "root-admin", admin, "bka", "admin")
    before = server.sql("SELECT * FROM ops_grants ORDER BY 1, 2, 3")
    for me, dsn in ((alice, two[alice]), (admin, admin_dsn)):
        with psycopg.connect(dsn, autocommit=True) as pg:
            assert pg.execute("DELETE FROM ops_grants WHERE compartment_id = 'own-fbi'"
                              ).rowcount == 0
            assert pg.execute("UPDATE ops_grants SET access = 'read', granted_by = %s "
                              "WHERE compartment_id = 'own-fbi'", [me]).rowcount == 0
            changed = pg.execute("UPDATE ops_grants SET access = 'read', granted_by = %s "
                                 "WHERE compartment_id = 'own-bka'", [me]).rowcount
        assert changed == (0 if me == alice else 1)
    after = server.sql("SELECT * FROM ops_grants ORDER BY 1, 2, 3")
    assert [r for r in after if r[0] != "own-bka"] == [r for r in before if r[0] != "own-bka"]
    assert [r[3] for r in after if r[0] == "own-bka"] == ["read"]
    with open_ops_server(admin_dsn) as ops:   # put back what the next tests expect
        access.grant(ops.con, admin, "own-bka", "agency", "bka", "write")


def test_a_probe_past_the_library_leaves_its_notice(server: ServerDb,
                                                   two: dict[str, str]) -> None:
    """The server compares selectors and events: only those the caller has stored, and
    it writes the notices itself, so a member in psql who stores a selector or an event
    to fish for another agency's cannot keep that agency from its notice; a selector it
    has not stored is never matched, and the radius is capped."""
    from darkmap.ops import deconflict
    alice, bob = sorted(two)
    start = datetime(2027, 5, 2, 5, 0)
    with open_ops_server(two[bob]) as ops:
        deconflict.submit(ops, bob, "own-fbi", [("email", "probe-me@example.org")])
        event, _ = deconflict.add_event(ops, bob, "arrest", "own-fbi", start,
                                        start + timedelta(hours=1), lat=40.7128,
                                        lon=-74.0060)
        key = deconflict.taskforce_key(ops)
    hmac_hex = deconflict.hash_selector(key, "email", "probe-me@example.org")
    notices = ("SELECT count(*) FROM ops_notices WHERE to_agency = 'fbi' AND other_agency "
               "= 'bka'")
    before = server.sql(notices)[0][0]
    probe = "SELECT * FROM ops_selector_matches(%s, %s, %s, %s)"
    args = [[hmac_hex], ["email"], ["own-bka"], ["bka"]]
    with psycopg.connect(two[alice], autocommit=True) as pg:
        assert pg.execute(probe, args).fetchall() == []          # not stored: no answer
        assert server.sql(notices)[0][0] == before
        pg.execute("INSERT INTO ops_selectors VALUES (%s, 'email', 'own-bka', 'bka', NULL, "
                   "%s, now())", [hmac_hex, alice])
        assert pg.execute(probe, args).fetchall() == [
            (hmac_hex, "email", "own-bka", "bka", "fbi", "exact", "fbi desk")]
        assert server.sql(notices)[0][0] == before + 1          # fbi told, by the server
        far = start.replace(hour=5, minute=30)
        for eid, lat in (("e-far", 41.2), ("e-near", 40.7150)):  # 54 km, 250 m away
            pg.execute("INSERT INTO ops_events VALUES (%s, 'arrest', 'own-bka', 'bka', %s, "
                       "-74.0060, NULL, %s, %s, %s, now())", [eid, lat, far, far, alice])
        clash = "SELECT * FROM ops_event_clashes(%s, %s)"
        assert pg.execute(clash, ["e-far", 1e9]).fetchall() == []   # capped at 5 km
        assert pg.execute(clash, ["e-near", 1000]).fetchall() == [(event, "fbi", True, "fbi desk")]
        assert pg.execute(clash, [event, 1000]).fetchall() == []    # not alice's event
    hits = server.sql("SELECT subject FROM ops_notices WHERE to_agency = 'fbi' AND kind = "
                      "'event'")
    assert [s for (s,) in hits if event in s and "bka" in s]


def test_the_server_writes_the_notices_the_library_would(server: ServerDb,
                                                        two: dict[str, str]) -> None:
    """Through darkmap on the server, every clash gives one notice to each agency: the
    server's notice ids and subjects are the library's (none written twice)."""
    from darkmap.ops import deconflict
    alice, bob = sorted(two)
    start = datetime(2027, 6, 9, 4, 0)
    subject = "kind = 'event' AND (subject LIKE %s OR subject LIKE %s)"
    with open_ops_server(two[alice]) as ops:
        mine, _ = deconflict.add_event(ops, alice, "controlled_delivery", "own-bka", start,
                                       start + timedelta(hours=3),
                                       postal_area="Hauptstraße 5, 10115 Berlin")
    with open_ops_server(two[bob]) as ops:
        theirs, found = deconflict.add_event(ops, bob, "surveillance", "own-fbi", start,
                                             start + timedelta(hours=1),
                                             postal_area="  hauptstrasse 5 10115 BERLIN ")
        assert [c.other_agency for c in found] == ["bka"]
        sent = deconflict.submit(ops, bob, "own-fbi", [("phone", "0049 30 5550 9")])
    with open_ops_server(two[alice]) as ops:
        assert deconflict.submit(ops, alice, "own-bka", [("phone", "+49 30 55509")]
                                 ).notices == 2 and sent.notices == 0
    rows = server.sql(f"SELECT to_agency, other_agency FROM ops_notices WHERE {subject} "
                      "ORDER BY 1", [f"event {theirs} %", f"event {mine} %"])
    assert rows == [("bka", "fbi"), ("fbi", "bka")]
    phone = server.sql("SELECT to_agency FROM ops_notices WHERE kind = 'selector' AND "
                       "subject LIKE 'phone %' ORDER BY 1")
    assert phone == [("bka",), ("fbi",)]


def test_a_selector_both_agencies_hold_in_one_shared_compartment_notifies_both(
        server: ServerDb, two: dict[str, str]) -> None:
    """In a task-force compartment the second agency's copy of a selector is the first's
    row (one row per compartment): the server still matches it, as a workspace does."""
    from darkmap.ops import deconflict
    alice, bob = sorted(two)
    with open_ops_server(two[alice]) as ops:
        shared = access.add_compartment(ops.con, alice, "taskforce", "joint")
        deconflict.submit(ops, alice, shared.compartment_id, [("wallet", "w-shared-77")])
    with open_ops_server(two[bob]) as ops:
        out = deconflict.submit(ops, bob, shared.compartment_id, [("wallet", "w-shared-77")])
    assert out.notices == 2
    rows = server.sql("SELECT to_agency, other_agency FROM ops_notices WHERE kind = "
                      "'selector' AND subject LIKE 'wallet %' ORDER BY 1")
    assert rows == [("bka", "fbi"), ("fbi", "bka")]


def test_the_server_guards_every_table_it_has_policies_for() -> None:
    """Row-level security is switched on for every table with policies (a policy on a
    table without it is silently ignored), and the server's radius cap is the library's."""
    import re

    from darkmap.ops.vocabulary import DEFAULT_DISTANCE_M, MAX_DISTANCE_M, MAX_EVENT_DAYS
    from darkmap.store import ops_guards
    enabled = set(re.findall(r"ALTER TABLE (\w+) ENABLE ROW LEVEL SECURITY", ops_guards._ENABLE))
    assert enabled == {t for t, *_ in ops_guards._POLICIES}
    assert ops_guards.EVENT_RADIUS_CAP_M == MAX_DISTANCE_M
    assert ops_guards.EVENT_RADIUS_DEFAULT_M == DEFAULT_DISTANCE_M
    assert ops_guards.EVENT_MAX_DAYS == MAX_EVENT_DAYS


@pytest.mark.parametrize("area", ["  Hauptstraße 5,  10115 Berlin ", "SW1A 1AA",
                                  "\uff33\uff37\uff11\uff21\u3000\uff11\uff21\uff21",
                                  "75001; Paris.", "ΟΔΟΣ 3", "Rue d\u2019Alésia\t14"])
def test_the_server_writes_a_postal_area_as_the_library(server: ServerDb, area: str) -> None:
    from darkmap.ops.deconflict import normalise
    assert server.sql("SELECT ops_postal_key(%s)", [area]) == [(normalise("postal", area),)]


def test_a_large_submission_goes_by_copy_and_matches(server: ServerDb,
                                                     two: dict[str, str]) -> None:
    """From 1,000 selectors on, the server gets them by COPY: the same matches, every
    selector kept, and text with tabs, newlines and backslashes arrives as written."""
    import pyarrow as pa

    from darkmap.ops import deconflict
    from darkmap.store.operations import _pg_load
    alice, bob = sorted(two)
    with open_ops_server(two[alice]) as ops:
        deconflict.submit(ops, alice, "own-bka", [("phone", "+49 30 777")])
    many = [("email", f"v{i}@example.org") for i in range(1500)] + [("phone", "0049 30 777")]
    count = ("SELECT count(*) FROM ops_selectors WHERE compartment_id = 'own-fbi' "
             "AND kind = 'email'")
    before = server.sql(count)[0][0]
    with open_ops_server(two[bob]) as ops:
        out = deconflict.submit(ops, bob, "own-fbi", many)
        assert out.selectors == 1501 and out.notices == 2
        odd = ["tab\there", "new\nline", "back\\slash", "cr\rx", "\\N", "plain"]
        ops.con.execute("BEGIN")
        _pg_load(ops.con, ["CREATE TEMP TABLE _t (v TEXT)"], "COPY _t FROM STDIN",
                 pa.table({"v": odd}), ["v"])
        assert [r[0] for r in ops.con.execute("SELECT v FROM _t").fetchall()] == odd
        ops.con.execute("ROLLBACK")
    assert server.sql(count)[0][0] == before + 1500


def test_only_the_owner_archives_the_trail(server: ServerDb, two: dict[str, str],
                                           tmp_path: Path) -> None:
    """Retention on the server: a member of darkmap_ops may not remove audit entries
    (no DELETE); the refusal leaves no file and the trail as it was."""
    from datetime import UTC, datetime, timedelta

    from darkmap.store.audit import audit_archives, audit_rows

    alice = sorted(two)[0]
    out = tmp_path / "archive.jsonl"
    with open_ops_server(two[alice]) as ops:
        n = len(audit_rows(ops.con))
        later = datetime.now(UTC) + timedelta(days=800)
        with pytest.raises(PermissionError, match="owner role"):
            audit.archive_trail(ops.con, out, datetime.now(UTC) + timedelta(days=1), alice,
                                now=later)
        assert not out.exists() and len(audit_rows(ops.con)) == n
        # the member reads its agency's entries and checks the whole chain
        whole = server.sql("SELECT count(*) FROM ops_audit")[0][0]
        assert n < whole
        assert audit_archives(ops.con) == [] and audit.verify(ops.con) == (whole, None)


def test_row_level_security_keeps_other_agencies_audit_entries(
        server: ServerDb, two: dict[str, str], tmp_path: Path) -> None:
    """Straight to the server with psql-like SQL: a member reads the audit entries of its
    own agency's users and of actors that are no user, never another agency's (they name
    its records, compartments and times). Its `audit verify` still checks the whole
    chain, on the server, and finds a tampered entry of the other agency by number
    without showing it; a whole-trail export is the owner's."""
    alice, bob = sorted(two)
    with open_ops_server(two[bob]) as ops:
        secret = records.add_record(ops, bob, Case("fbi only"), compartment="own-fbi",
                                    provenance="audit rls test")
    actors = dict(server.sql("SELECT u.user_id, u.agency_id FROM ops_users u"))
    whole = server.sql("SELECT count(*) FROM ops_audit")[0][0]
    for me, other in ((alice, bob), (bob, alice)):
        with psycopg.connect(two[me], autocommit=True) as pg:
            rows = pg.execute("SELECT entry, db_role FROM ops_audit ORDER BY seq").fetchall()
        seen = [json.loads(e) for e, _ in rows]
        assert 0 < len(seen) < whole
        # an entry is the agency's whose member login role wrote it, whatever its actor
        # says (a member's claim to be another agency's user stays the member's)
        assert not [r for _, r in rows if r == other]
        assert all(actors.get(r, actors[me]) == actors[me] for _, r in rows)
        assert all(actors.get(e["actor"], actors[me]) == actors[me] or r == me
                   or e["action"] == "audit.archive" for e, (_, r) in zip(seen, rows, strict=True))
        assert {"setup", me} <= {e["actor"] for e in seen}
        assert (secret.record_id in json.dumps(seen)) == (me == bob)
    # the library reads the same, and checks the whole chain on the server
    with open_ops_server(two[alice]) as ops:
        assert secret.record_id not in json.dumps(audit.show(ops.con))
        n, problem = audit.verify(ops.con)
        assert problem is None and n == server.sql("SELECT count(*) FROM ops_audit")[0][0]
        with pytest.raises(BadInputError, match="hidden from you"):
            audit.export_trail(ops.con, tmp_path / "trail.jsonl")
        assert not (tmp_path / "trail.jsonl").exists()
    seq, entry = server.sql("SELECT seq, entry FROM ops_audit WHERE actor = %s "
                            "ORDER BY seq DESC LIMIT 1", [bob])[0]
    assert '"outcome":"ok"' in str(entry)
    server.sql("UPDATE ops_audit SET entry = %s WHERE seq = %s",
               [str(entry).replace('"outcome":"ok"', '"outcome":"denied"'), seq])
    try:
        with open_ops_server(two[alice]) as ops:
            n, problem = audit.verify(ops.con)
            assert problem == audit.AuditProblem(seq, "content changed (hash does not match)")
    finally:
        server.sql("UPDATE ops_audit SET entry = %s WHERE seq = %s", [entry, seq])
    _, web = server.role("web3", service=True)
    with open_ops_server(web) as ops:
        assert audit.export_trail(ops.con, tmp_path / "whole.jsonl") == \
            server.sql("SELECT count(*) FROM ops_audit")[0][0]
    rows, head = audit.read_export(tmp_path / "whole.jsonl")
    assert audit.verify_chain(rows, head) is None


def test_the_server_checks_each_entry_as_the_library_does(server: ServerDb) -> None:
    """A member's `audit verify` has the server check each entry's content
    (``ops_audit_links()``): for intact and tampered trails, with non-ASCII text, it
    names the same first bad entry, for the same reason, as the library's own check."""
    from darkmap.ops.audit import GENESIS, canonical, chain_hash, verify_chain, verify_links
    from darkmap.store.audit import AuditRow, server_links
    from darkmap.store.operations import PgOps

    def trail(texts: list[str]) -> list[AuditRow]:
        rows, prev = [], GENESIS
        for seq, text in enumerate(texts, start=1):
            rows.append(AuditRow(seq, text, prev, chain_hash(prev, text)))
            prev = rows[-1].hash
        return rows

    texts = [canonical({"seq": i, "actor": "jürgen", "action": "record.read",
                        "outcome": "ok", "record": f"case-{i} ✓ 日本 🔥"})
             for i in range(1, 6)]
    good = trail(texts)
    rehashed = trail([*texts[:2], texts[2].replace("ok", "denied"), *texts[3:]])
    cases = {
        "intact": good,
        "edited": [*good[:2], good[2]._replace(entry=good[2].entry.replace("ok", "no")),
                   *good[3:]],
        "rehashed edit": [*good[:2], rehashed[2], *good[3:]],
        "not JSON": [*good[:3], good[3]._replace(entry="{not json"), good[4]],
        "a JSON array": [*good[:3], good[3]._replace(entry='[4, "x"]'), good[4]],
        "its content names another entry": [
            *good[:1], good[1]._replace(entry=good[1].entry.replace('"seq":2', '"seq":3')),
            *good[2:]],
        "deleted": [*good[:2], *good[3:]],
    }
    with psycopg.connect(server.admin) as raw:
        con = PgOps(raw)
        for name, rows in cases.items():
            head = (good[-1].seq, good[-1].hash)
            con.execute("BEGIN")
            try:
                # tampering as only the owner can: past the check that each entry
                # extends the chain (rolled back with the rest)
                con.execute("ALTER TABLE ops_audit DISABLE TRIGGER ops_audit_extends")
                con.execute("DELETE FROM ops_audit")
                for r in rows:
                    con.execute("INSERT INTO ops_audit VALUES (?, ?, ?, ?)", list(r))
                on_server = verify_links(server_links(con), head)
            finally:
                con.execute("ROLLBACK")
            assert on_server == verify_chain(rows, head), name
            assert (on_server is None) == (name == "intact"), name
