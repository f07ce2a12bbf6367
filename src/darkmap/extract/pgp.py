"""OpenPGP public keys from hostile text: armor, packets, fingerprints (RFC 4880/9580).

Vendors paste their keys into profiles, descriptions and database fields, and the text
arrives damaged: HTML-escaped, with ``\\n`` literals from SQL, re-wrapped or indented
lines, a missing CRC line or END marker, junk after the key, several keys in one block.
This module finds every ``BEGIN PGP PUBLIC KEY BLOCK`` in a text, repairs what can be
repaired, and parses the packets itself (no gpg needed), returning for each block either
the keys it holds or a reason it could not be read. The wire format itself (CRC-24,
packet framing) is ``darkmap.model.openpgp``, shared with the simulator's key writer.

Fingerprints: v4 = SHA-1(0x99 || len16 || key packet body), key id = its low 64 bits;
v5 = SHA-256(0x9A || len32 || body), v6 = SHA-256(0x9B || len32 || body), key id = the
high 64 bits; v3 = MD5(n || e), key id = low 64 bits of n.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from darkmap.errors import BadInputError
from darkmap.model.openpgp import crc24, crc24_many, parse_packets
from darkmap.model.records import PgpKeyRecord

__all__ = [
    "ALGORITHMS",
    "CURVES",
    "ArmorError",
    "PgpBlock",
    "PgpKey",
    "PgpSubkey",
    "crc24",
    "dearmor",
    "find_armor_blocks",
    "normalise_armor_text",
    "parse_armored",
    "parse_key_packets",
    "parse_normalised",
    "parse_normalised_many",
    "parse_packets",
]

ALGORITHMS: dict[int, str] = {
    1: "RSA", 2: "RSA-E", 3: "RSA-S", 16: "ElGamal", 17: "DSA", 18: "ECDH",
    19: "ECDSA", 20: "ElGamal-SE", 22: "EdDSA", 25: "X25519", 26: "X448",
    27: "Ed25519", 28: "Ed448",
}

# curve OID (hex of the OID body) -> (name, bits)
CURVES: dict[str, tuple[str, int]] = {
    "2a8648ce3d030107": ("nistp256", 256),
    "2b81040022": ("nistp384", 384),
    "2b81040023": ("nistp521", 521),
    "2b8104000a": ("secp256k1", 256),
    "2b2403030208010107": ("brainpoolP256r1", 256),
    "2b240303020801010b": ("brainpoolP384r1", 384),
    "2b240303020801010d": ("brainpoolP512r1", 512),
    "2b06010401da470f01": ("ed25519", 255),
    "2b060104019755010501": ("cv25519", 255),
    "2b6570": ("ed25519", 255),
    "2b6571": ("ed448", 448),
    "2b656e": ("cv25519", 255),
    "2b656f": ("x448", 448),
}
_FIXED_KEY_BITS = {25: ("cv25519", 255, 32), 26: ("x448", 448, 56),
                   27: ("ed25519", 255, 32), 28: ("ed448", 448, 57)}

_TAG_PUBKEY, _TAG_PUBSUBKEY, _TAG_USERID = 6, 14, 13
_TAG_SECKEY, _TAG_SECSUBKEY = 5, 7


class ArmorError(BadInputError):
    """Raised when an armored block or its packets cannot be read; the message is the reason."""


@dataclass(slots=True)
class PgpSubkey:
    """A public subkey (encryption or signing) bound to a primary key."""

    fingerprint: str
    key_id: str
    version: int
    algorithm: str
    bits: int | None
    curve: str | None
    created_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form used in ``PgpKeyRecord.subkeys``."""
        return {"fingerprint": self.fingerprint, "key_id": self.key_id,
                "version": self.version, "algorithm": self.algorithm, "bits": self.bits,
                "curve": self.curve,
                "created_at": self.created_at.isoformat() if self.created_at else None}


