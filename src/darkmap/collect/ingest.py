"""The ingest pipeline: capture every file, pick its importer, store its records.

A file's records and its ``processed`` row always commit in the same transaction (small
files are grouped, large ones get their own), so a run killed at any moment leaves every
file either fully stored or not at all, and a rerun skips what is done. A large file's
transaction runs under a small DuckDB buffer pool
(:data:`~darkmap.store.writer.BIG_FILE_BUFFER_MB`): DuckDB writes its rows out to its
temporary folder rather than holding them, so memory does not grow with the file.

Counts reconcile per *unit* (a page, a CSV row, a SQL row): the part of a record's
``locator`` before ``#`` names its unit, and every unit read is stored, quarantined or
skipped. The SQL of the run's bookkeeping is in :mod:`darkmap.store.runs`.

One hostile file never stops the run (issue #18). Which paths are read at all is the
file-system policy of :mod:`darkmap.collect.fs_policy` (regular files inside the folders
given; links leaving them, FIFOs, devices... are skipped with the reason). Each file is
then handled inside one guard, from its ``open`` and ``fstat`` through its capture, the
sniffing of its format and its import: whatever one file raises (an importer's bug, a
``RecursionError``, a ``MemoryError``, a limit of :mod:`darkmap.model.limits`) quarantines
that file with the limit named, and the run goes on. Each file also has a time budget
(:func:`file_budget`: :data:`~darkmap.model.limits.MAX_FILE_SECONDS`, more for big files),
enforced in the main thread with ``SIGALRM``; the alarm is armed only around the
capture, the sniffing and the import, never around a commit, and a file stopped by it is
rolled back like any failed file.

A path that is not read (refused by the policy, unreadable, too big for no importer)
has no capture. Its skip still points to a ``captures`` row, as every stored fact does:
a row whose ``media_type`` is :data:`NOT_READ_MEDIA_TYPE`, size 0, and whose ``sha256``
is :func:`not_read_sha256` of the path (``sha256("darkmap:not-read\\0" + path)``, UTF-8),
so ``darkmap verify`` can check it without bytes; the skip's method is
:data:`NOT_READ_METHOD`. No file is written to the capture store for it.

Before trusting a capture already stored, ingest checks that it still holds the bytes
just read (:class:`~darkmap.capture.content_store.CaptureChangedError`): a capture edited
after ingest is reported as an error for that file, never called already ingested.

Chain data and TagPacks go through the same pipeline: :func:`load_files` (``darkmap
chain load``) is :func:`ingest` restricted to the ``bitcoin`` importer, reporting the
chain counts the importer returns; :func:`import_tagpack` (``darkmap tags import``) is
:func:`ingest` restricted to the ``tagpack`` importer.

This module imports no importer: they come from the registry (:mod:`darkmap.plugins`),
each loaded cheaply, so a run pays only for the readers of the files it meets (the
dataset mappings and the TagPack reader are imported by the functions that use them).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NotRequired, TypedDict, cast

from darkmap.capture.content_store import CaptureChangedError, CaptureStore
from darkmap.collect.apart import records_apart
from darkmap.collect.fs_policy import Entry, open_entry, read_whole, storable_path, walk
from darkmap.collect.prefetch import Ahead, Handle, Prefetcher
from darkmap.collect.units import UnitTally, unit_of
from darkmap.errors import BadInputError, LimitExceeded, is_interrupt
from darkmap.model.limits import FILE_SECONDS, MAX_FILE_SECONDS, NESTING_DEPTH
from darkmap.model.records import (
    CutRecord,
    ListingBatch,
    MarketRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
    UnitRecord,
    non_finite,
)
from darkmap.plugins import (
    HEAD_BYTES,
    Importer,
    PreparingImporter,
    SourceFile,
    TableImporter,
    best_importer,
    importers,
    read_elsewhere,
    why_unrecognised,
)
from darkmap.store.runs import (
    ProcessedCounts,
    end_run,
    finish_run,
    processed_files,
    skip_reasons,
    start_run,
)
from darkmap.store.workspace import Workspace, utcnow
from darkmap.store.writer import (
    BIG_FILE_BUFFER_MB,
    INGEST_BUFFER_MB,
    INGEST_THREADS,
    Provenance,
    RecordWriter,
    begin,
    buffer_limit,
    commit,
    commit_to_file,
    duckdb_threads,
    rollback,
    threads_set,
)

__all__ = ["FILE_SECONDS_PER_MB", "MEMORY", "NOT_READ_MEDIA_TYPE", "NOT_READ_METHOD",
           "SKIP_REASON_UNKNOWN",
           "FileResult", "IngestSummary", "LoadResult", "SummaryDict", "TagImportResult",
           "check_chain_paths", "check_tagpack_paths", "file_budget", "import_tagpack",
           "import_tagpacks", "ingest", "load_files", "not_read_sha256", "refuse_what_is_not"]

_HEAD = HEAD_BYTES
_BIG_FILE = 8 * 1024 * 1024
"""Files up to this size are read whole (one read for hash, capture and sniffing head);
bigger ones are streamed, and captured only when an importer recognises them."""
READING_EVERY = 10_000
"""Records between two reports of a big file's progress (``ingest(reading=...)``)."""
_PROBLEMS_KEPT = 20  # quarantine reasons a FileResult keeps for the reader

FILE_SECONDS_PER_MB = 0.5
"""Seconds of time budget per MiB of a file, on top of ``MAX_FILE_SECONDS``.

The slowest legitimate path measured is about 10 MiB/s of wall time on this project's
two-core machine (a 128 MiB blk file of real mainnet blocks: 12.6 s through ingest; the
Hansa CSV 6.4 MiB/s, the saved pages 7-10 MiB/s, bench/ingest.py), so 2 MiB/s leaves a
five-fold margin for a loaded machine and chain data with more new transactions: a
128 MiB blk file gets 74 s, a 4 MiB dump 12 s, any page 10-14 s."""
MEMORY = "memory"
"""The limit named when one file's import runs out of memory (``MemoryError``)."""
NOT_READ_METHOD = "ingest:fs-policy"
"""Method of the records of paths ingest did not read (see the module docstring)."""
NOT_READ_MEDIA_TYPE = "x-darkmap/not-read"
"""``captures.media_type`` of the row standing for a path that was not read."""
SKIP_REASON_UNKNOWN = "(reason not recorded)"
"""The reason a skipped unit of a file already ingested counts under in
``skipped_by_page_type`` when the store kept none for it."""
_NOT_READ_IMPORTER = "fs-policy"  # the importer name of their ``processed`` rows


def not_read_sha256(source: str) -> str:
    """The name of the ``captures`` row of a path that was not read (no bytes kept)."""
    return hashlib.sha256(b"darkmap:not-read\0" + source.encode("utf-8", "surrogatepass")
                          ).hexdigest()


def file_budget(size: int) -> float:
    """Wall-clock seconds one file of ``size`` bytes may take to capture, sniff and import."""
    return MAX_FILE_SECONDS + FILE_SECONDS_PER_MB * size / (1 << 20)


