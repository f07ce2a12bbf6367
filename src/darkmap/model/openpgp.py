"""OpenPGP wire format (RFC 4880 / RFC 9580): armor checksum, armor writing, packet framing.

The one implementation of these pieces in darkmap: the key parser
(``darkmap.extract.pgp``, which adds the repair of damaged pasted text) and the
simulator's key writer (``darkmap.simulate.pgp_keys``) both use it.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

__all__ = [
    "Packet",
    "armor",
    "crc24",
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


def crc24(data: bytes) -> int:
    """The OpenPGP armor checksum (RFC 4880 6.1: CRC-24, init 0xB704CE, poly 0x1864CFB)."""
    crc = 0xB704CE
    table = _CRC24_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ b) & 0xFF]
    return crc


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
            body = b"".join(chunks)
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
