"""Value types for identifiers that link people: validate and normalise.

One small ``clean_<kind>`` function per kind, in the spirit of followthemoney's value
types: each takes untrusted text and returns the normalised value, or ``None`` when the
text is not a valid value of that kind. Checksums are verified wherever the format has
one (Bitcoin base58check and bech32/bech32m, Monero keccak, onion v3), so a random word
that happens to use the right alphabet is not taken for an address.

Normal forms (what the store keeps in ``identifiers.value``):

==================  ==========================================================
kind                normal form
==================  ==========================================================
``btc_address``     base58 as written (case matters); bech32 lower-cased
``xmr_address``     as written (base58 is case-sensitive)
``email``           lower-cased ``local@domain``
``wickr``           lower-cased user name
``telegram``        lower-cased user name, no ``@`` / ``t.me/``
``session``         66 lower-case hex digits starting ``05``
``jabber``          lower-cased bare JID ``local@domain`` (resource dropped)
``signal``          ``+<digits>`` for phone numbers, lower-cased user name otherwise
``onion``           lower-cased host ``<16 or 56 base32>.onion``
``pgp_fingerprint`` upper-case hex, no spaces (40 digits v4, 64 digits v5)
==================  ==========================================================
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from darkmap.model import encoding as _enc
from darkmap.model.encoding import b58encode, monero_b58decode

__all__ = [
    "CLEANERS",
    "KINDS",
    "b58decode",
    "b58encode",
    "base58check_decode",
    "bech32_decode",
    "btc_address_key",
    "clean",
    "clean_btc_address",
    "clean_email",
    "clean_jabber",
    "clean_onion",
    "clean_pgp_fingerprint",
    "clean_session",
    "clean_signal",
    "clean_telegram",
    "clean_wickr",
    "clean_xmr_address",
    "keccak256",
    "monero_b58decode",
    "segwit_decode",
    "xmr_address_kind",
]

# --------------------------------------------------------------------------- bitcoin
# The encodings live in darkmap.model.encoding; these wrappers give them the cleaners'
# None-for-invalid convention.


def b58decode(text: str) -> bytes | None:
    """Decode Bitcoin-style base58 (leading ``1`` = zero byte); ``None`` if invalid."""
    try:
        return _enc.b58decode(text)
    except ValueError:
        return None


def base58check_decode(text: str) -> bytes | None:
    """Decode base58check and verify its 4-byte double-SHA-256 checksum.

    Returns the payload (version byte + data) or ``None``.
    """
    try:
        version, payload = _enc.b58check_decode(text)
    except ValueError:
        return None
    return bytes([version]) + payload


def _printable(text: str) -> bool:
    # BIP173 allows only US-ASCII 33-126 anywhere in the string, the prefix included.
    return all(32 < ord(c) < 127 for c in text)


def bech32_decode(text: str) -> tuple[str, list[int], str] | None:
    """Decode a BIP173/BIP350 string: ``(hrp, data-without-checksum, variant)``.

    ``variant`` is ``"bech32"`` or ``"bech32m"``; ``None`` when the string is not
    valid (mixed case, bad characters, bad length or checksum).
    """
    if len(text) > 90 or not _printable(text):
        return None
    try:
        return _enc.bech32_parse(text)
    except ValueError:
        return None


def segwit_decode(hrp: str, addr: str) -> tuple[int, bytes] | None:
    """Decode a segwit address for ``hrp``: ``(witness version, program)`` or ``None``.

    Enforces BIP350: version 0 must use bech32 with a 20- or 32-byte program,
    versions 1-16 must use bech32m with a 2-40 byte program.
    """
    if len(addr) > 90 or not _printable(addr):
        return None
    try:
        return _enc.segwit_decode(hrp, addr)
    except ValueError:
        return None


# --------------------------------------------------------------------------- keccak

_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)
_ROT = (
    (0, 36, 3, 41, 18), (1, 44, 10, 45, 2), (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56), (27, 20, 39, 8, 14),
)
_M64 = (1 << 64) - 1


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (64 - n))) & _M64 if n else x


def _keccak_f(a: list[list[int]]) -> None:
    for rc in _RC:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        for x in range(5):
            for y in range(5):
                a[x][y] ^= d[x]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rol(a[x][y], _ROT[x][y])
        for x in range(5):
            for y in range(5):
                a[x][y] = b[x][y] ^ (~b[(x + 1) % 5][y] & b[(x + 2) % 5][y])
        a[0][0] ^= rc


def keccak256(data: bytes) -> bytes:
    """Original Keccak-256 (pad byte 0x01, as Monero uses; not NIST SHA3-256)."""
    rate = 136
    msg = bytearray(data)
    msg.append(0x01)
    while len(msg) % rate:
        msg.append(0)
    msg[-1] |= 0x80
    a = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            a[i % 5][i // 5] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        _keccak_f(a)
    out = b"".join(a[i % 5][i // 5].to_bytes(8, "little") for i in range(4))
    return out


# --------------------------------------------------------------------------- monero

_XMR_PREFIXES = {18: "standard", 19: "integrated", 42: "subaddress"}
_XMR_LENGTHS = {95: (18, 42), 106: (19,)}


def _xmr_kind(text: str) -> str | None:
    prefixes = _XMR_LENGTHS.get(len(text))
    if prefixes is None or text[0] not in "48":
        return None
    raw = monero_b58decode(text)
    if raw is None or raw[0] not in prefixes:
        return None
    if keccak256(raw[:-4])[:4] != raw[-4:]:
        return None
    return _XMR_PREFIXES[raw[0]]


# --------------------------------------------------------------------------- cleaners


def _strip(text: object) -> str:
    return str(text).strip().strip("<>\"'()[]{},;.").strip() if text is not None else ""


def btc_address_key(text: str) -> str:
    """The normal form of a Bitcoin address, without validating it: surrounding spaces
    dropped, bech32 lower-cased, base58 as written (case matters there).

    What a lookup of a stored address (``btc_address.address``) compares; the valid
    addresses :func:`clean_btc_address` returns are in this form.
    """
    s = text.strip()
    return s.lower() if s[:3].lower() == "bc1" else s


def clean_btc_address(text: object) -> str | None:
    """A Bitcoin mainnet address (P2PKH ``1``, P2SH ``3``, segwit ``bc1``), checksum-verified.

    bech32/bech32m addresses are returned lower-case; base58 ones unchanged
    (:func:`btc_address_key`).
    """
    s = _strip(text)
    if not 14 <= len(s) <= 90:
        return None
    if s[:3].lower() == "bc1":
        return btc_address_key(s) if segwit_decode("bc", s) else None
    if s[0] not in "13" or not 25 <= len(s) <= 35:
        return None
    payload = base58check_decode(s)
    if payload is None or len(payload) != 21 or payload[0] not in (0x00, 0x05):
        return None
    return s


def clean_xmr_address(text: object) -> str | None:
    """A Monero mainnet address (standard, integrated or subaddress), keccak-checked."""
    s = _strip(text)
    return s if _xmr_kind(s) else None


def xmr_address_kind(text: str) -> str | None:
    """``standard``, ``integrated`` or ``subaddress`` for a valid Monero address."""
    return _xmr_kind(_strip(text))


_EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")


def clean_email(text: object) -> str | None:
    """An e-mail address, lower-cased (providers treat local parts case-insensitively)."""
    s = _strip(text).removeprefix("mailto:").lower()
    if len(s) > 254 or not _EMAIL_RE.match(s):
        return None
    return s


_WICKR_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,31}$")


def clean_wickr(text: object) -> str | None:
    """A Wickr user name (3-32 letters, digits, ``_ . -``), lower-cased."""
    s = _strip(text).lstrip("@").lower()
    return s if _WICKR_RE.match(s) and not s.endswith((".", "-")) else None


_TG_RE = re.compile(r"^[a-z][a-z0-9_]{3,31}$")


def clean_telegram(text: object) -> str | None:
    """A Telegram user name (5-32 chars, letter first), without ``@``/``t.me/``, lower-cased."""
    s = _strip(text)
    s = re.sub(r"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/", "", s, flags=re.I)
    s = s.lstrip("@").lower()
    if not _TG_RE.match(s) or s.endswith("_") or "__" in s or len(s) < 5:
        return None
    return s


_SESSION_RE = re.compile(r"^05[0-9a-f]{64}$")


def clean_session(text: object) -> str | None:
    """A Session messenger id: 66 hex digits beginning ``05``, lower-cased."""
    s = _strip(text).lower()
    return s if _SESSION_RE.match(s) else None


_JID_RE = re.compile(
    r"^[^\s\"&'/:<>@]{1,1023}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def clean_jabber(text: object) -> str | None:
    """An XMPP/Jabber bare JID ``local@domain`` (resource dropped), lower-cased."""
    s = _strip(text).removeprefix("xmpp:").lower()
    s = s.split("/", 1)[0]
    return s if _JID_RE.match(s) else None


_SIGNAL_USER_RE = re.compile(r"^[a-z_][a-z0-9_]{2,31}\.[0-9]{2,9}$")


def clean_signal(text: object) -> str | None:
    """A Signal contact: phone number as ``+<digits>`` (8-15 digits) or a user name.

    Signal user names have the form ``name.NN`` (a discriminator of 2+ digits).
    """
    s = _strip(text)
    digits = re.sub(r"[\s().\-]", "", s)
    if re.fullmatch(r"\+?\d{8,15}", digits):
        return "+" + digits.lstrip("+")
    s = s.lstrip("@").lower()
    return s if _SIGNAL_USER_RE.match(s) else None


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_ONION_RE = re.compile(
    r"^(?:[a-z][a-z0-9+.\-]*://)?(?:[a-z0-9\-]+\.)*([a-z2-7]{56}|[a-z2-7]{16})\.onion"
    r"(?::\d+)?(?:[/?#].*)?$", re.S)


def _b32decode(s: str) -> bytes:
    n = 0
    for c in s:
        n = n << 5 | _B32.index(c)
    return n.to_bytes(len(s) * 5 // 8, "big")


def onion_v3_valid(host: str) -> bool:
    """Check a 56-char v3 onion label: version byte 3 and the SHA3-256 checksum."""
    raw = _b32decode(host)
    pubkey, check, version = raw[:32], raw[32:34], raw[34]
    if version != 3:
        return False
    digest = hashlib.sha3_256(b".onion checksum" + pubkey + bytes([version])).digest()
    return digest[:2] == check


def clean_onion(text: object) -> str | None:
    """A Tor onion service: returns the host ``<label>.onion`` (lower-cased).

    Accepts bare hosts and URLs (scheme, sub-domains, port and path are dropped).
    v2 (16 chars) has no checksum; v3 (56 chars) must pass its version and checksum.
    """
    s = _strip(text).lower()
    m = _ONION_RE.match(s)
    if not m:
        return None
    label = m.group(1)
    if len(label) == 56 and not onion_v3_valid(label):
        return None
    return f"{label}.onion"


def clean_pgp_fingerprint(text: object) -> str | None:
    """An OpenPGP fingerprint: 40 (v4) or 64 (v5) hex digits, upper-case, no spaces."""
    s = re.sub(r"[\s:]", "", _strip(text)).upper().removeprefix("0X")
    return s if len(s) in (40, 64) and all(c in "0123456789ABCDEF" for c in s) else None


CLEANERS: dict[str, Callable[[object], str | None]] = {
    "pgp_fingerprint": clean_pgp_fingerprint,
    "btc_address": clean_btc_address,
    "xmr_address": clean_xmr_address,
    "email": clean_email,
    "wickr": clean_wickr,
    "telegram": clean_telegram,
    "session": clean_session,
    "jabber": clean_jabber,
    "signal": clean_signal,
    "onion": clean_onion,
}
KINDS = tuple(CLEANERS)


def clean(kind: str, text: object) -> str | None:
    """Normalise ``text`` as identifier ``kind``; ``None`` if invalid. Unknown kind: KeyError."""
    return CLEANERS[kind](text)