@dataclass
class FileResult:
    """What happened to one file (or one path that was not read).

    ``problems`` holds the first quarantined units as ``"locator: reason"``; ``details``
    what an importer that writes its own tables returned (the ``bitcoin`` importer: the
    format and chain counts). ``fields_cut`` counts free-text fields cut at their cap,
    ``skipped_bytes`` input bytes no unit covers (an importer reports them as
    ``details["skipped_bytes"]``), ``limits`` the quarantined units by the limit broken.
    ``ignored`` marks a path skipped as not evidence (hidden, licence, read-me);
    ``unrecognised`` a file read but recognised by no importer (``darkmap ingest`` fails
    unless told to allow them).
    """

    source: str
    sha256: str
    importer: str | None
    market_id: str | None = None
    page_type: str | None = None  # the page type a page template gave (or skipped as)
    read: int = 0
    stored: int = 0
    quarantined: int = 0
    skipped: int = 0
    already: bool = False
    records: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    fields_cut: int = 0
    skipped_bytes: int = 0
    limits: Counter[str] = field(default_factory=Counter)
    ignored: bool = False
    unrecognised: bool = False
    read_by: str | None = None
    """For an unrecognised file another command reads (reported operation figures): that
    command (:func:`darkmap.plugins.read_elsewhere`)."""
    why_not: str | None = None
    """For an unrecognised file that a mapping nearly fits: what keeps it from fitting
    (:func:`darkmap.plugins.why_unrecognised`), so a mistyped column is named."""
    notes: list[str] = field(default_factory=list)
    """What its importer says the analyst should know about a file it read (a column its
    mapping reads that the file lacks: empty in every row)."""
    capture_changed: bool = False
    """The file's capture in the workspace no longer holds the bytes it was stored with
    (edited on disk since): nothing read, the file quarantined."""
    stored_before: int = 0
    """Units of ``stored`` that an earlier run had stored already, found again in this
    file (a ``UnitRecord`` marked ``already``: a WARC's page the crawl stored first); the
    run's totals count them as ``already_stored``, not ``stored_new``."""
    market_counts: dict[str, dict[str, int]] | None = None
    """For a file whose units went to several markets (a CSV with a market column):
    units ``read``, ``stored``, ``quarantined`` and ``skipped`` by the market each went
    to, adding up to the file's counts (a unit that names no market counts under
    ``market_id``, the market most of the file's records name). None for a file of one
    market, and for a file already ingested (counted under ``market_id``)."""


class ErrorEntry(TypedDict):
    """A file whose importer failed."""

    source: str
    error: str | None


class SummaryDict(TypedDict):
    """A run's summary as JSON (``darkmap ingest --json``; kept in ``ingest_runs``)."""

    run_id: str
    totals: dict[str, int]
    by_market: dict[str, dict[str, int]]
    skipped_by_page_type: dict[str, int]
    records: dict[str, int]
    limits: dict[str, int]
    errors: list[ErrorEntry]
    unrecognised: list[str]
    read_elsewhere: dict[str, str]
    why_unrecognised: NotRequired[dict[str, str]]
    """Only when a file has a reason: the summaries of runs without one are unchanged."""
    notes: NotRequired[dict[str, list[str]]]
    """Only when a file has a note (see :attr:`FileResult.notes`)."""
    captured_at: NotRequired[str]
    """Only when the run was given a capture time (``--captured-at``), as ISO UTC."""
    partial_captures_removed: NotRequired[list[str]]
    """Only when the run removed temporary capture files that killed writers left
    (paths under ``captures/``; see :meth:`CaptureStore.remove_stale_temporaries`)."""


