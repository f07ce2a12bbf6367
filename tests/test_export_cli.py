"""`darkmap export` as a command: a folder given for a one-file format is refused by its
own name, `--as` without `--case` is a usage error, and an export of a workspace whose
stages have not run says on stderr what is missing (exit status 0, the file unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from export_workspaces import built

import darkmap
from darkmap.cli import main


def _export(ws: Path, fmt: str, out: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["export", fmt, "-o", str(out), "-w", str(ws), *extra])


@pytest.mark.parametrize("fmt", ["ftm", "gexf", "graphml", "stix", "misp"])
def test_a_folder_for_a_one_file_format_is_refused_by_its_name(
        fmt: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    res = _export(built("long", tmp_path_factory, data_dir), fmt, folder)
    assert res.exit_code == 1
    assert res.output == f"Error: {folder} is a folder; give a file name\n"
    assert list(tmp_path.iterdir()) == [folder] and not any(folder.iterdir())


def test_as_without_case_is_a_usage_error(tmp_path_factory: pytest.TempPathFactory,
                                          data_dir: Path, tmp_path: Path) -> None:
    res = _export(built("long", tmp_path_factory, data_dir), "ftm", tmp_path / "x.ftm",
                  "--as", "ana")
    assert res.exit_code == 2
    assert "--as goes with --case" in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "x.ftm").exists()


def test_an_empty_workspace_exports_with_a_note(tmp_path: Path) -> None:
    darkmap.init_workspace(tmp_path / "ws").close()
    res = _export(tmp_path / "ws", "ftm", tmp_path / "e.ftm")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["written"] == {}
    assert res.stderr == ("note: the workspace holds no records (no account, no listing): "
                          "run `darkmap ingest` first; the export is empty\n")
    assert (tmp_path / "e.ftm").read_text() == ""


def test_an_export_before_link_and_assess_says_what_is_missing(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    res = _export(built("long", tmp_path_factory, data_dir), "gexf", tmp_path / "g.gexf")
    assert res.exit_code == 0
    notes = res.stderr.splitlines()
    assert [n.split(":")[1].strip() for n in notes] == [
        "no personas or account links yet",
        "no drug assessments, harm scores or jurisdictions yet"]
    assert "darkmap link" in notes[0] and "darkmap assess" in notes[1]
    assert "note" not in (tmp_path / "g.gexf").read_text()
    done = _export(built("real", tmp_path_factory, data_dir), "gexf", tmp_path / "r.gexf")
    assert done.exit_code == 0 and done.stderr == ""
