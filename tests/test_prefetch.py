"""``darkmap ingest --jobs N``: files read ahead, importers' pure work done by worker
processes, and the store the same as with one process (#21).

The real saved pages, the Hansa CSV and the seized Dream dump go through one and two
jobs and every table is compared. A small importer of this module shows where the work
ran (the worker's process id), and what happens when a worker hangs on a file (the
file's time budget ends it, the others go on) or fails (the importer does the work).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA

from darkmap import plugins
from darkmap.capture import content_store
from darkmap.collect import ingest as ingest_mod
from darkmap.collect import prefetch
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
        if src.source.endswith("slow-sniff.tst"):
            time.sleep(self.hang)
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


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sniff_stuck_on_one_file_fails_that_file_alike_with_workers(
        ws: Workspace, tmp_path: Path, tst: _Tst, monkeypatch: pytest.MonkeyPatch,
        jobs: int) -> None:
    """A sniff that hangs (in a worker with two jobs, in the pipeline with one) costs
    its file only, reported the same way: captured, then no importer chosen in time."""
    monkeypatch.setattr(ingest_mod, "MAX_FILE_SECONDS", 1.0)
    folder = _tst_files(tmp_path / "in", ["a.tst", "slow-sniff.tst", "c.tst"])
    summary = ingest(ws, [folder], jobs=jobs)
    by = {Path(f.source).name: f for f in summary.files}
    stuck = by["slow-sniff.tst"]
    assert stuck.sha256 and ws.captures.check(stuck.sha256) == "ok"  # it was captured
    assert stuck.importer is None and stuck.error and "1 s budget" in stuck.error
    t = summary.totals()
    assert (t["files"], t["read"], t["files_failed"], t["quarantined"]) == (3, 3, 1, 1)
    assert summary.limits() == {"seconds": 1}
    assert sorted(_read_by(ws)) == ["a.tst", "c.tst"]
    assert not mp.active_children()


def test_a_rerun_hands_only_new_files_to_workers(ws: Workspace, tmp_path: Path,
                                                 tst: _Tst) -> None:
    """Files whose capture the importer has read already are not extracted again by a
    worker (the pipeline would find them ingested and drop the work); new ones are."""
    folder = _tst_files(tmp_path / "in", [f"f{i}.tst" for i in range(6)])
    assert ingest(ws, [folder], jobs=2).prepared_ahead == 6
    first = _read_by(ws)
    again = ingest(ws, [folder], jobs=2)
    assert again.prepared_ahead == 0 and again.totals()["files_already_ingested"] == 6
    (folder / "new1.tst").write_text("TST new1\n")
    (folder / "new2.tst").write_text("TST new2\n")
    (folder / "f0-copy.tst").write_bytes((folder / "f0.tst").read_bytes())  # a capture we have
    more = ingest(ws, [folder], jobs=2)
    assert more.prepared_ahead == 2
    t = more.totals()
    assert (t["files"], t["files_already_ingested"]) == (9, 7)
    by = _read_by(ws)
    assert {k: by[k] for k in first} == first  # the old rows are untouched
    assert by["new1.tst"] != PARENT and by["new2.tst"] != PARENT  # read by workers


def test_workers_capture_the_files_they_read(ws: Workspace, tmp_path: Path, tst: _Tst,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With workers, the capture of a file handed to one is written by that worker, and
    its importer chosen there, not by the pipeline; the pipeline still syncs the
    capture before its commit. With one job the pipeline does both, as before."""
    pipeline_puts: list[str] = []
    pipeline_sniffs: list[str] = []
    synced: list[str] = []
    put, sync = content_store.CaptureStore.put_bytes, content_store._sync_paths
    best = ingest_mod.best_importer

    def spy_best(src: SourceFile) -> Any:
        if os.getpid() == PARENT:
            pipeline_sniffs.append(src.sha256)
        return best(src)

    def spy_put(self: content_store.CaptureStore, data: bytes, digest: str | None = None
                ) -> str:
        if os.getpid() == PARENT:
            pipeline_puts.append(hashlib.sha256(data).hexdigest())
        return put(self, data, digest)

    def spy_sync(paths: list[str]) -> None:
        synced.extend(paths)
        sync(paths)

    monkeypatch.setattr(content_store.CaptureStore, "put_bytes", spy_put)
    monkeypatch.setattr(content_store, "_sync_paths", spy_sync)
    monkeypatch.setattr(ingest_mod, "best_importer", spy_best)
    folder = _tst_files(tmp_path / "in", [f"f{i}.tst" for i in range(6)])
    summary = ingest(ws, [folder], jobs=2)
    shas = {f.sha256 for f in summary.files}
    assert len(shas) == 6 and summary.prepared_ahead == 6
    assert pipeline_puts == []                      # every capture written by a worker
    assert pipeline_sniffs == []                    # and its importer chosen there
    assert {f.importer for f in summary.files} == {"tst"}
    assert all(ws.captures.check(sha) == "ok" for sha in shas)
    assert {str(ws.captures.path_for(sha)) for sha in shas} <= set(synced)
    other = _tst_files(tmp_path / "in1", [f"g{i}.tst" for i in range(3)])
    one = ingest(ws, [other], jobs=1)
    assert sorted(pipeline_puts) == sorted(f.sha256 for f in one.files)
    assert sorted(pipeline_sniffs) == sorted(f.sha256 for f in one.files)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stored_capture_with_other_bytes_is_refused_with_workers_too(
        ws: Workspace, tmp_path: Path, tst: _Tst, jobs: int) -> None:
    """A capture stored under a file's hash that no longer holds its bytes (edited on
    disk) is refused, whether the pipeline or a worker finds it."""
    folder = _tst_files(tmp_path / "in", ["a.tst", "b.tst"])
    data = (folder / "a.tst").read_bytes()
    sha = ws.captures.put_bytes(data)
    path = ws.captures.path_for(sha)
    path.chmod(0o600)
    path.write_bytes(b"TST edited\n")
    summary = ingest(ws, [folder], jobs=jobs)
    by = {Path(f.source).name: f for f in summary.files}
    assert by["a.tst"].error and f"capture {sha} changed on disk" in by["a.tst"].error
    assert by["b.tst"].error is None and sorted(_read_by(ws)) == ["b.tst"]
    assert summary.totals()["files_failed"] == 1