@dataclass
class IngestSummary:
    """Totals of a run, overall and by market."""

    run_id: str
    files: list[FileResult] = field(default_factory=list)
    captured_at: datetime | None = None
    """The capture time the analyst stated for the run's files (``--captured-at``)."""
    partial_captures_removed: list[str] = field(default_factory=list)
    """Temporary capture files of killed writers the run removed before reading (paths
    under ``captures/``)."""
    prepared_ahead: int = 0
    """Files whose importer's work a worker process did (``jobs`` > 1); not part of
    :meth:`as_dict`, which is the same for any number of jobs."""

    def by_market(self) -> dict[str, dict[str, int]]:
        """read / stored / quarantined / skipped units and files, per market."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for f in self.files:
            if f.market_counts:  # a file of several markets counts as a file of each
                for market, counts in f.market_counts.items():
                    c = out[market]
                    c["files"] += 1
                    c["already_ingested"] += 0  # a file split so was read by this run
                    for k in ("read", "stored", "quarantined", "skipped"):
                        c[k] += counts.get(k, 0)
                continue
            c = out[f.market_id or ("(capture changed)" if f.capture_changed else
                                    f"({f.importer or 'unrecognised'})")]
            c["files"] += 1
            c["already_ingested"] += int(f.already)
            for k in ("read", "stored", "quarantined", "skipped"):
                c[k] += getattr(f, k)
        return {m: dict(c) for m, c in sorted(out.items())}

    def skipped_by_page_type(self) -> dict[str, int]:
        """Skipped units by the page type and reason that caused the skip."""
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.skip_reasons)
        return dict(total.most_common())

    def totals(self) -> dict[str, int]:
        """Overall read / stored / quarantined / skipped units and files.

        ``stored`` = ``stored_new`` (units this run stored) + ``already_stored`` (units
        of files found already ingested, and units of a new file that an earlier run
        stored: :attr:`FileResult.stored_before`); ``fields_cut`` and ``skipped_bytes``
        count what the caps and resynchronising parsers left out (see
        :class:`FileResult`).
        """
        t: Counter[str] = Counter()
        for f in self.files:
            t["files"] += 1
            t["files_already_ingested"] += int(f.already)
            t["files_failed"] += int(f.error is not None)
            for k in ("read", "stored", "quarantined", "skipped"):
                t[k] += getattr(f, k)
            before = f.stored if f.already else f.stored_before
            t["already_stored"] += before
            t["stored_new"] += f.stored - before
            t["fields_cut"] += f.fields_cut
            t["skipped_bytes"] += f.skipped_bytes
        for k in ("stored_new", "already_stored", "fields_cut", "skipped_bytes"):
            t.setdefault(k, 0)
        return dict(t)

    def limits(self) -> dict[str, int]:
        """Quarantined units by the limit they broke (``{"field_chars": 2, ...}``)."""
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.limits)
        return dict(sorted(total.items()))

    def records(self) -> dict[str, int]:
        """Stored records by type (listings, feedback, identifiers, ...)."""
        t: Counter[str] = Counter()
        for f in self.files:
            t.update(f.records)
        return dict(sorted(t.items()))

    def as_dict(self) -> SummaryDict:
        """JSON-ready summary."""
        out: SummaryDict = {
            "run_id": self.run_id,
            "totals": self.totals(),
            "by_market": self.by_market(),
            "skipped_by_page_type": self.skipped_by_page_type(),
            "records": self.records(),
            "limits": self.limits(),
            "errors": [{"source": f.source, "error": f.error} for f in self.files if f.error],
            "unrecognised": self.unrecognised(),
            "read_elsewhere": self.read_elsewhere(),
        }
        if why := self.why_unrecognised():
            out["why_unrecognised"] = why
        if notes := self.notes():
            out["notes"] = notes
        if self.captured_at is not None:
            out["captured_at"] = self.captured_at.isoformat()
        if self.partial_captures_removed:
            out["partial_captures_removed"] = list(self.partial_captures_removed)
        return out

    def notes(self) -> dict[str, list[str]]:
        """The files read this run with a note from their importer: file -> notes."""
        return {f.source: f.notes for f in self.files if f.notes}

    def changed_captures(self) -> list[str]:
        """The files whose stored capture changed on disk since it was stored (not read:
        the workspace is not trusted with them until ``darkmap verify``)."""
        return [f.source for f in self.files if f.capture_changed]

    def unrecognised(self) -> list[str]:
        """The files no importer recognised (skipped, nothing read from them)."""
        return [f.source for f in self.files if f.unrecognised]

    def read_elsewhere(self) -> dict[str, str]:
        """The unrecognised files another command reads: file -> that command."""
        return {f.source: f.read_by for f in self.files if f.unrecognised and f.read_by}

    def why_unrecognised(self) -> dict[str, str]:
        """The unrecognised files a mapping nearly fits: file -> what keeps it from
        fitting (a required column its header lacks, ...)."""
        return {f.source: f.why_not for f in self.files if f.unrecognised and f.why_not}


class _Batch:
    """One open transaction holding the records of many small files (group commit).

    Small files share a transaction so that a run of thousands of pages costs a few
    commits, not thousands; the transaction still commits a file's records together
    with its ``processed`` row, so a kill at any moment loses only uncommitted files,
    which the rerun reads again.
    """

    MAX_ROWS = 100_000
    PARALLEL_COMMIT_ROWS = 122_880
    """Rows of a transaction (one DuckDB row group) from which its commit runs on the
    workspace's threads; a smaller one commits on :data:`INGEST_THREADS`."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.max_files = 500
        self.writer = RecordWriter(ws.con, autoflush=False)
        self.files = 0
        self.open = False
        self.big = False
        """The open transaction holds a big file's rows, or an importer's own tables."""
        self.threads = duckdb_threads(ws.con)
        """The workspace's DuckDB threads, read before the run lowers them for the
        writer's statements (:data:`INGEST_THREADS`): the commit (which writes a big
        file's rows out in parallel) and importers of their own tables use them."""

    def begin(self) -> None:
        if not self.open:
            begin(self.ws.con)
            self.open = True
            self.big = False

    def commit(self, to_file: bool = False) -> None:
        """Flush and commit; ``to_file``: into the database file, not the write-ahead
        log (:func:`~darkmap.store.writer.commit_to_file`)."""
        if self.open:
            # a small transaction commits on one thread: its checkpoint (a commit to
            # the file, or the close after it) has a row group or so per table, and a
            # second thread mostly spun, more so on a busy machine (the Hansa CSV's
            # checkpoint: 0.11-0.14 s of CPU on one thread, 0.12-0.35 s on two)
            parallel = self.big or self.writer.pending >= self.PARALLEL_COMMIT_ROWS
            # the disk takes the captures while the rows are flushed; both are done
            # before the commit that refers to them
            synced = self.ws.captures.sync_started()
            try:
                self.writer.flush()
            finally:
                synced()
            with threads_set(self.ws.con, self.threads if parallel else
                             min(self.threads, INGEST_THREADS)):
                (commit_to_file if to_file else commit)(self.ws.con)
            self.open = False
            self.files = 0

    def rollback(self) -> None:
        if self.open:
            rollback(self.ws.con)
            self.writer.forget_stored()  # its flushes since the commit are undone
            self.open = False
            self.files = 0

    def full(self) -> bool:
        return self.files >= self.max_files or self.writer.pending >= self.MAX_ROWS


class _Timeout(BaseException):
    """One file's time is up (raised by the alarm; a ``BaseException`` so that an
    importer's ``except Exception`` cannot swallow it)."""


class _Clock:
    """The per-file time budget: ``with clock.limit(deadline):`` arms ``SIGALRM``.

    Installed for one run, in the main thread only, and only when no one else uses
    ``SIGALRM`` (else the budget is checked at the start of each step only). The
    handler raises only while a step is armed, so an alarm arriving just after a step
    ended is ignored; system calls interrupted by it restart. ``fired`` tells that the
    step's time ran out even when a library turned the alarm into an error of its own
    (DuckDB answers it with "Query interrupted").
    """

    def __init__(self) -> None:
        self.enabled = False
        self.armed = False
        self.fired = False
        self.deadline = 0.0
        self.seconds = 0.0
        self._old: Any = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        old = signal.getsignal(signal.SIGALRM)
        if old not in (signal.SIG_DFL, None) or signal.getitimer(signal.ITIMER_REAL)[0]:
            return  # someone else's alarm: leave it alone
        signal.signal(signal.SIGALRM, self._ring)
        signal.siginterrupt(signal.SIGALRM, False)
        self._old, self.enabled = old, True

    def uninstall(self) -> None:
        if self.enabled:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old if self._old is not None else signal.SIG_DFL)
            self.enabled = False

    def _ring(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            self.fired = True
            raise _Timeout

    def limit(self, deadline: float, seconds: float) -> _Clock:
        """Arm for one step ending at ``deadline`` (``seconds``: the file's budget)."""
        self.deadline, self.seconds = deadline, seconds
        return self

    def __enter__(self) -> None:
        self.fired = False
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.fired = True
            raise _Timeout
        if self.enabled:
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, left)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)


def _guarded(exc: BaseException) -> bool:
    """What the per-file guard turns into a quarantined file: not ^C (nor SIGTERM, nor
    DuckDB's statement stopped by either: :func:`~darkmap.errors.is_interrupt`), not an
    exit."""
    return isinstance(exc, (Exception, _Timeout)) and not is_interrupt(exc)


def _as_error(exc: BaseException, clock: _Clock) -> Exception:
    """``exc`` as the error the quarantine records, the limit named where one was hit."""
    if isinstance(exc, _Timeout) or clock.fired:
        return LimitExceeded(FILE_SECONDS, f"took longer than its {clock.seconds:.0f} s "
                                           f"budget (limit {FILE_SECONDS})")
    if isinstance(exc, RecursionError):
        return LimitExceeded(NESTING_DEPTH, f"nested too deep to parse ({exc}; limit "
                                            f"{NESTING_DEPTH})")
    if isinstance(exc, MemoryError):
        return LimitExceeded(MEMORY, f"ran out of memory (limit {MEMORY})")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