@dataclass(slots=True)
class PgpKey:
    """A transferable public key: primary key, user ids, subkeys."""

    fingerprint: str
    key_id: str
    version: int
    algorithm: str
    bits: int | None
    curve: str | None
    created_at: datetime | None
    user_ids: list[str] = field(default_factory=list)
    subkeys: list[PgpSubkey] = field(default_factory=list)
    armored: str = ""

    def to_record(self, *, market_id: str | None = None, account_handle: str | None = None,
                  field: str = "pgp", locator: str = "") -> PgpKeyRecord:
        """The store record for this key as published by ``account_handle``."""
        return PgpKeyRecord(
            fingerprint=self.fingerprint, key_id=self.key_id, algorithm=self.algorithm,
            bits=self.bits, created_at=self.created_at, user_ids=list(self.user_ids),
            subkeys=[s.as_dict() for s in self.subkeys], armored=self.armored,
            market_id=market_id, account_handle=account_handle, field=field,
            locator=locator)


@dataclass(slots=True)
class PgpBlock:
    """One armored block found in a text: its keys, or why none could be read.

    ``start``/``end`` are offsets in the (normalised) text that was searched.
    ``warnings`` note repaired damage (missing CRC, trailing bytes...).
    """

    index: int
    start: int
    end: int
    armored: str
    keys: list[PgpKey] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- armor

# Armor markers are found from their words, never by a pattern that starts at every dash or
# space (``-{2,}\s*BEGIN`` scanned from each of 50,000 dashes is quadratic): the literal is
# found first, then the dashes and spaces before it are walked back over (C-level rstrip)
# and those after it taken by a possessive pattern. Each marker costs its own length.
_BEGIN_WORDS_RE = re.compile(r"BEGIN PGP PUBLIC KEY BLOCK", re.I)
_END_WORDS_RE = re.compile(r"END PGP PUBLIC KEY BLOCK", re.I)
_MARKER_TAIL_RE = re.compile(r"\s*+-*+")
_HEADER_RE = re.compile(r"^\s*(Version|Comment|Charset|Hash|MessageID|[A-Z][A-Za-z-]{1,30}):\s")
_B64_LINE_RE = re.compile(r"^[A-Za-z0-9+/]+=*$")
_CRC_RE = re.compile(r"^=[A-Za-z0-9+/]{4}$")
_CRC_TOKEN_RE = re.compile(r"=[A-Za-z0-9+/]{4}")
_SPACE_RE = re.compile(r"\s")
_TAG_RE = re.compile(r"<\s*+(br|/?p|/?div|/?pre|/?li)\b[^>]*+>", re.I)
_ANY_TAG_RE = re.compile(r"<[^>]{0,200}>")
_ARMOR_CHARS_RE = re.compile(r"[^A-Za-z0-9+/]")
_ARMOR_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
"""The base64 alphabet: what ``_ARMOR_CHARS_RE`` does not match (deleted with
``bytes.translate`` in ASCII text, the rest counted: its matches, at C speed)."""


def _marker_start(text: str, lo: int, words_at: int, min_dashes: int) -> int | None:
    """Start of ``-{min_dashes,}\\s*`` ending at ``words_at`` (not before ``lo``), or None.

    The leftmost start a regex ``-*\\s*WORDS`` would find: the whitespace just before the
    words, then the run of dashes before that.
    """
    before = text[lo:words_at]
    spaced = before.rstrip()
    dashed = spaced.rstrip("-")
    if len(spaced) - len(dashed) < min_dashes:
        return None
    return lo + len(dashed)


def _marker_end(text: str, pos: int) -> int:
    """End of the ``\\s*-*`` run that follows a marker's words at ``pos``."""
    m = _MARKER_TAIL_RE.match(text, pos)
    return m.end() if m else pos


_BEGIN_WORDS = "BEGIN PGP PUBLIC KEY BLOCK"
_END_WORDS = "END PGP PUBLIC KEY BLOCK"


