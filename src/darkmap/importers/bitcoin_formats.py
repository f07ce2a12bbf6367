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

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from darkmap.model.bitcoin import (
    GENESIS_HASH,
    MAINNET_MAGIC,
    WITNESS_COMMITMENT_PREFIX,
    ParseError,
    Prevout,
    Tx,
    TxIn,
    TxOut,
    block_header,
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
    "Block",
    "ParseError",
    "Prevout",
    "Tx",
    "TxIn",
    "TxOut",
    "bip34_height",
    "block_from_getblock_json",
    "iter_framed_blocks",
    "merkle_root",
    "parse_block",
    "parse_header",
    "parse_tx",
    "read_utxostore",
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


def iter_framed_blocks(data: bytes) -> Iterator[tuple[int, bytes | ParseError]]:
    """(offset, raw block or the error) for each magic-framed block in blk*.dat bytes.

    Zero padding (Bitcoin Core preallocates blk files) ends the scan quietly; a bad
    magic or a length past the end yields one error and stops, since framing is lost.
    """
    pos = 0
    n = len(data)
    while pos + 8 <= n:
        magic = data[pos:pos + 4]
        if magic == b"\x00\x00\x00\x00":
            rest = data[pos:pos + 4096]
            if rest.count(0) == len(rest):
                return
        if magic not in MAGICS:
            yield pos, ParseError(f"offset {pos}: bad magic {magic.hex()}")
            return
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        if size < 81 or pos + 8 + size > n:
            yield pos, ParseError(f"offset {pos}: block length {size} runs past the file")
            return
        yield pos, data[pos + 8:pos + 8 + size]
        pos += 8 + size


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