@dataclass
class _Run:
    """What every file of one run needs."""

    ws: Workspace
    batch: _Batch
    run_id: str
    forced: Importer | None
    done: dict[tuple[str, str], ProcessedCounts]
    seen: set[str]
    clock: _Clock
    jobs: int = 1
    reading: Callable[[str, int], None] | None = None
    """Told a big file's source and records read so far, as it is read (see ingest)."""
    captured_at: datetime | None = None
    """The capture time the analyst stated (see ingest); None: the files' own times."""


def ingest(
    ws: Workspace,
    paths: Iterable[Path],
    importer_name: str | None = None,
    progress: Callable[[FileResult], None] | None = None,
    batch_files: int = 500,
    mapping_files: Iterable[Path] = (),
    jobs: int = 1,
    reading: Callable[[str, int], None] | None = None,
    checkpoint: bool = False,
    captured_at: datetime | None = None,
) -> IngestSummary:
    """Ingest files and folders into ``ws``; return the run's summary.

    ``batch_files`` small files share one transaction (group commit). Every path the
    walk meets is one :class:`FileResult` (see :mod:`darkmap.collect.fs_policy`).
    ``mapping_files`` are dataset mappings to use besides the loaded ones (checked
    before anything is read; see :func:`~darkmap.importers.mappings.add_mapping_file`).
    With ``jobs`` > 1, files are read ahead and the importers' pure work on them (page
    extraction) runs in that many worker processes (:mod:`darkmap.collect.prefetch`),
    and a large file's records are read in a process of their own while they are
    written, where the importer allows it (:mod:`darkmap.collect.apart`); what is
    stored is the same.

    ``progress`` is called with each file's result once it is done; ``reading`` with a
    big file's source and the records read from it so far, every
    :data:`READING_EVERY` records or so while it is read (a 10-million-row CSV takes
    minutes: the command's progress bar counts them).

    ``checkpoint``: the run's last commit writes the database file itself rather than
    the write-ahead log (:func:`~darkmap.store.writer.commit_to_file`), for a caller that
    closes the workspace next (``darkmap ingest``), whose close would checkpoint it.

    ``captured_at`` (UTC; naive is taken as UTC): when the files were captured, as the
    analyst states it (``darkmap ingest --captured-at``). It stands for the files'
    modification times as the observation time of what they show where their importer
    takes file times (saved pages); a time the page itself states still comes first, and
    datasets keep the times their rows state. The facts' ``method`` says the time was
    stated ("pages@1; capture time stated 2019-11-18T00:00:00"), and the run records it
    (``ingest_runs.args`` and its summary). A file already ingested is not read again,
    whatever time is stated: re-ingesting changes nothing.
    """
    paths = list(paths)
    if captured_at is not None and captured_at.tzinfo is not None:
        captured_at = captured_at.astimezone(UTC).replace(tzinfo=None)
    for mf in mapping_files:
        from darkmap.importers.mappings import add_mapping_file  # noqa: PLC0415 - see the docstring

        add_mapping_file(mf)
    run_id = uuid.uuid4().hex[:12]
    summary = IngestSummary(run_id, captured_at=captured_at)
    # a capture write a SIGKILL cut short left its temporary file (found by an audit of
    # kills: each killed attempt left up to the input's size, for good); this process
    # holds the workspace, so no other ingest writes there now
    summary.partial_captures_removed = [f"{ws.captures.root.name}/{p}" for p in
                                        ws.captures.remove_stale_temporaries()]
    forced = importers()[importer_name] if importer_name else None
    done = processed_files(ws.con)
    batch = _Batch(ws)
    batch.max_files = batch_files
    # captures with a processed row under some importer: only the others are fresh
    # (no stored row carries them: a capture's rows commit with its processed row)
    run = _Run(ws, batch, run_id, forced, done, {sha for sha, _ in done}, _Clock(), jobs,
               reading, captured_at)
    ws.captures.durable = False  # one sync per commit instead of one fsync per file
    run.clock.install()
    # DuckDB would cache what it writes; the writer is faster on one thread than on more
    with buffer_limit(ws.con, INGEST_BUFFER_MB), \
            threads_set(ws.con, min(batch.threads, INGEST_THREADS)):
        try:
            # the run's row commits with its first files and its summary with its last ones
            # (a commit of its own costs a WAL sync each); a run killed before its first
            # commit left nothing, a later kill leaves the row without finished_at
            batch.begin()
            stated = [] if captured_at is None else [f"--captured-at={captured_at.isoformat()}"]
            start_run(ws.con, run_id, stated + [storable_path(p) for p in paths])
            with Prefetcher(jobs, _preparers(forced), _BIG_FILE, _HEAD,
                            done=lambda sha, imp: (sha, imp) in run.done,
                            first=partial(_first_steps, ws.captures, forced)) as ahead:
                for item in ahead.ahead(walk(paths)):
                    result = _ingest_one(run, item)
                    summary.files.append(result)
                    if batch.full():
                        batch.commit()
                    if progress:
                        progress(result)
                summary.prepared_ahead = ahead.submitted
            batch.begin()
            finish_run(ws.con, run_id, dict(summary.as_dict()))
            batch.commit(to_file=checkpoint)
        except BaseException:
            batch.rollback()
            raise
        finally:
            end_run(run_id)
            run.clock.uninstall()
            ws.captures.durable = True
    return summary


def _preparers(forced: Importer | None) -> list[Any]:
    """What the importers (or the one forced) offer to prepare ahead in workers."""
    imps = [forced] if forced is not None else list(importers().values())
    return [imp.preparer() for imp in imps if isinstance(imp, PreparingImporter)]


def _ingest_one(run: _Run, item: Ahead) -> FileResult:
    """One path: not read (with the reason), or opened, captured and imported."""
    entry = item.entry
    if entry.refused:
        return _not_read(run, entry.source, entry.refused, ignored=entry.ignored)
    if item.refused is not None:  # a link, a FIFO swapped in, permission denied...
        return _not_read(run, entry.source, str(item.refused))
    if item.fd is None or item.stat is None:
        try:
            item.fd, item.stat = open_entry(entry)
        except OSError as exc:
            return _not_read(run, entry.source, str(exc))
    try:
        return _ingest_open(run, entry.source, item.fd, item.stat, item)
    finally:
        os.close(item.fd)
        item.fd = None


@dataclass
class _Taken:
    """How far one file got: its capture, sniffing head and importer."""

    size: int
    sha: str | None = None
    head: bytes = b""
    imp: Importer | None = None


