"""The ingest pipeline: capture every file, pick its importer, store its records.

A file's records and its ``processed`` row always commit in the same transaction (small
files are grouped, large ones get their own), so a run killed at any moment leaves every
file either fully stored or not at all, and a rerun skips what is done. Counts reconcile per *unit* (a page, a CSV row, a SQL row): the
part of a record's ``locator`` before ``#`` names its unit, and every unit read is
stored, quarantined or skipped.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from darkmap.model.records import ListingBatch, MarketRecord, QuarantineRecord, SkipRecord
from darkmap.plugins import Importer, SourceFile, TableImporter, best_importer, importers
from darkmap.store.writer import Provenance, RecordWriter
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["FileResult", "IngestSummary", "ingest", "iter_files"]

_HEAD = 64 * 1024
_BIG_FILE = 8 * 1024 * 1024
_IGNORED_NAMES = {"LICENSE", "README", "README.md", ".DS_Store"}


@dataclass
class FileResult:
    """What happened to one file."""

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
        """Overall read / stored / quarantined / skipped, plus records by type."""
        t: Counter[str] = Counter()
        for f in self.files:
            t["files"] += 1
            t["files_already_ingested"] += int(f.already)
            t["files_failed"] += int(f.error is not None)
            for k in ("read", "stored", "quarantined", "skipped"):
                t[k] += getattr(f, k)
        return dict(t)

    def records(self) -> dict[str, int]:
        """Stored records by type (listings, feedback, identifiers, ...)."""
        t: Counter[str] = Counter()
        for f in self.files:
            t.update(f.records)
        return dict(sorted(t.items()))

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "run_id": self.run_id,
            "totals": self.totals(),
            "by_market": self.by_market(),
            "skipped_by_page_type": self.skipped_by_page_type(),
            "records": self.records(),
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
            raise FileNotFoundError(f"{p}: no such file or folder")


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
            self.ws.con.execute("BEGIN TRANSACTION")
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
            self.ws.con.execute("COMMIT")
            self.open = False
            self.files = 0

    def rollback(self) -> None:
        if self.open:
            self.ws.con.execute("ROLLBACK")
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
    done = {(sha, imp): row for sha, imp, *row in ws.con.execute(
        "SELECT sha256, importer, market_id, read_count, stored_count, quarantined, skipped "
        "FROM processed").fetchall()}
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
        ws.con.execute("INSERT INTO ingest_runs (run_id, started_at, args) VALUES (?, ?, ?)",
                       [run_id, utcnow(), json.dumps([str(p) for p in paths])])
        for path in iter_files(paths):
            result = _ingest_one(ws, batch, path, run_id, forced, done, seen)
            summary.files.append(result)
            if batch.full():
                batch.commit()
            if progress:
                progress(result)
        batch.begin()
        ws.con.execute("UPDATE ingest_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                       [utcnow(), json.dumps(summary.as_dict()), run_id])
        batch.commit()
    except BaseException:
        batch.rollback()
        raise
    finally:
        ws.captures.durable = True
    return summary


def _ingest_one(ws: Workspace, batch: _Batch, path: Path, run_id: str,
                forced: Importer | None, done: dict[tuple[str, str], list],
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
        result.market_id, result.read, result.stored, result.quarantined, result.skipped = prior
        result.already = True
        return result
    fresh = sha not in seen
    seen.add(sha)
    method = f"{imp.name}@{imp.version}" if imp else "ingest"
    observed = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).replace(tzinfo=None)
    prov = Provenance(sha, source, method, observed, run_id)
    own_tables = imp is not None and _writes_own_tables(imp)
    if imp is None:
        recs: Iterable = [SkipRecord(page_type="unknown", locator="file",
                                     reason="no importer recognises this file")]
    elif own_tables:
        recs = _lazy(lambda: imp.read_into(src, ws.con, prov))  # type: ignore[attr-defined]
    else:
        recs = _lazy(lambda: imp.read(src))
    if size > _BIG_FILE or own_tables:
        _ingest_big(ws, batch, recs, prov, result, fresh)
    else:
        batch.begin()
        if fresh:
            batch.writer.fresh.add(sha)
        mark = batch.writer.mark()
        try:
            _consume(recs, batch.writer, prov, result)
        except Exception as exc:  # a failing importer must not stop the run
            batch.writer.rollback_to(mark)
            _fail(batch.writer, prov, result, exc)
        batch.files += 1
    _finish(ws, batch, prov, result, size, name)
    done[(sha, name)] = [result.market_id, result.read, result.stored, result.quarantined,
                         result.skipped]
    return result


_OWN_TABLES: dict[int, tuple[Importer, bool]] = {}


def _writes_own_tables(imp: Importer) -> bool:
    """``isinstance(imp, TableImporter)``, remembered (protocol checks are slow)."""
    hit = _OWN_TABLES.get(id(imp))
    if hit is None or hit[0] is not imp:
        hit = _OWN_TABLES[id(imp)] = (imp, isinstance(imp, TableImporter))
    return hit[1]


def _lazy(make: Callable[[], Iterable]) -> Iterator:
    """Defer an importer call so that even its first line runs inside the error guard."""
    yield from make()


def _ingest_big(ws: Workspace, batch: _Batch, recs: Iterable, prov: Provenance,
                result: FileResult, fresh: bool) -> None:
    """A large file (or one writing its own tables) gets a transaction of its own."""
    batch.commit()
    batch.begin()
    if fresh:
        batch.writer.fresh.add(prov.capture_sha256)
    batch.writer.autoflush = True
    try:
        _consume(recs, batch.writer, prov, result)
    except Exception as exc:
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
    batch.writer.add_row("captures", (prov.capture_sha256, size, prov.source, None, now))
    batch.writer.add_row("processed", (
        prov.capture_sha256, importer, prov.run_id, prov.source, result.read, result.stored,
        result.quarantined, result.skipped, result.market_id, None, now))


def _consume(recs: Iterable, writer: RecordWriter, prov: Provenance, result: FileResult) -> None:
    units: dict[str, str] = {}
    markets: Counter[str] = Counter()
    add = writer.add
    for rec in recs:
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
    result.error = f"{prov.source}: {type(exc).__name__}: {exc}"
    writer.add(QuarantineRecord(locator="file", reason=f"importer failed: {exc}"[:500]), prov)
    result.read, result.quarantined = 1, 1
    result.stored = result.skipped = 0
    result.records.clear()
