"""Read files ahead of the ingest pipeline and let worker processes do importers' heavy,
pure work on them (``darkmap ingest --jobs N``).

The pipeline itself stays one loop in one process: every file is captured, sniffed,
imported and written in walk order, in the same transactions, so what is stored is the
same with any number of jobs. What runs ahead is only work that is a pure function of
a file's bytes and that an importer offers through
:class:`~darkmap.plugins.PreparingImporter` (the ``pages`` importer: decoding, parsing
and template extraction of a saved page, about seven tenths of its cost).

:class:`Prefetcher` keeps a window of the walk's next entries open and read (at most
:data:`WINDOW_FILES` per job and :data:`WINDOW_BYTES` in all; files over the pipeline's
whole-read size are left to it). Each file's bytes go to the first importer whose
``wants`` accepts them, and the work runs in a pool of forked worker processes. When
the pipeline imports the file, the importer finds the handle in
:attr:`~darkmap.plugins.SourceFile.prepared` and takes the result; the bytes read ahead
are the very bytes captured, so the result is the one the importer would have computed.

A worker also takes the pipeline's *first steps* on a file when the pipeline asks it to
(``first``: for the ingest, the capture of the bytes under their sha256, written to the
content-addressed store, whose writes are atomic renames, so any process may make them;
then the choice of the importer, whose sniffs read that capture). Each step's outcome
goes back in a message of its own before the work's result, so that the pipeline waits
for the step it needs only, never for the work (:meth:`Handle.step`), and a step that
hangs is interrupted at the same point of the file's guard as in the pipeline. The
capture's file writes and folder creations and the sniffs, over a third of the
pipeline's time on saved pages, run in the workers beside the extraction. What the
pipeline stores is unchanged; it still syncs every capture before its commit, and does
a step itself whenever the worker's is missing or failed.

Nothing here weakens the per-file guard. Waiting for a result happens inside the
file's time budget (``SIGALRM`` interrupts the wait); a wait that is interrupted for any
reason ends the pool (its workers are killed: one may be stuck on a hostile file),
every handle still pending answers None, which tells the importer to do the work
itself, as it would have without workers, and later files go to a new pool. A worker
that raises answers None too (the importer then raises, or quarantines, in the
pipeline as before).
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from darkmap.collect.fs_policy import Entry, open_entry, read_whole
from darkmap.plugins import Preparer

if TYPE_CHECKING:  # multiprocessing is imported when a pool starts: most runs start none
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

__all__ = ["WINDOW_BYTES", "WINDOW_FILES", "Ahead", "First", "Handle", "Prefetcher", "Step",
           "default_jobs", "detach_from_pipeline"]

WINDOW_FILES = 8
"""Files read ahead per worker."""
WINDOW_BYTES = 64 << 20
"""Most bytes held by the files read ahead."""
_POLL = 0.25  # seconds between checks while waiting for a worker
_PIPE_BYTES = 1 << 20
"""The send buffer asked for the pipe to each worker (the system may give less)."""


def _room(conn: Connection) -> int:
    """The bytes a task sent ahead to a busy worker may hold on ``conn`` (the
    pipeline's end of a socket pair): a quarter of its send buffer, so that the task
    goes in whole while the worker reads nothing (:meth:`_Pool._takes`); 0 (never
    ahead) where the buffer cannot be read."""
    import socket  # noqa: PLC0415 - loaded with multiprocessing, when a pool starts

    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except OSError:
        return 0
    try:
        with suppress(OSError):  # the system's limit stands
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _PIPE_BYTES)
        return max(0, int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)) // 4)
    except OSError:
        return 0
    finally:
        sock.close()


def default_jobs() -> int:
    """Worker processes to use by default: the cores this process may run on, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(8, n))


Step = tuple[bool, Any]
"""The outcome of one of a worker's first steps on a file: (True, the value it gave), or
(False, why it failed: the exception's type name, then its message)."""


@dataclass(frozen=True, slots=True)
class _StepMessage:
    """A first step's outcome as a worker sends it (the work's result is a plain tuple)."""

    step: Step


