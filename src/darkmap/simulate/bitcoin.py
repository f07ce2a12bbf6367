"""Bitcoin wire formats for the simulator: scripts, address encodings, transactions, blocks.

Everything is serialised exactly as Bitcoin Core does (BIP 141 witness serialisation, BIP 34
coinbase heights, BIP 141 witness commitments, merkle roots over txids), so any blk-file
reader can parse the output. Signatures are dummy bytes of the right shape: nothing here
can spend real coins, and nothing needs to.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from darkmap.model.encoding import b58check_encode, bech32_encode, hash160, sha256d

__all__ = [
    "MAINNET_MAGIC",
    "RawTx",
    "Spend",
    "TxOut",
    "address_for",
    "bech32_address",
    "block_bytes",
    "build_tx",
    "coinbase_tx",
    "hash160",
    "merkle_root",
    "output_script",
    "serialize_tx",
    "sha256d",
    "txid_of",
]

MAINNET_MAGIC = bytes.fromhex("f9beb4d9")


def bech32_address(witver: int, program: bytes, hrp: str = "bc") -> str:
    """Segwit address: bech32 for version 0 (BIP 173), bech32m for 1+ (BIP 350).

    The simulator's name for :func:`darkmap.model.encoding.bech32_encode`.
    """
    return bech32_encode(hrp, witver, program)


def output_script(kind: str, key: bytes) -> bytes:
    """The scriptPubKey of ``kind`` for a 33-byte pubkey (x-only 32 bytes for ``p2tr``).

    ``p2sh`` is P2SH-wrapped P2WPKH, the common wallet form of P2SH.
    """
    if kind == "p2pkh":
        return b"\x76\xa9\x14" + hash160(key) + b"\x88\xac"
    if kind == "p2wpkh":
        return b"\x00\x14" + hash160(key)
    if kind == "p2sh":
        return b"\xa9\x14" + hash160(b"\x00\x14" + hash160(key)) + b"\x87"
    if kind == "p2tr":
        return b"\x51\x20" + key
    raise ValueError(f"unknown script kind {kind!r}")


def address_for(kind: str, script: bytes) -> str:
    """The main-net address that encodes ``script`` (as built by :func:`output_script`)."""
    if kind == "p2pkh":
        return b58check_encode(0x00, script[3:23])
    if kind == "p2sh":
        return b58check_encode(0x05, script[2:22])
    if kind == "p2wpkh":
        return bech32_encode("bc", 0, script[2:22])
    if kind == "p2tr":
        return bech32_encode("bc", 1, script[2:34])
    raise ValueError(f"unknown script kind {kind!r}")


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def _push(data: bytes) -> bytes:
    n = len(data)
    if n < 0x4C:
        return bytes([n]) + data
    if n <= 0xFF:
        return b"\x4c" + bytes([n]) + data
    return b"\x4d" + struct.pack("<H", n) + data


@dataclass(frozen=True, slots=True)
class TxOut:
    """An output: value in satoshis and its scriptPubKey."""

    value: int
    script: bytes


@dataclass(frozen=True, slots=True)
class Spend:
    """An input: the outpoint it spends and the key type/pubkey that unlocks it."""

    txid: bytes  # internal byte order
    vout: int
    kind: str
    key: bytes
    sequence: int = 0xFFFFFFFD  # opt-in RBF, as modern wallets send


def _dummy_sig(seed: bytes) -> bytes:
    """A 72-byte DER-shaped ECDSA signature with SIGHASH_ALL."""
    r = hashlib.sha256(b"r" + seed).digest()
    s = hashlib.sha256(b"s" + seed).digest()
    return b"\x30\x45\x02\x21\x00" + r + b"\x02\x20" + s + b"\x01"


def _unlock(sp: Spend) -> tuple[bytes, list[bytes]]:
    """scriptSig and witness stack for spending ``sp``."""
    seed = sp.txid + struct.pack("<I", sp.vout)
    if sp.kind == "p2pkh":
        return _push(_dummy_sig(seed)) + _push(sp.key), []
    if sp.kind == "p2wpkh":
        return b"", [_dummy_sig(seed), sp.key]
    if sp.kind == "p2sh":
        return _push(b"\x00\x14" + hash160(sp.key)), [_dummy_sig(seed), sp.key]
    if sp.kind == "p2tr":
        return b"", [hashlib.sha512(seed).digest()]  # 64-byte Schnorr-shaped key-path sig
    raise ValueError(f"unknown script kind {sp.kind!r}")


def serialize_tx(version: int, spends: list[tuple[bytes, int, bytes, int, list[bytes]]],
                 outs: list[TxOut], locktime: int = 0) -> tuple[bytes, bytes]:
    """(full serialisation, serialisation without witness) of a transaction.

    ``spends`` are (txid, vout, scriptSig, sequence, witness stack) tuples.
    """
    ins = b"".join(txid + struct.pack("<I", vout) + _varint(len(ss)) + ss
                   + struct.pack("<I", seq) for txid, vout, ss, seq, _ in spends)
    body = (_varint(len(spends)) + ins + _varint(len(outs))
            + b"".join(struct.pack("<q", o.value) + _varint(len(o.script)) + o.script
                       for o in outs))
    ver = struct.pack("<i", version)
    lock = struct.pack("<I", locktime)
    stripped = ver + body + lock
    if not any(w for *_, w in spends):
        return stripped, stripped
    wit = b"".join(_varint(len(w)) + b"".join(_varint(len(item)) + item for item in w)
                   for *_, w in spends)
    return ver + b"\x00\x01" + body + wit + lock, stripped


def txid_of(stripped: bytes) -> bytes:
    """Txid in internal byte order (display hex is its reverse)."""
    return sha256d(stripped)


@dataclass(slots=True)
class RawTx:
    """A serialised transaction ready for a block."""

    raw: bytes
    txid: bytes
    wtxid: bytes
    fee: int = 0
    segwit: bool = field(default=False)


def build_tx(spends: list[Spend], outs: list[TxOut], fee: int, locktime: int = 0) -> RawTx:
    """Serialise a transaction spending ``spends`` into ``outs`` (fee recorded for the block)."""
    parts = []
    for sp in spends:
        ss, wit = _unlock(sp)
        parts.append((sp.txid, sp.vout, ss, sp.sequence, wit))
    raw, stripped = serialize_tx(2, parts, outs, locktime)
    txid = sha256d(stripped)
    wtxid = sha256d(raw) if raw is not stripped else txid
    return RawTx(raw, txid, wtxid, fee, raw is not stripped)


def merkle_root(hashes: list[bytes]) -> bytes:
    """Bitcoin merkle root (last hash duplicated on odd levels), internal byte order."""
    level = list(hashes)
    if not level:
        return b"\x00" * 32
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def coinbase_tx(height: int, outs: list[TxOut], wtxids: list[bytes] | None) -> RawTx:
    """A coinbase paying ``outs``; with ``wtxids`` (of the other txs) adds the BIP 141
    witness commitment and the 32-byte reserved witness value."""
    h = height.to_bytes((height.bit_length() + 8) // 8 or 1, "little") if height else b""
    script_sig = (_push(h) if height else b"\x00") + _push(b"/darkmap-sim/")
    outs = list(outs)
    witness: list[bytes] = []
    if wtxids is not None:
        reserved = b"\x00" * 32
        root = merkle_root([b"\x00" * 32] + wtxids)
        commit = sha256d(root + reserved)
        outs.append(TxOut(0, b"\x6a\x24\xaa\x21\xa9\xed" + commit))
        witness = [reserved]
    raw, stripped = serialize_tx(2, [(b"\x00" * 32, 0xFFFFFFFF, script_sig, 0xFFFFFFFF,
                                      witness)], outs)
    txid = sha256d(stripped)
    return RawTx(raw, txid, b"\x00" * 32, 0, bool(witness))


def block_bytes(prev_hash: bytes, timestamp: int, txs: list[RawTx],
                nonce: int = 0) -> tuple[bytes, bytes]:
    """(serialised block, block hash in internal byte order) for ``txs`` (coinbase first)."""
    root = merkle_root([t.txid for t in txs])
    header = (struct.pack("<i", 0x20000000) + prev_hash + root
              + struct.pack("<III", timestamp, 0x1D00FFFF, nonce))
    body = header + _varint(len(txs)) + b"".join(t.raw for t in txs)
    return body, sha256d(header)