def _upper(text: str) -> str | None:
    """``text`` upper-cased when it is ASCII (then a marker's words are found in it with
    ``str.find``, at the same offsets, as the case-insensitive regex finds them in
    ``text``: a C-speed search instead of a regex step per character); else None."""
    return text.upper() if text.isascii() else None


def _words_at(rx: re.Pattern[str], words: str, text: str, up: str | None, pos: int,
              limit: int) -> tuple[int, int] | None:
    """``(start, end)`` of the first match of the marker words ``rx`` in
    ``text[pos:limit]`` (``up``: :func:`_upper` of ``text``)."""
    if up is not None:
        j = up.find(words, pos, limit)
        return None if j < 0 else (j, j + len(words))
    m = rx.search(text, pos, limit)
    return None if m is None else m.span()


def _find_begin(text: str, pos: int = 0, up: str | None = None) -> tuple[int, int] | None:
    """``(start, end)`` of the first BEGIN marker at or after ``pos``, like the regex
    ``-{2,}\\s*BEGIN PGP PUBLIC KEY BLOCK\\s*-*`` (case-insensitive), in linear time;
    ``up`` is :func:`_upper` of ``text`` when the caller has it."""
    lo = pos
    n = len(text)
    while (w := _words_at(_BEGIN_WORDS_RE, _BEGIN_WORDS, text, up, pos, n)) is not None:
        start = _marker_start(text, lo, w[0], 2)
        if start is not None:
            return start, _marker_end(text, w[1])
        lo = pos = w[1]  # the dashes before a later marker cannot reach back past this one
    return None


def _find_end(text: str, pos: int = 0, limit: int | None = None,
              up: str | None = None) -> tuple[int, int] | None:
    """``(start, end)`` of the first END marker in ``text[pos:limit]``, like the regex
    ``-*\\s*END PGP PUBLIC KEY BLOCK\\s*-*`` searched there, in linear time."""
    limit = len(text) if limit is None else limit
    w = _words_at(_END_WORDS_RE, _END_WORDS, text, up, pos, limit)
    if w is None:
        return None
    start = _marker_start(text, pos, w[0], 0)
    tail = _MARKER_TAIL_RE.match(text, w[1], limit)
    return (start if start is not None else w[0]), (tail.end() if tail else w[1])


def _strip_tags(text: str) -> str:
    """``<br>``/``<p>``/... become line breaks and other tags go, as two regex passes would
    do, but only over the text up to the last ``>``: every tag ends with one, and a tag
    opener after it (``<br`` repeated with no ``>``) would otherwise rescan to the end."""
    last = text.rfind(">")
    if last < 0:
        return text
    head, tail = text[:last + 1], text[last + 1:]
    head = _TAG_RE.sub("\n", head)
    return _ANY_TAG_RE.sub("", head) + tail


