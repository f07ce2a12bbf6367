"""The ``bitcoin`` importer: chain files into the btc_* tables, inside ingest's transaction.

Chain data is not evidence-record shaped, so this is a ``TableImporter``: ``darkmap
ingest`` (and ``darkmap chain load``, the same pipeline with this importer forced) calls
:meth:`BitcoinImporter.read_into` with its open connection; the importer yields a
``UnitRecord`` per stored unit so counts reconcile, and returns the chain counts, which the
pipeline keeps in the file's result (``FileResult.details``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import duckdb

from darkmap.chain.load import read_into_batch, sniff_format
from darkmap.chain.tables import ChainBatch
from darkmap.model.records import QuarantineRecord, Record, UnitRecord
from darkmap.plugins import SourceFile
from darkmap.store.chain import write_batch
from darkmap.store.writer import Provenance

__all__ = ["BitcoinImporter"]

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
                  prov: Provenance) -> Generator[Record, None, dict[str, Any]]:
        """Write the file's chain rows with ``con`` (the caller's open transaction).

        Yields a ``UnitRecord`` per stored unit (block, tx, header line, UTXO file) and a
        ``QuarantineRecord`` per bad unit; returns the ``format`` and the load counts of
        :func:`darkmap.store.chain.write_batch` (``format`` None: not chain data).
        """
        fmt, _ = self.detect(src)
        if fmt is None:
            yield QuarantineRecord(locator="file", reason="not a recognised Bitcoin format")
            return {"format": None}
        batch = ChainBatch()
        res = read_into_batch(src.path.read_bytes(), fmt, batch)
        counts: dict[str, Any] = {"format": fmt}
        if len(batch) or batch.cols["prevouts"]["vout"] or batch.cols["blocks"]["block_hash"]:
            counts.update(write_batch(con, batch, prov))
        kind = f"btc_{fmt}"
        for loc in res.stored:
            yield UnitRecord(locator=loc, kind=kind)
        yield from res.quarantined
        return counts
