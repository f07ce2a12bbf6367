"""OpenPGP armor and packet parsing on the real Dream seller keys."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime

import pytest
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkmap.extract.pgp import crc24, dearmor, parse_armored, parse_key_packets

DUMP = DATA / "seized" / "dream-2016-sellers.sql"

# Computed independently: gpg --with-colons --import-options show-only --import
# on the pgp cell of seller 0ldamsterdam (row 1 of dnm_dream).
OLDAMSTERDAM_FPR = "1D9DEA5392C6A420C868ACC573E25F3B44E13E81"
OLDAMSTERDAM_SUB = "32EFEAB9BAFB826B4F845542703253C5997D12F0"


def _cell(seller: str) -> str:
    """The raw SQL text of a seller's pgp cell (still with MySQL escapes)."""
    text = DUMP.read_text(encoding="utf-8")
    m = re.search(r"\(\d+,'" + re.escape(seller) + r"','[^']*','[^']*','[^']*','((?:[^'\\]|\\.)*)'",
                  text)
    assert m, seller
    return m.group(1)


@pytest.fixture(scope="module")
def dump_text() -> str:
    return DUMP.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def armored() -> str:
    return _cell("0ldamsterdam").replace("\\n", "\n")


def test_known_seller_key(armored: str) -> None:
    [block] = parse_armored(armored)
    assert block.error is None and "no CRC24 line" not in block.warnings
    [key] = block.keys
    assert key.fingerprint == OLDAMSTERDAM_FPR
    assert key.key_id == OLDAMSTERDAM_FPR[-16:]
    assert (key.version, key.algorithm, key.bits) == (4, "RSA", 4096)
    assert key.created_at == datetime.fromtimestamp(1439482969, tz=UTC)
    assert key.user_ids == ["oldamsterdam"]
    assert [s.fingerprint for s in key.subkeys] == [OLDAMSTERDAM_SUB]
    rec = key.to_record(market_id="dream", account_handle="0ldamsterdam", locator="x")
    assert rec.subkeys[0]["bits"] == 4096 and rec.fingerprint == OLDAMSTERDAM_FPR


def test_all_dream_blocks(dump_text: str) -> None:
    n_markers = dump_text.count("BEGIN PGP PUBLIC KEY BLOCK")
    blocks = parse_armored(dump_text)  # the raw SQL text: \n literals, quotes, junk
    assert len(blocks) == n_markers == 745
    failed = [b for b in blocks if b.error]
    assert all(b.error for b in failed)
    assert sum(len(b.keys) for b in blocks) + len(failed) >= 745
    assert len({k.fingerprint for b in blocks for k in b.keys}) == 684
    algos = {(k.algorithm, k.bits) for b in blocks for k in b.keys}
    assert ("RSA", 4096) in algos and ("DSA", 1024) in algos


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_fingerprints_agree_with_gpg(dump_text: str) -> None:
    blocks = [b for b in parse_armored(dump_text) if b.keys][::37]  # 21 spread-out keys
    with tempfile.TemporaryDirectory() as home:
        for b in blocks:
            out = subprocess.run(
                ["gpg", "--homedir", home, "--batch", "--with-colons", "--import-options",
                 "show-only", "--import"], input=b.armored.encode(), capture_output=True,
                env={**os.environ, "GNUPGHOME": home}, timeout=30, check=False).stdout.decode()
            prev, fprs = None, []
            for line in out.splitlines():
                f = line.split(":")
                if f[0] in ("pub", "sub"):
                    prev = f[0]
                elif f[0] == "fpr" and prev == "pub":
                    fprs.append(f[9])
                    prev = None
            assert fprs == [k.fingerprint for k in b.keys]


def test_damaged_transport(armored: str) -> None:
    lines = armored.strip().split("\n")
    crc_line = next(i for i, ln in enumerate(lines) if re.fullmatch(r"=[A-Za-z0-9+/]{4}", ln))
    variants = {
        "html": armored.replace("\n", "<br>\n").replace("+", "&#43;"),
        "sql literals": armored.replace("\n", "\\n"),
        "indented": "\n".join("    " + ln for ln in lines),
        "no crc": "\n".join(lines[:crc_line] + lines[crc_line + 1:]),
        "no end + junk": "\n".join(lines[:crc_line + 1]) + "\nContact me on wickr: foo\n",
        "rewrapped": "\n".join(lines[:3]) + "\n" + "\n".join(
            re.findall(".{1,40}", "".join(lines[3:crc_line]))) + "\n" + "\n".join(
            lines[crc_line:]),
        "two keys": armored + "\nsome text\n" + armored,
    }
    for name, text in variants.items():
        blocks = parse_armored(f"My key:\n{text}\nthanks")
        assert blocks, name
        assert all(b.error is None for b in blocks), (name, [b.error for b in blocks])
        assert {k.fingerprint for b in blocks for k in b.keys} == {OLDAMSTERDAM_FPR}, name
    assert "no CRC24 line" in parse_armored(variants["no crc"])[0].warnings


def test_clear_reasons(armored: str) -> None:
    lines = armored.strip().split("\n")
    body_line = 4
    flipped = lines[:]
    ch = flipped[body_line][10]
    flipped[body_line] = flipped[body_line][:10] + ("A" if ch != "A" else "B") + \
        flipped[body_line][11:]
    [b] = parse_armored("\n".join(flipped))
    assert b.error and "CRC24 mismatch" in b.error and not b.keys
    [b] = parse_armored("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
                        "-----END PGP PUBLIC KEY BLOCK-----")
    assert b.error == "armored block holds no base64 data"
    # truncated in the middle of the primary key packet, CRC line lost too
    cut = "\n".join(lines[:6])
    [b] = parse_armored(cut)
    assert b.error and "truncated" in b.error
    raw, _ = dearmor(armored)
    with pytest.raises(ValueError, match="secret-key"):
        parse_key_packets(bytes([0x95]) + raw[1:])  # tag 5: a secret key


def test_crc24_vectors() -> None:
    assert crc24(b"") == 0xB704CE
    raw, _ = dearmor(_cell("0ldamsterdam").replace("\\n", "\n"))
    assert crc24(raw) != crc24(raw[:-1])


@given(st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_random_bytes_never_crash(data: bytes) -> None:
    text = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + base64.encodebytes(data).decode()
            + "-----END PGP PUBLIC KEY BLOCK-----")
    for b in parse_armored(text):
        assert (b.error is None) == bool(b.keys)
    try:
        parse_key_packets(data)
    except ValueError:
        pass


@given(st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truncations_and_mangling_never_crash(armored: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(armored)))
    junk = data.draw(st.text(max_size=30))
    pos = data.draw(st.integers(min_value=0, max_value=len(armored)))
    for text in (armored[:cut], armored[:pos] + junk + armored[pos:]):
        for b in parse_armored(text):
            assert (b.error is None) == bool(b.keys)
            if b.keys:
                # a key either comes out exactly right or not at all
                assert b.keys[0].fingerprint == OLDAMSTERDAM_FPR or "no CRC24 line" in b.warnings
