"""The ``bitcoin`` importer: chain files into the btc_* tables, inside ingest's transaction.

Chain data is not evidence-record shaped, so this is a ``TableImporter``: ``darkmap
ingest`` (and ``darkmap chain load``, the same pipeline with this importer forced) calls
:meth:`BitcoinImporter.read_into` with its open connection; the importer yields a
``UnitRecord`` per stored unit so counts reconcile, and returns the chain counts, which the
pipeline keeps in the file's result (``FileResult.details``).

Formats: Bitcoin Core blk*.dat (magic-framed blocks), a lone serialized block, a raw
transaction (binary or hex), hex text (one transaction or block per line, or 80-byte
headers), ``getblock`` verbosity 2/3 JSON, Esplora transaction JSON (one or a list), and
btcd's UTXO test files (parsers: :mod:`darkmap.importers.bitcoin_formats`). Units for
accounting: a block (``block @offset``), a transaction (``tx``, ``line N``, ``json tx
N``), a header (``line N``), a UTXO file. A unit that fails its checks is quarantined
with the reason, never stored. Where a blk file's framing is lost, the stretch up to the
next plausible frame is one quarantined unit and its bytes are counted (``skipped_bytes``
in the returned counts); the sniff never raises on what a file holds. Parsed rows go into a
:class:`~darkmap.importers.bitcoin_batch.ChainBatch`, which
:func:`darkmap.store.chain.write_batch` loads; both are imported when a file is read, not
with this module (choosing the importer of any file loads every importer:
:mod:`darkmap.plugins`).
"""

from __future__ import annotations

import json
import string
import struct
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from darkmap.errors import LimitExceeded
from darkmap.importers.bitcoin_formats import (
    MAGICS,
    MAX_BLOCK_BYTES,
    ParseError,
    block_from_getblock_json,
    cut_short_tx,
    framed_blocks,
    looks_like_block,
    parse_block,
    parse_header,
    parse_tx,
    read_utxostore,
    scan_blk,
    tx_from_esplora_json,
)
from darkmap.model.bitcoin import MAX_MONEY, Tx, money_range_problem, prevout_problem
from darkmap.model.limits import check_nesting
from darkmap.model.records import QuarantineRecord, Record, UnitRecord
from darkmap.plugins import SourceFile
from darkmap.store.writer import Provenance

if TYPE_CHECKING:
    from darkmap.importers.bitcoin_batch import ChainBatch

__all__ = ["EXPECTED", "FORMATS", "BitcoinImporter", "ReadResult", "is_chain_data",
           "read_into_batch", "sniff_format"]

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

    def media_type(self, src: SourceFile) -> str:
        """The capture's ``media_type`` by the form of the chain data: JSON, hex text, or
        raw bytes (blk files, blocks, transactions, a UTXO store)."""
        form, _ = sniff_format(src.head, len(src.head))
        if form == "hex":
            return "text/plain"
        if form is None and src.head.lstrip()[:1] in (b"{", b"["):
            return "application/json"  # told apart only with the whole file
        return "application/octet-stream"

    def sniff(self, src: SourceFile) -> float:
        """Confidence that ``src`` is chain data (magic bytes, hex shape, JSON shape).

        Never raises on what the file holds: a file it cannot read, or JSON nested too
        deep to parse safely, is "not mine" (0.0).
        """
        try:
            return self.detect(src)[1]
        except (OSError, ValueError, RecursionError):
            return 0.0

    def detect(self, src: SourceFile, strict: bool = False) -> tuple[str | None, float]:
        """(format, confidence) of ``src``; ``strict``: see :func:`sniff_format`."""
        size = src.path.stat().st_size
        whole = None
        head = src.head.lstrip()[:1]
        if size <= _WHOLE_LIMIT and (head in (b"{", b"[") or size <= 4_000_000):
            whole = src.path.read_bytes()
        return sniff_format(src.head, size, whole, strict)

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
        fmt, _ = self.detect(src, strict=True)
        if fmt is None:
            yield QuarantineRecord(locator="file", reason="not a recognised Bitcoin format")
            return {"format": None}
        from darkmap.importers.bitcoin_batch import ChainBatch  # noqa: PLC0415 - see the docstring
        from darkmap.store.chain import write_batch  # noqa: PLC0415 - see the docstring

        batch = ChainBatch()
        res = read_into_batch(src.path.read_bytes(), fmt, batch)
        counts: dict[str, Any] = {"format": fmt}
        if fmt == "blk":
            counts["skipped_bytes"] = res.skipped_bytes
        already = _already_stored(con, batch)
        if len(batch) or batch.cols["prevouts"]["vout"] or batch.cols["blocks"]["block_hash"]:
            counts.update(write_batch(con, batch, prov))
        kind = f"btc_{fmt}"
        if fmt == "utxostore" and res.stored and not counts.get("prevouts"):
            already.update(res.stored)  # every unspent output listed was known
        for loc in res.stored:
            yield UnitRecord(locator=loc, kind=kind, already=loc in already)
        yield from res.quarantined
        return counts


