"""``darkmap ingest --jobs N``: files read ahead, importers' pure work done by worker
processes, and the store the same as with one process (#21).

The real saved pages, the Hansa CSV and the seized Dream dump go through one and two
jobs and every table is compared. A small importer of this module shows where the work
ran (the worker's process id), and what happens when a worker hangs on a file (the
file's time budget ends it, the others go on) or fails (the importer does the work).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA

from darkmap import plugins
from darkmap.collect import ingest as ingest_mod
from darkmap.collect.fs_policy import read_whole
from darkmap.collect.ingest import ingest
from darkmap.extract.decode import looks_like_html
from darkmap.model.records import Record, SkipRecord
from darkmap.plugins import Preparer, SourceFile
from darkmap.store.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from table_hashes import table_hashes  # a script of the repository, not a package

PARENT = os.getpid()


def _store(tmp: Path, paths: list[Path], jobs: int) -> tuple[dict[str, Any], dict[str, Any],
                                                             int]:
    ws = Workspace.init(tmp)
    try:
        summary = ingest(ws, paths, jobs=jobs)
    finally:
        ws.close()
    out = dict(summary.as_dict())
    out.pop("run_id")
    return out, table_hashes(tmp / "darkmap.duckdb"), summary.prepared_ahead


def test_two_jobs_store_what_one_stores(tmp_path: Path) -> None:
    paths = [DATA / "pages", DATA / "listings" / "hansa-2016-12.csv",
             DATA / "seized" / "dream-2016-sellers.sql"]
    one, one_tables, one_ahead = _store(tmp_path / "one", paths, jobs=1)
    two, two_tables, two_ahead = _store(tmp_path / "two", paths, jobs=2)
    pages = [p for p in (DATA / "pages").rglob("*")
             if p.is_file() and looks_like_html(p.read_bytes()[:65536])]
    assert one_ahead == 0
    # every saved page (and nothing else: not the CSV, not the dump) went to a worker
    assert two_ahead == len(pages) > 100
    assert two == one
    assert two_tables == one_tables
    assert one_tables["listing_observations"]["rows"] > 15_000
    assert one_tables["quarantine"]["rows"] > 0  # hostile units take the same path too


# -- an importer of this module: where its work ran, and how a worker fails ----------------


def _where(data: bytes, source: str, hang: float = 0.0) -> tuple[int, str]:
    """The work: the upper-cased text and the process that did it."""
    if source.endswith("stuck.tst"):
        time.sleep(hang)
    if source.endswith("bad.tst") and os.getpid() != PARENT:
        raise ValueError("a worker cannot read this one")
    return os.getpid(), data.decode().upper()


class _Tst:
    """Reads ``TST`` files into one skip record naming the process that read them."""

    name = "tst"
    version = "1"

    def __init__(self, hang: float = 0.0) -> None:
        self.hang = hang

    def sniff(self, src: SourceFile) -> float:
        return 0.95 if src.head.startswith(b"TST") else 0.0

    def preparer(self) -> Preparer:
        return Preparer(self.name, lambda head, size: head.startswith(b"TST"),
                        partial(_where, hang=self.hang))

    def read(self, src: SourceFile) -> Iterator[Record]:
        done = src.prepared.result() if src.prepared is not None else None
        pid, text = done if done is not None else _where(src.path.read_bytes(), src.source)
        yield SkipRecord(page_type="tst", locator="file", reason=f"{text.strip()} by {pid}")


def _tst_files(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for n in names:
        (folder / n).write_text(f"TST {n}\n")
    return folder


def _read_by(ws: Workspace) -> dict[str, int]:
    rows = ws.con.execute("SELECT source, reason FROM skipped_pages WHERE page_type = 'tst'"
                          ).fetchall()
    return {Path(s).name: int(r.rsplit(" ", 1)[1]) for s, r in rows}


@pytest.fixture
def tst(monkeypatch: pytest.MonkeyPatch) -> _Tst:
    plugins.load_builtin()
    imp = _Tst(hang=60.0)
    monkeypatch.setitem(plugins._IMPORTERS, "tst", imp)
    return imp


def test_the_work_runs_in_workers_and_in_order(ws: Workspace, tmp_path: Path,
                                               tst: _Tst) -> None:
    names = [f"f{i:02d}.tst" for i in range(30)]
    folder = _tst_files(tmp_path / "in", names)
    summary = ingest(ws, [folder], jobs=3)
    by = _read_by(ws)
    assert sorted(by) == names and summary.prepared_ahead == 30
    assert PARENT not in by.values() and 1 <= len(set(by.values())) <= 3
    reasons = ws.con.execute("SELECT reason FROM skipped_pages ORDER BY reason").fetchall()
    assert reasons[0][0].startswith("TST F00.TST by")
    # results come back to each file, in walk order
    files = [Path(r[0]).name for r in ws.con.execute(
        "SELECT source FROM processed ORDER BY rowid").fetchall()]
    assert files == names
    assert not mp.active_children()  # the workers are gone when the run ends


def test_a_failing_worker_leaves_the_work_to_the_importer(ws: Workspace, tmp_path: Path,
                                                          tst: _Tst) -> None:
    folder = _tst_files(tmp_path / "in", ["a.tst", "bad.tst", "c.tst"])
    summary = ingest(ws, [folder], jobs=2)
    by = _read_by(ws)
    assert by["bad.tst"] == PARENT and by["a.tst"] != PARENT and by["c.tst"] != PARENT
    assert summary.totals()["files_failed"] == 0


def test_a_worker_stuck_on_one_file_costs_that_file_only(
        ws: Workspace, tmp_path: Path, tst: _Tst, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mod, "MAX_FILE_SECONDS", 1.0)
    names = ["a.tst", "b.tst", "stuck.tst", "d.tst", "e.tst", "f.tst"]
    folder = _tst_files(tmp_path / "in", names)
    t0 = time.monotonic()
    summary = ingest(ws, [folder], jobs=2)
    assert time.monotonic() - t0 < 30  # not the worker's 60 s: the file's budget ended it
    t = summary.totals()
    assert (t["files"], t["read"], t["quarantined"], t["files_failed"]) == (6, 6, 1, 1)
    assert summary.limits() == {"seconds": 1}
    by = _read_by(ws)
    assert sorted(by) == ["a.tst", "b.tst", "d.tst", "e.tst", "f.tst"]
    # the files after it were read, by a new pool or by the importer itself
    assert summary.prepared_ahead == 6
    assert not mp.active_children()


def test_one_job_opens_each_file_at_its_turn(ws: Workspace, tmp_path: Path,
                                             tst: _Tst) -> None:
    folder = _tst_files(tmp_path / "in", ["a.tst", "b.tst"])
    summary = ingest(ws, [folder], jobs=1)
    assert set(_read_by(ws).values()) == {PARENT} and summary.prepared_ahead == 0


def test_read_whole_reads_a_grown_file_up_to_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    fd = os.open(f, os.O_RDONLY)
    try:
        os.lseek(fd, 7, os.SEEK_SET)
        assert read_whole(fd, 100, 1000) == b"x" * 100
        assert read_whole(fd, 40, 1000) == b"x" * 100  # grew since its fstat said 40
        assert read_whole(fd, 40, 99) is None  # grew past the limit
        assert read_whole(fd, 100, 100) == b"x" * 100
        assert os.lseek(fd, 0, os.SEEK_CUR) == 7  # its position is left alone
    finally:
        os.close(fd)


def _freeze_count(data: bytes, source: str) -> int:
    import gc

    return gc.get_freeze_count()


def test_a_worker_leaves_the_objects_it_inherits_to_no_collection() -> None:
    from darkmap.collect.prefetch import _Pool

    pool = _Pool(1)
    try:
        ok, frozen = pool.submit(_freeze_count, b"", "x").get(timeout=60)
    finally:
        pool.close()
    assert ok and frozen > 10_000  # the pipeline's heap, frozen in the worker (#21)
