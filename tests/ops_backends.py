"""The two homes of the operational records, for the ops tests: a workspace (DuckDB) and
the team server (a real PostgreSQL on loopback, a throw-away database per test module).

The fixtures ``backend`` (each backend in turn, module-scoped) and ``space`` (a new
workspace, and empty operational tables on the server) are in tests/conftest.py.
``Backend.open(path)`` gives what :mod:`darkmap.ops` acts on: the workspace itself, or
the server with that workspace as its reference data. ``Backend.env`` is what the CLI
needs to reach the same records (``DARKMAP_OPS_SERVER``).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from darkmap.cli.cmd_ops import SERVER_ENV
from darkmap.store.operations import OPS_ROLE, SERVICE_ROLE, Space
from darkmap.store.team import init_server, open_ops_server
from darkmap.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("duckdb", "postgres")
OPS_TABLES = ("ops_agencies", "ops_users", "ops_compartments", "ops_grants", "ops_records",
              "ops_links", "ops_seizure_items", "ops_lab_results", "ops_selectors",
              "ops_events", "ops_notices", "ops_reported", "ops_withdrawals", "ops_suspended",
              "ops_audit",
              "ops_audit_head", "ops_audit_archives")


def server_dsn() -> str:
    """The test server (``$DARKMAP_TEST_PG``, else the one `make pg-start` runs)."""
    dsn = os.environ.get("DARKMAP_TEST_PG")
    if dsn:
        return dsn
    port = "55432"
    subprocess.run(["bash", str(REPO / "scripts" / "pg.sh"), "start"], check=True,
                   env={**os.environ, "PG_PORT": port,
                        "PG_DIR": f"/tmp/darkmap-pg-{os.getuid()}"})
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def with_db(dsn: str, db: str, user: str | None = None) -> str:
    """``dsn`` pointed at database ``db`` (as ``user``, when given)."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = db
    if user:
        params["user"] = user
        params.pop("password", None)
    return make_conninfo(**params)


class ServerDb:
    """A fresh database with darkmap's team schema, and the login roles made on it."""

    def __init__(self) -> None:
        self.server = server_dsn()
        self.tag = uuid.uuid4().hex[:10]
        self.db = f"darkmap_ops_{self.tag}"
        self.admin = with_db(self.server, self.db)
        self.roles: list[str] = []
        with psycopg.connect(self.server, autocommit=True) as pg:
            pg.execute(f"CREATE DATABASE {self.db}")
        init_server(self.admin)

    def role(self, name: str, service: bool = False) -> tuple[str, str]:
        """A new login role in ``darkmap_ops`` (or the service role): (role, dsn)."""
        role = f"dm_{self.tag}_{name}".replace("-", "_")
        with psycopg.connect(self.admin, autocommit=True) as pg:
            pg.execute(f"CREATE ROLE {role} LOGIN")
            self.roles.append(role)
            pg.execute(f"GRANT {SERVICE_ROLE if service else OPS_ROLE} TO {role}")
        return role, with_db(self.server, self.db, role)

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        """Run ``query`` as the superuser; its rows (if any)."""
        with psycopg.connect(self.admin, autocommit=True) as pg:
            cur = pg.execute(query, params)
            return cur.fetchall() if cur.description else []

    def drop(self) -> None:
        """Drop the database and the roles."""
        with psycopg.connect(self.server, autocommit=True) as pg:
            pg.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            for role in self.roles:
                pg.execute(f"DROP ROLE IF EXISTS {role}")


def two_agencies(server: ServerDb, members: tuple[tuple[str, str, str], ...],
                 b_country: str = "NL") -> dict[str, str]:
    """Agency ``a`` (DE, admin ``root``) and agency ``b`` (admin ``b-root``), with a login
    role of its own for each of ``members`` ((part, agency, role)), added by its agency's
    admin: part -> dsn and ``PART_name`` -> the role's name."""
    from darkmap.ops import access

    out: dict[str, str] = {}
    with open_ops_server(server.admin) as ops:
        for agency, country in (("a", "DE"), ("b", b_country)):
            access.add_agency(ops.con, "setup", agency, agency.upper(), country,
                              f"{agency} desk")
        access.add_user(ops.con, "setup", "root", "a", "admin")
        access.add_user(ops.con, "root", "b-root", "b", "admin")   # onboarding b
    for part, agency, role in members:
        name, dsn = server.role(part)
        with open_ops_server(server.admin) as ops:
            access.add_user(ops.con, "root" if agency == "a" else "b-root", name, agency, role)
        out[part], out[f"{part}_name"] = dsn, name
    return out


class Backend:
    """Where one test module keeps its operational records."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.db = ServerDb() if name == "postgres" else None
        self.dsn = self.db.admin if self.db else None

    @property
    def env(self) -> dict[str, str | None]:
        """The environment under which the CLI reaches the same records."""
        return {SERVER_ENV: self.dsn}

    @contextmanager
    def open(self, path: Path, dsn: str | None = None) -> Iterator[Space]:
        """The workspace at ``path``, or the server (as ``dsn``'s role, by default the
        superuser, a member of every role) with that workspace as reference data."""
        with Workspace.open(path) as ws:
            if self.dsn is None:
                yield ws
                return
            with open_ops_server(dsn or self.dsn, ws) as ops:
                yield ops

    def reset(self) -> None:
        """Empty the server's operational tables (the key and schema stay)."""
        if self.db is not None:
            self.db.sql("TRUNCATE " + ", ".join(t for t in OPS_TABLES))

    def close(self) -> None:
        """Drop the server database, if any."""
        if self.db is not None:
            self.db.drop()
