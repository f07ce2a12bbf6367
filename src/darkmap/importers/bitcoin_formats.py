"""Parse Bitcoin data: raw transactions, raw blocks, blk*.dat files, headers, JSON, UTXOs.

Every transaction's txid (and wtxid when it has witnesses) is recomputed with double
SHA-256 from its bytes; every block's merkle root and (for segwit blocks) witness
commitment is recomputed from those ids and compared with the header. JSON sources
(Bitcoin Core ``getblock`` verbosity 2/3, Esplora) are re-serialised and checked the
same way, so a JSON file that lies about an id is caught.

Parsers raise :class:`ParseError` (a ``BadInputError``, so a ``ValueError``) naming the
byte offset; callers (:mod:`darkmap.importers.blockchain`) turn that into a quarantined
unit, never a crash. The wire format itself (transactions, varints, merkle roots,
headers) is :mod:`darkmap.model.bitcoin`; its names are re-exported here.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from darkmap.model.bitcoin import (
    GENESIS_HASH,
    MAINNET_MAGIC,
    MAX_MONEY,
    WITNESS_COMMITMENT_PREFIX,
    ParseError,
    Prevout,
    Tx,
    TxIn,
    TxOut,
    block_header,
    classify,
    display_hex,
    merkle_root,
    parse_tx,
    read_varint,
    serialize_tx,
    take_bytes,
    witness_commitment,
)
from darkmap.model.encoding import decompress_pubkey, sha256d

__all__ = [
    "GENESIS_HASH",
    "MAGICS",
    "MAX_BLOCK_BYTES",
    "BlkChunk",
    "Block",
    "ParseError",
    "Prevout",
    "Tx",
    "TxIn",
    "TxOut",
    "bip34_height",
    "block_from_getblock_json",
    "cut_short_tx",
    "framed_blocks",
    "iter_framed_blocks",
    "looks_like_block",
    "merkle_root",
    "parse_block",
    "parse_header",
    "parse_tx",
    "read_utxostore",
    "scan_blk",
    "serialize_tx",
    "tx_from_esplora_json",
]

MAGICS = {
    MAINNET_MAGIC: "main",
    bytes.fromhex("0b110907"): "test",
    bytes.fromhex("0a03cf40"): "signet",
    bytes.fromhex("fabfb5da"): "regtest",
}
"""Network magic of Bitcoin Core's blk*.dat framing."""

_SATS = Decimal(100_000_000)


@dataclass(slots=True)
class Block:
    """A block header plus its transactions and the results of the id checks."""

    hash: str
    version: int
    prev_hash: str
    merkle_root: str
    time: int
    bits: int
    nonce: int
    txs: list[Tx]
    height: int | None = None
    merkle_ok: bool | None = None
    witness_ok: bool | None = None
    pow_ok: bool = False
    network: str = "main"
    offset: int = 0


def parse_header(raw: bytes) -> Block:
    """A block from its 80-byte header alone (no transactions)."""
    if len(raw) < 80:
        raise ParseError(f"block header is {len(raw)} bytes, not 80")
    hdr = raw[:80]
    version, = struct.unpack_from("<i", hdr, 0)
    time, bits, nonce = struct.unpack_from("<III", hdr, 68)
    digest = sha256d(hdr)
    exp, mant = bits >> 24, bits & 0x7FFFFF
    target = mant << (8 * (exp - 3)) if exp > 3 else mant >> (8 * (3 - exp))
    return Block(display_hex(digest), version, display_hex(hdr[4:36]), display_hex(hdr[36:68]),
                 time, bits, nonce, [], pow_ok=int.from_bytes(digest, "little") <= target)


def bip34_height(coinbase: Tx) -> int | None:
    """Block height pushed at the start of a version-2+ coinbase (BIP34), else None."""
    sig = coinbase.inputs[0].script_sig
    if not sig or not 1 <= sig[0] <= 8 or len(sig) < 1 + sig[0]:
        return None
    return int.from_bytes(sig[1:1 + sig[0]], "little")


