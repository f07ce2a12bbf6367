"""``bench/operations.py --login-role`` times deconfliction as a member of the team server
meets it (its own login role, under the server's row-level security). Its figure is only
worth reading if the submission really ran as that role and found what it should: a small
run on the test server must report the expected matches and notices, an intact trail, and
leave no role or database behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from ops_backends import server_dsn

BENCH = Path(__file__).resolve().parents[1] / "bench" / "operations.py"


def _leftovers(dsn: str) -> tuple[object, ...]:
    """The bench's databases and roles on the server."""
    with psycopg.connect(dsn, autocommit=True) as pg:
        return tuple(pg.execute(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE 'darkmap_bench_%'), "
            "(SELECT count(*) FROM pg_roles WHERE rolname LIKE 'darkmap_bench_%')").fetchone()
            or ())


def test_the_login_role_run_submits_as_an_officer_and_cleans_up() -> None:
    dsn = server_dsn()
    before = _leftovers(dsn)
    env = {**os.environ, "DARKMAP_TEST_PG": dsn,
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(BENCH), "--store", "postgres", "--login-role",
                           "--cases", "4", "--selectors", "400", "--submission", "200"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["submitted_as"].startswith("officer's login role")
    assert out["matches_expected"] == 2 and out["notices_sent"] == 4
    assert out["audit_intact"] is True
    assert _leftovers(dsn) == before   # its database and login role dropped
