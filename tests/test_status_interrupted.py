"""`darkmap status` after an ingest that did not finish (audit finding 5: a run killed
with SIGKILL after 143 of 144 files was shown as "ingested 143 files in 1 run(s)" with
`next: darkmap link`).

A killed run leaves its ``ingest_runs`` row without ``finished_at`` (the files it
committed stay); status must say so and ask for the same ingest again, its paths quoted
for a shell. A run another process is still running is never called interrupted: that
process holds the workspace's lock, and status cannot open the workspace at all.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner
from conftest import DATA

from darkmap.cli import main
from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace

PAGES = DATA / "pages" / "dream"


def _status(ws: Path) -> tuple[dict, str]:
    res = CliRunner().invoke(main, ["status", "--json", "-w", str(ws)])
    assert res.exit_code == 0, res.output
    text = CliRunner().invoke(main, ["status", "-w", str(ws)])
    assert text.exit_code == 0, text.output
    return json.loads(res.output), text.output


def _killed_run(ws_path: Path, inputs: list[Path]) -> str:
    """Ingest ``inputs``, then leave the run's row as a SIGKILL leaves it: every file it
    committed stays, no ``finished_at`` and no summary."""
    with Workspace.init(ws_path) as ws:
        summary = ingest(ws, inputs)
        ws.con.execute("UPDATE ingest_runs SET finished_at = NULL, summary = NULL"
                       " WHERE run_id = ?", [summary.run_id])
        return summary.run_id


def test_status_says_the_last_ingest_did_not_finish_and_asks_for_it_again(
        tmp_path: Path) -> None:
    # a folder whose name a shell would split and expand: the command must quote it
    folder = tmp_path / "saved pages; $(touch x) 'dream'"
    shutil.copytree(PAGES, folder)
    ws = tmp_path / "ws"
    run_id = _killed_run(ws, [folder])

    out, text = _status(ws)
    run = out["stage"]["interrupted_ingest"]
    assert run["run_id"] == run_id
    assert run["files_committed"] > 0
    assert run["args"] == [str(folder)]
    assert out["next"] == run["command"]
    argv = shlex.split(out["next"])
    assert argv == ["darkmap", "ingest", str(folder)]
    assert "the last ingest did not finish" in text
    assert f"run {run_id}" in text
    assert f"{run['files_committed']} file(s) committed" in text
    assert "next: darkmap ingest " in text and "next: darkmap link" not in text
    assert "did not finish" in out["stage"]["why"]

    # the command it gives completes the run; status then moves on to linking
    res = CliRunner().invoke(main, ["ingest", "-q", "-w", str(ws), *argv[2:]])
    assert res.exit_code == 0, res.output
    out, text = _status(ws)
    assert out["stage"]["interrupted_ingest"] is None
    assert out["next"] == "darkmap link"
    assert "did not finish" not in text


def test_a_finished_run_of_other_paths_does_not_hide_the_unfinished_one(
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run_id = _killed_run(ws, [PAGES / "login_page"])
    with Workspace.open(ws) as w:
        ingest(w, [DATA / "listings" / "agora-2014"])
    out, _ = _status(ws)
    assert out["stage"]["interrupted_ingest"]["run_id"] == run_id
    assert out["next"].startswith("darkmap ingest ")


def test_a_run_this_process_is_running_is_not_interrupted(tmp_path: Path) -> None:
    from darkmap.store.runs import end_run, start_run, unfinished_run

    with Workspace.init(tmp_path / "ws") as ws:
        start_run(ws.con, "running01", [str(PAGES)])
        try:
            assert unfinished_run(ws.con) is None
        finally:
            end_run("running01")
        assert unfinished_run(ws.con) is not None  # ended without finishing


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from darkmap.store.runs import start_run
    from darkmap.store.workspace import Workspace
    ws = Workspace.open(Path(sys.argv[1]))
    start_run(ws.con, "otherproc01", [sys.argv[2]])
    print("READY", flush=True)
    sys.stdin.read()
    ws.close()
""")


def test_status_never_calls_a_run_another_process_is_running_interrupted(
        tmp_path: Path) -> None:
    """An ingest holds the workspace open for writing from start to end; DuckDB's lock
    then refuses every other process, status's read-only open too: status says the
    workspace is in use (exit 1), never that the run was interrupted."""
    ws = tmp_path / "ws"
    Workspace.init(ws).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws), str(PAGES)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "READY"
        res = subprocess.run([sys.executable, "-m", "darkmap", "status", "-w", str(ws)],
                             capture_output=True, text=True, env=env, timeout=120, check=False)
        assert res.returncode == 1
        assert "in use by another darkmap process" in res.stderr
        assert "did not finish" not in res.stdout + res.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
        if holder.stdout is not None:
            holder.stdout.close()
    # the holder ended without finishing its run: now it is interrupted
    out, _ = _status(ws)
    assert out["stage"]["interrupted_ingest"]["run_id"] == "otherproc01"
