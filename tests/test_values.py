"""Identifier value types: known-answer vectors from the BIPs and real addresses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkmap.model.values import (
    b58decode,
    b58encode,
    bech32_decode,
    clean,
    clean_btc_address,
    clean_email,
    clean_jabber,
    clean_onion,
    clean_pgp_fingerprint,
    clean_session,
    clean_signal,
    clean_telegram,
    clean_wickr,
    clean_xmr_address,
    keccak256,
    xmr_address_kind,
)

# Bitcoin Core's base58_encode_decode.json vectors (hex -> base58)
BASE58 = [
    ("", ""), ("61", "2g"), ("626262", "a3gV"), ("636363", "aPEr"),
    ("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"),
    ("00eb15231dfceb60925886b67d065299925915aeb172c06647",
     "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"),
    ("516b6fcd0f", "ABnLTmg"), ("bf4f89001e670274dd", "3SEo3LWLoPntC"),
    ("572e4794", "3EFU7m"), ("ecac89cad93923c02321", "EJDM8drfXA6uyA"),
    ("10c8511e", "Rt5zm"), ("00000000000000000000", "1111111111"),
]


@pytest.mark.parametrize(("hexdata", "text"), BASE58)
def test_base58_vectors(hexdata: str, text: str) -> None:
    assert b58encode(bytes.fromhex(hexdata)) == text
    assert b58decode(text) == bytes.fromhex(hexdata)


@pytest.mark.parametrize(("text", "variant"), [
    # BIP173 valid bech32 checksums
    ("A12UEL5L", "bech32"), ("a12uel5l", "bech32"),
    ("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "bech32"),
    ("split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "bech32"),
    # BIP350 valid bech32m checksums
    ("A1LQFN3A", "bech32m"), ("a1lqfn3a", "bech32m"),
    ("abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx", "bech32m"),
])
def test_bech32_checksum_vectors(text: str, variant: str) -> None:
    dec = bech32_decode(text)
    assert dec is not None and dec[2] == variant


@pytest.mark.parametrize("text", ["A1G7SGD8", "a12UEL5L", "1nwldj5", "pzry9x0s0muk",
                                  "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx"])
def test_bech32_invalid(text: str) -> None:
    assert bech32_decode(text) is None


@pytest.mark.parametrize(("addr", "normal"), [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
    ("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
     "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
     "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y"),
    ("BC1SW50QGDZ25J", "bc1sw50qgdz25j"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
     "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
    ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
])
def test_btc_valid(addr: str, normal: str) -> None:
    assert clean_btc_address(addr) == normal


@pytest.mark.parametrize("addr", [
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",   # v0 with a bech32m checksum (BIP350)
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",         # v2 with a bech32 checksum (BIP350)
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",          # v0 program of 16 bytes
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # version 17
    "bc1pw5dgrnzv",                                  # program of 1 byte
    "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",     # testnet hrp
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",            # base58 checksum broken
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",
    "3Abracadabra1234567890abcdefghij",               # base58 word, no valid checksum
])
def test_btc_invalid(addr: str) -> None:
    assert clean_btc_address(addr) is None


@given(st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
               min_size=25, max_size=34).map(lambda s: "1" + s[1:]))
@settings(max_examples=300, deadline=None)
def test_random_base58_words_are_not_addresses(word: str) -> None:
    # a 32-bit checksum: a random word passes with probability 2**-32
    assert clean_btc_address(word) is None


@given(st.integers(min_value=0, max_value=33), st.sampled_from("23456789ABCDEFGH"))
@settings(max_examples=60, deadline=None)
def test_one_changed_char_breaks_btc_checksum(pos: int, ch: str) -> None:
    addr = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
    mutated = addr[:pos] + ch + addr[pos + 1:]
    if mutated != addr:
        assert clean_btc_address(mutated) is None


def test_keccak256_known_answers() -> None:
    # original Keccak (Monero's hash), not NIST SHA3-256
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert keccak256(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
    assert keccak256(b"x" * 200) != keccak256(b"x" * 199)  # crosses the 136-byte rate


XMR = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
       "wfn3RVGQBEP3A")  # the Monero project's published donation address


def test_monero_address() -> None:
    assert clean_xmr_address(XMR) == XMR
    assert xmr_address_kind(XMR) == "standard"
    assert clean_xmr_address(XMR[:-1] + "B") is None          # checksum
    assert clean_xmr_address(XMR[:60] + "z" + XMR[61:]) is None
    assert clean_xmr_address(XMR[:-1]) is None                # length


def test_onion() -> None:
    tor = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid"
    assert clean_onion(f"https://www.{tor.upper()}.onion/index.html") == f"{tor}.onion"
    assert clean_onion(tor[:-1] + "a" + ".onion") is None     # v3 checksum
    assert clean_onion("http://duskgytldkxiuqc6.onion:80/x") == "duskgytldkxiuqc6.onion"
    assert clean_onion("duskgytldkxiuqc1.onion") is None      # '1' is not base32
    assert clean_onion("example.com") is None


def test_contacts() -> None:
    assert clean_email(" <Foo.Bar@ProtonMail.COM>, ") == "foo.bar@protonmail.com"
    assert clean_email("not an email@") is None
    assert clean_jabber("xmpp:Vendor@Exploit.IM/phone") == "vendor@exploit.im"
    assert clean_wickr("@Drug_Lord.99") == "drug_lord.99"
    assert clean_wickr("ab") is None
    assert clean_telegram("https://t.me/Best_Vendor") == "best_vendor"
    assert clean_telegram("@abc") is None and clean_telegram("1abcdef") is None
    sid = "05" + "A1" * 32
    assert clean_session(sid) == sid.lower()
    assert clean_session("06" + "a1" * 32) is None
    assert clean_signal("+1 (555) 123-4567") == "+15551234567"
    assert clean_signal("Vendor_X.42") == "vendor_x.42"
    assert clean_signal("hello") is None
    assert clean_pgp_fingerprint("1d9d ea53 92c6 a420 c868  acc5 73e2 5f3b 44e1 3e81") == (
        "1D9DEA5392C6A420C868ACC573E25F3B44E13E81")
    assert clean("email", "A@B.io") == "a@b.io"
    with pytest.raises(KeyError):
        clean("icq", "123")


@given(st.text(max_size=120))
@settings(max_examples=200, deadline=None)
def test_cleaners_never_crash(text: str) -> None:
    for kind in ("btc_address", "xmr_address", "email", "wickr", "telegram", "session",
                 "jabber", "signal", "onion", "pgp_fingerprint"):
        out = clean(kind, text)
        assert out is None or isinstance(out, str)
