"""Kill an ingest with SIGKILL midway; a rerun must equal a clean run exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import table_snapshot

from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from darkmap.collect.ingest import ingest
    from darkmap.store.workspace import Workspace
    ws = Workspace.init(Path(sys.argv[1]))
    def tick(res):
        print(res.source, flush=True)
    ingest(ws, [Path(p) for p in sys.argv[2:]], progress=tick, batch_files=7)
    print("DONE", flush=True)
""")


def snapshot(path: Path) -> dict[str, list[tuple]]:
    ws = Workspace.open(path)
    try:
        return table_snapshot(ws)
    finally:
        ws.close()


def test_sigkill_midway_then_rerun_equals_clean_run(tmp_path: Path, data_dir: Path) -> None:
    inputs = [data_dir / "pages", data_dir / "listings", data_dir / "seized"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(killed), *map(str, inputs)],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    seen = 0
    assert proc.stdout is not None
    for _line in proc.stdout:
        seen += 1
        if seen == 40:  # well into the run, with files still to go
            proc.send_signal(signal.SIGKILL)
            break
    proc.stdout.close()
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the child finished before it was killed"

    partial = Workspace.open(killed)
    done_before = partial.con.execute("SELECT count(*) FROM processed").fetchone()[0]
    partial.close()
    assert 0 < done_before

    ws = Workspace.open(killed)
    ingest(ws, inputs)
    ws.close()
    clean = Workspace.init(tmp_path / "clean")
    ingest(clean, inputs)
    clean.close()
    a, b = snapshot(killed), snapshot(tmp_path / "clean")
    assert a.keys() == b.keys()
    for table in a:
        assert a[table] == b[table], f"{table} differs after kill + rerun"
