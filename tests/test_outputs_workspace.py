"""No output is written over the workspace it reads (exports audit, finding 1).

``darkmap export ftm -o ws/darkmap.duckdb -w ws`` replaced the database with FtM lines
and ``darkmap report -o ws/captures/...`` a capture with HTML, both with exit status 0.
Every command writing a file or folder the user names now refuses, before it opens the
workspace, a path that is the workspace folder or inside what it keeps (the database and
its WAL, the captures, the task-force key), given relatively or through a symbolic link:
one line naming the path, exit status 2, nothing written. A new file of another name in
the workspace folder (the report's default) is still written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import darkmap
from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.export import run_export
from darkmap.model.outputs import workspace_part
from darkmap.plugins import exporters
from darkmap.report.html import write_report
from darkmap.store.workspace import KEPT, Workspace


@pytest.fixture(scope="module")
def dream(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A workspace holding the real Dream seller dump (accounts and their captures)."""
    path = tmp_path_factory.mktemp("dream") / "ws"
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [data_dir / "seized" / "dream-2016-sellers.sql"])
    return path


@pytest.fixture
def ws(dream: Path, tmp_path: Path) -> Path:
    """A copy of the Dream workspace this test may lose."""
    return Path(shutil.copytree(dream, tmp_path / "ws"))


def _digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="darkmap")


def _capture(ws: Path) -> Path:
    return next(p for p in sorted((ws / "captures").rglob("*")) if p.is_file())


def _refused(res: Result, out: str) -> None:
    assert res.exit_code == 2, (res.output, res.exception)
    assert res.stderr.count("\n") == 1, res.stderr
    assert f"{out}: inside the workspace" in res.stderr, res.stderr


@pytest.mark.parametrize("fmt", ["ftm", "gexf", "graphml", "stix", "misp", "csv"])
def test_an_export_onto_the_database_is_refused_and_nothing_is_written(
        fmt: str, ws: Path) -> None:
    before = _digest(ws)
    out = str(ws / "darkmap.duckdb")
    _refused(_run("export", fmt, "-o", out, "-w", str(ws)), out)
    assert _digest(ws) == before
    assert Workspace.open(ws, read_only=True).table_counts()["accounts"] > 100


def test_the_report_onto_a_capture_is_refused(ws: Path) -> None:
    before = _digest(ws)
    out = str(_capture(ws))
    _refused(_run("report", "-w", str(ws), "-o", out), out)
    assert _digest(ws) == before
    assert _run("verify", "-w", str(ws)).exit_code == 0


def test_relative_paths_and_links_are_resolved(ws: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    before = _digest(ws)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "shelf").symlink_to(ws / "captures")
    (tmp_path / "db-link.json").symlink_to(ws / "darkmap.duckdb")
    monkeypatch.chdir(tmp_path / "elsewhere")
    for out, extra in (("../ws/./darkmap.duckdb.wal", ()), ("../shelf/x.stix", ()),
                       ("../db-link.json", ()), ("../ws", ("--all",)), (".././ws/", ())):
        fmt = "csv" if extra or out.endswith("/") else "stix"
        _refused(_run("export", fmt, *extra, "-o", out, "-w", "../ws"), str(Path(out)))
    assert _digest(ws) == before
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_other_writers_refuse_too(ws: Path) -> None:
    before = _digest(ws)
    key = str(ws / "taskforce.key")
    db = str(ws / "darkmap.duckdb")
    for args, out in ((("tags", "export", db), db),
                      (("chain", "export-etl", str(ws / "captures")), str(ws / "captures")),
                      (("package", "--country", "DE", "-o", str(ws), "--as", "ana"), str(ws)),
                      (("deconflict", "key", "-o", key, "--as", "ana"), key),
                      (("audit", "export", "-o", db, "--as", "ana"), db)):
        _refused(_run(*args, "-w", str(ws)), out)
    assert _digest(ws) == before


def test_a_new_file_in_the_workspace_folder_is_written(ws: Path) -> None:
    res = _run("report", "-w", str(ws))
    assert res.exit_code == 0, res.output
    assert (ws / "report.html").stat().st_size > 1000
    res = _run("export", "ftm", "-o", str(ws / "out.ftm"), "-w", str(ws))
    assert res.exit_code == 0, res.output
    assert (ws / "out.ftm").stat().st_size > 1000


def test_the_library_refuses_as_the_command_does(ws: Path) -> None:
    before = _digest(ws)
    with Workspace.open(ws, read_only=True) as space:
        with pytest.raises(BadInputError, match=r"its darkmap\.duckdb"):
            run_export(exporters()["ftm"], space, ws / "darkmap.duckdb")
        with pytest.raises(BadInputError, match="its captures"):
            write_report(space, _capture(ws))
    assert _digest(ws) == before


def test_workspace_part_names_what_would_be_replaced(tmp_path: Path) -> None:
    w = tmp_path / "w"
    (w / "captures" / "ab").mkdir(parents=True)
    assert workspace_part(w / "darkmap.duckdb", w, KEPT) == "its darkmap.duckdb"
    assert workspace_part(w / "darkmap.duckdb.wal", w, KEPT) == "its darkmap.duckdb.wal"
    assert workspace_part(w / "captures" / "ab" / "cd", w, KEPT) == "its captures"
    assert workspace_part(w, w, KEPT) == "the workspace folder"
    assert workspace_part(tmp_path, w, KEPT) == "the workspace folder"  # holds it
    assert workspace_part(w / "report.html", w, KEPT) is None
    assert workspace_part(w / "captures-report.html", w, KEPT) is None
    assert workspace_part(tmp_path / "darkmap.duckdb", w, KEPT) is None
    os.symlink(w, tmp_path / "alias")
    assert workspace_part(tmp_path / "out.ftm", tmp_path / "alias", KEPT) is None
    assert workspace_part(w / "darkmap.duckdb", tmp_path / "alias", KEPT) == \
        "its darkmap.duckdb"