def _steps(data: bytes, source: str, digest: str) -> Iterator[object]:
    if data == b"full":
        raise OSError(28, "No space left on device")
    yield digest
    yield source.upper()


def test_a_worker_says_how_each_first_step_went_before_its_work_ends() -> None:
    pool = prefetch._Pool(1, first=_steps)
    try:
        slow = prefetch.Handle("t", pool, pool.submit(_nap, b"a", "60", digest="d1"))
        assert slow.step(1) == (True, "60") and slow.step(0) == (True, "d1")
        assert not slow._task.done                       # the work goes on
    finally:
        pool.end()
    pool = prefetch._Pool(1, first=_steps)
    try:
        full = prefetch.Handle("t", pool, pool.submit(_nap, b"full", "0", digest="d2"))
        plain = prefetch.Handle("t", pool, pool.submit(_nap, b"b", "0"))  # no first steps
        assert full.step(0) == (False, "OSError: [Errno 28] No space left on device")
        assert full.step(1) is None                     # nothing after a failed step
        assert full.result() == b"FULL"                 # the work goes on regardless
        assert plain.step(0) is None and plain.result() == b"B"
    finally:
        pool.end()
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


# -- the worker pool itself: ending it never waits on a worker ------------------------------

_ROUNDS = """
import multiprocessing as mp, sys, time
from darkmap.collect.prefetch import _Pool

def spin(data, source):
    t = time.perf_counter()
    while time.perf_counter() - t < 0.005:
        pass
    return len(data)

for i in range(300):
    pool = _Pool(2)
    tasks = [pool.submit(spin, b"x" * (k * 100_000), "s") for k in range(5)]
    if i % 2:  # half the rounds take their results first, half end with work in flight
        while not all(t.done for t in tasks):
            pool.pump(0.25)
        assert [t.value for t in tasks] == [(True, k * 100_000) for k in range(5)]
    pool.end()
    assert not mp.active_children()
print("rounds", i + 1)
"""


