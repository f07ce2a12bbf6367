"""Bitcoin wire formats for the simulator: scripts, address encodings, transactions, blocks.

Everything is serialised exactly as Bitcoin Core does (BIP 141 witness serialisation, BIP 34
coinbase heights, BIP 141 witness commitments, merkle roots over txids) by the one wire
format implementation, :mod:`darkmap.model.bitcoin`, so any blk-file reader can parse the
output. Signatures are dummy bytes of the right shape: nothing here can spend real coins,
and nothing needs to.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from darkmap.model.bitcoin import (
    NULL_HASH,
    WITNESS_COMMITMENT_PREFIX,
    RawInput,
    TxOut,
    block_header,
    merkle_root,
    push_data,
    serialize_block,
    serialize_parts,
    witness_commitment,
)
from darkmap.model.encoding import b58check_encode, bech32_encode, hash160, sha256d

__all__ = [
    "RawTx",
    "Spend",
    "address_for",
    "bech32_address",
    "block_bytes",
    "build_tx",
    "coinbase_tx",
    "output_script",
    "txid_of",
]


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
        return push_data(_dummy_sig(seed)) + push_data(sp.key), []
    if sp.kind == "p2wpkh":
        return b"", [_dummy_sig(seed), sp.key]
    if sp.kind == "p2sh":
        return push_data(b"\x00\x14" + hash160(sp.key)), [_dummy_sig(seed), sp.key]
    if sp.kind == "p2tr":
        return b"", [hashlib.sha512(seed).digest()]  # 64-byte Schnorr-shaped key-path sig
    raise ValueError(f"unknown script kind {sp.kind!r}")


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
    parts: list[RawInput] = []
    for sp in spends:
        ss, wit = _unlock(sp)
        parts.append((sp.txid, sp.vout, ss, sp.sequence, wit))
    raw, stripped = serialize_parts(2, parts, outs, locktime)
    txid = sha256d(stripped)
    wtxid = sha256d(raw) if raw is not stripped else txid
    return RawTx(raw, txid, wtxid, fee, raw is not stripped)


def coinbase_tx(height: int, outs: list[TxOut], wtxids: list[bytes] | None) -> RawTx:
    """A coinbase paying ``outs``; with ``wtxids`` (of the other txs) adds the BIP 141
    witness commitment and the 32-byte reserved witness value."""
    h = height.to_bytes((height.bit_length() + 8) // 8 or 1, "little") if height else b""
    script_sig = (push_data(h) if height else b"\x00") + push_data(b"/darkmap-sim/")
    outs = list(outs)
    witness: list[bytes] = []
    if wtxids is not None:
        outs.append(TxOut(0, WITNESS_COMMITMENT_PREFIX + witness_commitment(wtxids)))
        witness = [NULL_HASH]  # the reserved value the commitment hashed
    raw, stripped = serialize_parts(2, [(NULL_HASH, 0xFFFFFFFF, script_sig, 0xFFFFFFFF,
                                         witness)], outs)
    txid = sha256d(stripped)
    return RawTx(raw, txid, NULL_HASH, 0, bool(witness))


def block_bytes(prev_hash: bytes, timestamp: int, txs: list[RawTx],
                nonce: int = 0) -> tuple[bytes, bytes]:
    """(serialised block, block hash in internal byte order) for ``txs`` (coinbase first)."""
    header = block_header(0x20000000, prev_hash, merkle_root([t.txid for t in txs]), timestamp,
                          0x1D00FFFF, nonce)
    return serialize_block(header, [t.raw for t in txs]), sha256d(header)
