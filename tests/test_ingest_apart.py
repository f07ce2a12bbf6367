"""A large file's records read in a process of their own (``--jobs`` > 1) store what one
process stores; the reader's errors, death and abandonment are the pipeline's to see.

The big files are the real Hansa CSV and Dream dump repeated with new ids (the benches'
generators), each over the pipeline's 8 MiB "big file" size. The CSV importer reads
apart; the dump importer does not (its reading is most of its cost), and the run of
both checks that each takes its own way.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from conftest import DATA, table_snapshot

from darkmap.collect import apart
from darkmap.collect import ingest as ingest_mod
from darkmap.collect.apart import ReaderDied, records_apart
from darkmap.collect.ingest import ingest
from darkmap.errors import LimitExceeded
from darkmap.importers.sqldump import SqlSyntaxError
from darkmap.store.workspace import Workspace
from darkmap.store.writer import duckdb_threads


def _bench(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"darkmap_bench_{name}", Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod: Any = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("big")
    scale = _bench("ingest_scale")
    scale.HANSA = DATA / "listings" / "hansa-2016-12.csv"
    csv = folder / "hansa-repeated.csv"
    scale.make_csv(csv, 70_000)
    dump_mod = _bench("ingest_sqldump")
    dump_mod.DREAM = DATA / "seized" / "dream-2016-sellers.sql"
    dump = folder / "dream-repeated.sql"
    dump_mod.make_dump(dump, 10_000_000)
    for f in (csv, dump):
        assert f.stat().st_size > ingest_mod._BIG_FILE
    return [csv, dump]


def test_a_big_file_read_apart_stores_what_one_process_stores(
        tmp_path: Path, big_files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    one = Workspace.init(tmp_path / "one")
    first = ingest(one, big_files, jobs=1)
    want = table_snapshot(one)
    one.close()

    apart_reads: list[int] = []

    def spy(read: Any) -> Any:
        apart_reads.append(1)
        return (yield from records_apart(read))

    monkeypatch.setattr(ingest_mod, "records_apart", spy)
    two = Workspace.init(tmp_path / "two")
    threads = duckdb_threads(two.con)
    second = ingest(two, big_files, jobs=2)
    got = table_snapshot(two)
    assert duckdb_threads(two.con) == threads  # the writer's single thread is restored
    two.close()

    assert len(apart_reads) == 1  # the CSV was read in a process of its own, the dump not
    assert {**second.as_dict(), "run_id": ""} == {**first.as_dict(), "run_id": ""}
    assert got == want
    csv, dump = second.files
    assert csv.read == csv.stored + csv.quarantined > 69_000 and csv.quarantined > 0
    assert dump.read == dump.stored > 1_500 and not dump.error


# -- the reader's side, on plain generators ------------------------------------------------


@dataclass
class _Batch:
    """Stands for a ListingBatch (it has ``locators``: sent as soon as it is made)."""

    n: int
    locators: list[str] = field(default_factory=list)
    payload: bytes = b""


class _Odd(Exception):
    def __init__(self, a: int, b: int) -> None:  # does not rebuild from its args
        super().__init__(f"odd {a} {b}")


def _counting(n: int, ret: object = None) -> Iterator[int]:
    yield from range(n)
    return ret


def test_records_and_return_value_arrive_in_order() -> None:
    got = records_apart(lambda: _counting(2_000, {"blocks": 3}))
    out: list[int] = []
    while True:
        try:
            out.append(next(got))
        except StopIteration as stop:
            assert stop.value == {"blocks": 3}
            break
    assert out == list(range(2_000))  # several messages of CHUNK_RECORDS


def _failing(exc: BaseException) -> Iterator[int]:
    yield 1
    yield 2
    raise exc


@pytest.mark.parametrize("exc", [LimitExceeded("field_chars", "a field of 9 M characters"),
                                 SqlSyntaxError("no closing quote", row=7),
                                 ValueError("bad cell")])
def test_an_error_arrives_after_the_records_before_it(exc: Exception) -> None:
    got = records_apart(lambda: _failing(exc))
    assert next(got) == 1 and next(got) == 2
    with pytest.raises(type(exc)) as info:
        next(got)
    assert str(info.value) == str(exc)
    assert getattr(info.value, "limit", None) == getattr(exc, "limit", None)
    assert getattr(info.value, "row", None) == getattr(exc, "row", None)


def test_an_error_that_does_not_travel_is_described() -> None:
    got = records_apart(lambda: _failing(_Odd(1, 2)))
    assert [next(got), next(got)] == [1, 2]
    with pytest.raises(RuntimeError, match="_Odd: odd 1 2"):
        next(got)


def _dying() -> Iterator[_Batch]:
    yield _Batch(1, ["row 1"])
    # a reader killed (out of memory, by a signal): no word of it but the pipe's end
    time.sleep(0.5)
    os._exit(3)


def test_a_reader_that_dies_fails_the_file() -> None:
    got = records_apart(_dying)
    assert next(got).n == 1
    with pytest.raises(ReaderDied, match="exit code 3"):
        next(got)


def _pid_then_sleep() -> Iterator[_Batch]:
    yield _Batch(os.getpid(), ["row 1"])
    time.sleep(60)
    yield _Batch(0, ["row 2"])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_an_abandoned_reader_is_killed() -> None:
    got = records_apart(_pid_then_sleep)
    pid = next(got).n
    t = time.monotonic()
    got.close()  # the pipeline failed the file or stopped
    assert _gone(pid) and time.monotonic() - t < 5


def test_the_time_budget_interrupts_the_wait_and_kills_the_reader() -> None:
    def alarm(_sig: int, _frame: FrameType | None) -> None:
        raise TimeoutError("the file's budget")

    old = signal.signal(signal.SIGALRM, alarm)
    try:
        got = records_apart(_pid_then_sleep)
        pid = next(got).n
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            next(got)  # the reader sleeps: the alarm ends the wait
        assert time.monotonic() - t < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert _gone(pid)


def _big_batches(log: Path) -> Iterator[_Batch]:
    for i in range(6):
        with log.open("a") as fh:
            fh.write(f"{i}\n")
        yield _Batch(i, [f"row {i}"], os.urandom(300_000))  # far over the pipe's 64 KiB


def test_the_reader_runs_ahead_of_a_busy_pipeline(tmp_path: Path) -> None:
    log = tmp_path / "made"
    got = records_apart(lambda: _big_batches(log))
    assert next(got).n == 0
    time.sleep(1.5)  # the pipeline is flushing to DuckDB
    made = len(log.read_text().split())
    assert made == 6 <= apart.QUEUED_MESSAGES + 1  # not held at one batch by the pipe
    assert [b.n for b in got] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_big_file_reports_the_records_read_as_it_goes(
        tmp_path: Path, big_files: list[Path], jobs: int) -> None:
    csv = big_files[0]
    told: list[tuple[str, int]] = []
    ws = Workspace.init(tmp_path / "ws")
    summary = ingest(ws, [csv], jobs=jobs, reading=lambda src, n: told.append((src, n)))
    ws.close()
    [f] = summary.files
    counts = [n for _, n in told]
    assert {src for src, _ in told} == {str(csv)}
    assert len(counts) >= 4 and counts == sorted(set(counts))  # 70,000 rows, every 10,000
    assert counts[0] >= ingest_mod.READING_EVERY
    assert f.stored <= counts[-1] <= f.read + 1  # the rows, their quarantines, a market


def test_a_hostile_big_csv_read_apart_stores_what_one_process_stores(
        tmp_path: Path, big_files: list[Path]) -> None:
    # the repeated Hansa rows with, among them, a title of 2.5 million characters (cut),
    # a row of 5 million (over the record limit: quarantined), a stray quote, a NUL
    # and bidi controls: what the reader quarantines, cuts and keeps must not depend
    # on the process it ran in
    lines = big_files[0].read_bytes().splitlines(keepends=True)
    hostile = [
        b'"2016-12-11 20:13:54 -0500 EST", "99000001", "' + b"A" * 2_500_000
        + b'", "cutter", "USD 1.00", "Drugs", "China"\n',
        b'"2016-12-11 20:13:54 -0500 EST", "99000002", "' + b"B" * 2_500_000 + b'", "'
        + b"C" * 2_500_000 + b'", "USD 1.00", "Drugs"\n',
        b'"2016-12-11 20:13:54 -0500 EST", "99000003", "a stray " quote", "q", "USD 2"\n',
        '"2016-12-11 20:13:54 -0500 EST", "99000004", "nul\x00 and \u202egnp.exe", '
        '"bidi", "USD 3.00", "Drugs", "Germany"\n'.encode(),
    ]
    path = tmp_path / "hansa-hostile.csv"
    path.write_bytes(b"".join(lines[:30_000] + hostile + lines[30_000:]))
    assert path.stat().st_size > ingest_mod._BIG_FILE
    snaps, results = [], []
    for jobs in (1, 2):
        ws = Workspace.init(tmp_path / f"ws{jobs}")
        [f] = ingest(ws, [path], jobs=jobs).files
        snaps.append(table_snapshot(ws))
        ws.close()
        results.append((f.read, f.stored, f.quarantined, f.fields_cut, f.error))
    assert results[0] == results[1]
    read, stored, quarantined, cut, error = results[0]
    assert read == stored + quarantined and quarantined > 0 and cut >= 1 and error is None
    assert snaps[0] == snaps[1]


KILLED_CHILD = """
import sys, time
from pathlib import Path
from darkmap.collect import apart
from darkmap.collect.ingest import ingest
from darkmap.store import writer
from darkmap.store.workspace import Workspace
real = writer.RecordWriter.flush
def flush(self):
    real(self)
    if self.autoflush:  # a flush of the big file's rows, inside its transaction
        print("FLUSHED", flush=True)
        time.sleep(60)  # the kill comes here, the reader still reading ahead
