"""Operational records never leave without their audit entry, and a killed audit archive
leaves no file that reads as a broken trail: real SIGKILLs at the worst moment (a kill-
resilience test found a complete package.json with no ``package.build`` entry, and an
archive file the trail did not record that ``audit verify --archive`` called tampering)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_ops_package import _reference

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.model.outputs import is_partial
from darkmap.ops import access, audit, records
from darkmap.ops.package import build_package
from darkmap.ops.records import Buy, LabResult
from darkmap.store.audit import audit_archives
from darkmap.store.workspace import Workspace

KILL_AT = """
import os, signal, sys
import {module} as m
real = m.{name}
def killed(*args, **kwargs):
    if {when}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
m.{name} = killed
"""


def _child(kill_at: str, body: str, *args: str) -> int:
    """Run ``body`` in a fresh interpreter that SIGKILLs itself at ``kill_at``."""
    ran = subprocess.run([sys.executable, "-c", kill_at + body, *args], check=False,
                         env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert ran.returncode == -signal.SIGKILL, ran.stderr
    return ran.returncode


@pytest.fixture
def ws_path(tmp_path: Path) -> Path:
    ws = Workspace.init(tmp_path / "ws")
    _reference(ws)
    access.add_agency(ws.con, "setup", "bka", "BKA", "DE", "BKA desk")
    access.add_user(ws.con, "setup", "ana", "bka", "admin")
    access.add_compartment(ws.con, "ana", "agency", "bka", compartment_id="de")
    records.add_record(ws, "ana", Buy("dream:1", lab=LabResult("fentanyl", 9.0)),
                       compartment="de", provenance="lab 12")
    ws.close()
    return tmp_path / "ws"


def _actions(ws_path: Path) -> list[str]:
    ws = Workspace.open(ws_path, read_only=True)
    try:
        assert audit.verify(ws.con)[1] is None
        return [e["action"] for e in audit.show(ws.con)]
    finally:
        ws.close()


def test_a_package_killed_before_its_audit_entry_leaves_only_a_partial_folder(
        ws_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg-de"
    kill = KILL_AT.format(module="darkmap.ops.package", name="log",
                          when="args[2] == 'package.build'")
    _child(kill, "from darkmap.cli import main; sys.exit(main())", "package", "--country",
           "DE", "-o", str(out), "--as", "ana", "-w", str(ws_path))
    assert not out.exists()      # no records left the workspace without the entry
    left = [p for p in tmp_path.iterdir() if is_partial(p)]
    assert [p.name.split("partial-")[0] for p in left] == [".pkg-de."]
    assert stat.S_IMODE(left[0].stat().st_mode) == 0o700
    assert "package.build" not in _actions(ws_path)
    # run again: the package is built and audited with what it holds
    res = CliRunner().invoke(main, ["package", "--country", "DE", "-o", str(out), "--as",
                                    "ana", "-w", str(ws_path)])
    assert res.exit_code == 0, res.output
    ws = Workspace.open(ws_path, read_only=True)
    try:
        built = [e for e in audit.show(ws.con) if e["action"] == "package.build"]
    finally:
        ws.close()
    assert len(built) == 1
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert built[0]["files"] == files and set(files) >= {"package.json", "package.html"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}


def test_a_failed_package_leaves_no_folder_and_an_empty_one_is_still_taken(
        ws_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import darkmap.ops.package as package

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt
    out = tmp_path / "pkg"
    out.mkdir()
    ws = Workspace.open(ws_path)
    try:
        with monkeypatch.context() as m:
            m.setattr(package, "log", interrupted)
            with pytest.raises(KeyboardInterrupt):
                build_package(ws, "ana", "DE", out)
        assert list(out.iterdir()) == [] and not [p for p in tmp_path.iterdir()
                                                   if is_partial(p)]
        build_package(ws, "ana", "DE", out)   # the empty folder given is the package's
        assert (out / "package.json").is_file()
        with pytest.raises(BadInputError, match="new or empty folder"):
            build_package(ws, "ana", "DE", out)
    finally:
        ws.close()


_LATER = datetime.now(UTC) + timedelta(days=800)
_CUT = datetime.now(UTC) + timedelta(days=1)


def test_an_archive_killed_before_its_commit_leaves_a_partial_file_the_trail_disowns(
        ws_path: Path, tmp_path: Path) -> None:
    """``archive_trail`` with a SIGKILL between the written file and the transaction: the
    trail is whole and records no archive, the archive's name is free, and the file left
    is a partial one that ``audit verify --archive`` calls unrecorded, not tampering."""
    out = tmp_path / "arc.jsonl"
    before = _actions(ws_path)
    kill = KILL_AT.format(module="darkmap.ops.audit", name="archive_prefix", when="True")
    body = ("from datetime import datetime\nfrom pathlib import Path\n"
            "from darkmap.store.workspace import Workspace\n"
            "ws = Workspace.open(Path(sys.argv[1]))\n"
            "m.archive_trail(ws.con, Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]),"
            " 'ana', now=datetime.fromisoformat(sys.argv[4]))\n")
    _child(kill, body, str(ws_path), str(out), _CUT.isoformat(), _LATER.isoformat())
    assert not out.exists()
    left = [p for p in tmp_path.iterdir() if is_partial(p)]
    assert [p.name.split("partial-")[0] for p in left] == [".arc.jsonl."]
    assert stat.S_IMODE(left[0].stat().st_mode) == 0o600
    assert _actions(ws_path) == before       # nothing archived, nothing lost
    # whoever renames the leftover and checks it is told what it is
    stray = tmp_path / "stray.jsonl"
    left[0].rename(stray)
    res = CliRunner().invoke(main, ["audit", "verify", "-w", str(ws_path), "--archive",
                                    str(stray)])
    assert res.exit_code == 1
    assert "stray.jsonl is not an archive this trail records" in res.output
    assert "the trail itself is intact" in res.output and "broken" not in res.output
    ws = Workspace.open(ws_path)
    try:
        with pytest.raises(BadInputError, match="perhaps left by an archive run"):
            audit.verify_archives([stray], ws.con)
        arc = audit.archive_trail(ws.con, out, _CUT, "ana", now=_LATER)   # the name is free
        assert audit.verify_archives([out], ws.con) == (arc.entries, None)
        assert [a.file_name for a in audit_archives(ws.con)] == ["arc.jsonl"]
    finally:
        ws.close()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if is_partial(p)]
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[-1])["archive"]


def test_an_archive_failing_before_its_commit_leaves_no_file(
        ws_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(audit, "archive_prefix", interrupted)
    ws = Workspace.open(ws_path)
    try:
        with pytest.raises(KeyboardInterrupt):
            audit.archive_trail(ws.con, tmp_path / "a.jsonl", _CUT, "ana", now=_LATER)
        assert audit_archives(ws.con) == [] and audit.verify(ws.con)[1] is None
    finally:
        ws.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_an_audit_export_killed_as_it_writes_leaves_no_trail_under_its_name(
        ws_path: Path, tmp_path: Path) -> None:
    """A killed `audit export` left a cut trail under the name asked for, which the next
    export refused as existing (an export is never overwritten). It is written under a
    partial name and linked to its name once whole: a kill leaves only the partial file,
    and the export runs again."""
    out = tmp_path / "trail.jsonl"
    # the third line written (two entries in) is the last this process writes
    child = ("import os, signal, sys\n"
             "from pathlib import Path\n"
             "import darkmap.ops.audit as a\n"
             "from darkmap.store.workspace import Workspace\n"
             "real, n = a.json.dumps, [0]\n"
             "def dumps(*x, **k):\n"
             "    n[0] += 1\n"
             "    if n[0] == 3:\n"
             "        os.kill(os.getpid(), signal.SIGKILL)\n"
             "    return real(*x, **k)\n"
             "a.json.dumps = dumps\n"
             "a.export_trail(Workspace.open(Path(sys.argv[1])).con, Path(sys.argv[2]))\n")
    _child("", child, str(ws_path), str(out))
    assert not out.exists()
    left = [p for p in tmp_path.iterdir() if is_partial(p)]
    assert [p.name.split("partial-")[0] for p in left] == [".trail.jsonl."]
    assert stat.S_IMODE(left[0].stat().st_mode) == 0o600
    res = CliRunner().invoke(main, ["audit", "export", "--out", str(out), "--as", "ana",
                                    "-w", str(ws_path)])
    assert res.exit_code == 0, res.output
    rows, head = audit.read_export(out)
    assert rows and head is not None and stat.S_IMODE(out.stat().st_mode) == 0o600
    res = CliRunner().invoke(main, ["audit", "export", "--out", str(out), "--as", "ana",
                                    "-w", str(ws_path)])
    assert res.exit_code == 1 and "exists; an export is never overwritten" in res.output
