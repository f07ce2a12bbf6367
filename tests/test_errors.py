"""One error root; the CLI prints darkmap's own errors as one line and lets bugs show."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.errors import BadInputError, DarkmapError, NotFoundError, WorkspaceStateError
from darkmap.extract.engine import TemplateError
from darkmap.extract.pgp import ArmorError
from darkmap.importers.mappings import FieldError, MappingError
from darkmap.importers.sqldump import SqlSyntaxError
from darkmap.store.team import TeamServerError
from darkmap.store.workspace import Workspace, WorkspaceError

DARKMAP = Path(sys.executable).with_name("darkmap")


def test_every_error_class_has_the_one_root() -> None:
    for cls in (TemplateError, ArmorError, FieldError, MappingError, SqlSyntaxError,
                TeamServerError, WorkspaceError, NotFoundError, BadInputError,
                WorkspaceStateError):
        assert issubclass(cls, DarkmapError), cls
    assert issubclass(NotFoundError, KeyError) and issubclass(BadInputError, ValueError)
    assert str(NotFoundError("persona p-1 is not here")) == "persona p-1 is not here"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DARKMAP), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_init_on_a_file_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "evidence.txt"
    f.write_text("not a folder")
    res = _run("init", str(f))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"Error: {f}: exists and is not a folder; choose another path"]
    assert f.read_text() == "not a folder"


def test_missing_workspace_is_one_line(tmp_path: Path) -> None:
    res = _run("status", "-w", str(tmp_path / "nope"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "not a darkmap workspace" in res.stderr


def test_workspace_locked_by_another_process(tmp_path: Path) -> None:
    """A second process meets a clear message, not a raw duckdb.IOException."""
    ws = Workspace.init(tmp_path / "ws")
    ws.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from darkmap.store.workspace import Workspace
            ws = Workspace.open(Path({str(tmp_path / 'ws')!r}))
            print('open', flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        res = _run("status", "-w", str(tmp_path / "ws"))
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "in use by another darkmap process" in res.stderr
        with pytest.raises(WorkspaceStateError):
            Workspace.open(tmp_path / "ws", read_only=True)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_bug_is_not_dressed_as_a_user_error() -> None:
    """Only darkmap's own errors become one line; anything else keeps its traceback."""

    @main.command("_test-bug", hidden=True)
    def _bug() -> None:
        raise RuntimeError("a programming error")

    @main.command("_test-user-error", hidden=True)
    def _user() -> None:
        raise NotFoundError("account dream:nobody is not in this workspace")

    try:
        runner = CliRunner()
        bug = runner.invoke(main, ["_test-bug"])
        assert isinstance(bug.exception, RuntimeError)
        user = runner.invoke(main, ["_test-user-error"])
        assert user.exit_code == 1 and not isinstance(user.exception, RuntimeError)
        assert "Error: account dream:nobody is not in this workspace" in user.output
    finally:
        for name in ("_test-bug", "_test-user-error"):
            main.commands.pop(name, None)
    assert isinstance(main, click.Group)