def _ingest_open(run: _Run, source: str, fd: int, st: os.stat_result,
                 item: Ahead) -> FileResult:
    """Capture, sniff and import one opened regular file, inside the per-file guard."""
    seconds = file_budget(st.st_size)
    deadline = time.monotonic() + seconds
    taken = _Taken(st.st_size)
    try:
        with run.clock.limit(deadline, seconds):
            _take(run, fd, source, taken, item.data, item.sha256, item.handle)
    except CaptureChangedError as exc:
        return _capture_changed(source, exc)
    except BaseException as exc:
        if not _guarded(exc):
            raise
        err = _as_error(exc, run.clock)
        if taken.sha is None:
            if isinstance(err, OSError):
                return _not_read(run, source, f"cannot read: {err.strerror or err}")
            return _not_read(run, source, f"cannot capture: {err}", quarantine=True,
                             limit=getattr(err, "limit", None))
        return _sniff_failed(run, source, taken, err)
    if taken.sha is None:
        result = _not_read(run, source, f"no importer recognises this file (over "
                                        f"{_BIG_FILE >> 20} MiB: not captured)",
                           page_type="unknown")
        result.unrecognised = True
        return result
    return _import(run, source, taken, st, deadline, seconds, item)


def _take(run: _Run, fd: int, source: str, taken: _Taken, ahead: bytes | None,
          ahead_sha: str | None = None, handle: Handle | None = None) -> None:
    """Read and capture the file, and choose its importer (fills ``taken`` as it goes).

    A file up to ``_BIG_FILE`` is read once for hash, capture and head (``ahead``: it
    was read ahead already, and hashed: ``ahead_sha``; ``handle``: a worker captures
    it, see :func:`_captured`). A bigger one is sniffed from its head first and
    captured by streaming only when an importer takes it (or one is forced): a huge
    file nothing reads is never copied.
    """
    captures = run.ws.captures
    if taken.size <= _BIG_FILE:
        data = ahead if ahead is not None else read_whole(fd, taken.size, _BIG_FILE)
        if data is not None:
            if ahead is None or ahead_sha is None:
                handle = None  # read here: no worker has seen these bytes
            taken.sha = _captured(captures, handle, ahead_sha) if handle is not None else None
            if taken.sha is None:
                handle = None  # captured here: the worker's choice is not of this one
                taken.sha = captures.put_bytes(data,
                                               ahead_sha if ahead is not None else None)
            taken.size, taken.head = len(data), data[:_HEAD]
            del data
            chosen = _chosen(handle) if run.forced is None else None
            taken.imp = run.forced or (chosen[0] if chosen is not None else best_importer(
                SourceFile(captures.path_for(taken.sha), source, taken.sha, taken.head)))
            return
    imp = run.forced  # big, or grew past the threshold while being read: stream it
    probe = _fd_path(fd)
    if imp is None and probe is not None:
        imp = best_importer(SourceFile(probe, source, "", os.pread(fd, _HEAD, 0)))
        if imp is None:
            return
    with os.fdopen(fd, "rb", closefd=False) as fh:
        sha = captures.put_stream(fh)
    taken.sha = sha
    path = captures.path_for(sha)
    taken.size = path.stat().st_size
    with open(path, "rb") as fh:
        taken.head = fh.read(_HEAD)
    taken.imp = imp if imp is not None or probe is not None else best_importer(
        SourceFile(path, source, sha, taken.head))


def _first_steps(captures: CaptureStore, forced: Importer | None, data: bytes, source: str,
                 sha: str) -> Iterator[object]:
    """What a prefetch worker does first with a file it was handed, before the
    importer's work (:mod:`darkmap.collect.prefetch`): capture the bytes (yields their
    sha256), then, unless an importer is forced, choose the importer as :func:`_take`
    would (yields its name, or None). Each outcome goes to the pipeline at once
    (:func:`_captured`, :func:`_chosen`)."""
    yield captures.put_bytes(data, sha)
    if forced is None:
        imp = best_importer(SourceFile(captures.path_for(sha), source, sha, data[:_HEAD]))
        yield imp.name if imp is not None else None


def _captured(captures: CaptureStore, handle: Handle, sha: str | None) -> str | None:
    """``sha`` when the worker ``handle`` runs on has stored the capture (it is then
    synced with this process's own before the commit); None when this process must
    store it (no worker did, or it failed: the same write here reports the failure,
    a capture changed on disk included, as before)."""
    step = handle.step(0)
    if sha is None or step != (True, sha):
        return None
    captures.adopt(sha)
    return sha


def _chosen(handle: Handle | None) -> tuple[Importer | None] | None:
    """The importer the worker ``handle`` runs on chose for the file it captured (in a
    1-tuple: the choice may be none), or None when this process must choose (the
    worker's sniff failed, or the importer is gone from the registry)."""
    step = handle.step(1) if handle is not None else None
    if step is None or not step[0]:
        return None
    if step[1] is None:
        return (None,)
    imp = importers().get(str(step[1]))
    return (imp,) if imp is not None else None


def _fd_path(fd: int) -> Path | None:
    """A path naming the open file ``fd`` itself (Linux ``/proc``), for sniffing a big
    file before it is captured; None where there is no such path."""
    path = Path(f"/proc/self/fd/{fd}")
    return path if path.exists() else None


def _import(run: _Run, source: str, taken: _Taken, st: os.stat_result, deadline: float,
            seconds: float, item: Ahead) -> FileResult:
    """Import a captured file (or find it done): the records buffered or written."""
    sha, imp, size = cast(str, taken.sha), taken.imp, taken.size
    ws, batch = run.ws, run.batch
    # work done ahead was done on the bytes read ahead, which are the bytes captured
    src = SourceFile(path=ws.captures.path_for(sha), source=source, sha256=sha,
                     head=taken.head, prepared=item.handle if item.data is not None else None)
    name = imp.name if imp else "unrecognised"
    result = FileResult(source=source, sha256=sha, importer=imp.name if imp else None,
                        unrecognised=imp is None)
    elsewhere = read_elsewhere(src) if imp is None else None
    if elsewhere is not None:
        result.read_by = elsewhere.command
    elif imp is None:
        result.why_not = why_unrecognised(src)
    prior = run.done.get((sha, name))
    if prior is not None:
        return _already(result, prior, ws)
    fresh = sha not in run.seen
    run.seen.add(sha)
    result.notes = _notes(imp, src)
    method = f"{imp.name}@{imp.version}" if imp else "ingest"
    # the file's time stands for a fact's observation time only where the importer says
    # so; datasets state their times in their rows (none stated: unknown, NULL). A
    # capture time the analyst stated (--captured-at) stands for the file's time.
    if getattr(imp, "times_from_source", False):
        observed = None
    elif run.captured_at is not None:
        observed = run.captured_at
        method += f"; capture time stated {run.captured_at.isoformat()}"
    else:
        observed = datetime.fromtimestamp(st.st_mtime, tz=UTC).replace(tzinfo=None)
    prov = Provenance(sha, source, method, observed, run.run_id)
    own_tables = imp is not None and _writes_own_tables(imp)
    if imp is None:
        reason = "no importer recognises this file" + (
            "" if elsewhere is None else
            f" ({elsewhere.what}: `{elsewhere.command}` reads it)")
        recs: Iterable[Record] = [SkipRecord(page_type="unknown", locator="file",
                                             reason=reason)]
    elif own_tables:
        recs = _lazy(lambda: imp.read_into(src, ws.con, prov),  # type: ignore[attr-defined]
                     result.details)
    elif run.jobs > 1 and size > _BIG_FILE and getattr(imp, "reads_apart", False):
        recs = _lazy(lambda: records_apart(lambda: imp.read(src)), result.details)
    else:
        recs = _lazy(lambda: imp.read(src), result.details)
    step = run.clock.limit(deadline, seconds)
    if own_tables:
        with threads_set(ws.con, batch.threads):  # its set statements may use every thread
            _ingest_big(run, recs, prov, result, fresh, step)
    elif size > _BIG_FILE:
        # its records, its processed row and their commit under a small buffer pool:
        # the one transaction's rows go to DuckDB's temporary folder, not into memory
        with buffer_limit(ws.con, BIG_FILE_BUFFER_MB):
            _ingest_big(run, recs, prov, result, fresh, step)
            _finish(run, prov, result, size, name, _media_type(imp, src))
            batch.commit()
        return result
    else:
        batch.begin()
        if fresh:
            batch.writer.fresh.add(sha)
        mark = batch.writer.mark()
        try:
            with step:
                _consume(recs, batch.writer, prov, result)
        except BaseException as exc:
            if not _guarded(exc):  # the per-file guard: one file must not stop the run
                raise
            batch.writer.rollback_to(mark)
            _fail(batch.writer, prov, result, _as_error(exc, run.clock))
        batch.files += 1
    _finish(run, prov, result, size, name, _media_type(imp, src))
    return result


