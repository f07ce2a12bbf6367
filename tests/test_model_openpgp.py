"""The shared OpenPGP wire format (darkmap.model.openpgp) against the real Dream seller keys."""

from __future__ import annotations

import re

import pytest
from conftest import DATA

from darkmap.extract.pgp import dearmor, parse_armored
from darkmap.model.openpgp import armor, crc24, packet, parse_packets
from darkmap.simulate.pgp_keys import make_key

DUMP = DATA / "seized" / "dream-2016-sellers.sql"


@pytest.fixture(scope="module")
def real_blocks() -> list[bytes]:
    """Packet bytes of the first real armored keys in the Dream dump that decode cleanly."""
    text = DUMP.read_text(encoding="utf-8").replace("\\n", "\n")
    out = []
    for block in parse_armored(text[:2_000_000]):
        if block.error is None and block.keys:
            raw, _ = dearmor(block.armored)
            out.append(raw)
        if len(out) == 20:
            break
    assert len(out) == 20
    return out


def test_crc24_reference_values() -> None:
    assert crc24(b"") == 0xB704CE  # the CRC's initial value, per RFC 4880 6.1
    assert crc24(b"123456789") == 0x21CF02  # CRC-24/OpenPGP check value


@pytest.mark.parametrize("size", [0, 1, 191, 192, 8383, 8384, 70000])
def test_packet_lengths_round_trip(size: int) -> None:
    body = bytes(i % 251 for i in range(size))
    framed = packet(13, body) + packet(2, b"x")
    packets, err = parse_packets(framed)
    assert err is None
    assert [(p.tag, p.body, p.offset) for p in packets] == [
        (13, body, 0), (2, b"x", len(framed) - 3)]
    header = len(framed) - 3 - size
    assert header == (2 if size < 192 else 3 if size < 8384 else 6)


def test_real_keys_reframe_and_rearmor(real_blocks: list[bytes]) -> None:
    for raw in real_blocks:
        packets, err = parse_packets(raw)
        assert err is None and packets
        reframed = b"".join(packet(p.tag, p.body) for p in packets)
        again, err = parse_packets(reframed)
        assert err is None
        assert [(p.tag, p.body) for p in again] == [(p.tag, p.body) for p in packets]
        decoded, warnings = dearmor(armor(raw, (("Comment", "re-armored"),)))
        assert decoded == raw and warnings == []


def test_simulated_key_reads_back_through_the_parser() -> None:
    key = make_key(bytes(range(32)), "vendor <v@example.onion>", 1_500_000_000)
    [block] = parse_armored(key.armored)
    assert block.error is None and block.warnings == []
    [parsed] = block.keys
    assert parsed.fingerprint == key.fingerprint
    assert parsed.user_ids == ["vendor <v@example.onion>"]
    assert re.search(r"^=[A-Za-z0-9+/]{4}$", key.armored, re.M)
