"""The operational layer on the team server (issue #13, storage): two users of two
agencies, each a real PostgreSQL login role in its own process, write at once; nothing
is lost, every shared selector is deconflicted, and the audit chain stays one valid
chain. The server, not the client, decides who acts: a role acts only as itself, and
no one may change or delete an audit entry or a record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ops_backends import ServerDb

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
def server() -> Iterator[ServerDb]:
    db = ServerDb()
    yield db
    db.drop()


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


def test_a_case_title_does_not_name_its_compartment(server: ServerDb,
                                                   two: dict[str, str]) -> None:
    """Compartments are readable by every member on the server (grants are checked
    against them): a new case's compartment does not carry the case's title, which only
    a grant on it shows."""
    alice, bob = sorted(two)
    title = "Operation Kestrel: informant 7 names the courier"
    with open_ops_server(two[bob]) as ops:
        case = records.add_record(ops, bob, Case(title), provenance="rls test")
    with psycopg.connect(two[alice], autocommit=True) as pg:
        names = [r[0] for r in pg.execute("SELECT name FROM ops_compartments").fetchall()]
        assert case.compartment_id in {r[0] for r in pg.execute(
            "SELECT compartment_id FROM ops_compartments").fetchall()}
        assert not [n for n in names if "Kestrel" in n], names
        assert pg.execute("SELECT count(*) FROM ops_records WHERE record_id = %s",
                          [case.record_id]).fetchone() == (0,)
    with open_ops_server(two[bob]) as ops:
        assert records.show_record(ops, bob, case.record_id).row.data["title"] == title


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
        assert audit_archives(ops.con) == [] and audit.verify(ops.con) == (n, None)