def _already_stored(con: duckdb.DuckDBPyConnection, batch: Any) -> set[str]:
    """The locators of the batch's units that an earlier run stored: a block stored whole
    (or, for a header line, stored at all), a transaction stored, or a unit repeated in
    the file. Counted as stored, not as stored by this run (the same blocks in another
    file were counted as new: found by the WARC fuzzing run, which had the same fault)."""
    from darkmap.store.chain import stored_units  # noqa: PLC0415 - see the docstring

    blocks, txs = batch.cols["blocks"], batch.cols["tx"]
    whole, headers, known_txs = stored_units(con, list(blocks["block_hash"]),
                                             [t for t, loc in zip(txs["txid"], txs["locator"],
                                                                  strict=True)
                                              if "#" not in str(loc)])
    out: set[str] = set()
    seen: set[str] = set()
    for h, n_tx, loc in zip(blocks["block_hash"], blocks["n_tx"], blocks["locator"],
                            strict=True):
        if h in whole or (n_tx is None and h in headers) or h in seen:
            out.add(str(loc))
        seen.add(str(h))
    for t, loc in zip(txs["txid"], txs["locator"], strict=True):
        if "#" not in str(loc) and (t in known_txs or t in seen):  # a unit of its own
            out.add(str(loc))
        seen.add(str(t))
    return out


FORMATS = ("blk", "block", "tx", "hex", "getblock_json", "esplora_json", "utxostore")
EXPECTED = ("Bitcoin blocks or transactions (blk*.dat, a raw block or transaction, hex "
            "lines, getblock or Esplora JSON, a UTXO file)")
"""What a chain file is, for messages refusing one that is not."""


def is_chain_data(src: SourceFile) -> bool:
    """True when ``src`` is in one of the chain :data:`FORMATS` (what
    :meth:`BitcoinImporter.read_into` would read rather than quarantine whole)."""
    try:
        return BitcoinImporter().detect(src)[0] is not None
    except (OSError, ValueError, RecursionError):
        return False
_HEX_CHARS = bytes(string.hexdigits + " \t\r", "ascii")  # what a hex line may hold
_HEX_SNIFF = 4096
_MAX_TX = 4_000_000
_MAX_HEX_LINE = 2 * 4_000_000
"""Longest hex line read: the hex of the largest block Bitcoin's weight limit allows."""
_BAD_JSON_UNIT = (ParseError, KeyError, TypeError, ValueError, AttributeError, IndexError,
                  OverflowError, struct.error)
"""What a JSON block or transaction of the wrong shape or types can raise while read:
that unit is quarantined, the file goes on."""


@dataclass
class ReadResult:
    """What reading one file produced: stored and quarantined units, bytes skipped.

    ``skipped_bytes`` counts the bytes of a blk file jumped over to resynchronise at the
    next block magic after framing was lost (and zero runs between blocks).
    """

    fmt: str
    units: int = 0
    stored_units: int = 0
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    skipped_bytes: int = 0

    def bad(self, locator: str, reason: str, fld: str | None = None, excerpt: str = "") -> None:
        """Quarantine one unit."""
        self.units += 1
        self.quarantined.append(QuarantineRecord(locator=locator, reason=reason[:500],
                                                 field=fld, excerpt=excerpt[:200]))

    def ok(self, locator: str) -> None:
        """Count one stored unit."""
        self.units += 1
        self.stored_units += 1
        self.stored.append(locator)


