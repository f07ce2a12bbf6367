"""OpenPGP wire format (RFC 4880 / RFC 9580): armor checksum, armor writing, packet framing.

The one implementation of these pieces in darkmap: the key parser
(``darkmap.extract.pgp``, which adds the repair of damaged pasted text) and the
simulator's key writer (``darkmap.simulate.pgp_keys``) both use it.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Packet",
    "armor",
    "crc24",
    "crc24_many",
    "packet",
    "parse_packets",
]


def _crc24_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


_CRC24_INIT = 0xB704CE
_CRC24_SPAN = 4096
"""Bytes one table lookup pass of :func:`crc24` covers (its table: 256 entries a byte)."""
_CRC24_BY_POSITION: list[Any] = []  # the numpy table and its row offsets, built on first use


def _crc24_loop(data: bytes, crc: int = _CRC24_INIT) -> int:
    table = _CRC24_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ b) & 0xFF]
    return crc


def _crc24_by_position() -> tuple[Any, Any]:
    """``T[i * 256 + b]``: the register a zero-started CRC-24 holds after byte ``b``
    followed by ``_CRC24_SPAN - 1 - i`` zero bytes (a flat uint32 array, 4 MiB), and the
    row offsets ``i * 256``.

    The CRC of a zero-started register is linear over GF(2) in the message, so the CRC
    of ``m`` bytes is the XOR of ``T[(span - m + i) * 256 + byte_i]``; a register started
    at ``r`` adds the zero-started CRC of ``r``'s three bytes followed by ``m - 3`` zero
    bytes (the table-driven update indexes by ``(crc >> 16) ^ byte``).
    """
    if not _CRC24_BY_POSITION:
        import numpy as np  # noqa: PLC0415 - numpy off the CLI start and short keys

        t = np.zeros((_CRC24_SPAN, 256), dtype=np.uint32)
        t[0] = np.array(_CRC24_TABLE, dtype=np.uint32)
        tab = t[0].copy()
        for d in range(1, _CRC24_SPAN):  # one zero byte more: the table update, vectorised
            prev = t[d - 1]
            t[d] = ((prev << 8) & 0xFFFFFF) ^ tab[prev >> 16]
        _CRC24_BY_POSITION.append((t[::-1].ravel().copy(),
                                   np.arange(_CRC24_SPAN, dtype=np.intp) * 256))
    return _CRC24_BY_POSITION[0]  # type: ignore[no-any-return]


def crc24(data: bytes) -> int:
    """The OpenPGP armor checksum (RFC 4880 6.1: CRC-24, init 0xB704CE, poly 0x1864CFB).

    Short data goes byte by byte through the table; longer data ``_CRC24_SPAN`` bytes
    at a time as one gather and XOR-reduce over a by-position table (numpy), the same
    value some twenty times faster.
    """
    n = len(data)
    if n < 256:
        return _crc24_loop(data)
    import numpy as np  # noqa: PLC0415 - numpy off the CLI start and short keys

    table, rows = _crc24_by_position()
    buf = np.frombuffer(data, dtype=np.uint8)
    crc = _CRC24_INIT
    for at in range(0, n, _CRC24_SPAN):
        part = buf[at:at + _CRC24_SPAN]
        m = len(part)
        if m < 3:
            return _crc24_loop(part.tobytes(), crc)
        first = (_CRC24_SPAN - m) * 256
        crc = (int(np.bitwise_xor.reduce(table[rows[_CRC24_SPAN - m:] + part]))
               ^ int(table[first + (crc >> 16)]) ^ int(table[first + 256 + ((crc >> 8) & 0xFF)])
               ^ int(table[first + 512 + (crc & 0xFF)]))
    return crc


_CRC24_STARTS: list[list[int]] = []  # built on first use, see _crc24_starts


def _crc24_starts() -> list[int]:
    """``S[n]``: what the register's start (0xB704CE) adds to the CRC of ``n`` bytes,
    ``3 <= n <= _CRC24_SPAN`` (the zero-started CRC of its three bytes followed by
    ``n - 3`` zero bytes, as :func:`crc24` adds it)."""
    if not _CRC24_STARTS:
        import numpy as np  # noqa: PLC0415 - numpy off the CLI start and short keys

        table, _rows = _crc24_by_position()
        first = (_CRC24_SPAN - np.arange(3, _CRC24_SPAN + 1)) * 256
        init = _CRC24_INIT
        starts = (table[first + (init >> 16)] ^ table[first + 256 + ((init >> 8) & 0xFF)]
                  ^ table[first + 512 + (init & 0xFF)])
        _CRC24_STARTS.append([0, 0, 0, *starts.tolist()])
    return _CRC24_STARTS[0]


_CRC24_PIECE = 64
"""Bytes of one piece of :func:`crc24_many` (its table: 64 KiB, which stays in the cache)."""
_CRC24_PIECES: list[Any] = []  # built on first use, see _crc24_pieces


def _crc24_pieces() -> tuple[Any, Any, Any]:
    """The tables of :func:`crc24_many`: the by-position table's last ``_CRC24_PIECE``
    rows (the zero-started CRC of a byte followed by 63 ... 0 zero bytes) and their row
    offsets; and ``Z[t * 768 + k * 256 + b]``, what a register holding ``b`` in its byte
    ``k`` (0: the high one) adds after ``t`` pieces of bytes (``t`` = 0: ``b`` in place).

    A register ``r`` followed by ``m >= 3`` bytes adds what its three bytes add as the
    first three of those bytes (see :func:`_crc24_by_position`).
    """
    if not _CRC24_PIECES:
        import numpy as np  # noqa: PLC0415 - numpy off the CLI start and short keys

        table, _rows = _crc24_by_position()
        full = table.reshape(_CRC24_SPAN, 256)
        piece = np.ascontiguousarray(full[_CRC24_SPAN - _CRC24_PIECE:]).ravel()
        offsets = np.arange(_CRC24_PIECE, dtype=np.intp) * 256
        pieces = _CRC24_SPAN // _CRC24_PIECE
        z = np.empty((pieces, 3, 256), dtype=np.uint32)
        b = np.arange(256, dtype=np.uint32)
        z[0] = (b << 16, b << 8, b)
        for t in range(1, pieces):
            m = t * _CRC24_PIECE
            z[t] = full[_CRC24_SPAN - m:_CRC24_SPAN - m + 3]
        _CRC24_PIECES.append((piece, offsets, z.ravel()))
    return _CRC24_PIECES[0]  # type: ignore[no-any-return]


def crc24_many(datas: list[bytes]) -> list[int]:
    """``[crc24(d) for d in datas]``, the messages of 3 to ``_CRC24_SPAN`` bytes in a few
    numpy passes together.

    For many short messages (an armored key's 1-4 KB each): a numpy call costs some
    microseconds, and several microseconds more when it runs between other work rather
    than in a loop (its code is no longer in the caches); a batch of keys pays that once.
    Each message, zero bytes put in front to a multiple of ``_CRC24_PIECE`` (they leave a
    zero-started CRC as it is), is cut into pieces; a piece's CRC is one gather and
    XOR-reduce over a 64 KiB table (the by-position table's 4 MiB, gathered from for a
    whole batch, would leave the cache), and each piece's CRC is carried past the pieces
    after it by three lookups (``Z``) before a message's pieces are XOR-ed together.
    Other lengths go through :func:`crc24` one by one.
    """
    out = [0] * len(datas)
    bulk = []
    for i, d in enumerate(datas):
        if 3 <= len(d) <= _CRC24_SPAN:
            bulk.append(i)
        else:
            out[i] = crc24(d)
    if not bulk:
        return out
    import numpy as np  # noqa: PLC0415 - numpy off the CLI start and short keys

    piece, offsets, z = _crc24_pieces()
    size = _CRC24_PIECE
    buf = np.frombuffer(b"".join([bytes(-len(datas[i]) % size) + datas[i] for i in bulk]),
                        dtype=np.uint8).reshape(-1, size)
    crcs = np.bitwise_xor.reduce(piece[offsets + buf], axis=1)
    # each piece is followed by t more pieces of its message
    count = np.array([-(-len(datas[i]) // size) for i in bulk], dtype=np.intp)
    ends = np.cumsum(count)
    after = np.repeat(ends, count) - np.arange(len(crcs), dtype=np.intp) - 1
    at = after * 768
    carried = (z[at + (crcs >> 16)] ^ z[at + (256 + ((crcs >> 8) & 0xFF))]
               ^ z[at + (512 + (crcs & 0xFF))])
    first = _crc24_starts()
    totals = np.bitwise_xor.reduceat(carried, ends - count).tolist()
    for i, c in zip(bulk, totals, strict=True):
        out[i] = c ^ first[len(datas[i])]
    return out


def armor(packets: bytes, headers: tuple[tuple[str, str], ...] = ()) -> str:
    """ASCII-armor a public key block: headers, 64-column base64 and the CRC24 line."""
    b64 = base64.b64encode(packets).decode("ascii")
    lines = ["-----BEGIN PGP PUBLIC KEY BLOCK-----"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append("")
    lines += [b64[i:i + 64] for i in range(0, len(b64), 64)]
    lines.append("=" + base64.b64encode(crc24(packets).to_bytes(3, "big")).decode("ascii"))
    lines.append("-----END PGP PUBLIC KEY BLOCK-----")
    return "\n".join(lines) + "\n"


def packet(tag: int, body: bytes) -> bytes:
    """``body`` behind a new-format packet header (RFC 4880 4.2.2), definite length."""
    n = len(body)
    if n < 192:
        head = bytes([n])
    elif n < 8384:
        n2 = n - 192
        head = bytes([(n2 >> 8) + 192, n2 & 0xFF])
    else:
        head = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + head + body


@dataclass(slots=True)
class Packet:
    """One packet of a stream: its tag, body and the byte offset of its header."""

    tag: int
    body: bytes
    offset: int


def parse_packets(data: bytes) -> tuple[list[Packet], str | None]:
    """Split OpenPGP packet bytes (old and new formats); returns packets and an error.

    Parsing stops at the first malformed packet; the error names its number, offset and
    why. Packets before it are returned.
    """
    packets: list[Packet] = []
    pos, n = 0, len(data)
    while pos < n:
        start = pos
        ctb = data[pos]
        num = len(packets) + 1
        if not ctb & 0x80:
            return packets, f"packet {num} at byte {start}: bad header byte 0x{ctb:02X}"
        pos += 1
        if ctb & 0x40:  # new format
            tag = ctb & 0x3F
            chunks = []
            while True:
                if pos >= n:
                    return packets, f"packet {num} (tag {tag}) at byte {start}: truncated length"
                o1 = data[pos]
                if o1 < 192:
                    ln, pos = o1, pos + 1
                    partial = False
                elif o1 < 224:
                    if pos + 1 >= n:
                        return packets, f"packet {num} (tag {tag}): truncated length"
                    ln, pos = ((o1 - 192) << 8) + data[pos + 1] + 192, pos + 2
                    partial = False
                elif o1 == 255:
                    if pos + 5 > n:
                        return packets, f"packet {num} (tag {tag}): truncated length"
                    ln, pos = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
                    partial = False
                else:
                    ln, pos = 1 << (o1 & 0x1F), pos + 1
                    partial = True
                if pos + ln > n:
                    return packets, (f"packet {num} (tag {tag}) at byte {start}: truncated, "
                                     f"needs {ln} bytes, {n - pos} left")
                chunks.append(data[pos:pos + ln])
                pos += ln
                if not partial:
                    break
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        else:
            tag = (ctb >> 2) & 0x0F
            ltype = ctb & 3
            if ltype == 3:
                ln = n - pos
            else:
                size = (1, 2, 4)[ltype]
                if pos + size > n:
                    return packets, f"packet {num} (tag {tag}): truncated length"
                ln = int.from_bytes(data[pos:pos + size], "big")
                pos += size
            if pos + ln > n:
                return packets, (f"packet {num} (tag {tag}) at byte {start}: truncated, "
                                 f"needs {ln} bytes, {n - pos} left")
            body = data[pos:pos + ln]
            pos += ln
        packets.append(Packet(tag, body, start))
    return packets, None
