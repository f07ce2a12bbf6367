"""Bitcoin hashes and text encodings: SHA-256d, HASH160, base58(check), bech32/bech32m.

The one implementation of these formats in darkmap: the chain reader, identifier
validation (``darkmap.model.values``) and the simulator all use it. Functions here raise
``ValueError`` on input that is not a valid encoding; ``darkmap.model.values`` wraps the
decoders in the ``None``-returning convention of its cleaners.

Everything is pure Python. RIPEMD-160 falls back to a pure implementation where the
OpenSSL build lacks it (OpenSSL 3 moved it to the legacy provider). Bech32 checksums are
table-driven and start from a precomputed state for the ``bc`` prefix, because the
simulator encodes hundreds of thousands of addresses.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = [
    "B58_ALPHABET",
    "BECH32_ALPHABET",
    "b58check_decode",
    "b58check_encode",
    "b58decode",
    "b58encode",
    "bech32_decode",
    "bech32_encode",
    "bech32_parse",
    "decompress_pubkey",
    "hash160",
    "monero_b58decode",
    "ripemd160",
    "segwit_decode",
    "sha256d",
]

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32_ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_ALPHABET)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_P = 2**256 - 2**32 - 977  # secp256k1 field prime

# ------------------------------------------------------------------------------ hashes


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


# ------------------------------------------------------------------------------ base58


def b58encode(data: bytes) -> str:
    """Bitcoin-style base58 of ``data`` (each leading zero byte becomes a ``1``)."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises ``ValueError`` on a non-base58 character."""
    n = 0
    index = _B58_INDEX
    for ch in text:
        v = index.get(ch)
        if v is None:
            raise ValueError(f"not base58: {ch!r}")
        n = n * 58 + v
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def b58check_encode(version: int, payload: bytes) -> str:
    """Base58Check of ``version byte + payload`` (legacy addresses)."""
    raw = bytes([version]) + payload
    return b58encode(raw + sha256d(raw)[:4])


def b58check_decode(text: str) -> tuple[int, bytes]:
    """Inverse of :func:`b58check_encode`: ``(version, payload)``.

    Raises ``ValueError`` on a non-base58 character, a short string or a bad checksum.
    """
    raw = b58decode(text)
    if len(raw) < 5 or sha256d(raw[:-4])[:4] != raw[-4:]:
        raise ValueError("base58check: bad checksum")
    return raw[0], raw[1:-4]


# encoded length of a final block of n bytes (Monero's base58 works in 8-byte blocks)
_XMR_ENC_SIZES = (0, 2, 3, 5, 6, 7, 9, 10, 11)
_XMR_DEC_SIZES = {e: d for d, e in enumerate(_XMR_ENC_SIZES)}


def monero_b58decode(text: str) -> bytes | None:
    """Decode Monero's block base58 (11 chars per 8 bytes); ``None`` if invalid."""
    out = bytearray()
    for off in range(0, len(text), 11):
        chunk = text[off:off + 11]
        size = _XMR_DEC_SIZES.get(len(chunk))
        if not size:
            return None
        n = 0
        for ch in chunk:
            v = _B58_INDEX.get(ch)
            if v is None:
                return None
            n = n * 58 + v
        if n >> (8 * size):
            return None
        out += n.to_bytes(size, "big")
    return bytes(out)


# ------------------------------------------------------------------------------ bech32

_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _gen_table() -> tuple[int, ...]:
    """XOR of the generator terms selected by each 5-bit "top": one lookup per step."""
    out = []
    for top in range(32):
        acc = 0
        for i, g in enumerate(_GEN):
            if (top >> i) & 1:
                acc ^= g
        out.append(acc)
    return tuple(out)


_GEN_TABLE = _gen_table()


