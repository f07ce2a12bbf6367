"""A big file (a seized dump over 8 MiB) is one transaction written under a small DuckDB
buffer pool, in flushes sized by their text; a kill in the middle of it stores none of it.

The dump is the real Dream seller dump repeated with new ids and handles
(``bench/ingest_sqldump.py``), about 24 MB: some 14 million characters of profile and key
text, so the writer's text budget (:data:`~darkmap.store.writer.BATCH_TEXT`) flushes it
in the middle, long before its 50,000-row batch is full.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, table_snapshot

from darkmap.collect import ingest as ingest_mod
from darkmap.collect.ingest import ingest
from darkmap.model.records import AccountRecord
from darkmap.store.workspace import Workspace
from darkmap.store.writer import BIG_FILE_BUFFER_MB, INGEST_BUFFER_MB, Provenance, RecordWriter

DREAM = DATA / "seized" / "dream-2016-sellers.sql"


def _repeated_dump(path: Path, size: int) -> Path:
    name = "darkmap_bench_ingest_sqldump"
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / "bench" / "ingest_sqldump.py")
    assert spec is not None and spec.loader is not None
    mod: Any = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    mod.DREAM = DREAM
    mod.make_dump(path, size)
    return path


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dump = _repeated_dump(tmp_path_factory.mktemp("dump") / "dream-repeated.sql", 24_000_000)
    assert dump.stat().st_size > ingest_mod._BIG_FILE
    return dump


def _mib(setting: str) -> float:
    number, unit = setting.split()
    return float(number) * {"MiB": 1, "GiB": 1024, "KiB": 1 / 1024}[unit]


def test_big_dump_is_flushed_by_its_text_under_the_small_buffer_pool(
        tmp_path: Path, big_dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, int, str]] = []
    real_flush = RecordWriter.flush

    def spy(self: RecordWriter) -> None:
        row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None
        seen.append((self.autoflush, self.pending, str(row[0])))
        real_flush(self)

    monkeypatch.setattr(RecordWriter, "flush", spy)
    ws = Workspace.init(tmp_path / "ws")
    summary = ingest(ws, [big_dump])
    f = summary.files[0]
    assert f.error is None and f.read == f.stored > 4_000 and f.quarantined == 0
    big = [s for s in seen if s[0]]  # the flushes of the big file's records
    assert len(big) >= 2  # one in the middle (its text budget), one at its end
    assert all(0 < n < 50_000 for _, n, _ in big)
    assert all(_mib(limit) == BIG_FILE_BUFFER_MB for _, _, limit in big)
    # the small files' commits (the run's own row) keep the run's buffer pool
    assert any(_mib(limit) == INGEST_BUFFER_MB for auto, _, limit in seen if not auto)
    # the file committed by itself, with its processed row
    row = ws.con.execute("SELECT read_count, stored_count FROM processed").fetchone()
    assert row == (f.read, f.stored)
    ws.close()


def test_text_budget_flushes_an_autoflushing_writer(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    w = RecordWriter(ws.con, batch=50_000, batch_text=1_000)
    prov = Provenance("a" * 64, "x.sql", "test", None)
    for i in range(5):
        w.add(AccountRecord(market_id="dream", handle=f"seller{i}", profile_text="p" * 600,
                            locator=f"insert 1 row {i}"), prov)
        assert w.pending == (0 if i % 2 else 2)  # 1,200 characters after two: flushed
    w.flush()
    rows = ws.con.execute("SELECT count(*) FROM account_observations").fetchone()
    assert rows == (5,)
    ws.close()


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from darkmap.collect.ingest import ingest
    from darkmap.store import writer
    from darkmap.store.workspace import Workspace
    real = writer.RecordWriter.flush
    def flush(self):
        real(self)
        if self.autoflush:  # a flush of the big file's records, inside its transaction
            print("FLUSHED", flush=True)
            time.sleep(60)  # the kill comes here, before the file's last records
    writer.RecordWriter.flush = flush
    ws = Workspace.init(Path(sys.argv[1]))
    ingest(ws, [Path(p) for p in sys.argv[2:]],
           progress=lambda res: print("FILE", res.source, flush=True))
    print("DONE", flush=True)
""")


def test_sigkill_in_the_middle_of_a_big_dump_then_rerun_equals_clean_run(
        tmp_path: Path, big_dump: Path) -> None:
    inputs = [DREAM, big_dump]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(killed), *map(str, inputs)],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith("FLUSHED"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.stdout.close()
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, lines
    assert lines[0].startswith("FILE") and lines[-1] == "FLUSHED"  # the small file done

    ws = Workspace.open(killed)
    big_sha = ws.con.execute("SELECT sha256 FROM processed").fetchall()
    assert len(big_sha) == 1  # the real dump only: the big one has no processed row...
    (done,) = big_sha[0]
    stored = ws.con.execute(
        "SELECT count(*) FROM account_observations WHERE capture_sha256 <> ?", [done]
    ).fetchone()
    assert stored == (0,)  # ...and none of its rows, though some were flushed
    captured = ws.con.execute("SELECT count(*) FROM captures").fetchone()
    assert captured == (1,)
    summary = ingest(ws, inputs)
    ws.close()
    first, second = summary.files
    assert first.already and not second.already
    assert second.read == second.stored + second.quarantined + second.skipped
    assert second.read > 4_000 and second.quarantined == 0

    clean = Workspace.init(tmp_path / "clean")
    ingest(clean, inputs)
    want = table_snapshot(clean)
    clean.close()
    again = Workspace.open(killed)
    got = table_snapshot(again)
    again.close()
    assert got.keys() == want.keys()
    for table in want:
        assert got[table] == want[table], f"{table} differs after kill + rerun"


def test_an_interrupted_statement_in_a_big_file_stops_the_run_and_stores_nothing(
        tmp_path: Path, big_dump: Path) -> None:
    """Ctrl-C or SIGTERM while DuckDB ran one of a big file's statements raises
    ``RuntimeError('Query interrupted')``; the per-file guard took it for the file's
    failure: it committed the file as processed with one quarantined unit, went on and
    exited 0, and every re-run skipped the file as already ingested (found by an audit:
    206,570 rows lost for good). The interrupt now ends the run with nothing of the file
    stored, and the next run reads it whole. (The callback stands for DuckDB: it raises
    what DuckDB raises, at a point inside the file's guarded write.)"""
    ws = Workspace.init(tmp_path / "ws")
    try:
        def interrupted(source: str, n: int) -> None:
            raise RuntimeError("Query interrupted")

        with pytest.raises(RuntimeError, match="Query interrupted"):
            ingest(ws, [big_dump], reading=interrupted)
        assert ws.con.execute("SELECT count(*) FROM processed").fetchone() == (0,)
        assert ws.con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        again = ingest(ws, [big_dump]).totals()
        snapshot = table_snapshot(ws)
    finally:
        ws.close()
    with Workspace.init(tmp_path / "clean") as clean:
        fresh = ingest(clean, [big_dump]).totals()
        assert table_snapshot(clean) == snapshot
    assert again["files_failed"] == 0 and again["stored_new"] == fresh["stored_new"] > 4000