class Handle:
    """The result of one file's work in a worker, as the importer sees it."""

    __slots__ = ("_pool", "_task", "importer")

    def __init__(self, importer: str, pool: _Pool, task: _Task) -> None:
        self.importer = importer
        self._pool = pool
        self._task = task

    def result(self) -> Any:
        """The work's result, or None when the importer must do the work itself.

        Waits for the worker; an interruption of the wait (the file's time budget, a
        ^C) ends the pool (:meth:`_Pool.pump`) and propagates.
        """
        pool, task = self._pool, self._task
        while pool.alive and not task.done:
            pool.pump(_POLL)
        if not task.done:  # the pool ended (an interrupted wait, a worker gone): dropped
            return None
        ok, value = task.value
        return value if ok else None

    def step(self, i: int) -> Step | None:
        """The outcome of the worker's first step ``i`` on the file (waiting for that
        only, not for the work), or None: no first steps, fewer of them (an earlier one
        failed), or the pool ended first; the pipeline then takes the step itself.
        Interrupted as :meth:`result`."""
        pool, task = self._pool, self._task
        if not task.first:
            return None
        while pool.alive and len(task.steps) <= i and not task.done:
            pool.pump(_POLL)
        return task.steps[i] if len(task.steps) > i else None


First = Callable[[bytes, str, str], Iterator[object]]
"""A pool's first steps: ``first(data, source, sha256)`` yields each step's value in turn."""


def _first_steps(first: First, data: bytes, source: str, digest: str) -> Iterator[Step]:
    """Run in a worker: each of ``first``'s steps as a :data:`Step`, up to the first
    that fails (what follows it is the pipeline's to do)."""
    try:
        for value in first(data, source, digest):
            yield True, value
    except Exception as exc:  # noqa: BLE001 - the pipeline takes the step itself and reports
        yield False, f"{type(exc).__name__}: {exc}"[:300]


def _work(fn: Callable[[bytes, str], Any], data: bytes, source: str) -> tuple[bool, Any]:
    """Run in a worker: ``fn(data, source)`` as (True, result), or (False, why)."""
    try:
        return True, fn(data, source)
    except Exception as exc:  # noqa: BLE001 - the importer does it again and reports it
        return False, f"{type(exc).__name__}: {exc}"[:300]


def detach_from_pipeline(ends: Iterable[Connection]) -> None:
    """In a process forked from the pipeline (a worker here, a reader in
    :mod:`darkmap.collect.apart`): leave ^C and the per-file alarm to the pipeline,
    close the pipeline's ``ends`` of pipes (so that a child sees the end of its pipe
    when the pipeline's closes), and leave the inherited objects to no collection.

    ``gc.freeze()`` (constant time) moves them out of the collector's generations, so
    the child's collections walk only what it made itself, instead of the whole
    pipeline's heap (imported libraries, templates), each walk also writing to the
    inherited pages and so copying them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    # the console script turns SIGTERM into an interrupt for the pipeline's cleanup; a
    # child has nothing to clean up: SIGTERM ends it, as before
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()
    for end in ends:
        end.close()


def _serve(conn: Connection, others: list[Connection], first: First | None = None) -> None:
    """A worker's loop: run each task received on ``conn`` and send its result back,
    after the outcome of each of the ``first`` steps when the task asks for them
    (:meth:`Handle.step`).

    It ends when the pipeline's end of its pipe closes (the pipeline ended or died) or
    on ``None``; ``others`` are the pipeline's ends of its pipe and the earlier
    workers' (:func:`detach_from_pipeline`).
    """
    detach_from_pipeline(others)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, source, digest = task
        try:
            data = conn.recv_bytes()  # the file's bytes follow as they are (see _dispatch)
        except (EOFError, OSError):
            return
        if digest is not None and first is not None:
            try:
                for step in _first_steps(first, data, source, digest):
                    conn.send(_StepMessage(step))
            except (EOFError, OSError):
                return
            except Exception as exc:  # noqa: BLE001 - a value that does not pickle: stop there
                try:
                    conn.send(_StepMessage((False, f"step not sent: {exc}"[:300])))
                except (EOFError, OSError):
                    return
        if not _reply(conn, _work(fn, data, source)):
            return


def _reply(conn: Connection, result: tuple[bool, Any]) -> bool:
    """Send a task's result to the pipeline; False when the pipeline's end is gone."""
    try:
        conn.send(result)
    except (EOFError, OSError):
        return False
    except Exception as exc:  # noqa: BLE001 - a result that does not pickle
        return _reply(conn, (False, f"result not sent: {type(exc).__name__}: {exc}"[:300]))
    return True


@dataclass(slots=True)
class _Task:
    """One file's work: sent to a worker when one is free; ``value`` once it answered."""

    fn: Callable[[bytes, str], Any]
    data: bytes | None
    source: str
    digest: str | None = None
    """The bytes' sha256 when the worker is to take the pool's first steps on them."""
    done: bool = False
    value: tuple[bool, Any] = (False, None)
    steps: list[Step] = field(default_factory=list)
    """The first steps' outcomes received so far."""
    header: bytes | None = None
    """The pickled function, source and digest, until the task is sent (see
    :meth:`_Pool._takes`)."""

    @property
    def first(self) -> bool:
        """Whether the worker takes the first steps before the work (and says how each
        went before the work's result)."""
        return self.digest is not None


