"""Workspace: creation, migrations, capture store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from darkmap.capture.content_store import CaptureStore
from darkmap.store.workspace import Workspace, WorkspaceError, migrations


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
