"""Captures written without a sync each are made durable before the commit that needs them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darkmap.capture.content_store import CaptureStore


def test_sync_started_flushes_and_waits(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "captures", durable=False)
    shas = [store.put_bytes(f"page {i}".encode()) for i in range(3)]
    wait = store.sync_started()
    wait()
    assert all(store.verify(s) for s in shas)
    assert store.sync_started()() is None  # nothing left to sync: nothing to wait for


def test_a_failed_sync_is_raised_by_the_wait(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "captures", durable=False)
    sha = store.put_bytes(b"evidence")
    path = store.path_for(sha)
    os.chmod(path.parent, 0o700)
    path.unlink()  # gone before it reached the disk: the commit must not go ahead
    wait = store.sync_started()
    with pytest.raises(FileNotFoundError):
        wait()


def test_many_files_and_a_big_one_both_sync(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "captures", durable=False)
    shas = [store.put_bytes(os.urandom(64)) for _ in range(20)]  # one os.sync()
    store.sync()
    big = store.put_bytes(os.urandom(1 << 20))  # a few files: fsync of file and folder
    store.sync_started()()
    assert all(store.verify(s) for s in [*shas, big])