@dataclass(slots=True)
class _Worker:
    proc: BaseProcess
    conn: Connection
    room: int = 0
    """Bytes a task sent ahead may take in the pipe (see :meth:`_Pool._takes`)."""
    tasks: deque[_Task] = field(default_factory=deque)
    """The tasks sent to it, oldest first: the one it works on, and at most one sent
    ahead; empty when it is free."""

    @property
    def task(self) -> _Task | None:
        """The task it is working on, or None when it is free."""
        return self.tasks[0] if self.tasks else None


class _Pool:
    """Forked worker processes, each working on one task at a time, given through its
    own pipe (with the next one sent ahead when it fits: see below).

    A pool is alive until :meth:`end`, which kills its workers: there is no lock shared
    with them and no helper thread, so ending never waits on a worker's state (the
    standard library's ``Pool.terminate`` can wait forever on a lock an idle worker
    holds, which hung an ingest that ended with work still in flight). The pipeline
    never blocks writing to a worker while that one is writing too: a worker gets a
    task when it is free, or one task ahead when the pipe to it is empty and the task
    fits in the pipe's buffer (:meth:`_takes`), so that it starts on that task as soon
    as it sent the one before, instead of waiting for the pipeline to pass by (about
    half a millisecond per page on two cores). The pipeline collects results whenever
    it waits for one (:meth:`pump`), and tasks wait in order until a worker takes them.
    """

    def __init__(self, jobs: int, first: First | None = None) -> None:
        """``jobs`` workers; ``first`` are the steps a worker takes first on a task's
        bytes when the task gives their sha256 (passed at the fork, not pickled)."""
        import multiprocessing as mp  # noqa: PLC0415 - see the TYPE_CHECKING import above

        # fork: a worker starts in milliseconds with the templates already loaded; it
        # runs only the importer's pure function (never the store, never a thread's lock)
        ctx = mp.get_context("fork")
        self._queue: deque[_Task] = deque()
        self._workers: list[_Worker] = []
        self.alive = True
        self.first = first is not None
        try:
            for _ in range(jobs):
                mine, theirs = ctx.Pipe(duplex=True)
                # the worker closes the pipeline's ends (its own and the earlier
                # workers'), so that it sees the end of its pipe when the pipeline's closes
                others = [mine, *(w.conn for w in self._workers)]
                proc = ctx.Process(target=_serve, args=(theirs, others, first), daemon=True)
                proc.start()
                theirs.close()
                self._workers.append(_Worker(proc, mine, _room(mine)))
        except BaseException:
            self.end()
            raise

    def submit(self, fn: Callable[[bytes, str], Any], data: bytes, source: str,
               digest: str | None = None) -> _Task:
        """Queue ``fn(data, source)``; with ``digest`` (and ``first`` steps), the worker
        takes the first steps on the bytes before."""
        task = _Task(fn, data, source, digest if self.first else None)
        self._queue.append(task)
        self.pump(0.0)
        return task

    def pump(self, timeout: float) -> None:
        """Give queued tasks to free workers and collect the results that are ready,
        waiting up to ``timeout`` seconds for one when some worker is busy.

        Interrupted (the file's time budget, a ^C), it ends the pool: a message may
        have been cut in the middle.
        """
        try:
            self._dispatch()
            busy = [w for w in self._workers if w.tasks]
            if not busy:
                return
            from multiprocessing.connection import wait  # noqa: PLC0415 - loaded by __init__

            ready = set(wait([w.conn for w in busy], timeout))
            for w in busy:
                if w.conn in ready:
                    self._collect(w)
            self._dispatch()
        except BaseException:
            self.end()
            raise

    def _dispatch(self) -> None:
        for w in self._workers:
            while self.alive and self._queue and self._takes(w):
                task = self._queue.popleft()
                if task.header is None:  # the work does not pickle (sent nothing)
                    task.done = True
                    continue
                try:
                    w.conn.send_bytes(task.header)
                    # the bytes go as they are: pickled with the task they were copied
                    # into the pickle here and out of it again in the worker (7 MB for
                    # the real pages, and the pipeline's copy is on its serial path)
                    w.conn.send_bytes(task.data or b"")
                except OSError:  # the worker is gone
                    self.end()
                    return
                task.data = task.header = None  # the worker has it; the window keeps its own copy
                w.tasks.append(task)

    def _takes(self, w: _Worker) -> bool:
        """Whether ``w`` may be sent the next queued task now: it is free, or it works
        on one task only, has read all of it (it said how the task's first step went,
        which it does after reading the task) and the next one, pickled, fits in a
        quarter of the pipe's buffer (:func:`_room`). Then the pipe to it is empty and
        the task goes in whole: the pipeline never waits on the worker to write it.
        The next task is pickled here (once): one that does not pickle has its
        ``header`` None and ``value`` saying why."""
        nxt = self._queue[0]
        if nxt.header is None:
            from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415 - loaded by __init__

            try:
                nxt.header = bytes(ForkingPickler.dumps((nxt.fn, nxt.source, nxt.digest)))
            except Exception as exc:  # noqa: BLE001 - reported by the handle: not sent
                nxt.value = (False, f"not sent: {type(exc).__name__}: {exc}"[:300])
                return True
        if not w.tasks or nxt.header is None:
            return True
        if len(w.tasks) > 1 or not w.tasks[0].steps:
            return False
        return len(nxt.header) + len(nxt.data or b"") + 16 <= w.room

    def _collect(self, w: _Worker) -> None:
        try:
            value = w.conn.recv()
        except (EOFError, OSError):  # the worker died (killed, out of memory...)
            self.end()
            return
        task = w.task  # its messages come in the order of its tasks
        if isinstance(value, _StepMessage):  # a first step's: the work's result follows
            if task is not None:
                task.steps.append(value.step)
            return
        if task is not None:
            w.tasks.popleft()
            task.value, task.done = value, True

    def end(self) -> None:
        """Kill the workers (work in flight or queued is dropped; its handles answer
        None)."""
        if not self.alive:
            return
        self.alive = False
        self._queue.clear()
        for w in self._workers:
            if w.proc.pid is not None and w.proc.exitcode is None:
                w.proc.kill()
        for w in self._workers:
            if w.proc.pid is not None:
                w.proc.join()
            w.conn.close()

    close = end