def _media_type(imp: Importer | None, src: SourceFile) -> str | None:
    """The capture's media type as its importer tells it (``media_type(src)``,
    optional), or None: no importer read it, or the importer does not say (an
    importer's failure to say it never fails the file)."""
    say = getattr(imp, "media_type", None)
    if say is None:
        return None
    try:
        kind = say(src)
    except Exception:  # noqa: BLE001 - the type is a label, never the file's outcome
        return None
    return str(kind)[:250] if kind else None


def _notes(imp: Importer | None, src: SourceFile) -> list[str]:
    """The importer's notes on a file it reads (``notes(src)``, optional; an importer's
    failure to say them never fails the file)."""
    say = getattr(imp, "notes", None)
    if say is None:
        return []
    try:
        return [str(n)[:500] for n in say(src)][:20]
    except Exception:  # noqa: BLE001 - a note is advice, never the file's outcome
        return []


def _already(result: FileResult, prior: ProcessedCounts, ws: Workspace) -> FileResult:
    """A file whose capture this importer has processed: its counts from then, and the
    reasons of its skipped units, so that ``skipped_by_page_type`` adds up to the
    skipped total (a file repeating another's bytes was left out of it: found by an
    audit). A skipped unit whose reason was not kept counts as
    :data:`SKIP_REASON_UNKNOWN`."""
    result.market_id, result.read, result.stored = prior.market_id, prior.read, prior.stored
    result.quarantined, result.skipped = prior.quarantined, prior.skipped
    result.already = True
    if prior.skipped:
        reasons = prior.skip_reasons
        if reasons is None:
            reasons = skip_reasons(ws.con, result.sha256)
        result.skip_reasons.update(reasons)
        missing = prior.skipped - sum(result.skip_reasons.values())
        if missing > 0:
            result.skip_reasons[SKIP_REASON_UNKNOWN] += missing
    return result


def _sniff_failed(run: _Run, source: str, taken: _Taken, err: Exception) -> FileResult:
    """A captured file whose format could not be sniffed: quarantined with its capture."""
    sha = cast(str, taken.sha)
    result = FileResult(source=source, sha256=sha, importer=None)
    prior = run.done.get((sha, "unrecognised"))
    if prior is not None:
        return _already(result, prior, run.ws)
    prov = Provenance(sha, source, "ingest", None, run.run_id)
    run.batch.begin()
    if sha not in run.seen:
        run.batch.writer.fresh.add(sha)
        run.seen.add(sha)
    _fail(run.batch.writer, prov, result, err, what="sniffing failed")
    run.batch.files += 1
    _finish(run, prov, result, taken.size, "unrecognised")
    return result


def _not_read(run: _Run, source: str, reason: str, *, ignored: bool = False,
              quarantine: bool = False, limit: str | None = None,
              page_type: str = "file") -> FileResult:
    """A path not read: one unit, skipped (or quarantined) with ``reason``.

    Its provenance is the ``captures`` row of :func:`not_read_sha256` (no bytes kept);
    a rerun finds it in ``processed`` like any file.
    """
    sha = not_read_sha256(source)
    result = FileResult(source=source, sha256=sha, importer=None, ignored=ignored)
    prior = run.done.get((sha, _NOT_READ_IMPORTER))
    if prior is not None:
        return _already(result, prior, run.ws)
    prov = Provenance(sha, source, NOT_READ_METHOD, None, run.run_id)
    rec: Record = (QuarantineRecord(locator="file", reason=reason[:500], limit=limit)
                   if quarantine else
                   SkipRecord(page_type=page_type, locator="file", reason=reason))
    batch = run.batch
    batch.begin()
    if sha not in run.seen:
        batch.writer.fresh.add(sha)
        run.seen.add(sha)
    _consume([rec], batch.writer, prov, result)
    if quarantine:
        result.error = f"{source}: {reason}"
    batch.files += 1
    _finish(run, prov, result, 0, _NOT_READ_IMPORTER, NOT_READ_MEDIA_TYPE)
    return result


def _capture_changed(source: str, exc: CaptureChangedError) -> FileResult:
    """A file whose stored capture was edited after ingest: one quarantined unit, an
    error, nothing stored (the workspace is not trusted with it until verified)."""
    result = FileResult(source=source, sha256=exc.sha256, importer=None, read=1,
                        quarantined=1, error=f"{source}: {exc}", capture_changed=True)
    result.problems.append(f"file: {exc}")
    return result


_OWN_TABLES: dict[int, tuple[Importer, bool]] = {}


def _writes_own_tables(imp: Importer) -> bool:
    """``isinstance(imp, TableImporter)``, remembered (protocol checks are slow)."""
    hit = _OWN_TABLES.get(id(imp))
    if hit is None or hit[0] is not imp:
        hit = _OWN_TABLES[id(imp)] = (imp, isinstance(imp, TableImporter))
    return hit[1]


def _lazy(make: Callable[[], Iterable[Record]],
          details: dict[str, Any]) -> Generator[Record, None, None]:
    """Defer an importer call so that even its first line runs inside the error guard.

    What the importer's generator returns (a dict of counts of its own, e.g. the
    ``bitcoin`` importer's chain counts) goes into ``details``.
    """
    # an importer's read may be any iterator; only a generator can return a value
    ret = yield from cast(Generator[Record, None, object], make())
    if isinstance(ret, dict):
        details.update(ret)


