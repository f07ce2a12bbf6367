"""The ingest pipeline: capture every file, pick its importer, store its records.

A file's records and its ``processed`` row always commit in the same transaction (small
files are grouped, large ones get their own), so a run killed at any moment leaves every
file either fully stored or not at all, and a rerun skips what is done. Counts reconcile
per *unit* (a page, a CSV row, a SQL row): the part of a record's ``locator`` before ``#``
names its unit, and every unit read is stored, quarantined or skipped. The SQL of the
run's bookkeeping is in :mod:`darkmap.store.runs`.

Chain data and TagPacks go through the same pipeline: :func:`load_files` (``darkmap
chain load``) is :func:`ingest` restricted to the ``bitcoin`` importer, reporting the
chain counts the importer returns; :func:`import_tagpack` (``darkmap tags import``) is
:func:`ingest` restricted to the ``tagpack`` importer.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from darkmap.errors import LimitExceeded, NotFoundError
from darkmap.importers.tagpack import read_tagpack
from darkmap.model.records import (
    CutRecord,
    ListingBatch,
    MarketRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
)
from darkmap.plugins import Importer, SourceFile, TableImporter, best_importer, importers
from darkmap.store.runs import ProcessedCounts, finish_run, processed_files, start_run
from darkmap.store.workspace import Workspace, utcnow
from darkmap.store.writer import Provenance, RecordWriter, begin, commit, rollback

__all__ = ["FileResult", "IngestSummary", "LoadResult", "SummaryDict", "TagImportResult",
           "import_tagpack", "ingest", "iter_files", "load_files"]

_HEAD = 64 * 1024
_BIG_FILE = 8 * 1024 * 1024
_IGNORED_NAMES = {"LICENSE", "README", "README.md", ".DS_Store"}
_PROBLEMS_KEPT = 20  # quarantine reasons a FileResult keeps for the reader


@dataclass
class FileResult:
    """What happened to one file.

    ``problems`` holds the first quarantined units as ``"locator: reason"``; ``details``
    what an importer that writes its own tables returned (the ``bitcoin`` importer: the
    format and chain counts). ``fields_cut`` counts free-text fields cut at their cap,
    ``skipped_bytes`` input bytes no unit covers (an importer reports them as
    ``details["skipped_bytes"]``), ``limits`` the quarantined units by the limit broken.
    """

    source: str
    sha256: str
    importer: str | None
    market_id: str | None = None
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


@dataclass
class IngestSummary:
    """Totals of a run, overall and by market."""

    run_id: str
    files: list[FileResult] = field(default_factory=list)

    def by_market(self) -> dict[str, dict[str, int]]:
        """read / stored / quarantined / skipped units and files, per market."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for f in self.files:
            c = out[f.market_id or f"({f.importer or 'unrecognised'})"]
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
        of files found already ingested); ``fields_cut`` and ``skipped_bytes`` count
        what the caps and resynchronising parsers left out (see :class:`FileResult`).
        """
        t: Counter[str] = Counter()
        for f in self.files:
            t["files"] += 1
            t["files_already_ingested"] += int(f.already)
            t["files_failed"] += int(f.error is not None)
            for k in ("read", "stored", "quarantined", "skipped"):
                t[k] += getattr(f, k)
            t["already_stored" if f.already else "stored_new"] += f.stored
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
        return {
            "run_id": self.run_id,
            "totals": self.totals(),
            "by_market": self.by_market(),
            "skipped_by_page_type": self.skipped_by_page_type(),
            "records": self.records(),
            "limits": self.limits(),
            "errors": [{"source": f.source, "error": f.error} for f in self.files if f.error],
        }


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular file under ``paths``, in a stable order, hidden files skipped."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and not _ignored(name):
                        yield Path(root) / name
        elif p.is_file():
            yield p
        else:
            raise NotFoundError(f"{p}: no such file or folder")


def _ignored(name: str) -> bool:
    """Licence and read-me files that travel with data sets are not evidence."""
    return name in _IGNORED_NAMES or name.upper().startswith(("LICENSE", "LICENCE", "COPYING"))


def _unit(locator: str) -> str:
    return locator.split("#", 1)[0]


class _Batch:
    """One open transaction holding the records of many small files (group commit).

    Small files share a transaction so that a run of thousands of pages costs a few
    commits, not thousands; the transaction still commits a file's records together
    with its ``processed`` row, so a kill at any moment loses only uncommitted files,
    which the rerun reads again.
    """

    MAX_ROWS = 100_000

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.max_files = 500
        self.writer = RecordWriter(ws.con, autoflush=False)
        self.files = 0
        self.open = False

    def begin(self) -> None:
        if not self.open:
            begin(self.ws.con)
            self.open = True

    def commit(self) -> None:
        if self.open:
            # the disk takes the captures while the rows are flushed; both are done
            # before the commit that refers to them
            synced = self.ws.captures.sync_started()
            try:
                self.writer.flush()
            finally:
                synced()
            commit(self.ws.con)
            self.open = False
            self.files = 0

    def rollback(self) -> None:
        if self.open:
            rollback(self.ws.con)
            self.open = False
            self.files = 0

    def full(self) -> bool:
        return self.files >= self.max_files or self.writer.pending >= self.MAX_ROWS


def ingest(
    ws: Workspace,
    paths: Iterable[Path],
    importer_name: str | None = None,
    progress: Callable[[FileResult], None] | None = None,
    batch_files: int = 500,
) -> IngestSummary:
    """Ingest files and folders into ``ws``; return the run's summary.

    ``batch_files`` small files share one transaction (group commit).
    """
    paths = list(paths)
    run_id = uuid.uuid4().hex[:12]
    summary = IngestSummary(run_id)
    forced = importers()[importer_name] if importer_name else None
    done = processed_files(ws.con)
    # captures with a processed row under some importer: only the others are fresh
    # (no stored row carries them: a capture's rows commit with its processed row)
    seen = {sha for sha, _ in done}
    batch = _Batch(ws)
    batch.max_files = batch_files
    ws.captures.durable = False  # one sync per commit instead of one fsync per file
    try:
        # the run's row commits with its first files and its summary with its last ones
        # (a commit of its own costs a WAL sync each); a run killed before its first
        # commit left nothing, a later kill leaves the row without finished_at
        batch.begin()
        start_run(ws.con, run_id, [str(p) for p in paths])
        for path in iter_files(paths):
            result = _ingest_one(ws, batch, path, run_id, forced, done, seen)
            summary.files.append(result)
            if batch.full():
                batch.commit()
            if progress:
                progress(result)
        batch.begin()
        finish_run(ws.con, run_id, dict(summary.as_dict()))
        batch.commit()
    except BaseException:
        batch.rollback()
        raise
    finally:
        ws.captures.durable = True
    return summary


def _ingest_one(ws: Workspace, batch: _Batch, path: Path, run_id: str,
                forced: Importer | None, done: dict[tuple[str, str], ProcessedCounts],
                seen: set[str]) -> FileResult:
    """Capture one file and buffer what its importer reads from it."""
    st = path.stat()
    source = str(path)
    if st.st_size <= _BIG_FILE:
        # one read serves the hash, the capture and the sniffing head
        data = path.read_bytes()
        sha, size, head = ws.captures.put_bytes(data), len(data), data[:_HEAD]
        del data
    else:
        sha = ws.captures.put_file(path)
        size = path.stat().st_size
        with open(ws.captures.path_for(sha), "rb") as fh:
            head = fh.read(_HEAD)
    src = SourceFile(path=ws.captures.path_for(sha), source=source, sha256=sha, head=head)
    imp = forced or best_importer(src)
    name = imp.name if imp else "unrecognised"
    result = FileResult(source=source, sha256=sha, importer=imp.name if imp else None)
    prior = done.get((sha, name))
    if prior is not None:
        result.market_id, result.read, result.stored = prior.market_id, prior.read, prior.stored
        result.quarantined, result.skipped = prior.quarantined, prior.skipped
        result.already = True
        return result
    fresh = sha not in seen
    seen.add(sha)
    method = f"{imp.name}@{imp.version}" if imp else "ingest"
    observed = datetime.fromtimestamp(st.st_mtime, tz=UTC).replace(tzinfo=None)
    prov = Provenance(sha, source, method, observed, run_id)
    own_tables = imp is not None and _writes_own_tables(imp)
    if imp is None:
        recs: Iterable[Record] = [SkipRecord(page_type="unknown", locator="file",
                                             reason="no importer recognises this file")]
    elif own_tables:
        recs = _lazy(lambda: imp.read_into(src, ws.con, prov),  # type: ignore[attr-defined]
                     result.details)
    else:
        recs = _lazy(lambda: imp.read(src), result.details)
    if size > _BIG_FILE or own_tables:
        _ingest_big(ws, batch, recs, prov, result, fresh)
    else:
        batch.begin()
        if fresh:
            batch.writer.fresh.add(sha)
        mark = batch.writer.mark()
        try:
            _consume(recs, batch.writer, prov, result)
        except Exception as exc:  # noqa: BLE001 - the per-file guard: one file must not stop the run
            batch.writer.rollback_to(mark)
            _fail(batch.writer, prov, result, exc)
        batch.files += 1
    _finish(ws, batch, prov, result, size, name)
    done[(sha, name)] = ProcessedCounts(result.market_id, result.read, result.stored,
                                        result.quarantined, result.skipped)
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


def _ingest_big(ws: Workspace, batch: _Batch, recs: Iterable[Record], prov: Provenance,
                result: FileResult, fresh: bool) -> None:
    """A large file (or one writing its own tables) gets a transaction of its own."""
    batch.commit()
    batch.begin()
    if fresh:
        batch.writer.fresh.add(prov.capture_sha256)
    batch.writer.autoflush = True
    try:
        _consume(recs, batch.writer, prov, result)
    except Exception as exc:  # noqa: BLE001 - the per-file guard, as in _ingest_one
        batch.rollback()
        batch.writer = RecordWriter(ws.con, autoflush=False)
        batch.begin()
        result.records.clear()
        _fail(batch.writer, prov, result, exc)
    finally:
        batch.writer.autoflush = False
    batch.files += 1


def _finish(ws: Workspace, batch: _Batch, prov: Provenance, result: FileResult,
            size: int, importer: str) -> None:
    now = utcnow()
    result.skipped_bytes = int(result.details.get("skipped_bytes", 0) or 0)
    batch.writer.add_row("captures", (prov.capture_sha256, size, prov.source, None, now))
    batch.writer.add_row("processed", (
        prov.capture_sha256, importer, prov.run_id, prov.source, result.read, result.stored,
        result.quarantined, result.skipped, result.market_id, None, now))


def _consume(recs: Iterable[Record], writer: RecordWriter, prov: Provenance,
             result: FileResult) -> None:
    units: dict[str, str] = {}
    markets: Counter[str] = Counter()
    add = writer.add
    for rec in recs:
        if type(rec) is CutRecord:  # a note on a unit's field, not a unit
            add(rec, prov)
            result.fields_cut += 1
            continue
        if type(rec) is ListingBatch:  # many listing rows, each a unit stored
            add(rec, prov)
            if rec.market_id:
                markets[rec.market_id] += len(rec)
            locs = rec.locators
            # batch locators rarely name a sub-record: then each is its own unit
            units.update(dict.fromkeys(locs if "#" not in "".join(locs) else
                                       map(_unit, locs), "stored"))
            result.records["listing"] += len(rec)
            continue
        outcome = add(rec, prov)
        mid = getattr(rec, "market_id", None)
        if mid:
            markets[mid] += 1
        if isinstance(rec, MarketRecord):  # metadata about the source, not a unit of it
            continue
        unit = _unit(getattr(rec, "locator", "") or "")
        if isinstance(rec, SkipRecord):
            result.skip_reasons[f"{rec.page_type}: {rec.reason}"] += 1
        elif outcome == "quarantined" and isinstance(rec, QuarantineRecord):
            if rec.limit:
                result.limits[rec.limit] += 1
            if len(result.problems) < _PROBLEMS_KEPT:
                result.problems.append(f"{rec.locator}: {rec.reason}")
        prior = units.get(unit)
        # a unit is stored if anything of it was stored; quarantined/skipped only otherwise
        if prior != "stored":
            units[unit] = outcome if prior is None or outcome == "stored" else prior
        if outcome == "stored":
            result.records[type(rec).__name__.removesuffix("Record").lower()] += 1
    result.read = len(units)
    counts = Counter(units.values())
    result.stored, result.quarantined, result.skipped = (
        counts["stored"], counts["quarantined"], counts["skipped"])
    result.market_id = markets.most_common(1)[0][0] if markets else None


def _fail(writer: RecordWriter, prov: Provenance, result: FileResult, exc: Exception) -> None:
    """Record a file whose importer crashed as one quarantined unit, with the reason."""
    limit = exc.limit if isinstance(exc, LimitExceeded) else None
    result.error = f"{prov.source}: {type(exc).__name__}: {exc}"
    failed = QuarantineRecord(locator="file", reason=f"importer failed: {exc}"[:500],
                              limit=limit)
    writer.add(failed, prov)
    result.read, result.quarantined = 1, 1
    result.stored = result.skipped = result.fields_cut = result.skipped_bytes = 0
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
        if error is None and not f.already and fmt is None:
            error = f"{f.source}: not a recognised Bitcoin format"
        return cls(f.source, f.sha256, fmt, f.read, f.stored, f.quarantined, f.already,
                   dict(f.details), list(f.problems), error)


def load_files(ws: Workspace, paths: Iterable[Path]) -> list[LoadResult]:
    """Load chain files (or folders of them): :func:`ingest` with the ``bitcoin`` importer.

    Each file is captured and its rows commit with its ``processed`` row, so a rerun
    skips it and a crash leaves it fully loaded or not at all. A file that is not chain
    data is one quarantined unit.
    """
    summary = ingest(ws, list(paths), importer_name="bitcoin")
    return [LoadResult.from_file(f) for f in summary.files]


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


def import_tagpack(ws: Workspace, path: Path) -> TagImportResult:
    """Import one TagPack file: :func:`ingest` with the ``tagpack`` importer (captured,
    with provenance). Returns the file's tag count and the problems of tags that were
    not imported (also when the file was imported before)."""
    summary = ingest(ws, [path], importer_name="tagpack")
    first = summary.files[0]
    text = ws.captures.path_for(first.sha256).read_bytes().decode("utf-8", "replace")
    header, tags, problems = read_tagpack(text, path.name)
    return {"file": str(path), "title": header.get("title"), "tags": len(tags),
            "already_imported": first.already,
            "problems": [{"locator": p.locator, "field": p.field, "reason": p.reason}
                         for p in problems]}
