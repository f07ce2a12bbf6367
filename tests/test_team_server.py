"""Team server: judgements shared through a real PostgreSQL on loopback."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from darkmap.collect.ingest import ingest
from darkmap.resolve.judgements import judge, withdraw
from darkmap.store.team import TeamServerError, sync_judgements
from darkmap.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


def _server_dsn() -> str:
    dsn = os.environ.get("DARKMAP_TEST_PG")
    if dsn:
        return dsn
    port = "55432"  # same defaults as `make pg-start`
    subprocess.run(["bash", str(REPO / "scripts" / "pg.sh"), "start"], check=True,
                   env={**os.environ, "PG_PORT": port, "PG_DIR": f"/tmp/darkmap-pg-{os.getuid()}"})
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture
def team_db() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    admin = _server_dsn()
    name = f"darkmap_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {name}")
    yield admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as pg:
        pg.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _workspace(tmp: Path, name: str, data_dir: Path) -> Workspace:
    ws = Workspace.init(tmp / name)
    ingest(ws, [data_dir / "pages" / "hansa"])
    return ws


def test_two_analysts_converge_on_judgements_and_withdrawals(tmp_path: Path, data_dir: Path,
                                                              team_db: str) -> None:
    alice = _workspace(tmp_path, "alice", data_dir)
    bob = _workspace(tmp_path, "bob", data_dir)
    a, b = (r[0] for r in alice.con.execute(
        "SELECT account_id FROM accounts ORDER BY 1 LIMIT 2").fetchall())
    judge(alice, a, b, "different", author="alice", note="different PGP keys")

    assert sync_judgements(alice, team_db).pushed == 1
    res = sync_judgements(bob, team_db)
    assert res.pulled == 1 and res.server_total == 1
    got = bob.con.execute("SELECT a, b, verdict, author, withdrawn_at FROM judgements").fetchall()
    assert got == [(min(a, b), max(a, b), "different", "alice", None)]

    assert withdraw(bob, a, b) == 1
    sync_judgements(bob, team_db)
    res = sync_judgements(alice, team_db)
    assert res.withdrawals_pulled == 1
    assert alice.con.execute("SELECT withdrawn_at IS NOT NULL FROM judgements").fetchone()[0]

    again = sync_judgements(alice, team_db)  # converged: nothing more moves
    assert (again.pulled, again.withdrawals_pulled) == (0, 0)
    alice.close()
    bob.close()


def test_unreachable_server_is_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(TeamServerError, match="cannot reach team server"):
        sync_judgements(ws, "postgresql://nobody@127.0.0.1:1/none")