writer.RecordWriter.flush = flush
ws = Workspace.init(Path(sys.argv[1]))
ingest(ws, [Path(sys.argv[2])], jobs=2)
print("DONE", flush=True)
"""


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                out.append(int(entry.name))
    return out


def _exited(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped


def test_an_ingest_killed_while_reading_apart_leaves_no_reader_and_reruns_clean(
        tmp_path: Path, big_files: list[Path]) -> None:
    csv = big_files[0]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(killed), str(csv)],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    readers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.stdout.close()
    proc.wait(timeout=60)
    assert first == "FLUSHED" and proc.returncode == -signal.SIGKILL
    assert len(readers) == 1  # the big file's reader, reading ahead of the flush
    deadline = time.monotonic() + 10
    while not _exited(readers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphan = not _exited(readers[0])
    if orphan:
        os.kill(readers[0], signal.SIGKILL)  # not left running after the test
    assert not orphan, "the reader outlived the pipeline it was reading for"

    ws = Workspace.open(killed)
    assert ws.con.execute("SELECT count(*) FROM processed").fetchone() == (0,)
    assert ws.con.execute("SELECT count(*) FROM listing_observations").fetchone() == (0,)
    again = ingest(ws, [csv], jobs=2)
    got = table_snapshot(ws)
    ws.close()
    clean = Workspace.init(tmp_path / "clean")
    ingest(clean, [csv], jobs=1)
    want = table_snapshot(clean)
    clean.close()
    [f] = again.files
    assert not f.already and f.read == f.stored + f.quarantined > 69_000
    assert got == want
