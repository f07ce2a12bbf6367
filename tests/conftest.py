"""Shared fixtures: the real data folder and fresh workspaces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darkmap.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DARKMAP_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data in ../shared/data (see its README)."""
    if not DATA.is_dir():
        raise RuntimeError(f"real data folder {DATA} is missing; set DARKMAP_DATA")
    return DATA


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace in a temp folder."""
    w = Workspace.init(tmp_path / "ws")
    yield w
    w.close()