def _check_witness(block: Block) -> bool | None:
    if not any(tx.segwit for tx in block.txs[1:]) and not block.txs[0].segwit:
        return None
    commit = None
    for out in block.txs[0].outputs:  # the last matching output wins (BIP141)
        if len(out.script) >= 38 and out.script[:6] == WITNESS_COMMITMENT_PREFIX:
            commit = out.script[6:38]
    wit = block.txs[0].inputs[0].witness
    if commit is None or len(wit) != 1 or len(wit[0]) != 32:
        return False
    wtxids = [bytes.fromhex(t.wtxid)[::-1] for t in block.txs[1:]]
    return witness_commitment(wtxids, wit[0]) == commit


def parse_block(raw: bytes, offset: int = 0) -> Block:
    """Parse a serialized block; recompute and check its merkle root and witness root."""
    block = parse_header(raw)
    block.offset = offset
    n_tx, pos = read_varint(raw, 80)
    if n_tx == 0 or n_tx * 60 > len(raw):
        raise ParseError(f"offset {offset}: block claims {n_tx} transactions")
    for i in range(n_tx):
        try:
            tx, pos = parse_tx(raw, pos)
        except ParseError as exc:
            raise ParseError(f"block {block.hash} tx {i}: {exc}") from None
        block.txs.append(tx)
    if pos != len(raw):
        raise ParseError(f"block {block.hash}: {len(raw) - pos} trailing bytes")
    root = merkle_root([bytes.fromhex(t.txid)[::-1] for t in block.txs])
    block.merkle_ok = display_hex(root) == block.merkle_root
    block.witness_ok = _check_witness(block)
    if block.hash == GENESIS_HASH:
        block.height = 0
    elif block.version >= 2 and block.txs[0].is_coinbase:
        block.height = bip34_height(block.txs[0])
    return block


MAX_BLOCK_BYTES = 32_000_000
"""Largest block length a blk frame may claim (Bitcoin Core's ``MAX_SIZE`` for messages;
under 2**25, which ``_MAGIC_RE`` relies on)."""
_MIN_BLOCK_BYTES = 81  # a header and a transaction count
_MAGIC_RE = re.compile(b"(?:" + b"|".join(re.escape(m) for m in MAGICS) + b")(?=...[\x00\x01])",
                       re.DOTALL)
"""A magic followed by a length under 2**25 (so a flood of magics is skipped in C)."""
_NONZERO = re.compile(rb"[^\x00]")


@dataclass(slots=True)
class BlkChunk:
    """One stretch of a blk*.dat file, as :func:`scan_blk` walks it.

    A frame (``raw`` the block's bytes, not yet parsed), or framing lost at ``offset``
    (``raw`` None, ``error`` says why and where the scan went on), or a run of zero bytes
    between blocks (``raw`` and ``error`` None). ``skipped`` counts the bytes jumped over
    to reach the next block magic (0 for a frame).
    """

    offset: int
    raw: bytes | None = None
    error: ParseError | None = None
    skipped: int = 0


def looks_like_block(buf: bytes) -> bool:
    """Header fields plausible and the first tx starts with a coinbase input."""
    if len(buf) < 80 + 1 + 4 + 1 + 36:
        return False
    time = int.from_bytes(buf[68:72], "little")
    if not 1_231_000_000 <= time <= 4_000_000_000:
        return False
    pos = 81 if buf[80] < 0xFD else 83 if buf[80] == 0xFD else 85
    pos += 4  # tx version
    if buf[pos:pos + 2] == b"\x00\x01":
        pos += 2
    return buf[pos] == 1 and buf[pos + 1:pos + 33] == b"\x00" * 32 \
        and buf[pos + 33:pos + 37] == b"\xff\xff\xff\xff"


def _frame_head(data: bytes, pos: int) -> int | None:
    """The length a frame at ``pos`` claims, if its magic is known and it is plausible."""
    if data[pos:pos + 4] not in MAGICS or pos + 8 > len(data):
        return None
    size = int.from_bytes(data[pos + 4:pos + 8], "little")
    return size if _MIN_BLOCK_BYTES <= size <= MAX_BLOCK_BYTES else None


