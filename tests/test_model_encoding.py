"""The shared Bitcoin encodings (darkmap.model.encoding) and their None-returning wrappers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkmap.model import encoding as enc
from darkmap.model import values

# BIP173 / BIP350 address vectors: (address, hrp, witness version, program hex)
SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc", 0,
     "751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "tb", 0,
     "1863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc", 1,
     "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    ("BC1SW50QGDZ25J", "bc", 16, "751e"),
]


@pytest.mark.parametrize(("addr", "hrp", "ver", "prog"), SEGWIT)
def test_segwit_vectors_both_conventions(addr: str, hrp: str, ver: int, prog: str) -> None:
    program = bytes.fromhex(prog)
    assert enc.bech32_decode(addr) == (hrp, ver, program)
    assert enc.segwit_decode(hrp, addr) == (ver, program)
    assert values.segwit_decode(hrp, addr) == (ver, program)
    assert enc.bech32_encode(hrp, ver, program) == addr.lower()


def test_segwit_decode_is_stricter_than_bech32_decode() -> None:
    # A v0 program of 25 bytes is well-formed bech32 but not a valid BIP141 program.
    odd = enc.bech32_encode("bc", 0, bytes(range(25)))
    assert enc.bech32_decode(odd) == ("bc", 0, bytes(range(25)))
    with pytest.raises(ValueError):
        enc.segwit_decode("bc", odd)
    assert values.segwit_decode("bc", odd) is None
    # Right program, wrong network prefix.
    with pytest.raises(ValueError):
        enc.segwit_decode("bc", SEGWIT[1][0])
    assert values.segwit_decode("bc", SEGWIT[1][0]) is None


def test_checksum_variant_must_match_version() -> None:
    # BIP350 invalid vectors: v0 with a bech32m checksum, v1 with a bech32 checksum.
    for bad in ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd"):
        hrp, data, variant = enc.bech32_parse(bad)  # the checksum itself is valid
        assert variant == ("bech32m" if data[0] == 0 else "bech32")
        with pytest.raises(ValueError):
            enc.bech32_decode(bad)
        assert values.segwit_decode("bc", bad) is None


def test_base58check_conventions() -> None:
    addr = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    version, payload = enc.b58check_decode(addr)
    assert version == 0 and payload.hex() == "62e907b15cbf27d5425399ebf6f0fb50ebb88f18"
    assert values.base58check_decode(addr) == bytes([version]) + payload
    assert enc.b58check_encode(version, payload) == addr
    broken = addr[:-1] + "b"
    with pytest.raises(ValueError):
        enc.b58check_decode(broken)
    assert values.base58check_decode(broken) is None
    with pytest.raises(ValueError):
        enc.b58decode("0OIl")
    assert values.b58decode("0OIl") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=95))
def test_hostile_text_only_ever_raises_value_error(text: str) -> None:
    # Non-ASCII prefixes expand to values over 31: the table-driven checksum must not
    # index out of range on them.
    for prefix in ("", "bc1", "\u4e2d1", "b\u00e91"):
        s = prefix + text
        for decode in (enc.bech32_decode, enc.bech32_parse, enc.b58check_decode):
            try:
                decode(s)
            except ValueError:
                pass
        assert values.bech32_decode(s) is None or values.bech32_decode(s)[0].isascii()
        assert values.segwit_decode("bc", s) is None or s.isascii()


def test_non_ascii_prefix_round_trips() -> None:
    for hrp in ("\u4e2d", "b\u00e9", "xyz"):
        addr = enc.bech32_encode(hrp, 1, bytes(range(32)))
        assert enc.bech32_decode(addr) == (hrp, 1, bytes(range(32)))
        assert values.bech32_decode(addr) is None or hrp.isascii()
