"""The ``bitcoin`` importer: chain files into the btc_* tables, inside ingest's transaction.

Chain data is not evidence-record shaped, so this is a ``TableImporter``: ``darkmap
ingest`` calls :meth:`BitcoinImporter.read_into` with its open connection, and the
importer yields a ``UnitRecord`` per stored unit so counts reconcile. ``darkmap chain
load`` runs the same code through :func:`load_files` (same capture, provenance,
``processed`` bookkeeping, one transaction per file) and reports chain-specific counts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from darkmap.chain.load import read_into_batch, sniff_format
from darkmap.store.chain import write_batch
from darkmap.chain.tables import ChainBatch
from darkmap.model.records import QuarantineRecord, Record, UnitRecord
from darkmap.plugins import SourceFile
from darkmap.store.writer import Provenance, RecordWriter
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["BitcoinImporter", "LoadResult", "load_files"]

_WHOLE_LIMIT = 64 * 1024 * 1024  # JSON / raw tx files are read whole to sniff them


class BitcoinImporter:
    """Bitcoin blocks, transactions, headers, UTXO sets (binary, hex or JSON)."""

    name = "bitcoin"
    version = "1.0"

    def sniff_range(self, src: SourceFile) -> tuple[float, float] | None:
        """(0, 0) for markup (saved pages), without reading the file; else full sniff."""
        if src.head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            return (0.0, 0.0)
        return None

    def sniff(self, src: SourceFile) -> float:
        """Confidence that ``src`` is chain data (magic bytes, hex shape, JSON shape)."""
        return self.detect(src)[1]

    def detect(self, src: SourceFile) -> tuple[str | None, float]:
        """(format, confidence) of ``src``."""
        size = src.path.stat().st_size
        whole = None
        head = src.head.lstrip()[:1]
        if size <= _WHOLE_LIMIT and (head in (b"{", b"[") or size <= 4_000_000):
            whole = src.path.read_bytes()
        return sniff_format(src.head, size, whole)

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Chain files need a connection: the pipeline calls :meth:`read_into` instead."""
        raise NotImplementedError(
            f"{src.source}: Bitcoin data is written to the chain tables through read_into "
            "(`darkmap ingest` or `darkmap chain load`)")

    def read_into(self, src: SourceFile, con: duckdb.DuckDBPyConnection,
                  prov: Provenance) -> Iterator[Record]:
        """Write the file's chain rows with ``con`` (the caller's open transaction).

        Yields a ``UnitRecord`` per stored unit (block, tx, header line, UTXO file) and a
        ``QuarantineRecord`` per bad unit; ``self.last`` holds the load counts.
        """
        fmt, _ = self.detect(src)
        if fmt is None:
            yield QuarantineRecord(locator="file", reason="not a recognised Bitcoin format")
            return
        batch = ChainBatch()
        res = read_into_batch(src.path.read_bytes(), fmt, batch)
        self.last: dict[str, Any] = {"format": fmt, "units": res.units,
                                     "stored_units": res.stored_units}
        if len(batch) or batch.cols["prevouts"]["vout"] or batch.cols["blocks"]["block_hash"]:
            self.last.update(write_batch(con, batch, prov))
        kind = f"btc_{fmt}"
        for loc in res.stored:
            yield UnitRecord(locator=loc, kind=kind)
        yield from res.quarantined



@dataclass
class LoadResult:
    """Outcome of loading one file with :func:`load_files`."""

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


def load_files(ws: Workspace, paths: Iterable[Path]) -> list[LoadResult]:
    """Load chain files (or folders of them) like ``darkmap ingest`` would.

    Each file is captured, read and written in one transaction with its ``processed``
    row, so a rerun skips it and a crash leaves it fully loaded or not at all.
    """
    from darkmap.collect.ingest import iter_files

    run_id = uuid.uuid4().hex[:12]
    files = list(iter_files(list(paths)))
    ws.con.execute("INSERT INTO ingest_runs (run_id, started_at, args) VALUES (?, ?, ?)",
                   [run_id, utcnow(), json.dumps(["chain load"] + [str(p) for p in paths])])
    imp = BitcoinImporter()
    results = [_load_one(ws, imp, p, run_id) for p in files]
    ws.con.execute("UPDATE ingest_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                   [utcnow(), json.dumps([r.__dict__ for r in results], default=str), run_id])
    return results


def _load_one(ws: Workspace, imp: BitcoinImporter, path: Path, run_id: str) -> LoadResult:
    sha = ws.captures.put_file(path)
    cap = ws.captures.path_for(sha)
    with open(cap, "rb") as fh:
        head = fh.read(64 * 1024)
    src = SourceFile(path=cap, source=str(path), sha256=sha, head=head)
    res = LoadResult(str(path), sha)
    done = ws.con.execute("SELECT read_count, stored_count, quarantined FROM processed "
                          "WHERE sha256 = ? AND importer = ?", [sha, imp.name]).fetchone()
    if done:
        res.read, res.stored, res.quarantined = done
        res.already = True
        return res
    res.fmt, score = imp.detect(src)
    if res.fmt is None:
        res.error = f"{path}: not a recognised Bitcoin format"
        return res
    observed = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).replace(tzinfo=None)
    prov = Provenance(sha, str(path), f"{imp.name}@{imp.version}", observed, run_id)
    ws.con.execute("BEGIN TRANSACTION")
    try:
        ws.con.execute("INSERT OR IGNORE INTO captures VALUES (?, ?, ?, ?, ?)",
                       [sha, path.stat().st_size, str(path), None, utcnow()])
        writer = RecordWriter(ws.con)
        recs = list(imp.read_into(src, ws.con, prov))
        bad = [r for r in recs if isinstance(r, QuarantineRecord)]
        for q in bad:
            writer.add(q, prov)
        writer.flush()
        res.counts = dict(imp.last)
        res.read = int(res.counts.pop("units"))
        res.stored = int(res.counts.pop("stored_units"))
        res.quarantined = len(bad)
        res.reasons = [f"{q.locator}: {q.reason}" for q in bad[:20]]
        ws.con.execute("INSERT INTO processed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [sha, imp.name, run_id, str(path), res.read, res.stored,
                        res.quarantined, 0, None, res.fmt, utcnow()])
        ws.con.execute("COMMIT")
    except Exception as exc:  # one bad file must not stop the others
        ws.con.execute("ROLLBACK")
        res.error = f"{path}: {type(exc).__name__}: {exc}"
    return res