def _utxo_head_ok(head: bytes) -> bool:
    pos, seen = 0, 0
    while pos + 40 <= len(head) and seen < 3:
        size = int.from_bytes(head[pos + 36:pos + 40], "little")
        if not 2 <= size <= 10_000 or pos + 40 + size > len(head):
            break
        try:
            read_utxostore(head[pos:pos + 40 + size])
        except (ParseError, ValueError):
            return False
        pos += 40 + size
        seen += 1
    return seen >= 1 and (seen >= 3 or pos == len(head))


def _hex_confidence(head: bytes) -> float | None:
    """0.9 if the head is hex lines (one damaged line in nine tolerated) whose first
    token is at least 60 bytes long, 0.0 if hex but shorter; None if not hex text."""
    lines = [ln for ln in (x.strip() for x in head[:_HEX_SNIFF].split(b"\n")) if ln]
    good = [ln for ln in lines if not ln.translate(None, _HEX_CHARS)]
    if not good or (len(lines) - len(good)) * 8 > len(good):
        return None
    return 0.9 if len(good[0].split()[0]) >= 120 else 0.0


def sniff_format(head: bytes, size: int, whole: bytes | None = None,
                 strict: bool = False) -> tuple[str | None, float]:
    """(format, confidence 0..1) from a file's first bytes and size.

    A file that opens with a network magic is a ``blk*.dat`` file when its first frame
    holds a plausible length and a block, and also when that length is damaged (0, or
    more than a block may hold) but a block header and coinbase follow the frame's 8
    bytes or another plausible frame follows in ``head``
    (:func:`~darkmap.importers.bitcoin_formats.framed_blocks`): its intact blocks are
    read, the damaged frame quarantined ("framing lost"), rather than the whole file
    recognised by no importer (found by an audit of malformed input).

    ``whole`` (the full bytes, for files small enough) lets raw transactions be
    confirmed by parsing them to the last byte; a raw transaction cut short
    (:func:`~darkmap.importers.bitcoin_formats.cut_short_tx`: its inputs and outputs up
    to the cut look like real ones) is a transaction too, with a lower confidence, and
    is quarantined as truncated when read. JSON nested deeper than
    :data:`~darkmap.model.limits.MAX_NESTING` is not parsed: not recognised, or with
    ``strict`` (reading a file, not sniffing it) :class:`LimitExceeded` is raised.
    """
    if not head:
        return None, 0.0
    if head[:4] in MAGICS and len(head) >= 8:
        length = int.from_bytes(head[4:8], "little")
        if 80 < length <= MAX_BLOCK_BYTES and looks_like_block(head[8:8 + 200]):
            return "blk", 0.97
        if framed_blocks(head):
            return "blk", 0.95
    if looks_like_block(head):
        return "block", 0.93
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"[") and whole is not None:
        return _sniff_json(whole, strict)
    hexc = _hex_confidence(stripped) if stripped else None
    if hexc is not None:
        return "hex", hexc
    if whole is not None and 60 <= size <= _MAX_TX and head[1:4] == b"\x00\x00\x00":
        try:
            _, end = parse_tx(whole)
            if end == len(whole):
                return "tx", 0.9
        except ParseError:
            if cut_short_tx(whole):
                return "tx", 0.6
    if _utxo_head_ok(head):
        return "utxostore", 0.8
    return None, 0.0


def _sniff_json(whole: bytes, strict: bool) -> tuple[str | None, float]:
    try:
        doc = _load_json(whole)
    except LimitExceeded:
        if strict:
            raise
        return None, 0.0
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, 0.0
    return _json_shape(doc)


def _load_json(data: bytes) -> Any:
    """``json.loads`` after checking nesting depth (the parser recurses)."""
    check_nesting(data, "[{", "]}", what="JSON arrays and objects")
    return json.loads(data.decode("utf-8-sig"))


