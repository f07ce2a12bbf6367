"""Workspace: creation, migrations, capture store."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import duckdb
import pytest

from darkmap.capture.content_store import CaptureStore
from darkmap.store import workspace as workspace_mod
from darkmap.store.workspace import (
    DB_NAME,
    Workspace,
    WorkspaceError,
    _connect,
    migrations,
    table_exists,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from table_hashes import schema_catalog  # a script of the repository, not a package


def test_init_creates_db_and_capture_store(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "case")
    assert (tmp_path / "case" / "darkmap.duckdb").exists()
    assert (tmp_path / "case" / "captures").is_dir()
    assert ws.schema_version() == migrations()[-1][0]
    assert {"captures", "listings", "accounts", "quarantine"} <= set(ws.table_counts())
    ws.close()


def test_reopen_applies_no_migration_twice(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "w").close()
    ws = Workspace.open(tmp_path / "w")
    assert ws.migrate() == []
    n = ws.con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert n == len(migrations())
    ws.close()


def test_open_missing_workspace_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a darkmap workspace"):
        Workspace.open(tmp_path / "nope")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    ws.con.execute("INSERT INTO schema_migrations VALUES (999, '999_future.sql', now())")
    ws.close()
    with pytest.raises(WorkspaceError, match="newer than this darkmap"):
        Workspace.open(tmp_path / "w")


def test_capture_store_is_content_addressed_and_read_only(tmp_path: Path,
                                                          data_dir: Path) -> None:
    store = CaptureStore(tmp_path / "cap")
    src = data_dir / "pages" / "hansa" / "listing_42171_.htm"
    raw = src.read_bytes()
    sha = store.put_file(src)
    assert sha == hashlib.sha256(raw).hexdigest()
    assert store.read_bytes(sha) == raw
    assert store.put_bytes(raw) == sha  # same bytes, same capture, no second copy
    files = [p for p in (tmp_path / "cap").rglob("*") if p.is_file()]
    assert len(files) == 1
    assert not files[0].stat().st_mode & 0o222  # immutable on disk
    assert store.verify(sha)


def test_a_migration_added_later_below_the_newest_is_still_applied(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    newest = migrations()[-1]
    middle = migrations()[1]
    assert middle[0] < newest[0]
    # a workspace created before `middle` shipped: its version and tables are absent
    ws.con.execute("DELETE FROM schema_migrations WHERE version = ?", [middle[0]])
    dropped = [name for (name,) in ws.con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall() if f"CREATE TABLE {name} (" in middle[2]]
    assert dropped
    for name in dropped:
        ws.con.execute(f"DROP TABLE {name}")
    ws.close()
    ws = Workspace.open(tmp_path / "w")
    assert middle[0] in ws.applied_versions()
    assert set(dropped) <= set(ws.table_counts())
    ws.close()




def _catalog(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    return schema_catalog(ws.con)


def test_one_transaction_builds_the_schema_of_one_transaction_per_migration(
        tmp_path: Path) -> None:
    """``migrate`` applies the pending migrations in one transaction (#21: a new workspace
    took 13 commits); the tables, columns, indexes, constraints, views and sequences are
    those of the migrations applied one transaction each, as before."""
    ws = Workspace.init(tmp_path / "new")
    new = _catalog(ws)
    ws.close()
    path = tmp_path / "reference"
    (path / "captures").mkdir(parents=True)
    ref = Workspace(path, _connect(path / DB_NAME, path, read_only=False))
    ref.schema_version()  # the bookkeeping table, as migrate creates it
    for version, name, sql in migrations():
        ref.con.execute("BEGIN TRANSACTION")
        ref.con.execute(sql)
        ref.con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
        ref.con.execute("COMMIT")
    old = _catalog(ref)
    ref.close()
    assert len(new["tables"]) > 50 and new["constraints"] and new["columns"]
    assert new == old


def test_a_failing_migration_leaves_the_workspace_at_its_old_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pending migrations commit together: one that fails undoes the others, and the
    error names it; the workspace then migrates normally."""
    path = tmp_path / "w"
    shipped = migrations()
    newest = shipped[-1][0]
    broken = (*shipped, (newest + 1, f"{newest + 1:03d}_broken.sql",
                         "CREATE TABLE fine_so_far (a INTEGER);\nCREATE TABLE x (a NOSUCHTYPE);"))
    monkeypatch.setattr(workspace_mod, "migrations", lambda: list(broken))
    with pytest.raises(duckdb.Error) as err:
        Workspace.init(path)
    assert f"in migration {newest + 1:03d}_broken.sql" in getattr(err.value, "__notes__", [])
    monkeypatch.undo()
    ws = Workspace(path, _connect(path / DB_NAME, path, read_only=True))
    assert ws.pending_migrations() == [name for _, name, _ in shipped]  # none applied
    assert not table_exists(ws.con, "listings") and not table_exists(ws.con, "fine_so_far")
    ws.close()
    ws = Workspace.open(path)
    assert ws.schema_version() == newest and table_exists(ws.con, "listings")
    ws.close()



def test_no_progress_bar_reaches_standard_output(tmp_path: Path) -> None:
    # DuckDB draws a bar on stdout once a statement runs for 2 s (a big file's commit),
    # inside a command's --json output; every connection to a workspace turns it off
    Workspace.init(tmp_path / "ws").close()
    for read_only in (False, True):
        ws = Workspace.open(tmp_path / "ws", read_only=read_only)
        assert ws.con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (
            False,)
        ws.close()
