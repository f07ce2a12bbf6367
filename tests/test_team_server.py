"""Team server: judgements shared through a real PostgreSQL on loopback.

Every analyst is a real PostgreSQL login role created by the test (and dropped after);
the server, not the client, decides who wrote and who may withdraw a judgement.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.collect.ingest import ingest
from darkmap.resolve.judgements import (
    active_judgements,
    awaiting_sync,
    judge,
    ordered,
    standing_with,
    withdraw,
)
from darkmap.store.operations import OpsServer, PgOps
from darkmap.store.personas import judgements_touching
from darkmap.store.team import (
    NOTE_CHARS,
    SCHEMA_VERSION,
    SUPERVISOR_ROLE,
    TeamServerError,
    check_row,
    init_server,
    secure_conninfo,
    sync_judgements,
    team_judgements,
)
from darkmap.store.workspace import Workspace
from darkmap.web.views import _judgements_over_server

REPO = Path(__file__).resolve().parents[1]


def _server_dsn() -> str:
    dsn = os.environ.get("DARKMAP_TEST_PG")
    if dsn:
        return dsn
    port = "55432"  # same defaults as `make pg-start`
    subprocess.run(["bash", str(REPO / "scripts" / "pg.sh"), "start"], check=True,
                   env={**os.environ, "PG_PORT": port, "PG_DIR": f"/tmp/darkmap-pg-{os.getuid()}"})
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _with_db(dsn: str, db: str, user: str | None = None) -> str:
    """``dsn`` pointed at database ``db`` (as ``user``, when given)."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = db
    if user:
        params["user"] = user
        params.pop("password", None)
    return psycopg.conninfo.make_conninfo(**params)