def _is_esplora(d: object) -> bool:
    return isinstance(d, dict) and "txid" in d and isinstance(d.get("vin"), list) \
        and isinstance(d.get("vout"), list) and "hex" not in d \
        and all(isinstance(o, dict) and "scriptpubkey" in o for o in d["vout"])


def _is_getblock(d: object) -> bool:
    return isinstance(d, dict) and isinstance(d.get("tx"), list) and "merkleroot" in d


def _json_shape(doc: object) -> tuple[str | None, float]:
    if _is_getblock(doc) or (isinstance(doc, list) and doc and all(map(_is_getblock, doc))):
        return "getblock_json", 0.95
    if _is_esplora(doc) or (isinstance(doc, list) and doc and all(map(_is_esplora, doc))):
        return "esplora_json", 0.95
    return None, 0.0


def read_into_batch(data: bytes, fmt: str, batch: ChainBatch) -> ReadResult:
    """Parse ``data`` (format ``fmt``) into ``batch``; bad units are quarantined."""
    res = ReadResult(fmt)
    reader = {
        "blk": _read_blk, "block": _read_block, "tx": _read_tx, "hex": _read_hex,
        "getblock_json": _read_getblock, "esplora_json": _read_esplora,
        "utxostore": _read_utxo,
    }[fmt]
    reader(data, batch, res)
    return res


def _money_ok(txs: list[Tx], locator: str, res: ReadResult, where: str = "") -> bool:
    """False (and the unit quarantined, naming the transaction and field) when a
    transaction of ``txs`` carries an amount outside Bitcoin's money range
    (:func:`~darkmap.model.bitcoin.money_range_problem`)."""
    for tx in txs:
        problem = money_range_problem(tx)
        if problem is not None:
            fld, reason = problem
            res.bad(locator, f"{where}{reason}", fld)
            return False
    return True


def _prevouts_ok(txs: list[Tx], locator: str, res: ReadResult, where: str = "") -> bool:
    """False (and the unit quarantined, naming the transaction, the input and why) when a
    JSON prevout of ``txs`` contradicts its input's own unlocking data
    (:func:`~darkmap.model.bitcoin.prevout_problem`)."""
    for tx in txs:
        for n, txin in enumerate(tx.inputs):
            problem = prevout_problem(txin)
            if problem is not None:
                res.bad(locator, f"{where}tx {tx.txid} input {n}: {problem}",
                        f"vin[{n}].prevout")
                return False
    return True


def _add_checked_block(raw: bytes, offset: int, locator: str, batch: ChainBatch,
                       res: ReadResult) -> None:
    try:
        block = parse_block(raw, offset)
    except ParseError as exc:
        res.bad(locator, f"block does not parse: {exc}")
        return
    if not block.merkle_ok:
        res.bad(locator, f"block {block.hash}: merkle root {block.merkle_root} does not match "
                         "the transactions", "merkle_root")
        return
    if block.witness_ok is False:
        res.bad(locator, f"block {block.hash}: witness commitment does not match the wtxids",
                "witness_commitment")
        return
    if not _money_ok(block.txs, locator, res, f"block {block.hash}: "):
        return
    batch.add_block(block, locator)
    res.ok(locator)