def normalise_armor_text(text: str) -> str:
    """Undo the usual transport damage: HTML, ``\\n`` literals, CR line ends."""
    if "&" in text:
        text = html.unescape(text)
    if "\\" in text:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    if "<" in text:
        text = _strip_tags(text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")


def find_armor_blocks(text: str) -> list[tuple[int, int, str]]:
    """Locate armored public key blocks: ``(start, end, block_text)`` in normalised text.

    A block ends at its END marker; without one, at the next BEGIN or where the lines
    stop looking like armor. Linear in the length of ``text``.
    """
    return [(start, end, text[start:end]) for start, end, _b, _e in _armor_spans(text)]


def _armor_spans(text: str) -> list[tuple[int, int, int, int | None]]:
    """Each block of :func:`find_armor_blocks` as ``(start, end, body_start, body_end)``:
    the body is what lies between the BEGIN marker and the END marker's start (``None``:
    no END marker, the body runs to ``end``), as :func:`dearmor` finds them in the block."""
    starts: list[tuple[int, int]] = []
    pos = 0
    up = _upper(text)
    while (found := _find_begin(text, pos, up)) is not None:
        starts.append(found)
        pos = found[1]
    out = []
    for i, (b_start, b_end) in enumerate(starts):
        limit = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        end_m = _find_end(text, b_end, limit, up)
        end = end_m[1] if end_m else _armor_extent(text, b_end, limit)
        out.append((b_start, end, b_end, end_m[0] if end_m else None))
    return out


def _armor_extent(text: str, pos: int, limit: int) -> int:
    """Where an un-terminated block stops: after its CRC, or at the first non-armor line."""
    seen_data = False
    off = pos
    for line in text[pos:limit].split("\n"):
        s = line.strip()
        nxt = off + len(line) + 1
        if not s:
            off = nxt
            continue
        if _CRC_RE.match(s):
            return min(off + len(line), limit)
        if _B64_LINE_RE.match(s) and (len(s) >= 16 or seen_data):
            seen_data = True
        elif not seen_data and _HEADER_RE.match(line):
            pass
        elif seen_data:
            return off
        off = nxt
    return limit


def _crc_token(text: str) -> int:
    """Offset of the first whitespace-separated token of ``text`` that is a CRC line's
    ``=XXXX`` (``_CRC_RE``), or -1: found from the few ``=`` in the text, not by
    splitting it."""
    pos = text.find("=")
    while pos >= 0:
        if pos == 0 or text[pos - 1].isspace():  # a token starts with it
            end = pos + 5
            if ((end >= len(text) or text[end].isspace())
                    and _CRC_TOKEN_RE.fullmatch(text, pos, end)):
                return pos
        ws = _SPACE_RE.search(text, pos)  # no CRC token before the next token
        if ws is None:
            return -1
        pos = text.find("=", ws.end())
    return -1


def _data_start(body: str) -> int:
    """Where an armored body's data starts: after the header lines and blank lines (the
    lines of ``body.split("\\n")``, walked one by one until the first line of data)."""
    off, n = 0, len(body)
    while True:
        nl = body.find("\n", off)
        line = body[off:] if nl < 0 else body[off:nl]
        if line.strip() and not (_HEADER_RE.match(line)
                                 and not _B64_LINE_RE.match(line.strip())):
            return off
        if nl < 0:
            return n
        off = nl + 1


def _armor_data(body: str) -> tuple[str, str | None]:
    """The base64 text of an armored body (between the markers) and its CRC token.

    Header lines (and blank lines) come first; from the first line of data on, every
    whitespace-separated token is data, up to the first that is a CRC line's ``=XXXX``.
    """
    return _rest_data(body[_data_start(body):])


def _rest_data(rest: str) -> tuple[str, str | None]:
    """:func:`_armor_data` of the body from its first line of data on."""
    if rest.count("=") > 64:  # damage made of '='s: token by token, as cheap as it gets
        toks = rest.split()
        for i, tok in enumerate(toks):
            if _CRC_RE.match(tok):
                return "".join(toks[:i]), tok
        return "".join(toks), None
    crc_at = _crc_token(rest)
    if crc_at < 0:
        return "".join(rest.split()), None
    return "".join(rest[:crc_at].split()), rest[crc_at:crc_at + 5]


_SPACE_BYTES = bytes(c for c in range(128) if chr(c).isspace())
"""The ASCII characters ``str.split()`` splits at."""
_NOT_ARMOR_BYTES = bytes(c for c in range(256) if c not in _ARMOR_BYTES)


def dearmor(block: str) -> tuple[bytes, list[str]]:
    """Decode one armored block to packet bytes, checking the CRC when present.

    Tolerates missing blank line after headers, indented/re-wrapped lines and a
    missing CRC (noted in the returned warnings). Raises :class:`ArmorError` with the
    reason when the block holds no decodable data or its CRC does not match.
    """
    up = _upper(block)
    b = _find_begin(block, 0, up)
    body = block[b[1]:] if b else block
    e = _find_end(body, 0, None, None if up is None else up[b[1]:] if b else up)
    return _dearmor_body(body[:e[0]] if e else body, e is not None)


def _dearmor_body(body: str, has_end: bool) -> tuple[bytes, list[str]]:
    """:func:`dearmor` of the text between a block's markers (``has_end``: whether an
    END marker closed it)."""
    raw, warnings, want = _dearmor_data(body, has_end)
    if want is not None:
        _check_crc(raw, want, crc24(raw))
    return raw, warnings


def _check_crc(raw: bytes, want: int, got: int) -> None:
    """Raise the CRC mismatch of a block whose CRC line says ``want`` and whose data
    ``raw`` gives ``got``."""
    if want != got:
        raise ArmorError(f"armor CRC24 mismatch: block says {want:06X}, data gives {got:06X}"
                         f" ({len(raw)} bytes decoded)")


def _dearmor_data(body: str, has_end: bool) -> tuple[bytes, list[str], int | None]:
    """:func:`_dearmor_body` without the CRC check: the data, the warnings and the CRC
    its CRC line states (None: no CRC line, a warning)."""
    warnings: list[str] = [] if has_end else ["no END marker"]
    rest = body[_data_start(body):]
    if rest.isascii() and rest.count("=") <= 64:
        # _rest_data's tokens joined, at C speed: the ASCII bytes with the spaces deleted
        crc_at = _crc_token(rest)
        crc_text = None if crc_at < 0 else rest[crc_at:crc_at + 5]
        data = (rest if crc_at < 0 else rest[:crc_at]).encode("ascii").translate(
            None, _SPACE_BYTES).split(b"=", 1)[0]
        junk = len(data.translate(None, _ARMOR_BYTES))
        if junk:
            data = data.translate(None, _NOT_ARMOR_BYTES)
    else:
        text, crc_text = _rest_data(rest)
        text = text.split("=", 1)[0]
        junk = (len(text.encode("ascii").translate(None, _ARMOR_BYTES)) if text.isascii()
                else len(_ARMOR_CHARS_RE.findall(text)))
        data = (_ARMOR_CHARS_RE.sub("", text) if junk else text).encode("ascii")
    if junk:
        warnings.append(f"{junk} non-base64 characters dropped")
    if len(data) % 4 == 1:
        data = data[:-1]
        warnings.append("dangling base64 character dropped")
    data += b"=" * (-len(data) % 4)
    if not data:
        raise ArmorError("armored block holds no base64 data")
    try:
        raw = base64.b64decode(data)
    except (binascii.Error, ValueError) as exc:
        raise ArmorError(f"base64 decoding failed: {exc}") from None
    if crc_text is None:
        warnings.append("no CRC24 line")
        return raw, warnings, None
    return raw, warnings, int.from_bytes(base64.b64decode(crc_text[1:]), "big")


# ----------------------------------------------------------------------------- packets


def _mpi(body: bytes, pos: int) -> tuple[int, bytes, int]:
    if pos + 2 > len(body):
        raise ArmorError("key material truncated (MPI length)")
    bits = int.from_bytes(body[pos:pos + 2], "big")
    ln = (bits + 7) // 8
    if pos + 2 + ln > len(body):
        raise ArmorError(f"key material truncated (MPI of {bits} bits)")
    raw = body[pos + 2:pos + 2 + ln]
    # the integer's bit length: its first byte's and eight for each byte after it (a
    # leading zero byte, not what RFC 4880 writes, goes through the integer)
    size = ((ln - 1) * 8 + raw[0].bit_length() if raw and raw[0]
            else int.from_bytes(raw, "big").bit_length())
    return size, raw, pos + 2 + ln


def _oid(body: bytes, pos: int) -> tuple[str | None, int, int]:
    if pos >= len(body):
        raise ArmorError("key material truncated (curve OID)")
    ln = body[pos]
    if ln in (0, 0xFF) or pos + 1 + ln > len(body):
        raise ArmorError("bad curve OID length")
    oid = body[pos + 1:pos + 1 + ln].hex()
    name, bits = CURVES.get(oid, (None, 0))
    return name or f"oid:{oid}", bits, pos + 1 + ln


def _key_material(algo: int, body: bytes, pos: int) -> tuple[int | None, str | None,
                                                               bytes | None]:
    """Bits, curve name and (for RSA) the modulus bytes of the key material."""
    if algo in (1, 2, 3):
        bits, n_raw, pos = _mpi(body, pos)
        _, e_raw, pos = _mpi(body, pos)
        return bits, None, n_raw + b"\x00" + e_raw
    if algo in (16, 20):
        bits, _, pos = _mpi(body, pos)
        return bits, None, None
    if algo == 17:
        bits, _, pos = _mpi(body, pos)
        return bits, None, None
    if algo in (18, 19, 22):
        curve, bits, pos = _oid(body, pos)
        _mpi(body, pos)
        return bits or None, curve, None
    if algo in _FIXED_KEY_BITS:
        curve, bits, size = _FIXED_KEY_BITS[algo]
        if pos + size > len(body):
            raise ArmorError(f"key material truncated ({curve})")
        return bits, curve, None
    return None, None, None


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _parse_key_body(body: bytes) -> PgpSubkey:
    """Parse a public (sub)key packet body into its identity and parameters."""
    if not body:
        raise ArmorError("empty key packet")
    ver = body[0]
    bits: int | None
    if ver in (2, 3):
        if len(body) < 8:
            raise ArmorError(f"v{ver} key packet truncated")
        created = int.from_bytes(body[1:5], "big")
        algo = body[7]
        if algo not in (1, 2, 3):
            raise ArmorError(f"v3 key with non-RSA algorithm {algo}")
        bits, n_raw, pos = _mpi(body, 8)
        _, e_raw, pos = _mpi(body, pos)
        fpr = hashlib.md5(n_raw + e_raw, usedforsecurity=False).hexdigest().upper()
        return PgpSubkey(fpr, n_raw[-8:].hex().upper().rjust(16, "0"), ver,
                         ALGORITHMS[algo], bits, None, _utc(created))
    if ver == 4:
        if len(body) < 6:
            raise ArmorError("v4 key packet truncated")
        created = int.from_bytes(body[1:5], "big")
        algo = body[5]
        bits, curve, _ = _key_material(algo, body, 6)
        fpr = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body,
                           usedforsecurity=False).hexdigest().upper()
        return PgpSubkey(fpr, fpr[-16:], 4, ALGORITHMS.get(algo, f"unknown-{algo}"), bits,
                         curve, _utc(created))
    if ver in (5, 6):
        if len(body) < 10:
            raise ArmorError(f"v{ver} key packet truncated")
        created = int.from_bytes(body[1:5], "big")
        algo = body[5]
        bits, curve, _ = _key_material(algo, body, 10)
        prefix = b"\x9a" if ver == 5 else b"\x9b"
        fpr = hashlib.sha256(prefix + len(body).to_bytes(4, "big") + body).hexdigest().upper()
        return PgpSubkey(fpr, fpr[:16], ver, ALGORITHMS.get(algo, f"unknown-{algo}"), bits,
                         curve, _utc(created))
    raise ArmorError(f"unsupported key packet version {ver}")