def _polymod(values: list[int], chk: int = 1) -> int:
    table = _GEN_TABLE
    for v in values:
        chk = ((chk & 0x1FFFFFF) << 5) ^ v ^ table[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


# Checksum state after the expanded prefix; fixed prefixes only, so hostile input
# cannot grow it.
_HRP_STATES = {hrp: _polymod(_hrp_expand(hrp)) for hrp in ("bc", "tb", "bcrt")}


def _hrp_state(hrp: str) -> int:
    state = _HRP_STATES.get(hrp)
    if state is not None:
        return state
    # A non-ASCII prefix expands to values over 31; the checksum only ever reads bits
    # 0-29 of the state, so masking keeps the table lookups in range without changing it.
    chk = 1
    for v in _hrp_expand(hrp):
        chk = ((chk & 0x1FFFFFF) << 5) ^ v ^ _GEN_TABLE[(chk >> 25) & 31]
    return chk & 0x3FFFFFFF


def _to_5bit(data: bytes) -> list[int]:
    """8-bit bytes to 5-bit groups, zero-padded at the end (BIP 173)."""
    nbits = len(data) * 8
    pad = (-nbits) % 5
    n = int.from_bytes(data, "big") << pad
    groups = (nbits + pad) // 5
    return [(n >> (5 * (groups - 1 - i))) & 31 for i in range(groups)]


def _from_5bit(data: list[int]) -> bytes:
    """5-bit groups back to bytes; raises ``ValueError`` on non-zero or over-long padding."""
    acc = bits = 0
    out = bytearray()
    for value in data:
        acc = (acc << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or ((acc << (8 - bits)) & 0xFF):
        raise ValueError("bech32: bad padding")
    return bytes(out)


def bech32_encode(hrp: str, witver: int, program: bytes) -> str:
    """Segwit address (BIP173 bech32 for v0, BIP350 bech32m for v1+)."""
    data = [witver] + _to_5bit(program)
    const = _BECH32_CONST if witver == 0 else _BECH32M_CONST
    pm = _polymod(data + [0] * 6, _hrp_state(hrp)) ^ const
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join([BECH32_ALPHABET[d] for d in data + checksum])


def bech32_parse(text: str) -> tuple[str, list[int], str]:
    """Split a bech32/bech32m string: ``(hrp, 5-bit data without checksum, variant)``.

    ``variant`` is ``"bech32"`` or ``"bech32m"``. Raises ``ValueError`` on mixed case,
    a length over 90, a missing separator, a character outside the alphabet or a bad
    checksum.
    """
    if text.lower() != text and text.upper() != text:
        raise ValueError("bech32: mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90:
        raise ValueError("bech32: bad separator or length")
    hrp = text[:pos]
    index = _BECH32_INDEX
    data = []
    for c in text[pos + 1:]:
        v = index.get(c)
        if v is None:
            raise ValueError(f"bech32: bad character {c!r}")
        data.append(v)
    const = _polymod(data, _hrp_state(hrp))
    if const == _BECH32_CONST:
        return hrp, data[:-6], "bech32"
    if const == _BECH32M_CONST:
        return hrp, data[:-6], "bech32m"
    raise ValueError("bech32: bad checksum")


def bech32_decode(addr: str) -> tuple[str, int, bytes]:
    """Inverse of :func:`bech32_encode`: ``(hrp, witness version, program)``.

    The checksum variant must match the version (bech32 for v0, bech32m for v1+) and the
    program must be 2-40 bytes; otherwise ``ValueError``.
    """
    hrp, data, variant = bech32_parse(addr)
    if not data:
        raise ValueError("bech32: no witness version")
    witver = data[0]
    if variant != ("bech32" if witver == 0 else "bech32m"):
        raise ValueError("bech32: checksum variant does not match the witness version")
    program = _from_5bit(data[1:])
    if not 2 <= len(program) <= 40 or witver > 16:
        raise ValueError("bech32: bad program")
    return hrp, witver, program


def segwit_decode(hrp: str, addr: str) -> tuple[int, bytes]:
    """A segwit address for ``hrp`` under BIP350: ``(witness version, program)``.

    Stricter than :func:`bech32_decode`: the prefix must be ``hrp`` and a version 0
    program must be 20 or 32 bytes. Raises ``ValueError`` otherwise.
    """
    got, witver, program = bech32_decode(addr)
    if got != hrp:
        raise ValueError(f"bech32: prefix {got!r}, expected {hrp!r}")
    if witver == 0 and len(program) not in (20, 32):
        raise ValueError("bech32: version 0 program must be 20 or 32 bytes")
    return witver, program


# ------------------------------------------------------------------------------ keys


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