def _next_block(data: bytes, start: int, tail: int) -> int:
    """Offset of the next plausible frame (known magic, plausible length, a block header
    and coinbase after it) at or after ``start``; else ``tail`` (where the zero bytes
    that end the file begin), or ``start`` if that is past it. Each magic found is
    checked once, in constant time."""
    for m in _MAGIC_RE.finditer(data, start, tail):
        q = m.start()
        if _frame_head(data, q) is not None and looks_like_block(data[q + 8:q + 208]):
            return q
    return max(start, tail)


def framed_blocks(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) opens a ``blk*.dat`` file even where its
    first frame's length is damaged (0, or past what a block may hold): a known network
    magic, and either the block header and coinbase that follow the frame's 8 bytes, or
    another plausible frame (magic, length, header, coinbase) further on in ``head``.
    :func:`scan_blk` then reads the intact frames and names the damaged one."""
    if head[:4] not in MAGICS or len(head) < 8:
        return False
    if looks_like_block(head[8:208]):
        return True
    return _next_block(head, 4, len(head)) < len(head)


_REAL_SEQUENCES = frozenset({0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD})
"""An input's sequence in almost every transaction: final, locktime-enabled, or opting
into replacement (BIP 125)."""


def cut_short_tx(buf: bytes) -> bool:
    """Whether ``buf`` is a raw transaction whose end is cut off (a truncated ``.bin``),
    told apart from arbitrary bytes that begin like one.

    The bytes must begin with version 1 or 2, fail to parse only because they run out
    (not whole, not with bytes after a whole transaction), and up to the cut read as
    inputs and outputs of which at least two look like real ones, and at least half of
    the complete ones: an input whose sequence is 0xfffffffd to 0xffffffff, an output of
    at most 21 million BTC paying a script of a standard form. Arbitrary bytes pass each
    such test about once in a billion (a sequence) or once in four thousand (a value),
    so two of them are not met by chance."""
    if len(buf) < 10 or buf[:4] not in (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00"):
        return False
    try:
        parse_tx(buf)
        return False  # whole: a transaction (with or without bytes after it)
    except ParseError as exc:
        if "truncated" not in str(exc) and "cannot fit" not in str(exc):
            return False
    pos = 6 if buf[4:6] == b"\x00\x01" else 4
    real = complete = 0
    try:  # every ParseError here is the end of the bytes
        n_in, pos = read_varint(buf, pos)
        if n_in == 0:
            return False
        for _ in range(n_in):
            _, pos = take_bytes(buf, pos, 36, "outpoint")
            slen, pos = read_varint(buf, pos)
            _, pos = take_bytes(buf, pos, slen, "scriptSig")
            seq, pos = take_bytes(buf, pos, 4, "sequence")
            complete += 1
            real += int.from_bytes(seq, "little") in _REAL_SEQUENCES
        n_out, pos = read_varint(buf, pos)
        for _ in range(n_out):
            val, pos = take_bytes(buf, pos, 8, "value")
            slen, pos = read_varint(buf, pos)
            spk, pos = take_bytes(buf, pos, slen, "scriptPubKey")
            complete += 1
            value = int.from_bytes(val, "little", signed=True)
            real += 0 <= value <= MAX_MONEY and classify(spk)[0] != "nonstandard"
    except ParseError:
        pass
    return real >= 2 and real * 2 >= complete


def _padding_start(data: bytes) -> int:
    """Where the zero bytes that end ``data`` begin (``len(data)`` if it ends otherwise);
    reads backwards in 64 KiB steps, so only the padding is read."""
    end = len(data)
    while end > 0:
        lo = max(0, end - 65_536)
        kept = len(data[lo:end].rstrip(b"\x00"))
        if kept:
            return lo + kept
        end = lo
    return 0


def _parses(raw: bytes) -> bool:
    try:
        parse_block(raw)
    except ParseError:
        return False
    return True


def scan_blk(data: bytes) -> Iterator[BlkChunk]:
    """Walk blk*.dat bytes: every frame, and every stretch where framing was lost.

    A frame is a known magic, a 4-byte length and that many bytes of block. When the
    bytes at the scan position are not a frame (a bad magic, a length too short, too
    long or past the end of the file, garbage between blocks, a block cut short), the
    scan yields one :class:`BlkChunk` with the error and resynchronises at the next
    plausible frame (a magic, a plausible length, a block header and a coinbase), the
    bytes jumped over counted in ``skipped``. A frame whose length does not end at a
    frame boundary (the end of the file, a magic, the zero padding) is kept only if its
    bytes parse as exactly one block; else its length is what was damaged. Zero bytes
    that end the file are Bitcoin Core's preallocation and end the scan quietly; a run
    of zero bytes followed by a magic is skipped and counted.

    Linear in the file: the scan only moves forward, and the trial parses of frames that
    fail read at most as many bytes as the file holds.
    """
    n = len(data)
    tail = _padding_start(data)
    pos = 0
    budget = n  # bytes that failing trial parses may still read
    magics = MAGICS
    while pos < tail:
        # the common case first: a frame that ends where the next one (or the padding) starts
        if data[pos:pos + 4] in magics:
            length = int.from_bytes(data[pos + 4:pos + 8], "little")
            end = pos + 8 + length
            if _MIN_BLOCK_BYTES <= length <= MAX_BLOCK_BYTES and end <= n \
                    and (end >= tail or data[end:end + 4] in magics):
                yield BlkChunk(pos, data[pos + 8:end])
                pos = end
                continue
        elif data[pos] == 0:
            q = _NONZERO.search(data, pos, tail)
            nz = q.start() if q is not None else tail
            if data[nz:nz + 4] in magics:
                yield BlkChunk(pos, skipped=nz - pos)
                pos = nz
                continue
        size = _frame_head(data, pos)
        if size is not None and pos + 8 + size <= n:
            end = pos + 8 + size
            if size <= budget and _parses(data[pos + 8:end]):
                yield BlkChunk(pos, data[pos + 8:end])
                pos = end
                continue
            budget -= min(size, budget)
            why = f"block length {size} does not end at a block boundary and its bytes " \
                  "do not parse as one block"
        elif size is not None:
            why = f"block length {size} runs past the end of the file ({n - pos - 8} bytes left)"
        elif pos + 8 > n and data[pos:pos + 4] in MAGICS:
            why = "a block magic where the file ends"
        elif data[pos:pos + 4] in MAGICS:
            length = int.from_bytes(data[pos + 4:pos + 8], "little")
            why = (f"block length {length} is too short for a block" if length < _MIN_BLOCK_BYTES
                   else f"block length {length:,} is over the {MAX_BLOCK_BYTES:,}-byte limit")
        else:
            why = f"no block magic (found {data[pos:pos + 4].hex()})"
        nxt = _next_block(data, pos + 1, tail)
        to = (f"the next block at offset {nxt}" if nxt < tail else
              "the end of the file" if nxt >= n else f"the zero padding at offset {nxt}")
        yield BlkChunk(pos, None, ParseError(f"offset {pos}: {why}; {nxt - pos} bytes skipped "
                                             f"to {to}"), nxt - pos)
        pos = nxt


def iter_framed_blocks(data: bytes) -> Iterator[tuple[int, bytes | ParseError]]:
    """(offset, raw block or the error) for each magic-framed block in blk*.dat bytes.

    :func:`scan_blk` without the zero runs: where framing was lost it yields the error
    and goes on at the next block.
    """
    for chunk in scan_blk(data):
        if chunk.raw is not None:
            yield chunk.offset, chunk.raw
        elif chunk.error is not None:
            yield chunk.offset, chunk.error


# -- JSON sources -------------------------------------------------------------------

def _sats(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ParseError(f"bad amount {value!r}")
    return int((Decimal(str(value)) * _SATS).to_integral_value())


def _core_prevout(vin: dict[str, Any]) -> Prevout | None:
    po = vin.get("prevout")
    if not isinstance(po, dict):
        return None
    spk = po.get("scriptPubKey") or {}
    hexs = spk.get("hex") if isinstance(spk, dict) else None
    if not isinstance(hexs, str):
        return None
    return Prevout(_sats(po.get("value")), bytes.fromhex(hexs), po.get("height"),
                   po.get("generated"))


def block_from_getblock_json(doc: dict[str, Any]) -> tuple[Block, list[ParseError]]:
    """A block from ``getblock <hash> 2|3`` JSON; ids are recomputed from each tx hex.

    Returns the block (only transactions whose hex parsed and whose recomputed ids
    match the JSON) and the problems found, one per bad transaction.
    """
    problems: list[ParseError] = []
    txs: list[Tx] = []
    for i, jtx in enumerate(doc.get("tx") or []):
        if not isinstance(jtx, dict) or not isinstance(jtx.get("hex"), str):
            problems.append(ParseError(f"tx {i}: no hex (use getblock verbosity 2 or 3)"))
            continue
        try:
            tx, end = parse_tx(bytes.fromhex(jtx["hex"]))
        except ValueError as exc:
            problems.append(ParseError(f"tx {i}: {exc}"))
            continue
        if jtx.get("txid") not in (None, tx.txid) or jtx.get("hash") not in (None, tx.wtxid):
            problems.append(ParseError(f"tx {i}: JSON txid {jtx.get('txid')} but the hex "
                                       f"hashes to {tx.txid}"))
            continue
        for txin, vin in zip(tx.inputs, jtx.get("vin") or [], strict=False):
            if isinstance(vin, dict):
                try:
                    txin.prevout = _core_prevout(vin)
                except ValueError as exc:
                    problems.append(ParseError(f"tx {tx.txid} prevout: {exc}"))
        txs.append(tx)
    hdr_fields = ("version", "previousblockhash", "merkleroot", "time", "bits", "nonce")
    block = Block(str(doc.get("hash", "")), int(doc.get("version", 0)),
                  str(doc.get("previousblockhash") or "00" * 32), str(doc.get("merkleroot", "")),
                  int(doc.get("time", 0)), int(str(doc.get("bits", "0")), 16),
                  int(doc.get("nonce", 0)), txs,
                  height=doc.get("height") if isinstance(doc.get("height"), int) else None)
    if all(k in doc for k in hdr_fields):
        header = block_header(block.version, bytes.fromhex(block.prev_hash)[::-1],
                              bytes.fromhex(block.merkle_root)[::-1], block.time, block.bits,
                              block.nonce)
        check = parse_header(header)
        block.pow_ok = check.pow_ok and check.hash == block.hash
        if check.hash != block.hash:
            problems.append(ParseError(f"block {block.hash}: header hashes to {check.hash}"))
    if txs and not problems:
        root = merkle_root([bytes.fromhex(t.txid)[::-1] for t in txs])
        block.merkle_ok = display_hex(root) == block.merkle_root
        block.witness_ok = _check_witness(block)
    return block, problems


def tx_from_esplora_json(doc: dict[str, Any]) -> tuple[Tx, dict[str, Any]]:
    """A transaction from Esplora's ``/tx/:txid`` JSON, re-serialised and id-checked.

    Returns the tx (inputs carry their prevouts) and its ``status`` (block height,
    hash, time when confirmed). Raises :class:`ParseError` if the JSON's txid does not
    match the one recomputed from its fields.
    """
    try:
        inputs = []
        for vin in doc["vin"]:
            coinbase = bool(vin.get("is_coinbase"))
            po = vin.get("prevout")
            prevout = (Prevout(int(po["value"]), bytes.fromhex(po.get("scriptpubkey", "")))
                       if isinstance(po, dict) else None)
            inputs.append(TxIn(
                "00" * 32 if coinbase else str(vin["txid"]),
                0xFFFFFFFF if coinbase else int(vin["vout"]),
                bytes.fromhex(vin.get("scriptsig", "")), int(vin.get("sequence", 0xFFFFFFFF)),
                [bytes.fromhex(w) for w in vin.get("witness") or []], prevout))
        outputs = [TxOut(int(o["value"]), bytes.fromhex(o.get("scriptpubkey", "")))
                   for o in doc["vout"]]
        tx = Tx(int(doc.get("version", 1)), inputs, outputs, int(doc.get("locktime", 0)),
                "", "", 0, 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"esplora tx {doc.get('txid')}: {type(exc).__name__} {exc}") from None
    raw = serialize_tx(tx)
    parsed, _ = parse_tx(raw)
    for a, b in zip(parsed.inputs, tx.inputs, strict=True):
        a.prevout = b.prevout
    if doc.get("txid") != parsed.txid:
        raise ParseError(f"esplora tx {doc.get('txid')}: fields hash to {parsed.txid}")
    status: dict[str, Any] = doc["status"] if isinstance(doc.get("status"), dict) else {}
    return parsed, status


# -- btcd UTXO test files -----------------------------------------------------------

def _vlq(buf: bytes, pos: int) -> tuple[int, int]:
    n = 0
    while True:
        if pos >= len(buf):
            raise ParseError(f"offset {pos}: truncated VLQ")
        b = buf[pos]
        pos += 1
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            return n, pos
        n += 1


def _decompress_amount(x: int) -> int:
    if x == 0:
        return 0
    x -= 1
    e, x = x % 10, x // 10
    if e < 9:
        d, x = x % 9 + 1, x // 9
        n = x * 10 + d
    else:
        n = x + 1
    return int(n * 10 ** e)


def _decompress_script(buf: bytes, pos: int) -> tuple[bytes, int]:
    kind, pos = _vlq(buf, pos)
    if kind == 0:
        h, pos = take_bytes(buf, pos, 20, "P2PKH hash")
        return b"\x76\xa9\x14" + h + b"\x88\xac", pos
    if kind == 1:
        h, pos = take_bytes(buf, pos, 20, "P2SH hash")
        return b"\xa9\x14" + h + b"\x87", pos
    if kind in (2, 3):
        x, pos = take_bytes(buf, pos, 32, "pubkey")
        return b"\x21" + bytes([kind]) + x + b"\xac", pos
    if kind in (4, 5):
        x, pos = take_bytes(buf, pos, 32, "pubkey")
        return b"\x41" + decompress_pubkey(bytes([kind - 2]) + x) + b"\xac", pos
    script, pos = take_bytes(buf, pos, kind - 6, "script")
    return script, pos


def read_utxostore(data: bytes) -> dict[tuple[str, int], Prevout]:
    """Outputs in a btcd test UTXO file, keyed by (txid display hex, vout).

    The file is a sequence of ``<32-byte tx hash><uint32 LE index><uint32 LE length>
    <serialized utxo>``; a serialized utxo is btcd's chainio format: a VLQ header code
    (height << 1 | coinbase), a VLQ compressed amount (Bitcoin Core's scheme) and a
    compressed script (VLQ kind: 0 P2PKH, 1 P2SH, 2-5 P2PK keys, else length + 6).
    """
    out: dict[tuple[str, int], Prevout] = {}
    pos = 0
    while pos < len(data):
        head, pos = take_bytes(data, pos, 40, "utxo entry header")
        size = int.from_bytes(head[36:40], "little")
        body, pos = take_bytes(data, pos, size, "utxo entry")
        code, p = _vlq(body, 0)
        amount, p = _vlq(body, p)
        script, p = _decompress_script(body, p)
        if p != len(body):
            raise ParseError(f"offset {pos - size}: {len(body) - p} stray bytes in utxo entry")
        key = (display_hex(head[:32]), int.from_bytes(head[32:36], "little"))
        out[key] = Prevout(_decompress_amount(amount), script, code >> 1, bool(code & 1))
    return out
