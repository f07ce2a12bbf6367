"""Bitcoin as values: the wire format (transactions, varints, merkle roots, block headers,
blk framing) and output scripts with their addresses.

The one implementation of both in darkmap. The chain reader
(:mod:`darkmap.importers.bitcoin_formats`) parses transactions here and checks every
txid, merkle root and witness commitment against what these functions compute; the
simulators (:mod:`darkmap.simulate.tx_builder`, :mod:`darkmap.simulate.market_chain`) build
their blocks with the same functions, so what they write is exactly what the reader
accepts.

Scripts: :func:`classify` follows Bitcoin Core's ``Solver``: exact templates for P2PK,
P2PKH, P2SH, witness programs (P2WPKH, P2WSH, P2TR, other versions), bare multisig and
OP_RETURN data; anything else is ``nonstandard`` and is kept, never dropped. A P2PK output
gets the P2PKH address of its key, as block explorers show it. Addresses are main-net.

Byte order: ids are hashed and serialised in *internal* byte order; people and JSON show
them reversed (:func:`display_hex`). Hashes, base58 and bech32 are in
:mod:`darkmap.model.encoding`; validating an address someone wrote is
:func:`darkmap.model.values.clean_btc_address`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from darkmap.errors import BadInputError
from darkmap.model.encoding import (
    b58check_decode,
    b58check_encode,
    bech32_decode,
    bech32_encode,
    hash160,
    sha256d,
)

__all__ = [
    "GENESIS_HASH",
    "MAINNET_MAGIC",
    "MAX_MONEY",
    "NULL_HASH",
    "SCRIPT_TYPES",
    "WITNESS_COMMITMENT_PREFIX",
    "ParseError",
    "Prevout",
    "RawInput",
    "Tx",
    "TxIn",
    "TxOut",
    "address_script_type",
    "block_header",
    "classify",
    "display_hex",
    "frame_block",
    "infer_input_address",
    "iter_ops",
    "merkle_root",
    "money_range_problem",
    "parse_tx",
    "prevout_problem",
    "push_data",
    "read_varint",
    "script_for_address",
    "serialize_block",
    "serialize_parts",
    "serialize_tx",
    "take_bytes",
    "witness_commitment",
    "write_varint",
]

MAINNET_MAGIC = bytes.fromhex("f9beb4d9")
"""Network magic that frames each block of a main-net ``blk*.dat`` file."""
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
"""Hash of the main-net genesis block (height 0), display hex."""
NULL_HASH = b"\x00" * 32
"""The null txid of a coinbase outpoint (and the coinbase's wtxid in a witness root)."""
WITNESS_COMMITMENT_PREFIX = bytes.fromhex("6a24aa21a9ed")
"""OP_RETURN, push 36, and the BIP 141 commitment header, before the 32-byte commitment."""
MAX_MONEY = 21_000_000 * 100_000_000
"""Bitcoin Core's ``MAX_MONEY`` in satoshis: no output, and no transaction's outputs
together, may hold more (its ``MoneyRange``)."""


class ParseError(BadInputError):
    """Bytes or JSON that are not what they claim; the message names where."""


@dataclass(slots=True)
class TxOut:
    """An output: value in satoshis and its locking script."""

    value: int
    script: bytes


@dataclass(slots=True)
class Prevout:
    """What an input spends, when the source says so (JSON prevout, UTXO file)."""

    value: int
    script: bytes
    height: int | None = None
    coinbase: bool | None = None


@dataclass(slots=True)
class TxIn:
    """An input: the outpoint it spends (txid in display hex), scriptSig, witness."""

    prev_txid: str
    prev_vout: int
    script_sig: bytes
    sequence: int
    witness: list[bytes] = field(default_factory=list)
    prevout: Prevout | None = None

    @property
    def is_coinbase(self) -> bool:
        """True for the coinbase input (null outpoint)."""
        return self.prev_vout == 0xFFFFFFFF and self.prev_txid == "00" * 32


@dataclass(slots=True)
class Tx:
    """A parsed transaction with its recomputed ids (display hex)."""

    version: int
    inputs: list[TxIn]
    outputs: list[TxOut]
    locktime: int
    txid: str
    wtxid: str
    size: int
    weight: int

    @property
    def is_coinbase(self) -> bool:
        """True when the only input is the coinbase input."""
        return len(self.inputs) == 1 and self.inputs[0].is_coinbase

    @property
    def segwit(self) -> bool:
        """True when any input carries a witness."""
        return any(i.witness for i in self.inputs)


RawInput = tuple[bytes, int, bytes, int, Sequence[bytes]]
"""An input to serialise: (prev txid in internal order, vout, scriptSig, sequence, witness)."""


def display_hex(internal: bytes) -> str:
    """A txid or block hash as people and JSON show it (byte-reversed hex)."""
    return internal[::-1].hex()


def write_varint(n: int) -> bytes:
    """Bitcoin's CompactSize encoding of ``n``."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, offset after it) of the CompactSize at ``pos``; :class:`ParseError` if cut."""
    if pos >= len(buf):
        raise ParseError(f"offset {pos}: truncated varint")
    first = buf[pos]
    if first < 0xFD:
        return first, pos + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    if pos + 1 + width > len(buf):
        raise ParseError(f"offset {pos}: truncated varint")
    return int.from_bytes(buf[pos + 1:pos + 1 + width], "little"), pos + 1 + width


def push_data(data: bytes) -> bytes:
    """The script opcode(s) that push ``data`` (direct, PUSHDATA1 or PUSHDATA2)."""
    n = len(data)
    if n < 0x4C:
        return bytes([n]) + data
    if n <= 0xFF:
        return b"\x4c" + bytes([n]) + data
    return b"\x4d" + struct.pack("<H", n) + data


def take_bytes(buf: bytes, pos: int, n: int, what: str) -> tuple[bytes, int]:
    """(``n`` bytes at ``pos``, offset after them); :class:`ParseError` naming ``what``
    if the buffer ends first."""
    end = pos + n
    if n < 0 or end > len(buf):
        raise ParseError(f"offset {pos}: truncated {what} ({n} bytes wanted)")
    return buf[pos:end], end


def parse_tx(buf: bytes, pos: int = 0) -> tuple[Tx, int]:
    """Parse one serialized transaction at ``pos``; return it and the end offset.

    The txid (and wtxid when it has witnesses) is recomputed from the bytes.
    """
    start = pos
    if pos + 10 > len(buf):
        raise ParseError(f"offset {pos}: truncated transaction")
    version = struct.unpack_from("<i", buf, pos)[0]
    pos += 4
    segwit = buf[pos] == 0 and buf[pos + 1] == 1
    if segwit:
        pos += 2
    body_start = pos
    n_in, pos = read_varint(buf, pos)
    if n_in * 41 > len(buf) - pos:
        raise ParseError(f"offset {start}: {n_in} inputs cannot fit")
    inputs = []
    for _ in range(n_in):
        prev, pos = take_bytes(buf, pos, 36, "outpoint")
        slen, pos = read_varint(buf, pos)
        sig, pos = take_bytes(buf, pos, slen, "scriptSig")
        seq, pos = take_bytes(buf, pos, 4, "sequence")
        inputs.append(TxIn(display_hex(prev[:32]), int.from_bytes(prev[32:], "little"), sig,
                           int.from_bytes(seq, "little")))
    n_out, pos = read_varint(buf, pos)
    if n_out * 9 > len(buf) - pos:
        raise ParseError(f"offset {start}: {n_out} outputs cannot fit")
    outputs = []
    for _ in range(n_out):
        val, pos = take_bytes(buf, pos, 8, "value")
        slen, pos = read_varint(buf, pos)
        spk, pos = take_bytes(buf, pos, slen, "scriptPubKey")
        outputs.append(TxOut(int.from_bytes(val, "little", signed=True), spk))
    body_end = pos
    if segwit:
        for txin in inputs:
            n_items, pos = read_varint(buf, pos)
            if n_items > len(buf) - pos:
                raise ParseError(f"offset {pos}: {n_items} witness items cannot fit")
            for _ in range(n_items):
                ilen, pos = read_varint(buf, pos)
                item, pos = take_bytes(buf, pos, ilen, "witness item")
                txin.witness.append(item)
    lock, pos = take_bytes(buf, pos, 4, "locktime")
    raw = buf[start:pos]
    if segwit:
        stripped = buf[start:start + 4] + buf[body_start:body_end] + lock
        txid = display_hex(sha256d(stripped))
        wtxid = display_hex(sha256d(raw))
        base = len(stripped)
    else:
        txid = wtxid = display_hex(sha256d(raw))
        base = len(raw)
    tx = Tx(version, inputs, outputs, int.from_bytes(lock, "little"), txid, wtxid, len(raw),
            base * 3 + len(raw))
    return tx, pos


def money_range_problem(tx: Tx) -> tuple[str, str] | None:
    """(field, reason) when ``tx`` carries an amount outside Bitcoin Core's ``MoneyRange``
    (0 to :data:`MAX_MONEY` satoshis): an output's value, the sum of its outputs, or the
    value a source claims for a spent output (``prevout``); None when every amount is in
    range. A transaction that fails is not Bitcoin (consensus refuses it) and its figures
    would corrupt every total it enters (found by the money audit, M3: an output of
    -1,000 BTC and one of 92 billion BTC were stored)."""
    total = 0
    for n, out in enumerate(tx.outputs):
        if not 0 <= out.value <= MAX_MONEY:
            return "value", (f"tx {tx.txid} output {n}: value {out.value:,} sat is outside "
                             f"0..{MAX_MONEY:,} (21,000,000 BTC)")
        total += out.value
        if total > MAX_MONEY:
            return "value", (f"tx {tx.txid}: its outputs up to output {n} sum to {total:,} "
                             f"sat, over {MAX_MONEY:,} (21,000,000 BTC)")
    for n, txin in enumerate(tx.inputs):
        if txin.prevout is not None and not 0 <= txin.prevout.value <= MAX_MONEY:
            return "prevout.value", (f"tx {tx.txid} input {n}: prevout value "
                                     f"{txin.prevout.value:,} sat is outside "
                                     f"0..{MAX_MONEY:,} (21,000,000 BTC)")
    return None


def serialize_parts(version: int, inputs: Sequence[RawInput], outputs: Sequence[TxOut],
                    locktime: int = 0) -> tuple[bytes, bytes]:
    """(full serialisation, serialisation without witness) of a transaction.

    The full form is BIP 144's (marker, flag, witnesses) when any input has a witness;
    otherwise both are the same ``bytes`` object, so ``full is stripped`` tells a
    transaction without witnesses.
    """
    ins = b"".join(txid + struct.pack("<I", vout) + write_varint(len(ss)) + ss
                   + struct.pack("<I", seq) for txid, vout, ss, seq, _ in inputs)
    body = (write_varint(len(inputs)) + ins + write_varint(len(outputs))
            + b"".join(struct.pack("<q", o.value) + write_varint(len(o.script)) + o.script
                       for o in outputs))
    ver = struct.pack("<i", version)
    lock = struct.pack("<I", locktime)
    stripped = ver + body + lock
    if not any(w for *_, w in inputs):
        return stripped, stripped
    wit = b"".join(write_varint(len(w)) + b"".join(write_varint(len(item)) + item for item in w)
                   for *_, w in inputs)
    return ver + b"\x00\x01" + body + wit + lock, stripped


def serialize_tx(tx: Tx, witness: bool = True) -> bytes:
    """Serialize ``tx`` (with witnesses when it has any and ``witness`` is true)."""
    full, stripped = serialize_parts(
        tx.version, [(bytes.fromhex(i.prev_txid)[::-1], i.prev_vout, i.script_sig, i.sequence,
                      i.witness) for i in tx.inputs], tx.outputs, tx.locktime)
    return full if witness else stripped


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """Merkle root (internal byte order) of ids in internal byte order.

    The last hash of an odd level is paired with itself, as Bitcoin does.
    """
    if not hashes:
        raise ParseError("merkle root of no transactions")
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def witness_commitment(wtxids: Sequence[bytes], reserved: bytes = NULL_HASH) -> bytes:
    """BIP 141 commitment to the wtxids of a block's non-coinbase transactions.

    The coinbase counts as the null hash; ``reserved`` is the coinbase's witness value.
    """
    return sha256d(merkle_root([NULL_HASH, *wtxids]) + reserved)


def block_header(version: int, prev_hash: bytes, root: bytes, time: int, bits: int,
                 nonce: int) -> bytes:
    """The 80-byte header (hashes in internal byte order); its sha256d is the block hash."""
    return (struct.pack("<i", version) + prev_hash + root
            + struct.pack("<III", time, bits, nonce))


def serialize_block(header: bytes, raw_txs: Sequence[bytes]) -> bytes:
    """A block: its header, the transaction count and the serialised transactions."""
    return header + write_varint(len(raw_txs)) + b"".join(raw_txs)


def frame_block(raw: bytes, magic: bytes = MAINNET_MAGIC) -> bytes:
    """``raw`` as Bitcoin Core stores it in ``blk*.dat``: magic, length, block."""
    return magic + struct.pack("<I", len(raw)) + raw


# -- output scripts and their addresses ---------------------------------------------

SCRIPT_TYPES = ("p2pk", "p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "witness_unknown",
                "multisig", "nulldata", "nonstandard")
"""Every script type :func:`classify` can return."""

_OP_0, _OP_PUSHDATA1, _OP_PUSHDATA2, _OP_PUSHDATA4 = 0x00, 0x4C, 0x4D, 0x4E
_OP_1, _OP_16, _OP_RETURN = 0x51, 0x60, 0x6A
_OP_DUP, _OP_HASH160, _OP_EQUAL, _OP_EQUALVERIFY = 0x76, 0xA9, 0x87, 0x88
_OP_CHECKSIG, _OP_CHECKMULTISIG = 0xAC, 0xAE
_HRP = "bc"


def iter_ops(script: bytes) -> Iterator[tuple[int, bytes | None]]:
    """(opcode, pushed data or None); raises ``ValueError`` on a truncated push."""
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        i += 1
        if op <= _OP_PUSHDATA4:
            if op < _OP_PUSHDATA1:
                size = op
            else:
                width = {_OP_PUSHDATA1: 1, _OP_PUSHDATA2: 2, _OP_PUSHDATA4: 4}[op]
                if i + width > n:
                    raise ValueError("truncated push length")
                size = int.from_bytes(script[i:i + width], "little")
                i += width
            if i + size > n:
                raise ValueError("truncated push")
            yield op, script[i:i + size]
            i += size
        else:
            yield op, None


def _pubkey_ok(pub: bytes) -> bool:
    return (len(pub) == 33 and pub[0] in (2, 3)) or (len(pub) == 65 and pub[0] in (4, 6, 7))


def _multisig(script: bytes) -> bool:
    if len(script) < 37 or script[-1] != _OP_CHECKMULTISIG:
        return False
    try:
        ops = list(iter_ops(script))
    except ValueError:
        return False
    if len(ops) < 4 or ops[-1] != (_OP_CHECKMULTISIG, None):
        # the last opcode, not the last byte (a push whose data ends in 0xae is no
        # CHECKMULTISIG: found by the money audit, L3)
        return False
    m, n = ops[0][0], ops[-2][0]
    if not (_OP_1 <= m <= _OP_16 and _OP_1 <= n <= _OP_16 and m <= n):
        return False
    keys = ops[1:-2]
    return len(keys) == n - _OP_1 + 1 and all(d is not None and _pubkey_ok(d) for _, d in keys)


def _push_only(script: bytes) -> bool:
    try:
        return all(op <= _OP_16 for op, _ in iter_ops(script))
    except ValueError:
        return False


def classify(script: bytes) -> tuple[str, str | None]:
    """(script type, address or None) of an output script."""
    n = len(script)
    if n == 25 and script[0] == _OP_DUP and script[1] == _OP_HASH160 and script[2] == 20 \
            and script[23] == _OP_EQUALVERIFY and script[24] == _OP_CHECKSIG:
        return "p2pkh", b58check_encode(0x00, script[3:23])
    if n == 23 and script[0] == _OP_HASH160 and script[1] == 20 and script[22] == _OP_EQUAL:
        return "p2sh", b58check_encode(0x05, script[2:22])
    if 4 <= n <= 42 and (script[0] == _OP_0 or _OP_1 <= script[0] <= _OP_16) \
            and script[1] == n - 2 and 2 <= script[1] <= 40:
        ver = 0 if script[0] == _OP_0 else script[0] - _OP_1 + 1
        prog = script[2:]
        if ver == 0 and len(prog) == 20:
            return "p2wpkh", bech32_encode(_HRP, 0, prog)
        if ver == 0 and len(prog) == 32:
            return "p2wsh", bech32_encode(_HRP, 0, prog)
        if ver == 0:
            return "nonstandard", None  # v0 programs of other sizes are invalid
        if ver == 1 and len(prog) == 32:
            return "p2tr", bech32_encode(_HRP, 1, prog)
        return "witness_unknown", bech32_encode(_HRP, ver, prog)
    if n in (35, 67) and script[0] == n - 2 and script[-1] == _OP_CHECKSIG \
            and _pubkey_ok(script[1:-1]):
        return "p2pk", b58check_encode(0x00, hash160(script[1:-1]))
    if n >= 1 and script[0] == _OP_RETURN and _push_only(script[1:]):
        return "nulldata", None
    if _multisig(script):
        return "multisig", None
    return "nonstandard", None


def address_script_type(address: str) -> str:
    """Script type implied by an address string (``unknown`` when not recognised)."""
    if address.startswith("1"):
        return "p2pkh"
    if address.startswith("3"):
        return "p2sh"
    low = address.lower()
    if low.startswith("bc1q"):
        return "p2wpkh" if len(address) == 42 else "p2wsh"
    if low.startswith("bc1p"):
        return "p2tr"
    return "unknown"


def script_for_address(address: str) -> bytes:
    """The output script paying ``address`` (inverse of :func:`classify`)."""
    if address.lower().startswith("bc1"):
        _, ver, prog = bech32_decode(address)
        return bytes([0 if ver == 0 else _OP_1 + ver - 1, len(prog)]) + prog
    version, payload = b58check_decode(address)
    if version == 0x00 and len(payload) == 20:
        return bytes([_OP_DUP, _OP_HASH160, 20]) + payload + bytes([_OP_EQUALVERIFY, _OP_CHECKSIG])
    if version == 0x05 and len(payload) == 20:
        return bytes([_OP_HASH160, 20]) + payload + bytes([_OP_EQUAL])
    raise BadInputError(f"unsupported address: {address}")


def prevout_problem(txin: TxIn) -> str | None:
    """Why the spent output a source claims for ``txin`` (``prevout``: Esplora or getblock
    JSON) cannot be the one it spends, else None.

    Where the input's own unlocking data names its owner (:func:`infer_input_address`:
    a P2PKH key, a P2WPKH witness key, a P2SH redeem script), the claimed output must pay
    that owner: the JSON cannot credit a coin to anyone else (found by the money audit,
    H2: an input signed by one key was stored as spending Satoshi's 50 BTC and merged
    his address with a 2018 wallet). Inputs whose owner cannot be read are not checked.
    """
    if txin.prevout is None or txin.is_coinbase:
        return None
    own = infer_input_address(txin.script_sig, txin.witness)
    if own is None:
        return None
    st, addr = classify(txin.prevout.script)
    if addr == own[1]:
        return None
    return (f"its prevout pays {addr or 'a ' + st + ' script'}, but its own unlocking data "
            f"({own[0]}) belongs to {own[1]}: the claimed spent output is not the one it "
            "spends")


def infer_input_address(script_sig: bytes, witness: list[bytes]) -> tuple[str, str] | None:
    """(script type, address) of the output an input spends, read from its unlocking data.

    Only unambiguous standard spends are read: P2PKH (signature + key), P2WPKH
    (witness signature + compressed key), P2SH-wrapped segwit (redeem script push) and
    P2SH multisig (last push is a CHECKMULTISIG script). Anything else gives None; the
    spent output, once loaded, is always preferred.
    """
    h160 = hash160
    try:
        pushes = list(iter_ops(script_sig))
    except ValueError:
        return None
    if any(d is None and op != _OP_0 for op, d in pushes):
        return None
    datas = [d if d is not None else b"" for _, d in pushes]
    if not script_sig:
        if len(witness) == 2 and len(witness[1]) == 33 and witness[1][0] in (2, 3) \
                and 9 <= len(witness[0]) <= 73:
            return "p2wpkh", bech32_encode(_HRP, 0, h160(witness[1]))
        return None
    if len(datas) == 2 and not witness and _pubkey_ok(datas[1]) and 9 <= len(datas[0]) <= 73 \
            and datas[0][:1] == b"\x30":
        return "p2pkh", b58check_encode(0x00, h160(datas[1]))
    if len(datas) == 1 and witness and len(datas[0]) in (22, 34) and datas[0][0] == 0 \
            and datas[0][1] == len(datas[0]) - 2:
        return "p2sh", b58check_encode(0x05, h160(datas[0]))
    if len(datas) >= 3 and datas[0] == b"" and _multisig(datas[-1]):
        return "p2sh", b58check_encode(0x05, h160(datas[-1]))
    return None
