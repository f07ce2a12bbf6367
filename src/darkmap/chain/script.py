"""Classify output scripts and derive their addresses (mainnet).

The rules follow Bitcoin Core's ``Solver``: exact templates for P2PK, P2PKH, P2SH,
witness programs (P2WPKH, P2WSH, P2TR, other versions), bare multisig and OP_RETURN
data; anything else is ``nonstandard`` and is kept, never dropped. A P2PK output gets
the P2PKH address of its key, as block explorers show it.
"""

from __future__ import annotations

from collections.abc import Iterator

from darkmap.model.encoding import (
    b58check_decode,
    b58check_encode,
    bech32_decode,
    bech32_encode,
    hash160,
)

__all__ = [
    "SCRIPT_TYPES",
    "address_script_type",
    "classify",
    "infer_input_address",
    "iter_ops",
    "script_for_address",
]

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
    if len(ops) < 4:
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
    raise ValueError(f"unsupported address: {address}")


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