def parse_key_packets(data: bytes) -> tuple[list[PgpKey], list[str]]:
    """Transferable public keys in a packet stream; returns keys and warnings.

    Each public-key packet (tag 6) starts a key; user ids (13) and subkeys (14) that
    follow belong to it. Raises :class:`ArmorError` when no key could be read.
    """
    packets, err = parse_packets(data)
    warnings = [err] if err else []
    keys: list[PgpKey] = []
    secret = False
    for p in packets:
        if p.tag == _TAG_PUBKEY:
            try:
                k = _parse_key_body(p.body)
            except ArmorError as exc:
                raise ArmorError(f"primary key packet at byte {p.offset}: {exc}") from None
            keys.append(PgpKey(k.fingerprint, k.key_id, k.version, k.algorithm, k.bits,
                               k.curve, k.created_at))
        elif p.tag in (_TAG_SECKEY, _TAG_SECSUBKEY):
            secret = True
        elif not keys:
            continue
        elif p.tag == _TAG_USERID:
            keys[-1].user_ids.append(p.body.decode("utf-8", "replace"))
        elif p.tag == _TAG_PUBSUBKEY:
            try:
                keys[-1].subkeys.append(_parse_key_body(p.body))
            except ArmorError as exc:
                warnings.append(f"subkey at byte {p.offset} skipped: {exc}")
    if not keys:
        if secret:
            raise ArmorError("block holds secret-key packets, not a public key")
        if err:
            raise ArmorError(f"no public key packet before damage: {err}")
        raise ArmorError(f"no public key packet among {len(packets)} packets")
    return keys, warnings