def test_ending_the_pool_with_work_in_flight_never_hangs() -> None:
    # the standard library's Pool.terminate() hung here within a few hundred rounds
    # (it waits for a lock that an idle worker holds while it waits for a task), which
    # is how a rerun of already ingested pages, whose work nobody takes, once hung
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", _ROUNDS], env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["rounds", "300"]


def _nap(data: bytes, source: str) -> Any:
    time.sleep(float(source))
    return (lambda: None) if data == b"unpicklable" else data.upper()


def test_a_worker_killed_mid_file_answers_none_at_once() -> None:
    pool = prefetch._Pool(2)
    try:
        slow = prefetch.Handle("t", pool, pool.submit(_nap, b"a", "60"))
        busy = [w.proc for w in pool._workers if w.task is not None]
        assert len(busy) == 1
        os.kill(busy[0].pid or 0, signal.SIGKILL)  # killed from outside: out of memory...
        t0 = time.monotonic()
        assert slow.result() is None
        assert time.monotonic() - t0 < 30 and not pool.alive  # not the task's 60 s
    finally:
        pool.end()
    assert not mp.active_children()


def test_a_result_that_does_not_pickle_leaves_the_work_to_the_importer() -> None:
    pool = prefetch._Pool(1)
    try:
        bad = prefetch.Handle("t", pool, pool.submit(_nap, b"unpicklable", "0"))
        good = prefetch.Handle("t", pool, pool.submit(_nap, b"b", "0"))
        assert bad.result() is None
        assert bad._task.value[1].startswith("result not sent: ")
        assert good.result() == b"B" and pool.alive  # the same worker goes on
    finally:
        pool.end()