def _ingest_big(run: _Run, recs: Iterable[Record], prov: Provenance, result: FileResult,
                fresh: bool, step: _Clock) -> None:
    """A large file (or one writing its own tables) gets a transaction of its own.

    For a large file the caller adds its ``processed`` row and commits, under the small
    buffer pool (see :func:`_import`); an importer writing its own tables (chain data)
    keeps the run's pool, and its transaction takes the small files after it, as before.

    The commit of the files before it runs before the time budget is armed again; the
    flush of its own last rows runs inside the guard, so a store error on them (DuckDB
    out of memory on a huge field) fails this file, not the run.
    """
    batch = run.batch
    t0 = time.monotonic()
    batch.commit()
    step.deadline += time.monotonic() - t0  # the commit of other files is not this file's time
    batch.begin()
    batch.big = True
    if fresh:
        batch.writer.fresh.add(prov.capture_sha256)
    batch.writer.autoflush = True
    try:
        with step:
            tick = partial(run.reading, prov.source) if run.reading else None
            _consume(recs, batch.writer, prov, result, tick)
            batch.writer.flush()
    except BaseException as exc:
        if not _guarded(exc):  # the per-file guard, as in _import
            raise
        batch.rollback()
        batch.writer = RecordWriter(run.ws.con, autoflush=False)
        batch.begin()
        result.records.clear()
        _fail(batch.writer, prov, result, _as_error(exc, run.clock))
    finally:
        batch.writer.autoflush = False
        close = getattr(recs, "close", None)
        if close is not None:  # a reader in a process of its own is ended now, not later
            with suppress(Exception):  # as when it is collected: the file's outcome stands
                close()
    batch.files += 1


def _finish(run: _Run, prov: Provenance, result: FileResult, size: int, importer: str,
            media_type: str | None = None) -> None:
    now = utcnow()
    result.skipped_bytes = int(result.details.get("skipped_bytes", 0) or 0)
    run.batch.writer.add_row("captures", (prov.capture_sha256, size, prov.source, media_type,
                                          now))
    run.batch.writer.add_row("processed", (
        prov.capture_sha256, importer, prov.run_id, prov.source, result.read, result.stored,
        result.quarantined, result.skipped, result.market_id, result.page_type, now))
    run.done[(prov.capture_sha256, importer)] = ProcessedCounts(
        result.market_id, result.read, result.stored, result.quarantined, result.skipped,
        dict(result.skip_reasons))


def _finite_only(recs: Iterable[Record]) -> Iterator[Record]:
    """``recs``, each account, listing or feedback record holding a number that is not
    finite (a 400-digit price reads as ``inf``) replaced by a quarantine record naming
    its locator and field: the store never holds ``inf`` or ``nan`` (exports audit,
    finding 8), whichever importer read it. A listing batch holding one is taken row by
    row."""
    for rec in recs:
        bad = non_finite(rec)
        if not bad:
            yield rec
        elif type(rec) is ListingBatch:
            yield from _finite_only(rec.records())
        else:
            locator = str(getattr(rec, "locator", "") or "")
            yield QuarantineRecord(
                locator=locator, field=bad[0], market_id=getattr(rec, "market_id", None),
                reason=f"{locator}: {', '.join(bad)}: not a finite number (out of range)",
                excerpt=str(getattr(rec, "price_text", None) or "")[:200])


def _consume(recs: Iterable[Record], writer: RecordWriter, prov: Provenance,
             result: FileResult, tick: Callable[[int], None] | None = None) -> None:
    """Write ``recs`` and count their units into ``result``; ``tick`` is told the records
    read so far every :data:`READING_EVERY` or so, and at the end."""
    units = UnitTally()
    markets: Counter[str] = Counter()
    add = writer.add
    seen, told = 0, READING_EVERY
    for rec in _finite_only(recs):
        if tick is not None:
            seen += len(rec) if type(rec) is ListingBatch else 1
            if seen >= told:
                tick(seen)
                told = seen + READING_EVERY
        if type(rec) is CutRecord:  # a note on a unit's field, not a unit
            add(rec, prov)
            result.fields_cut += 1
            continue
        if type(rec) is ListingBatch:  # many listing rows, each a unit stored
            add(rec, prov)
            if rec.market_id:
                markets[rec.market_id] += len(rec)
            units.add_stored(rec.locators, rec.market_id or None)
            result.records["listing"] += len(rec)
            continue
        outcome = add(rec, prov)
        mid = getattr(rec, "market_id", None)
        if mid:
            markets[mid] += 1
        if isinstance(rec, MarketRecord):  # metadata about the source, not a unit of it
            if rec.page_type and result.page_type is None:
                result.page_type = rec.page_type
            continue
        unit = unit_of(getattr(rec, "locator", "") or "")
        if isinstance(rec, SkipRecord):
            result.skip_reasons[f"{rec.page_type}: {rec.reason}"] += 1
            if unit == "page" and result.page_type is None:
                result.page_type = rec.page_type
        elif outcome == "quarantined" and isinstance(rec, QuarantineRecord):
            if rec.limit:
                result.limits[rec.limit] += 1
            if len(result.problems) < _PROBLEMS_KEPT:
                result.problems.append(f"{rec.locator}: {rec.reason}")
        units.add(unit, outcome, mid or None)
        if outcome != "stored":
            continue
        if type(rec) is UnitRecord and rec.already:  # stored by an earlier run
            result.stored_before += 1
        else:
            result.records[type(rec).__name__.removesuffix("Record").lower()] += 1
    if tick is not None and seen > told - READING_EVERY:  # the last ones too
        tick(seen)
    result.read, counts = units.counts()
    result.stored, result.quarantined, result.skipped = (
        counts["stored"], counts["quarantined"], counts["skipped"])
    result.market_id = markets.most_common(1)[0][0] if markets else None
    if len(markets) > 1:  # rows of several markets: each unit counts under its own
        split = units.counts_by_market(result.market_id)
        result.market_counts = {str(m): dict(c) for m, c in split.items()}


def _fail(writer: RecordWriter, prov: Provenance, result: FileResult, exc: Exception,
          what: str = "importer failed") -> None:
    """Record a file whose importer crashed as one quarantined unit, with the reason."""
    limit = exc.limit if isinstance(exc, LimitExceeded) else None
    result.error = f"{prov.source}: {type(exc).__name__}: {exc}"
    failed = QuarantineRecord(locator="file", reason=f"{what}: {exc}"[:500], limit=limit)
    writer.add(failed, prov)
    result.read, result.quarantined = 1, 1
    result.stored = result.skipped = result.fields_cut = result.skipped_bytes = 0
    result.stored_before = 0
    result.market_counts = None
    result.limits = Counter({limit: 1} if limit else {})
    result.records.clear()
    result.details.clear()
    result.problems[:] = [f"{failed.locator}: {failed.reason}"]


# -- the pipeline restricted to one importer: chain files and TagPacks ------------------