def parse_armored(text: str) -> list[PgpBlock]:
    """Every armored public key block in ``text``, each parsed or with its error.

    Never raises on bad input: damage is reported per block in ``error``/``warnings``.
    """
    return parse_normalised(normalise_armor_text(text))


def parse_normalised(norm: str) -> list[PgpBlock]:
    """:func:`parse_armored` of text already normalised (offsets refer to it)."""
    blocks = []
    for i, (start, end, b_start, b_end) in enumerate(_armor_spans(norm)):
        # the body between the markers, as dearmor(norm[start:end]) would find it: the
        # first BEGIN in the block is this one, the first END after it the one found
        res = PgpBlock(index=i, start=start, end=end, armored=norm[start:end].strip())
        try:
            raw, res.warnings = _dearmor_body(norm[b_start:end if b_end is None else b_end],
                                              b_end is not None)
            _read_keys(res, raw)
        except ArmorError as exc:
            res.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - hostile input must never crash a reader
            res.error = f"unexpected {type(exc).__name__}: {exc}"
        blocks.append(res)
    return blocks


def _read_keys(res: PgpBlock, raw: bytes) -> None:
    """The keys of a block's decoded data into ``res`` (its warnings extended)."""
    keys, more = parse_key_packets(raw)
    res.warnings.extend(more)
    for k in keys:
        k.armored = res.armored
    res.keys = keys