@dataclass(slots=True)
class Ahead:
    """One entry of the walk, opened and read ahead of the pipeline.

    ``fd``/``stat`` are set when the open succeeded (the pipeline closes ``fd``), else
    ``refused`` holds why; ``data`` is the whole file when it was read ahead, ``sha256``
    its hash, and ``handle`` the work a worker is doing on it.
    """

    entry: Entry
    fd: int | None = None
    stat: os.stat_result | None = None
    refused: OSError | None = None
    data: bytes | None = None
    sha256: str | None = None
    handle: Handle | None = None


class Prefetcher:
    """Opens and reads the walk's entries ahead and hands their work to workers.

    Use as a context manager; :meth:`ahead` yields every entry in walk order.

    ``done(sha256, importer)`` tells a file whose capture that importer has read
    already: its work is not handed to a worker (a rerun of a folder would otherwise
    have the workers extract every page again, only for the pipeline to find the page
    ingested and drop the result). A file read ahead is hashed here for that, and the
    pipeline captures it under that hash (:attr:`Ahead.sha256`) rather than hashing it
    again.
    """

    def __init__(self, jobs: int, preparers: Iterable[Preparer], whole_read: int,
                 head: int, done: Callable[[str, str], bool] | None = None,
                 first: First | None = None) -> None:
        self.jobs = jobs
        self.preparers = list(preparers)
        self.whole_read = whole_read
        self.head = head
        self.done = done
        self.first = first
        """The steps a worker takes first on a file handed to it (the module docstring)."""
        self._pool: _Pool | None = None
        self._window: deque[Ahead] = deque()
        self._bytes = 0
        self.submitted = 0
        """Files handed to workers."""
        self.pools = 0
        """Worker pools started (more than one: a wait was interrupted)."""

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the workers and close what was opened and not handed out."""
        while self._window:
            a = self._window.popleft()
            if a.fd is not None:
                os.close(a.fd)
        if self._pool is not None:
            self._pool.close()

    def ahead(self, entries: Iterable[Entry]) -> Iterator[Ahead]:
        """Every entry in order, opened, read and submitted up to the window ahead."""
        it = iter(entries)
        done = False
        # one job: each entry is opened at its turn, as without a prefetcher
        limit = WINDOW_FILES * self.jobs if self.jobs > 1 and self.preparers else 1
        while True:
            while not done and len(self._window) < limit and self._bytes < WINDOW_BYTES:
                entry = next(it, None)
                if entry is None:
                    done = True
                    break
                # opened now: the entry's directory handle is valid until the walk goes on
                self._window.append(self._open(entry))
            if not self._window:
                return
            a = self._window.popleft()
            self._bytes -= len(a.data) if a.data is not None else 0
            yield a

    def _open(self, entry: Entry) -> Ahead:
        a = Ahead(entry)
        if entry.refused:
            return a
        try:
            a.fd, a.stat = open_entry(entry)
        except OSError as exc:  # Refused: a link, a FIFO swapped in, permission denied...
            a.refused = exc
            return a
        if a.stat.st_size > self.whole_read or self.jobs < 2 or not self.preparers:
            return a
        try:
            a.data = read_whole(a.fd, a.stat.st_size, self.whole_read)
        except OSError:
            a.data = None  # the pipeline reads it again and reports the error
        if a.data is None:
            return a
        self._bytes += len(a.data)
        a.sha256 = hashlib.sha256(a.data).hexdigest()
        head = a.data[:self.head]
        for p in self.preparers:
            if p.wants(head, len(a.data)):
                if self.done is None or not self.done(a.sha256, p.importer):
                    a.handle = self._submit(p, a.data, entry.source, a.sha256)
                break
        return a

    def _submit(self, p: Preparer, data: bytes, source: str, digest: str) -> Handle:
        if self._pool is None:
            for q in self.preparers:
                if q.setup is not None:
                    q.setup()
        if self._pool is None or not self._pool.alive:
            # a pool ended by an interrupted wait is replaced: its handles answer None
            self._pool = _Pool(self.jobs, self.first)
            self.pools += 1
        self.submitted += 1
        return Handle(p.importer, self._pool, self._pool.submit(p.work, data, source, digest))
