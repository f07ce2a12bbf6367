"""Hashes and address encodings: double SHA-256, HASH160, base58check, bech32/bech32m.

Everything here is pure Python and checked by round-trip tests; RIPEMD-160 falls back to
a pure implementation where the OpenSSL build lacks it (OpenSSL 3 moved it to the
legacy provider).
"""

from __future__ import annotations

import hashlib
import struct

__all__ = [
    "b58check_decode",
    "b58check_encode",
    "bech32_decode",
    "bech32_encode",
    "decompress_pubkey",
    "hash160",
    "ripemd160",
    "sha256d",
]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_P = 2**256 - 2**32 - 977  # secp256k1 field prime


def sha256d(data: bytes) -> bytes:
    """SHA-256 applied twice (txids, block hashes, merkle nodes, checksums)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _ripemd160_pure(msg: bytes) -> bytes:
    # RIPEMD-160 per Dobbertin/Bosselaers/Preneel 1996; only used without OpenSSL support.
    rl = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
          7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
          3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
          1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
          4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13]
    rr = [5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
          6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
          15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
          8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
          12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11]
    sl = [11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
          7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
          11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
          11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
          9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6]
    sr = [8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
          9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
          9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
          15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
          8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11]
    kl = [0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E]
    kr = [0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000]
    m32 = 0xFFFFFFFF

    def f(j: int, x: int, y: int, z: int) -> int:
        if j < 16:
            return x ^ y ^ z
        if j < 32:
            return (x & y) | (~x & m32 & z)
        if j < 48:
            return (x | (~y & m32)) ^ z
        if j < 64:
            return (x & z) | (y & ~z & m32)
        return x ^ (y | (~z & m32))

    def rol(x: int, n: int) -> int:
        return ((x << n) | (x >> (32 - n))) & m32

    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    padded = msg + b"\x80" + b"\x00" * ((55 - len(msg)) % 64) + struct.pack("<Q", 8 * len(msg))
    for off in range(0, len(padded), 64):
        x = struct.unpack("<16I", padded[off:off + 64])
        al, bl, cl, dl, el = h
        ar, br, cr, dr, er = h
        for j in range(80):
            t = rol((al + f(j, bl, cl, dl) + x[rl[j]] + kl[j // 16]) & m32, sl[j]) + el
            al, el, dl, cl, bl = el, dl, rol(cl, 10), bl, t & m32
            t = rol((ar + f(79 - j, br, cr, dr) + x[rr[j]] + kr[j // 16]) & m32, sr[j]) + er
            ar, er, dr, cr, br = er, dr, rol(cr, 10), br, t & m32
        t = (h[1] + cl + dr) & m32
        h[1] = (h[2] + dl + er) & m32
        h[2] = (h[3] + el + ar) & m32
        h[3] = (h[4] + al + br) & m32
        h[4] = (h[0] + bl + cr) & m32
        h[0] = t
    return struct.pack("<5I", *h)


try:
    hashlib.new("ripemd160", b"")
    _HAVE_RIPEMD = True
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    _HAVE_RIPEMD = False


def ripemd160(data: bytes) -> bytes:
    """RIPEMD-160 digest (OpenSSL when available, else pure Python)."""
    if _HAVE_RIPEMD:
        return hashlib.new("ripemd160", data).digest()
    return _ripemd160_pure(data)  # pragma: no cover


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: the hash inside P2PKH, P2SH and P2WPKH scripts."""
    return ripemd160(hashlib.sha256(data).digest())


def b58check_encode(version: int, payload: bytes) -> str:
    """Base58Check of ``version byte + payload`` (legacy addresses)."""
    raw = bytes([version]) + payload
    raw += sha256d(raw)[:4]
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(raw) - len(raw.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def b58check_decode(text: str) -> tuple[int, bytes]:
    """Inverse of :func:`b58check_encode`; raises ``ValueError`` on a bad checksum."""
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"not base58: {c!r}")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + body
    if len(raw) < 5 or sha256d(raw[:-4])[:4] != raw[-4:]:
        raise ValueError("base58check: bad checksum")
    return raw[0], raw[1:-4]


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise ValueError("convertbits: value out of range")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("convertbits: bad padding")
    return out


def bech32_encode(hrp: str, witver: int, program: bytes) -> str:
    """Segwit address (BIP173 bech32 for v0, BIP350 bech32m for v1+)."""
    data = [witver] + _convertbits(program, 8, 5, True)
    const = _BECH32_CONST if witver == 0 else _BECH32M_CONST
    pm = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


def bech32_decode(addr: str) -> tuple[str, int, bytes]:
    """Inverse of :func:`bech32_encode`: (hrp, witness version, program)."""
    if addr.lower() != addr and addr.upper() != addr:
        raise ValueError("bech32: mixed case")
    addr = addr.lower()
    pos = addr.rfind("1")
    if pos < 1 or pos + 7 > len(addr) or len(addr) > 90:
        raise ValueError("bech32: bad separator or length")
    hrp = addr[:pos]
    try:
        data = [_BECH32_INDEX[c] for c in addr[pos + 1:]]
    except KeyError as exc:
        raise ValueError(f"bech32: bad character {exc}") from None
    const = _polymod(_hrp_expand(hrp) + data)
    witver = data[0]
    if const != (_BECH32_CONST if witver == 0 else _BECH32M_CONST):
        raise ValueError("bech32: bad checksum")
    program = bytes(_convertbits(data[1:-6], 5, 8, False))
    if not 2 <= len(program) <= 40 or witver > 16:
        raise ValueError("bech32: bad program")
    return hrp, witver, program


def decompress_pubkey(pub: bytes) -> bytes:
    """65-byte uncompressed secp256k1 key from a 33-byte compressed one."""
    if len(pub) != 33 or pub[0] not in (2, 3):
        raise ValueError("not a compressed public key")
    x = int.from_bytes(pub[1:], "big")
    y2 = (pow(x, 3, _P) + 7) % _P
    y = pow(y2, (_P + 1) // 4, _P)
    if y * y % _P != y2:
        raise ValueError("x is not on secp256k1")
    if (y & 1) != (pub[0] & 1):
        y = _P - y
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