def parse_normalised_many(norms: list[str]) -> list[list[PgpBlock]]:
    """``[parse_normalised(n) for n in norms]``, the armor checksums of all their blocks
    computed together (:func:`~darkmap.model.openpgp.crc24_many`): each block is
    decoded, then every CRC is checked, then the keys of each block whose CRC holds (or
    that has none) are read, in the same steps and with the same errors as one by one."""
    out: list[list[PgpBlock]] = []
    decoded: list[tuple[PgpBlock, bytes, list[str], int | None]] = []
    for norm in norms:
        blocks = []
        for i, (start, end, b_start, b_end) in enumerate(_armor_spans(norm)):
            res = PgpBlock(index=i, start=start, end=end, armored=norm[start:end].strip())
            try:
                raw, warnings, want = _dearmor_data(
                    norm[b_start:end if b_end is None else b_end], b_end is not None)
                decoded.append((res, raw, warnings, want))
            except ArmorError as exc:
                res.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - hostile input must never crash a reader
                res.error = f"unexpected {type(exc).__name__}: {exc}"
            blocks.append(res)
        out.append(blocks)
    got = iter(crc24_many([raw for _res, raw, _w, want in decoded if want is not None]))
    for res, raw, warnings, want in decoded:
        try:
            if want is not None:
                _check_crc(raw, want, next(got))
            res.warnings = warnings  # (a block whose CRC fails keeps none, as one by one)
            _read_keys(res, raw)
        except ArmorError as exc:
            res.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - hostile input must never crash a reader
            res.error = f"unexpected {type(exc).__name__}: {exc}"
    return out