def _read_blk(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    for chunk in scan_blk(data):
        res.skipped_bytes += chunk.skipped
        offset = chunk.offset
        locator = f"block @{offset}"
        if chunk.raw is None:
            if chunk.error is not None:
                res.bad(locator, f"framing lost: {chunk.error}")
            continue
        net = MAGICS.get(data[offset:offset + 4], "main")
        before = len(batch.cols["blocks"]["network"])
        _add_checked_block(chunk.raw, offset, locator, batch, res)
        if len(batch.cols["blocks"]["network"]) > before:
            batch.cols["blocks"]["network"][-1] = net


def _read_block(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    _add_checked_block(data, 0, "block @0", batch, res)


def _read_tx(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    try:
        tx, end = parse_tx(data)
        if end != len(data):
            raise ParseError(f"{len(data) - end} trailing bytes after the transaction")
    except ParseError as exc:
        what = ("transaction cut short (the file ends inside it)" if cut_short_tx(data)
                else "transaction does not parse")
        res.bad("tx", f"{what}: {exc}")
        return
    if not _money_ok([tx], "tx", res):
        return
    batch.add_tx(tx, "tx")
    res.ok("tx")


def _read_hex(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    for lineno, text in enumerate(data.splitlines(), 1):
        line = text.strip()
        if not line:
            continue
        locator = f"line {lineno}"
        if len(line) > _MAX_HEX_LINE:
            res.bad(locator, f"{len(line):,} characters: longer than the hex of the largest "
                             f"block ({_MAX_HEX_LINE:,}), not read", excerpt=_excerpt(line))
            continue
        try:
            raw = bytes.fromhex(line.decode("ascii"))
        except ValueError:
            res.bad(locator, "not hex", excerpt=_excerpt(line))
            continue
        if len(raw) == 80:
            hdr = parse_header(raw)
            batch.add_block(hdr, locator, header_only=True)
            res.ok(locator)
            continue
        if looks_like_block(raw):
            _add_checked_block(raw, 0, locator, batch, res)
            continue
        try:
            tx, end = parse_tx(raw)
            if end != len(raw):
                raise ParseError(f"{len(raw) - end} trailing bytes after the transaction")
        except ParseError as exc:
            res.bad(locator, f"transaction does not parse: {exc}", excerpt=_excerpt(line))
            continue
        if not _money_ok([tx], locator, res):
            continue
        batch.add_tx(tx, locator)
        res.ok(locator)


def _excerpt(line: bytes) -> str:
    return line[:80].decode("ascii", "replace")


def _json_units(data: bytes) -> list[Any]:
    doc = _load_json(data)
    return doc if isinstance(doc, list) else [doc]


def _read_getblock(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    for k, d in enumerate(_json_units(data)):
        locator = f"json block {k}"
        try:
            block, problems = block_from_getblock_json(d)
        except _BAD_JSON_UNIT as exc:
            res.bad(locator, f"getblock JSON unreadable: {type(exc).__name__} {exc}")
            continue
        if problems:
            res.bad(locator, "; ".join(str(p) for p in problems[:5]))
            continue
        if not block.merkle_ok or block.witness_ok is False:
            res.bad(locator, f"block {block.hash}: recomputed ids do not match its merkle root "
                             "or witness commitment", "merkleroot")
            continue
        if not _money_ok(block.txs, locator, res, f"block {block.hash}: ") or \
                not _prevouts_ok(block.txs, locator, res, f"block {block.hash}: "):
            continue
        batch.add_block(block, locator)
        res.ok(locator)


def _read_esplora(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    for k, d in enumerate(_json_units(data)):
        locator = f"json tx {k}"
        if not isinstance(d, dict):
            res.bad(locator, "not a transaction object")
            continue
        try:
            tx, status = tx_from_esplora_json(d)
        except _BAD_JSON_UNIT as exc:
            reason = str(exc) if isinstance(exc, ParseError) else \
                f"esplora tx: {type(exc).__name__} {exc}"
            res.bad(locator, reason, "txid")
            continue
        if not _money_ok([tx], locator, res) or not _prevouts_ok([tx], locator, res):
            continue
        height = status.get("block_height") if isinstance(status.get("block_height"), int) else None
        when = status.get("block_time") if isinstance(status.get("block_time"), int) else None
        bh = status.get("block_hash") if isinstance(status.get("block_hash"), str) else None
        # the file's word for where it was mined: a claim, never a placement (found by
        # the money audit, H2: a 2018 transaction stored in block 170 of 2009)
        batch.add_tx(tx, locator, claimed=(bh, height, when))
        res.ok(locator)


def _read_utxo(data: bytes, batch: ChainBatch, res: ReadResult) -> None:
    try:
        prevouts = read_utxostore(data)
    except ParseError as exc:
        res.bad("utxo file", f"UTXO file does not parse: {exc}")
        return
    for (txid, vout), p in prevouts.items():
        if not 0 <= p.value <= MAX_MONEY:
            res.bad("utxo file", f"output {txid}:{vout}: value {p.value:,} sat is outside "
                                 f"0..{MAX_MONEY:,} (21,000,000 BTC)", "value")
            return
    batch.add_prevouts(prevouts)
    res.ok("utxo file")