class Team:
    """A fresh database on the test server, and the login roles made on it."""

    def __init__(self, admin: str) -> None:
        self.tag = uuid.uuid4().hex[:10]
        self.db = f"darkmap_test_{self.tag}"
        self.server = admin
        self.admin = _with_db(admin, self.db)
        self.roles: list[str] = []

    def analyst(self, name: str, supervisor: bool = False) -> tuple[str, str]:
        """A new login role granted darkmap's analyst (or supervisor) role: (role, dsn)."""
        role = f"dm_{self.tag}_{name}"
        with psycopg.connect(self.admin, autocommit=True) as pg:
            pg.execute(f"CREATE ROLE {role} LOGIN")
            self.roles.append(role)
            pg.execute(f"GRANT {SUPERVISOR_ROLE if supervisor else 'darkmap_analyst'} "
                       f"TO {role}")
        return role, _with_db(self.server, self.db, role)

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        """Run ``query`` as the superuser; its rows (if any)."""
        with psycopg.connect(self.admin, autocommit=True) as pg:
            cur = pg.execute(query, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture
def team() -> Iterator[Team]:
    """A fresh database (no team schema yet), dropped afterwards with its roles."""
    server = _server_dsn()
    t = Team(server)
    with psycopg.connect(server, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {t.db}")
    yield t
    with psycopg.connect(server, autocommit=True) as pg:
        pg.execute(f"DROP DATABASE {t.db} WITH (FORCE)")
        for role in t.roles:
            pg.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def ready(team: Team) -> Team:
    """The team database with the current schema."""
    init_server(team.admin)
    return team


WorkspaceOf = Callable[[str], Workspace]


@pytest.fixture
def workspace_of(tmp_path: Path, data_dir: Path) -> Iterator[WorkspaceOf]:
    """Workspaces holding the real Hansa pages, one per analyst name, closed afterwards."""
    made: list[Workspace] = []

    def make(name: str) -> Workspace:
        ws = Workspace.init(tmp_path / name)
        ingest(ws, [data_dir / "pages" / "hansa"])
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


def _pair(ws: Workspace, offset: int = 0) -> tuple[str, str]:
    a, b = (r[0] for r in ws.con.execute(
        "SELECT account_id FROM accounts ORDER BY 1 LIMIT 2 OFFSET ?", [offset]).fetchall())
    return a, b


def _local(ws: Workspace) -> list[tuple[object, ...]]:
    return ws.con.execute("SELECT a, b, verdict, author, withdrawn_at IS NOT NULL "
                          "FROM judgements ORDER BY created_at").fetchall()


# --- authors and withdrawals -----------------------------------------------------------


def test_analysts_converge_and_only_author_or_supervisor_withdraws(
        ready: Team, workspace_of: WorkspaceOf) -> None:
    alice_role, alice_dsn = ready.analyst("alice")
    bob_role, bob_dsn = ready.analyst("bob")
    carol_role, carol_dsn = ready.analyst("carol", supervisor=True)
    alice, bob, carol = workspace_of("alice"), workspace_of("bob"), workspace_of("carol")
    a, b = _pair(alice)
    judge(alice, a, b, "different", author="alice", note="different PGP keys")

    first = sync_judgements(alice, alice_dsn)
    assert (first.pushed, first.role) == (1, alice_role)
    assert sync_judgements(alice, alice_dsn).pushed == 0  # already there
    res = sync_judgements(bob, bob_dsn)
    assert (res.pulled, res.server_total) == (1, 1)
    # the author is the role that pushed it, whatever the workspace called its analyst
    assert _local(bob) == [(min(a, b), max(a, b), "different", alice_role, False)]

    # bob withdraws alice's judgement in his workspace: the server keeps it standing
    assert withdraw(bob, a, b) == 1
    res = sync_judgements(bob, bob_dsn)
    assert (res.withdrawals_pushed, res.withdrawals_refused) == (0, 1)
    assert sync_judgements(alice, alice_dsn).withdrawals_pulled == 0
    assert ready.sql("SELECT withdrawn_at, withdrawn_by FROM team_judgements") == [(None, None)]

    # a supervisor may
    assert sync_judgements(carol, carol_dsn).pulled == 1
    assert withdraw(carol, a, b) == 1
    res = sync_judgements(carol, carol_dsn)
    assert (res.withdrawals_pushed, res.withdrawals_refused) == (1, 0)
    assert ready.sql("SELECT withdrawn_by FROM team_judgements") == [(carol_role,)]
    res = sync_judgements(alice, alice_dsn)
    assert res.withdrawals_pulled == 1
    assert _local(alice)[0][4] is True

    again = sync_judgements(alice, alice_dsn)  # converged: nothing more moves
    assert (again.pushed, again.pulled, again.withdrawals_pulled) == (0, 0, 0)
    # bob's refused withdrawal stays refused; he never re-pushes alice's judgement as his
    res = sync_judgements(bob, bob_dsn)
    assert (res.pushed, res.withdrawals_refused) == (0, 0)  # carol's withdrawal stands now
    assert ready.sql("SELECT author FROM team_judgements") == [(alice_role,)]


def test_standing_with_the_server_is_what_a_sync_leaves(
        ready: Team, workspace_of: WorkspaceOf) -> None:
    """The workbench over a team server counts the server's judgements beside the
    workspace's (`standing_with`): before bob syncs, it gives the verdicts his workspace
    holds after the sync; a pair judged again later takes the later verdict, a withdrawn
    judgement counts on neither side."""
    _, alice_dsn = ready.analyst("alice")
    _, bob_dsn = ready.analyst("bob")
    _, carol_dsn = ready.analyst("carol", supervisor=True)
    alice, bob, carol = workspace_of("alice"), workspace_of("bob"), workspace_of("carol")
    p1, p2, p3, p4 = (_pair(alice, k) for k in (0, 2, 4, 6))
    judge(alice, *p1, "different", author="alice")
    judge(alice, *p3, "same", author="alice")
    sync_judgements(alice, alice_dsn)
    sync_judgements(carol, carol_dsn)
    judge(carol, *p1, "same", author="carol")      # later, on the same pair
    withdraw(carol, *p3)                            # a supervisor withdraws alice's
    sync_judgements(carol, carol_dsn)
    judge(bob, *p2, "unsure", author="bob")         # bob's own, not yet shared
    judge(bob, *p4, "different", author="bob")
    withdraw(bob, *p4)
    with psycopg.connect(bob_dsn) as pg:
        shared = team_judgements(PgOps(pg))
    expected = standing_with(bob, shared)
    assert expected == {ordered(*p1): "same", ordered(*p2): "unsure"}
    assert active_judgements(bob) == {ordered(*p2): "unsure"}   # the workspace alone
    sync_judgements(bob, bob_dsn)
    assert active_judgements(bob) == expected


def test_awaiting_sync_is_what_a_sync_changes(ready: Team, workspace_of: WorkspaceOf) -> None:
    """What the persona page over a team server marks (`awaiting_sync`): the server's
    judgements bob's workspace does not hold yet, and those it holds that a supervisor
    withdrew on the server; after bob's sync the first stand in his workspace and the
    second no longer do. Only judgements touching the accounts asked about count."""
    _, alice_dsn = ready.analyst("alice")
    _, bob_dsn = ready.analyst("bob")
    _, carol_dsn = ready.analyst("carol", supervisor=True)
    alice, bob, carol = workspace_of("alice"), workspace_of("bob"), workspace_of("carol")
    p1, p2, p3 = (_pair(alice, k) for k in (0, 2, 4))
    judge(alice, *p1, "same", author="alice")
    judge(alice, *p3, "different", author="alice")
    sync_judgements(alice, alice_dsn)
    sync_judgements(bob, bob_dsn)                   # bob holds alice's two
    sync_judgements(carol, carol_dsn)
    withdraw(carol, *p3)                            # a supervisor withdraws one of them
    judge(carol, *p2, "same", author="carol")       # and judges a pair bob has not seen
    sync_judgements(carol, carol_dsn)
    with psycopg.connect(bob_dsn) as pg:
        shared = team_judgements(PgOps(pg))
    everyone = {*p1, *p2, *p3}
    pending = awaiting_sync(bob, shared, everyone)
    assert [ordered(r[1], r[2]) for r in pending.new] == [ordered(*p2)]
    p3_id = bob.con.execute("SELECT judgement_id FROM judgements WHERE a = ? AND b = ?",
                            list(ordered(*p3))).fetchall()
    assert pending.withdrawn == {p3_id[0][0]}
    assert awaiting_sync(bob, shared, set(p1)) == type(pending)([], set())
    assert active_judgements(bob) == {ordered(*p1): "same", ordered(*p3): "different"}
    # the persona page's list over the team server: bob's two, one marked withdrawn on
    # the server, then carol's, marked not yet in the workspace
    held = [{"a": j.a, "b": j.b, "verdict": j.verdict, "judgement_id": j.judgement_id}
            for j in judgements_touching(bob.con, sorted(everyone))]
    with psycopg.connect(bob_dsn) as pg:
        shown = _judgements_over_server(bob, OpsServer(PgOps(pg)), held, everyone)
    assert [(ordered(j["a"], j["b"]), "unsynced" if j["unsynced"]
             else j["withdrawn_on_server"]) for j in shown] == [
        (ordered(*p1), False), (ordered(*p3), True), (ordered(*p2), "unsynced")]
    sync_judgements(bob, bob_dsn)
    assert active_judgements(bob) == {ordered(*p1): "same", ordered(*p2): "same"}
    with psycopg.connect(bob_dsn) as pg:
        assert awaiting_sync(bob, team_judgements(PgOps(pg)), everyone) == type(pending)(
            [], set())


def test_author_may_withdraw_own_judgement(ready: Team, workspace_of: WorkspaceOf) -> None:
    _, alice_dsn = ready.analyst("alice")
    alice = workspace_of("alice")
    a, b = _pair(alice)
    judge(alice, a, b, "same")
    sync_judgements(alice, alice_dsn)
    withdraw(alice, a, b)
    res = sync_judgements(alice, alice_dsn)
    assert (res.withdrawals_pushed, res.withdrawals_refused) == (1, 0)


def test_an_analyst_cannot_write_as_another_or_rewrite_the_table(
        ready: Team, workspace_of: WorkspaceOf) -> None:
    alice_role, alice_dsn = ready.analyst("alice")
    bob_role, bob_dsn = ready.analyst("bob")
    bob = workspace_of("bob")
    a, b = _pair(bob)
    judge(bob, a, b, "same", author=alice_role, note="claims to be alice")
    sync_judgements(bob, bob_dsn)
    assert ready.sql("SELECT author FROM team_judgements") == [(bob_role,)]
    (bob_jid,) = ready.sql("SELECT judgement_id FROM team_judgements")[0]

    now = datetime(2024, 1, 1)
    with psycopg.connect(alice_dsn, autocommit=True) as pg:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # no author column for her
            pg.execute("INSERT INTO team_judgements (judgement_id, a, b, verdict, author, "
                       "created_at) VALUES ('j-x', 'm:a', 'm:b', 'same', %s, %s)",
                       [bob_role, now])
        # whatever a client sends, the server writes the role it authenticated
        pg.execute("INSERT INTO team_judgements (judgement_id, a, b, verdict, created_at) "
                   "VALUES ('j-y', 'm:a', 'm:b', 'same', %s)", [now])
        for statement in ("UPDATE team_judgements SET verdict = 'different'",
                          "UPDATE team_judgements SET author = 'x'",
                          "DELETE FROM team_judgements", "TRUNCATE team_judgements"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(statement)
        # bob's judgement is not hers to withdraw: no row changes
        cur = pg.execute("UPDATE team_judgements SET withdrawn_at = %s "
                         "WHERE judgement_id = %s", [now, bob_jid])
        assert cur.rowcount == 0
        # her own: once, never undone
        assert pg.execute("UPDATE team_judgements SET withdrawn_at = %s "
                          "WHERE judgement_id = 'j-y'", [now]).rowcount == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="never undone"):
            pg.execute("UPDATE team_judgements SET withdrawn_at = NULL "
                       "WHERE judgement_id = 'j-y'")
    assert set(ready.sql("SELECT judgement_id, author, withdrawn_at IS NOT NULL "
                         "FROM team_judgements")) == {
        ("j-y", alice_role, True), (bob_jid, bob_role, False)}


def test_sync_never_runs_ddl_and_an_uninitialised_server_says_init(
        team: Team, workspace_of: WorkspaceOf) -> None:
    ws = workspace_of("alice")
    with pytest.raises(TeamServerError, match=r"has no team schema.*darkmap team init"):
        sync_judgements(ws, team.admin)
    assert team.sql("SELECT to_regclass('team_judgements') IS NULL") == [(True,)]


# --- invalid rows ------------------------------------------------------------------------


def test_invalid_server_rows_are_quarantined_and_every_sync_goes_on(
        ready: Team, workspace_of: WorkspaceOf) -> None:
    _, alice_dsn = ready.analyst("alice")
    _, bob_dsn = ready.analyst("bob")
    alice, bob = workspace_of("alice"), workspace_of("bob")
    a, b = _pair(alice)
    judge(alice, a, b, "same")
    assert sync_judgements(alice, alice_dsn).pushed == 1
    # a tampered server: constraints gone, rows written behind darkmap's back
    ready.sql("ALTER TABLE team_judgements DROP CONSTRAINT team_judgements_verdict_check, "
              "ALTER COLUMN a DROP NOT NULL, ALTER COLUMN author DROP NOT NULL, "
              "DROP CONSTRAINT team_judgements_shape")
    ready.sql("ALTER TABLE team_judgements DISABLE TRIGGER team_judgements_guard")
    bad = [("bad-id", "no-colon-here", "hansa:x", "same", "mallory", None),
           ("bad-verdict", "hansa:a", "hansa:b", "maybe", "mallory", None),
           ("bad-null", None, "hansa:b", "same", "mallory", None),
           ("bad-author", "hansa:a", "hansa:b", "same", None, None),
           ("bad-order", "hansa:z", "hansa:a", "same", "mallory", None),
           ("bad-huge", "hansa:a", "hansa:b", "same", "mallory", "x" * 2_000_000)]
    for row in bad:
        ready.sql("INSERT INTO team_judgements (judgement_id, a, b, verdict, author, note, "
                  "created_at) VALUES (%s, %s, %s, %s, %s, %s, now())", list(row))

    res = sync_judgements(bob, bob_dsn)
    assert (res.pulled, res.quarantined, res.server_total) == (1, len(bad), 1 + len(bad))
    reasons = "\n".join(res.problems)
    for expected in ("server row 'bad-id': a 'no-colon-here' is not an account id",
                     "server row 'bad-verdict': verdict 'maybe' is not one of",
                     "server row 'bad-null': a is NULL",
                     "server row 'bad-author': author is NULL",
                     "server row 'bad-order': a and b are not two accounts in order",
                     f"server row 'bad-huge': note has over {NOTE_CHARS:,} characters"):
        assert expected in reasons
    assert bob.con.execute("SELECT count(*) FROM judgements").fetchone() == (1,)
    kept = sorted(r[0] for r in bob.con.execute(
        "SELECT judgement_id FROM team_quarantine").fetchall())
    assert kept == sorted(r[0] for r in bad)
    # seen again, counted again, kept once; alice's sync goes on too
    assert sync_judgements(bob, bob_dsn).quarantined == len(bad)
    assert bob.con.execute("SELECT count(*) FROM team_quarantine").fetchone() == (len(bad),)
    res = sync_judgements(alice, alice_dsn)
    assert (res.pulled, res.quarantined) == (0, len(bad))


def test_a_local_judgement_over_the_caps_is_not_pushed(
        ready: Team, workspace_of: WorkspaceOf) -> None:
    _, alice_dsn = ready.analyst("alice")
    alice = workspace_of("alice")
    a, b = _pair(alice)
    c, d = _pair(alice, offset=2)
    judge(alice, a, b, "same", note="n" * (NOTE_CHARS + 1))
    judge(alice, c, d, "different")
    res = sync_judgements(alice, alice_dsn)
    assert (res.pushed, res.not_pushed) == (1, 1)
    assert f"not pushed: note has over {NOTE_CHARS:,} characters" in res.problems[0]


def test_check_row() -> None:
    ok = ("j1", "dream:a", "hansa:b", "same", "alice", None, datetime(2024, 1, 1), None)
    assert check_row(ok) is None
    assert check_row(ok[:5] + ("n" * NOTE_CHARS,) + ok[6:]) is None
    assert check_row(ok[:6] + ("2024-01-01",) + ok[7:]) == "created_at is not a timestamp"
    assert check_row(ok[:2] + ("dream:a",) + ok[3:]) == \
        "a and b are not two accounts in order (a < b)"
    assert check_row(ok[:1] + (" :a",) + ok[2:]) == \
        "a ' :a' is not an account id (market:handle)"
    assert check_row(ok[:4] + ("",) + ok[5:]) == "author is empty"
    assert check_row(ok[:3]) == "3 columns, not 8"


# --- nothing about the analyst's machine -----------------------------------------------


def test_nothing_identifying_the_machine_is_sent(ready: Team, workspace_of: WorkspaceOf) -> None:
    _, alice_dsn = ready.analyst("alice")
    alice = workspace_of("secret-case-folder")
    a, b = _pair(alice)
    judge(alice, a, b, "same", author="alice")
    sync_judgements(alice, alice_dsn)
    columns = [r[0] for r in ready.sql(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'team_judgements' ORDER BY ordinal_position")]
    assert "pushed_from" not in columns
    (text,) = ready.sql("SELECT t::text FROM team_judgements t")[0]
    assert isinstance(text, str)
    for secret in (str(alice.path), alice.path.name, os.uname().nodename):
        assert secret not in text


# --- upgrading a server ------------------------------------------------------------------

_V1_SCHEMA = """
CREATE TABLE team_judgements (
    judgement_id  TEXT PRIMARY KEY,
    a             TEXT NOT NULL,
    b             TEXT NOT NULL,
    verdict       TEXT NOT NULL CHECK (verdict IN ('same', 'different', 'unsure')),
    author        TEXT NOT NULL,
    note          TEXT,
    created_at    TIMESTAMP NOT NULL,
    withdrawn_at  TIMESTAMP,
    pushed_from   TEXT,
    pushed_at     TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX team_judgements_pair ON team_judgements (a, b);
"""


def test_init_upgrades_a_first_version_server_in_place(
        team: Team, workspace_of: WorkspaceOf) -> None:
    team.sql(_V1_SCHEMA)
    ws = workspace_of("bob")
    a, b = _pair(ws)
    team.sql("INSERT INTO team_judgements (judgement_id, a, b, verdict, author, created_at, "
             "pushed_from) VALUES ('old-1', %s, %s, 'same', 'alice', now(), "
             "'/home/alice/case-42')", [a, b])
    _, bob_dsn = team.analyst("bob")
    with pytest.raises(TeamServerError, match=r"has team schema 1; .* `darkmap team init`"):
        sync_judgements(ws, team.admin)

    up = init_server(team.admin)
    assert (up.version, up.upgraded_from, up.legacy_marked) == (SCHEMA_VERSION, 1, 1)
    again = init_server(team.admin)  # idempotent: nothing marked twice
    assert (again.upgraded_from, again.legacy_marked) == (SCHEMA_VERSION, 0)
    assert team.sql("SELECT author FROM team_judgements") == [("unverified:alice",)]
    assert "/home/alice" not in str(team.sql("SELECT t::text FROM team_judgements t"))

    res = sync_judgements(ws, bob_dsn)
    assert res.pulled == 1
    assert _local(ws) == [(a, b, "same", "unverified:alice", False)]


def test_init_reports_roles_granted_directly(team: Team) -> None:
    team.sql(_V1_SCHEMA)
    role, _ = team.analyst("legacy")
    team.sql(f"GRANT ALL ON team_judgements TO {role}")
    assert init_server(team.admin).direct_grants == [role]


def test_a_newer_server_is_refused(ready: Team, workspace_of: WorkspaceOf) -> None:
    ready.sql("UPDATE team_schema SET version = 99")
    with pytest.raises(TeamServerError, match="version 99, newer than this darkmap"):
        init_server(ready.admin)
    with pytest.raises(TeamServerError, match="version 99"):
        sync_judgements(workspace_of("a"), ready.admin)


# --- TLS -------------------------------------------------------------------------------


@pytest.mark.parametrize("dsn", [
    "postgresql://u@127.0.0.1:5432/db", "postgresql://u@127.8.9.10/db",
    "postgresql://u@[::1]:5432/db", "postgresql://u@localhost/db", "postgresql:///db",
    "postgresql://u@%2Fvar%2Frun%2Fpostgresql/db", "host=/tmp dbname=x",
    "postgresql://u@127.0.0.1/db?sslmode=disable",
])
def test_loopback_addresses_are_left_alone(dsn: str) -> None:
    assert secure_conninfo(dsn, environ={}) == dsn


@pytest.mark.parametrize("dsn, env", [
    ("postgresql://u:pw@db.example.org/darkmap", {}),
    ("postgresql://u@10.0.0.5:5432/darkmap", {}),
    ("postgresql://u@127.0.0.1,db.example.org/darkmap", {}),
    ("postgresql://u@localhost/darkmap?hostaddr=10.0.0.5", {}),
    ("postgresql:///darkmap", {"PGHOST": "db.example.org"}),
    ("postgresql:///darkmap", {"PGHOSTADDR": "192.0.2.1"}),
    ("service=team", {}),
    ("postgresql://u@db.example.org/darkmap", {"PGSSLMODE": "disable"}),
    ("postgresql://u@db.example.org/darkmap?sslmode=verify-full&sslrootcert=/ca.crt", {}),
])
def test_off_loopback_verify_full_is_set(dsn: str, env: dict[str, str]) -> None:
    params = psycopg.conninfo.conninfo_to_dict(secure_conninfo(dsn, environ=env))
    assert params["sslmode"] == "verify-full"
    assert {k: v for k, v in params.items() if k != "sslmode"} == {
        k: v for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items() if k != "sslmode"}


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require", "verify-ca"])
def test_a_weak_sslmode_off_loopback_is_refused_without_connecting(
        mode: str, ws: Workspace) -> None:
    # db.invalid never resolves: a connection attempt would say "cannot reach"
    dsn = f"postgresql://analyst:secret@db.invalid/darkmap?sslmode={mode}"
    with pytest.raises(TeamServerError) as err:
        sync_judgements(ws, dsn)
    assert str(err.value) == (f"team server db.invalid: sslmode={mode} is refused off "
                              "loopback; use sslmode=verify-full (and sslrootcert=<your CA> "
                              "if needed)")
    with pytest.raises(TeamServerError, match="is refused off loopback"):
        init_server(dsn)


def test_cli_refusal_is_one_line(ws: Workspace) -> None:
    path = str(ws.path)
    ws.close()
    res = CliRunner().invoke(main, ["team", "sync", "-w", path, "--server",
                                    "postgresql://a:secret@db.invalid/x?sslmode=require"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        ("Error: team server db.invalid: sslmode=require is refused off loopback; use "
         "sslmode=verify-full (and sslrootcert=<your CA> if needed)")]
    assert "secret" not in res.output


def test_unreachable_server_is_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(TeamServerError, match="cannot reach team server"):
        sync_judgements(ws, "postgresql://nobody@127.0.0.1:1/none")


def test_cli_init_and_sync(ready: Team, workspace_of: WorkspaceOf) -> None:
    role, dsn = ready.analyst("alice")
    ws = workspace_of("alice")
    a, b = _pair(ws)
    judge(ws, a, b, "same")
    path = str(ws.path)
    ws.close()
    runner = CliRunner()
    res = runner.invoke(main, ["team", "init", "--server", ready.admin])
    assert res.exit_code == 0 and "already current" in res.output
    res = runner.invoke(main, ["team", "sync", "-w", path, "--server", dsn])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"pushed 1 new as {role}, pulled 0 new")


def test_cli_init_says_it_upgraded_the_operational_tables(ready: Team) -> None:
    """A server whose operational tables are of an older schema (here 4, before the
    server enforced every write) is upgraded in place, and `team init` says so."""
    from darkmap.store.operations import OPS_SCHEMA_VERSION
    ready.sql("UPDATE ops_schema SET version = 4")
    res = CliRunner().invoke(main, ["team", "init", "--server", ready.admin])
    assert res.exit_code == 0, res.output
    assert f"operational tables upgraded from schema 4 to {OPS_SCHEMA_VERSION}" in res.output
    assert ready.sql("SELECT version FROM ops_schema") == [(OPS_SCHEMA_VERSION,)]
    again = init_server(ready.admin)
    assert again.ops_upgraded_from == again.ops_version == OPS_SCHEMA_VERSION


def test_a_role_without_darkmap_analyst_is_told_what_to_ask(
        ready: Team, workspace_of: WorkspaceOf) -> None:
    role, dsn = ready.analyst("stranger")
    ready.sql(f"REVOKE darkmap_analyst FROM {role}")
    with pytest.raises(TeamServerError, match=r"permission denied .* grants darkmap_analyst"):
        sync_judgements(workspace_of("stranger"), dsn)