_ORPHAN = """
import os, signal, sys
from darkmap.collect.prefetch import _Pool
import time

def nap(data, source):
    time.sleep(float(source))
    return data

pool = _Pool(2)
pool.submit(nap, b"", "1")  # one worker busy, the other free
print(*(w.proc.pid for w in pool._workers), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_the_workers_end_when_the_pipeline_dies() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", _ORPHAN], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(p) for p in pids)
    assert "Traceback" not in done.stderr  # the busy one's reply finds no reader: quietly


def test_work_that_does_not_pickle_is_left_to_the_importer() -> None:
    pool = prefetch._Pool(1)
    try:
        # a lambda cannot be sent to a worker: nothing is sent, the worker stays free
        bad = prefetch.Handle("t", pool, pool.submit(lambda d, s: d, b"a", "0"))
        good = prefetch.Handle("t", pool, pool.submit(_nap, b"b", "0"))
        assert bad.result() is None and bad._task.value[1].startswith("not sent: ")
        assert good.result() == b"B" and pool.alive
    finally:
        pool.end()


def _freeze_count(data: bytes, source: str) -> int:
    import gc

    return gc.get_freeze_count()


def test_a_worker_leaves_the_objects_it_inherits_to_no_collection() -> None:
    pool = prefetch._Pool(1)
    try:
        frozen = prefetch.Handle("t", pool, pool.submit(_freeze_count, b"", "x")).result()
    finally:
        pool.close()
    assert frozen > 10_000  # the pipeline's heap, frozen in the worker (#21)


def _digest(data: bytes, source: str) -> tuple[str, int, str, str]:
    import hashlib

    return type(data).__name__, len(data), hashlib.sha256(data).hexdigest(), source


def test_a_worker_gets_the_very_bytes_sent_as_they_are() -> None:
    # the bytes follow their task unpickled (send_bytes): empty, binary, NUL-laden and
    # larger than a socket's buffer, each arrives whole, as bytes, in order
    import hashlib

    blobs = [b"", b"\x00" * 7, bytes(range(256)) * 4000, os.urandom(3 << 20), b"<html>"]
    pool = prefetch._Pool(2)
    try:
        handles = [prefetch.Handle("t", pool, pool.submit(_digest, b, f"s{i}"))
                   for i, b in enumerate(blobs)]
        got = [h.result() for h in handles]
    finally:
        pool.end()
    assert got == [("bytes", len(b), hashlib.sha256(b).hexdigest(), f"s{i}")
                   for i, b in enumerate(blobs)]


def _stamp(data: bytes, source: str, digest: str) -> Iterator[object]:
    yield time.monotonic()  # when the worker took the task up (one clock for every process)


def _nap_stamped(data: bytes, source: str) -> tuple[float, int]:
    time.sleep(float(source))
    return time.monotonic(), len(data)


def test_a_busy_worker_takes_its_next_task_up_without_waiting_for_the_pipeline() -> None:
    # a worker that has read its task is sent the next one ahead, so that it starts on
    # it as soon as it is done, even while the pipeline does something else (#21: about
    # half a millisecond per page the workers waited, on two cores)
    pool = prefetch._Pool(1, first=_stamp)
    try:
        first = prefetch.Handle("t", pool, pool.submit(_nap_stamped, b"a", "0.3", digest="d1"))
        assert first.step(0) is not None  # the worker has read the first task
        second = prefetch.Handle("t", pool, pool.submit(_nap_stamped, b"b", "0", digest="d2"))
        busy_until = time.monotonic() + 1.0
        time.sleep(1.0)  # the pipeline busy, not asking: the worker is on its own
        took_up = second.step(0)
        ended = first.result()
    finally:
        pool.end()
    assert took_up is not None and took_up[0]
    assert ended[0] <= took_up[1] < busy_until  # after the first task, before it was asked


def test_a_task_too_big_for_the_pipe_waits_for_its_worker_to_be_free() -> None:
    # a task that might not fit in the pipe's buffer is never sent ahead: the pipeline
    # would block writing it while the worker blocks writing its result to it
    pool = prefetch._Pool(1, first=_stamp)
    big = os.urandom(4 << 20)
    room = pool._workers[0].room
    try:
        first = prefetch.Handle("t", pool, pool.submit(_nap_stamped, big, "0.3", digest="d1"))
        assert first.step(0) is not None
        t0 = time.monotonic()
        second = prefetch.Handle("t", pool, pool.submit(_nap_stamped, big, "0", digest="d2"))
        assert time.monotonic() - t0 < 0.2  # queued, not written into a full pipe
        assert len(pool._workers[0].tasks) == 1
        ended, took_up, done = first.result(), second.step(0), second.result()
    finally:
        pool.end()
    assert room < len(big)
    assert took_up is not None and ended[0] <= took_up[1] and done[1] == len(big)


_ORPHAN_AHEAD = """
import os, signal, sys, time
from pathlib import Path
from darkmap.collect.prefetch import Handle, _Pool

marks = Path(sys.argv[1])

def first(data, source, digest):
    (marks / source).write_text("taken up")  # as a capture is written
    yield digest

def nap(data, source):
    time.sleep(0.5)
    return data

pool = _Pool(1, first=first)
busy = Handle("t", pool, pool.submit(nap, b"a", "a", digest="d1"))
assert busy.step(0) == (True, "d1")
pool.submit(nap, b"b", "b", digest="d2")  # sent ahead: the worker has read its task
assert len(pool._workers[0].tasks) == 2
print(pool._workers[0].proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_task_sent_ahead_is_not_taken_up_once_the_pipeline_died(tmp_path: Path) -> None:
    # killed with a task in its worker's pipe, the pipeline leaves nothing more written:
    # the worker's reply to the task it works on finds no reader, and it ends there
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", _ORPHAN_AHEAD, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout)
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
