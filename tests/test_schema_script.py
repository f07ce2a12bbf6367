"""A new workspace is created from ``store/schema.sql``, the schema every migration builds
in one script (#21); it must be the schema the migrations give, to the last constraint.

The script is generated (``scripts/schema_sql.py``) and used only for a database with no
table, and only while it names exactly the migrations shipped; an existing workspace
still migrates one migration at a time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from darkmap.store import workspace as workspace_mod
from darkmap.store.workspace import Workspace, migrations, schema_script

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from table_hashes import SCHEMA_CATALOG, schema_catalog  # a script of the repository

ROOT = Path(__file__).resolve().parents[1]


def _catalog(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    return schema_catalog(ws.con)


def _by_migrations(path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A new workspace made the old way: every migration in turn (no script found)."""
    with monkeypatch.context() as m:
        m.setattr(workspace_mod, "schema_script", lambda shipped: None)
        return Workspace.init(path)


def test_the_script_is_the_migrations_schema(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    new = Workspace.init(tmp_path / "new")
    old = _by_migrations(tmp_path / "old", monkeypatch)
    try:
        a, b = _catalog(new), _catalog(old)
        assert len(a["tables"]) == 67 and len(a["constraints"]) > 300
        for kind in SCHEMA_CATALOG:
            assert a[kind] == b[kind], kind
        assert [r[0] for r in a["migrations"]] == [v for v, _, _ in migrations()]
        # every migration recorded with one time, in the transaction that made the tables
        times = new.con.execute("SELECT DISTINCT applied_at FROM schema_migrations").fetchall()
        assert len(times) == 1 and times[0][0] is not None
        assert new.pending_migrations() == [] and new.migrate() == []
    finally:
        new.close()
        old.close()


def test_the_script_is_up_to_date() -> None:
    """Regenerate it with ``python scripts/schema_sql.py`` after adding a migration."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "schema_sql.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_a_script_for_other_migrations_is_not_used(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With a migration the script does not name (added, the script not regenerated), a
    new workspace is made by the migrations, and gets that migration too."""
    shipped = migrations()
    assert schema_script(shipped) is not None
    assert schema_script(shipped[:-1]) is None
    extra = (99, "099_extra.sql", "CREATE TABLE extra_table (x INTEGER);")
    monkeypatch.setattr(workspace_mod, "migrations", lambda: [*shipped, extra])
    ws = Workspace.init(tmp_path / "ws")
    try:
        assert ws.schema_version() == 99
        assert ws.con.execute("SELECT count(*) FROM extra_table").fetchone() == (0,)
    finally:
        ws.close()


def test_an_older_workspace_migrates_one_migration_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A workspace at migration 007 (tables in it: the script is not for it) is brought to
    the newest schema by the migrations after 007: the same schema as a new one."""
    shipped = migrations()
    monkeypatch.setattr(workspace_mod, "migrations", lambda: [m for m in shipped if m[0] <= 7])
    Workspace.init(tmp_path / "old").close()
    monkeypatch.setattr(workspace_mod, "migrations", lambda: shipped)
    old = Workspace.open(tmp_path / "old")
    new = Workspace.init(tmp_path / "new")
    try:
        a, b = _catalog(old), _catalog(new)
        for kind in SCHEMA_CATALOG:
            assert a[kind] == b[kind], kind
        times = old.con.execute("SELECT count(DISTINCT applied_at) FROM schema_migrations")
        assert times.fetchone() == (2,)  # 001-007, then the rest
    finally:
        old.close()
        new.close()


def test_a_failing_script_leaves_no_table(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The script and the bookkeeping are one transaction: an error leaves the database
    empty (a later open tries again), and the error names the script."""
    monkeypatch.setattr(workspace_mod, "schema_script",
                        lambda shipped: "CREATE TABLE fine (x INTEGER); CREATE TABLE fine (y INT);")
    with pytest.raises(duckdb.Error) as err:
        Workspace.init(tmp_path / "ws")
    assert any("schema.sql" in note for note in getattr(err.value, "__notes__", []))
    monkeypatch.undo()
    ws = Workspace.open(tmp_path / "ws")  # the real script now
    try:
        assert ws.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                              "'fine'").fetchone() == (0,)
        assert len(_catalog(ws)["tables"]) == 67
    finally:
        ws.close()
