"""Read a large file's records in a process of its own while the pipeline writes them
(``darkmap ingest --jobs N``, N > 1, for importers that say their read may run apart).

A big listing CSV is one file: the pages' worker pool
(:mod:`darkmap.collect.prefetch`) has nothing to share out. Its cost is half reading and
mapping rows (Python) and half writing them (the writer and DuckDB), one after the other
on one core. Here the importer's ``read`` runs in a forked child, which sends its records
to the pipeline in order, in messages of up to :data:`CHUNK_RECORDS` records (a
:class:`~darkmap.model.records.ListingBatch` of thousands of rows is one record); the
pipeline stores them as it would have stored them read in its own process. The two halves
overlap on two cores.

What is stored is the same: the child runs the same ``read`` on the same captured bytes,
and the records arrive in the order it yields them. What its generator returns (counts)
comes back too. An exception it raises is raised in the pipeline, in the same place of
the stream, so the per-file guard quarantines the file as before (an exception that does
not pickle comes back as a :class:`RuntimeError` naming its type and message). A child
that dies (killed, out of memory) fails the file with :class:`ReaderDied`.

The pipe is the only thing the two share, and it goes one way: the child blocks when the
pipe is full (a bounded read-ahead: what is in the pipe plus the message being made),
the pipeline blocks when it is empty. The per-file time budget and ^C interrupt the
pipeline's wait, and closing the stream (finished, failed or abandoned) kills the child
if it still runs. The child ignores ^C and the alarm (the pipeline's) and never touches
the store.
"""

from __future__ import annotations

import pickle  # noqa: TID251 - only darkmap's own child's messages, as the pipe does
import queue
import threading
from collections.abc import Callable, Generator, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from darkmap.collect.prefetch import detach_from_pipeline
from darkmap.errors import DarkmapError

if TYPE_CHECKING:  # multiprocessing is imported when a file is read apart: few runs do
    from multiprocessing.connection import Connection

__all__ = ["CHUNK_RECORDS", "QUEUED_MESSAGES", "ReaderDied", "records_apart"]

CHUNK_RECORDS = 512
"""Records per message: small records (quarantines, identifiers) go in groups, so a
message costs one pipe write and one pickle, not one per record."""

QUEUED_MESSAGES = 6
"""Messages the child may have made and not yet written to the pipe (a ListingBatch of
16,384 rows is a few MB): how far the reader may run ahead of the pipeline."""


class ReaderDied(DarkmapError):
    """The process reading a file ended before the end of the file's records."""


def records_apart(read: Callable[[], Iterable[Any]]) -> Generator[Any, None, object]:
    """The records of ``read()``, read in a forked child; returns what its generator
    returned (None for a plain iterable)."""
    import multiprocessing as mp  # noqa: PLC0415 - see the TYPE_CHECKING import above

    ctx = mp.get_context("fork")  # the child inherits the importer, its mapping and plug-ins
    mine, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(read, theirs, mine), daemon=True)
    proc.start()
    theirs.close()
    try:
        while True:
            try:
                kind, value = mine.recv()
            except (EOFError, ConnectionError):  # not the alarm's TimeoutError: it propagates
                proc.join(5)
                raise ReaderDied(f"the process reading the file ended early (exit code "
                                 f"{proc.exitcode})") from None
            if kind == "records":
                yield from value
            elif kind == "end":
                return value
            else:
                raise value
    finally:
        if proc.exitcode is None:
            proc.kill()
        proc.join()
        mine.close()


def _child(read: Callable[[], Iterable[Any]], conn: Connection, parent_end: Connection) -> None:
    """In the child: run ``read`` and send its records, then its return value or error
    (^C, the alarm and the inherited objects left alone: :func:`detach_from_pipeline`)."""
    detach_from_pipeline([parent_end])
    sender = _Sender(conn)
    try:
        sender.ship(_send_records(read, sender))
        sender.finish()
    except _PipelineGone:  # the pipeline closed its end: it no longer wants them
        return


class _PipelineGone(Exception):
    """The pipeline's end of the pipe is closed."""


class _Sender:
    """Sends the child's messages from a thread of its own, up to :data:`QUEUED_MESSAGES`
    behind the reader.

    The pipeline takes records in bursts: most batches only go into the writer's
    buffer, and every few a flush to DuckDB takes several batches' time. With the pipe
    alone (64 KiB) the reader would wait out each flush with one batch made; with the
    queue it reads on. A message is pickled by the reader (a record that does not pickle
    is the reader's error), the thread only writes the bytes (and lets go of the GIL
    while the pipe is full).
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUED_MESSAGES)
        self._gone = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._conn.send_bytes(data)
            except (EOFError, OSError):
                self._gone.set()
                return

    def ship(self, message: tuple[str, Any]) -> None:
        """Queue ``message``; raises :class:`_PipelineGone` once the pipeline is gone."""
        from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415 - loaded by the parent

        self._put(bytes(ForkingPickler.dumps(message)))

    def finish(self) -> None:
        """Wait until every queued message is written."""
        self._put(None)
        self._thread.join()
        if self._gone.is_set():
            raise _PipelineGone

    def _put(self, data: bytes | None) -> None:
        while not self._gone.is_set():
            try:
                self._queue.put(data, timeout=0.25)
            except queue.Full:
                continue
            return
        raise _PipelineGone


def _send_records(read: Callable[[], Iterable[Any]], sender: _Sender) -> tuple[str, Any]:
    """Send ``read()``'s records in chunks; return the last message: ``("end", what its
    generator returned)`` or ``("error", what it raised)``."""
    chunk: list[Any] = []
    try:
        it = iter(read())
        while True:
            try:
                rec = next(it)
            except StopIteration as stop:
                ret = stop.value
                break
            chunk.append(rec)
            if len(chunk) >= CHUNK_RECORDS or hasattr(rec, "locators"):  # a ListingBatch
                sender.ship(("records", chunk))
                chunk = []
    except _PipelineGone:
        raise
    except BaseException as exc:  # noqa: BLE001 - raised in the pipeline instead
        if chunk:  # the records before the error reach the writer before it, as in-process
            with suppress(Exception):  # (a record that did not pickle: the error says so)
                sender.ship(("records", chunk))
        return "error", _portable(exc)
    if chunk:
        sender.ship(("records", chunk))
    return "end", ret if _pickles(ret) else None


def _pickles(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any failure means: send something else
        return False
    return True


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives a pickle round trip with its type and message, else a
    RuntimeError saying what it was."""
    try:
        back = pickle.loads(pickle.dumps(exc))  # noqa: S301 - the bytes made on the line
    except Exception:  # noqa: BLE001 - not portable: described instead
        back = None
    if type(back) is type(exc) and str(back) == str(exc):
        return back
    return RuntimeError(f"{type(exc).__name__}: {exc}")
