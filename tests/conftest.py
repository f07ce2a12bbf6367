"""Shared fixtures: the real data folder and fresh workspaces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from darkmap.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
# The real data (see its README): ``DARKMAP_DATA`` when set, else ../shared/data next to the
# repository. The one place tests locate it: modules import ``DATA`` for module-level
# parametrisation, tests take the ``data_dir`` fixture.
DATA = Path(os.environ.get("DARKMAP_DATA", REPO.parent / "shared" / "data"))


# Columns that legitimately differ between two ingests of the same data (run ids,
# wall-clock times), and bookkeeping tables of a run.
VOLATILE = {"run_id", "processed_at", "captured_at", "started_at", "finished_at",
            "summary", "args", "applied_at"}
SKIP_TABLES = {"ingest_runs", "schema_migrations"}


def table_snapshot(ws: Workspace) -> dict[str, list[tuple]]:
    """Every table's rows (volatile columns left out), sorted, values as text: two
    workspaces holding the same evidence compare equal."""
    out = {}
    for table in ws.table_counts():
        if table in SKIP_TABLES:
            continue
        cols = [r[0] for r in ws.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall() if r[0] not in VOLATILE]
        if cols:
            col_sql = ", ".join(f'"{c}"::VARCHAR' for c in cols)
            out[table] = ws.con.execute(
                f'SELECT {col_sql} FROM "{table}" ORDER BY ALL').fetchall()
    return out


def simulated_workspace(base: Path, seed: int, vendors: int) -> tuple[Workspace, dict]:
    """A ``darkmap simulate`` world (no chain) ingested through the real importers into
    ``base / "ws"``; the workspace and the world's truth."""
    import json

    from darkmap.collect.ingest import ingest
    from darkmap.simulate import SimParams, simulate

    out = base / "world"
    simulate(out, seed, SimParams(vendors=vendors, chain=False))
    ws = Workspace.init(base / "ws")
    ingest(ws, [out / "pages", out / "listings", out / "seized"])
    return ws, json.loads((out / "truth.json").read_text(encoding="utf-8"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with one clear line, when the real data folder is missing (tests
    parametrised over its files would otherwise collect nothing and pass)."""
    if not DATA.is_dir():
        raise pytest.UsageError(f"real data folder {DATA} is missing; set DARKMAP_DATA")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data in ../shared/data (see its README)."""
    if not DATA.is_dir():
        raise RuntimeError(f"real data folder {DATA} is missing; set DARKMAP_DATA")
    return DATA


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh workspace in a temp folder."""
    w = Workspace.init(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture(scope="module", params=("duckdb", "postgres"))
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The operational records' home under test (tests/ops_backends.py): the workspace
    (DuckDB), then the team server (a throw-away PostgreSQL database for the module)."""
    from ops_backends import Backend
    b = Backend(request.param)
    yield b
    b.close()


@pytest.fixture
def space(backend: Any, tmp_path: Path) -> Iterator[Any]:
    """A new workspace at ``tmp_path / 'ws'`` and, on the server, empty operational
    tables: what the ops functions act on."""
    backend.reset()
    path = tmp_path / "ws"
    Workspace.init(path).close()
    with backend.open(path) as s:
        yield s


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (local[2], loopback, no UI, 2 shuffle partitions) for every
    Spark test: starting the JVM costs seconds, so it is shared."""
    from darkmap.chain.spark import spark_session
    s = spark_session("local[2]", "darkmap-tests", {"spark.sql.shuffle.partitions": "2",
                                                     "spark.default.parallelism": "2"})
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def web_pg_db() -> Iterator[Any]:
    """A team server for the web tests: a throw-away PostgreSQL database with darkmap's
    schema on ``$DARKMAP_TEST_PG`` (tests/ops_backends.py), dropped at the end."""
    from ops_backends import ServerDb
    db = ServerDb()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="session")
def web_pg(web_pg_db: Any) -> str:
    """The workbench's own login role on ``web_pg_db`` (a member of
    ``darkmap_ops_service``), as a connection URL."""
    return str(web_pg_db.role("workbench", service=True)[1])