@dataclass
class LoadResult:
    """One chain file as ``darkmap chain load`` reports it (from its :class:`FileResult`).

    ``fmt`` is the format the ``bitcoin`` importer recognised; ``counts`` what it stored
    (new blocks, transactions, addresses, prevouts, script types...); ``reasons`` the
    first quarantined units. A file already loaded keeps its counts from ``processed``.
    """

    source: str
    sha256: str
    fmt: str | None = None
    read: int = 0
    stored: int = 0
    quarantined: int = 0
    already: bool = False
    counts: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def from_file(cls, f: FileResult) -> LoadResult:
        """The chain view of one file the pipeline ingested with the ``bitcoin`` importer."""
        fmt = f.details.get("format")
        error = f.error
        if error is None and not f.already and f.importer is None and f.skip_reasons:
            error = f"{f.source}: " + next(iter(f.skip_reasons)).split(": ", 1)[-1]
        elif error is None and not f.already and fmt is None:
            error = f"{f.source}: not a recognised Bitcoin format"
        return cls(f.source, f.sha256, fmt, f.read, f.stored, f.quarantined, f.already,
                   dict(f.details), list(f.problems), error)


def refuse_what_is_not(paths: Iterable[Path], recognises: Callable[[SourceFile], bool],
                       what: str, expected: str, verb: str) -> None:
    """Raise :class:`BadInputError`, before anything is read into a workspace, when a
    path given to a command that loads one kind of data (``what``) holds none of it: a
    file ``recognises`` says no to, or a folder where it says no to every file. The
    message names the path and what was ``expected``, says that nothing was ``verb``
    (loaded, imported) and, when another importer recognises the file, that `darkmap
    ingest` reads it. Paths the file-system policy does not read (a FIFO, a missing
    file) are left to :func:`ingest`, which reports them."""
    for path in paths:
        files, found, other = 0, False, None
        for entry in walk([path]):
            if entry.refused or entry.ignored:
                continue
            files += 1
            found, other = _sniffed(entry, recognises)
            if found:
                break
        if found or not files:
            continue
        where = storable_path(path)
        if Path(path).is_dir():
            raise BadInputError(f"{where}: no file in this folder is {what} ({files} looked "
                                f"at); expected {expected}; nothing was {verb}")
        hint = f" (`darkmap ingest` reads it: its `{other}` importer does)" if other else ""
        raise BadInputError(f"{where}: not {what}{hint}; expected {expected}; nothing was "
                            f"{verb}")


def _sniffed(entry: Entry, recognises: Callable[[SourceFile], bool]) -> tuple[bool, str | None]:
    """(``recognises`` the file, else the importer that would read it, for a file the
    user named). A file that cannot be opened, or a system without ``/proc``, counts as
    recognised: :func:`ingest` reports it."""
    try:
        fd, _ = open_entry(entry)
    except OSError:
        return True, None
    try:
        path = _fd_path(fd)
        if path is None:
            return True, None
        src = SourceFile(path, entry.source, "", os.pread(fd, _HEAD, 0))
        if recognises(src):
            return True, None
        imp = best_importer(src) if entry.given else None
        return False, imp.name if imp is not None else None
    finally:
        os.close(fd)


def check_chain_paths(paths: Iterable[Path]) -> None:
    """Refuse (:class:`BadInputError`) a file given that is not chain data, or a folder
    with no chain file in it (:func:`refuse_what_is_not`)."""
    from darkmap.importers.blockchain import EXPECTED, is_chain_data  # noqa: PLC0415 - see the docstring

    refuse_what_is_not(paths, is_chain_data, "chain data", EXPECTED, "loaded")


def check_tagpack_paths(paths: Iterable[Path]) -> None:
    """Refuse (:class:`BadInputError`) a file given that is not a TagPack, or a folder
    with no TagPack in it (:func:`refuse_what_is_not`)."""
    from darkmap.importers.tagpack import EXPECTED, looks_like_tagpack  # noqa: PLC0415 - see the docstring

    refuse_what_is_not(paths, looks_like_tagpack, "a TagPack", EXPECTED, "imported")


def load_files(ws: Workspace, paths: Iterable[Path], checked: bool = False) -> list[LoadResult]:
    """Load chain files (or folders of them): :func:`ingest` with the ``bitcoin`` importer.

    A file given that is not chain data, or a folder with no chain file in it, is
    refused first (:func:`check_chain_paths`; ``checked``: the caller did that), nothing
    stored.
    Each file is captured and its rows commit with its ``processed`` row, so a rerun
    skips it and a crash leaves it fully loaded or not at all. A file in a folder that
    is not chain data is one quarantined unit; a path the file-system policy refuses (a
    FIFO, a link leaving the folder) is listed with the reason as its error. Hidden,
    licence and read-me files in a folder are counted in the run's summary, not listed.
    """
    paths = list(paths)
    if not checked:
        check_chain_paths(paths)
    summary = ingest(ws, paths, importer_name="bitcoin")
    return [LoadResult.from_file(f) for f in summary.files if not f.ignored]


class TagProblemEntry(TypedDict):
    """A tag that was not imported (``locator`` names file and tag index)."""

    locator: str
    field: str
    reason: str


class TagImportResult(TypedDict):
    """One TagPack file as ``darkmap tags import`` reports it."""

    file: str
    title: Any
    tags: int
    already_imported: bool
    problems: list[TagProblemEntry]


def import_tagpacks(ws: Workspace, paths: Iterable[Path],
                    checked: bool = False) -> list[TagImportResult]:
    """Import TagPack files (:func:`import_tagpack` each), once every one of them was
    checked to be one (:func:`check_tagpack_paths`; ``checked``: the caller did that): a
    file that is not refuses them all, nothing stored."""
    paths = list(paths)
    if not checked:
        check_tagpack_paths(paths)
    return [import_tagpack(ws, p, checked=True) for p in paths]


def import_tagpack(ws: Workspace, path: Path, checked: bool = False) -> TagImportResult:
    """Import one TagPack file: :func:`ingest` with the ``tagpack`` importer (captured,
    with provenance). Returns the file's tag count and the problems of tags that were
    not imported (also when the file was imported before). A file that is not a TagPack
    (no top-level ``tags:``: a web page, a CSV) is refused first, nothing stored
    (``checked``: the caller did that)."""
    if not checked:
        check_tagpack_paths([path])
    summary = ingest(ws, [path], importer_name="tagpack")
    first = summary.files[0]
    capture = ws.captures.path_for(first.sha256)
    if first.importer is None or not capture.is_file():  # not read (a FIFO...) or changed
        why = first.error or ", ".join(first.skip_reasons) or "not read"
        raise BadInputError(f"{storable_path(path)}: {why}")
    text = capture.read_bytes().decode("utf-8", "replace")
    from darkmap.importers.tagpack import read_tagpack  # noqa: PLC0415 - see the docstring

    header, tags, problems = read_tagpack(text, path.name)
    return {"file": str(path), "title": header.get("title"), "tags": len(tags),
            "already_imported": first.already,
            "problems": [{"locator": p.locator, "field": p.field, "reason": p.reason}
                         for p in problems]}
