"""Issue 18: a capture edited or deleted after ingest is found (`darkmap verify`), and a
rerun of ingest never calls an edited capture "already ingested"."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

import darkmap
from darkmap.cli import main
from darkmap.store.workspace import Workspace


@pytest.fixture
def pages(data_dir: Path, tmp_path: Path) -> Path:
    """The real Dream pages, and a FIFO (a path ingest does not read)."""
    folder = tmp_path / "pages"
    shutil.copytree(data_dir / "pages" / "dream", folder)
    os.mkfifo(folder / "pipe.html")
    return folder


def _tamper(path: Path) -> None:
    """What an editor does to a capture: make it writable, change it, put the mode back."""
    mode = path.stat().st_mode
    os.chmod(path, mode | stat.S_IWUSR)
    with open(path, "r+b") as fh:
        fh.seek(100)
        fh.write(b"EDITED")
    os.chmod(path, mode)


def _verify_cli(path: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["verify", "-w", str(path), "-q", *args])
    return res.exit_code, res.stdout, res.stderr


def test_verify_reports_exactly_the_changed_and_the_missing_capture(
        tmp_path: Path, pages: Path) -> None:
    path = tmp_path / "ws"
    with darkmap.init_workspace(path) as ws:
        summary = darkmap.ingest(ws, pages)
        clean = darkmap.verify_captures(ws)
    assert clean.intact and clean.ok == len({f.sha256 for f in summary.files}) - 1
    assert clean.not_read == 1  # the FIFO: its row checked against its path
    assert _verify_cli(path)[0] == 0

    read = sorted({f.sha256: f.source for f in summary.files if f.importer}.items())
    (edited, edited_source), (deleted, deleted_source) = read[0], read[1]
    with darkmap.open_workspace(path, read_only=True) as ws:
        _tamper(ws.captures.path_for(edited))
        ws.captures.path_for(deleted).unlink()
        report = darkmap.verify_captures(ws)
    assert [(p.sha256, p.source) for p in report.changed] == [(edited, edited_source)]
    assert [(p.sha256, p.source) for p in report.missing] == [(deleted, deleted_source)]
    assert report.ok == clean.ok - 2 and not report.intact

    code, out, err = _verify_cli(path, "--json")
    doc = json.loads(out)
    assert code == 1
    assert [c["sha256"] for c in doc["changed"]] == [edited]
    assert [m["sha256"] for m in doc["missing"]] == [deleted]
    code, out, err = _verify_cli(path)
    assert code == 1 and "1 changed, 1 missing" in out
    assert f"changed: {edited}" in err and f"missing: {deleted}" in err


def test_reingest_detects_the_changed_capture_and_restores_the_missing_one(
        ws: Workspace, pages: Path) -> None:
    first = darkmap.ingest(ws, pages)
    read = sorted({f.sha256 for f in first.files if f.importer})
    edited, deleted = read[0], read[1]
    _tamper(ws.captures.path_for(edited))
    ws.captures.path_for(deleted).unlink()

    again = darkmap.ingest(ws, pages)
    by_sha = {f.sha256: f for f in again.files}
    changed = by_sha[edited]
    assert not changed.already and changed.stored == 0 and changed.quarantined == 1
    assert changed.error and f"capture {edited} changed on disk" in changed.error
    assert again.totals()["files_failed"] == 1
    # the deleted capture was written again from the same bytes; its file is done
    assert by_sha[deleted].already and ws.captures.check(deleted) == "ok"
    report = darkmap.verify_captures(ws)
    assert [p.sha256 for p in report.changed] == [edited] and not report.missing


def test_ingest_over_a_changed_capture_exits_1(ws: Workspace, pages: Path) -> None:
    """An ingest that met a capture edited on disk exited 0, its file counted under
    ``(unrecognised)`` (found by a documentation audit): a script took the run for a
    clean one. The file is counted under ``(capture changed)``, the summary names it,
    and the command exits 1 after its summary, as ``darkmap verify`` does."""
    first = darkmap.ingest(ws, pages)
    edited = sorted({f.sha256 for f in first.files if f.importer})[0]
    _tamper(ws.captures.path_for(edited))
    path = ws.path
    ws.close()
    for args in ([], ["--json"]):
        res = CliRunner().invoke(main, ["ingest", "-q", "-w", str(path), str(pages), *args])
        assert res.exit_code == 1, res.output
        assert "changed on disk since it was stored (not trusted); see `darkmap verify`" \
            in res.stderr
        assert res.stderr.splitlines()[-1].startswith("Error: 1 file(s) not read")
        if args:
            doc = json.loads(res.stdout)
            assert doc["by_market"]["(capture changed)"]["quarantined"] == 1
            # the FIFO is the only path left unread
            assert doc["by_market"]["(unrecognised)"]["quarantined"] == 0
    again = CliRunner().invoke(main, ["ingest", "-q", "-w", str(path), str(pages)])
    assert again.exit_code == 1  # until the capture is restored (see the test above)


def test_verify_lists_a_capture_no_row_names_and_exits_0(
        tmp_path: Path, pages: Path) -> None:
    """Audit finding 6: a SIGKILL after a big file's capture and before its commit left
    the complete capture with no `captures` or `processed` row, and verify said "0
    captures checked" (exit 0). It now lists it as unreferenced (still exit 0: not
    tampering), and an ingest of the same path records it."""
    path = tmp_path / "ws"
    page = pages / "login_page"
    data = next(p for p in sorted(page.rglob("*")) if p.is_file()).read_bytes()
    with darkmap.init_workspace(path) as ws:
        sha = ws.captures.put_bytes(data)  # what the killed run left: bytes, no row
    rel = f"captures/{sha[:2]}/{sha[2:4]}/{sha}"

    code, out, _ = _verify_cli(path)
    assert code == 0
    assert f"unreferenced: {rel} ({len(data):,} bytes)" in out
    assert "1 unreferenced file(s)" in out
    assert "ingest the same path again to record them, or remove them" in out
    code, out, _ = _verify_cli(path, "--json")
    report = json.loads(out)
    assert code == 0 and report["intact"] is True
    assert report["unreferenced"] == [{"path": rel, "size": len(data)}]
    assert report["temporary"] == []

    res = CliRunner().invoke(main, ["ingest", "-q", "-w", str(path), str(page)])
    assert res.exit_code == 0, res.output
    code, out, _ = _verify_cli(path, "--json")
    assert code == 0 and json.loads(out)["unreferenced"] == []


def _dead_pid() -> int:
    """The id of a process that ran and ended (no process runs under it now)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_ingest_removes_a_killed_writers_temporary_capture_and_verify_reports_them(
        tmp_path: Path, pages: Path) -> None:
    """Audit finding 7: a SIGKILL in the middle of a capture write left
    `captures/ab/cd/.SHA.PID.tmp` for good, and verify did not see it. The next ingest
    removes the temporary files whose writer is gone and that were left unwritten for
    ten minutes; never a live writer's, nor a recent one; verify lists what is there
    (exit 0)."""
    import subprocess
    import sys
    import time

    path = tmp_path / "ws"
    darkmap.init_workspace(path).close()
    folder = path / "captures" / "ab" / "cd"
    folder.mkdir(parents=True)
    sha = "abcd" + "0" * 60
    dead = _dead_pid()
    old = time.time() - 3600
    stale = folder / f".{sha}.{dead}.tmp"
    stale.write_bytes(b"x" * 1000)
    os.utime(stale, (old, old))
    recent = folder / f".{'abcd' + '1' * 60}.{dead}.tmp"  # the writer gone a moment ago
    recent.write_bytes(b"y" * 10)
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = folder / f".{'abcd' + '2' * 60}.{live_proc.pid}.tmp"
        live.write_bytes(b"z" * 20)
        os.utime(live, (old, old))

        code, out, _ = _verify_cli(path)
        assert code == 0
        assert "3 temporary file(s)" in out
        assert (f"temporary: captures/ab/cd/{stale.name} (1,000 bytes; writer pid {dead} "
                "gone)") in out
        assert f"writer pid {live_proc.pid} still running" in out

        res = CliRunner().invoke(main, ["ingest", "-q", "--json", "-w", str(path),
                                        str(pages / "login_page")])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["partial_captures_removed"] == [
            f"captures/ab/cd/{stale.name}"]
        assert not stale.exists() and recent.exists() and live.exists()

        code, out, _ = _verify_cli(path, "--json")
        report = json.loads(out)
        assert code == 0 and report["intact"] is True
        assert sorted((t["path"], t["pid"], t["writer_running"])
                      for t in report["temporary"]) == sorted([
            (f"captures/ab/cd/{recent.name}", dead, False),
            (f"captures/ab/cd/{live.name}", live_proc.pid, True)])
        assert report["unreferenced"] == []
    finally:
        live_proc.kill()
        live_proc.wait()
