"""The C-speed paths of the dump reader, the armor reader and the identifier scan give
what the plain paths they stand in for give (#21): CRC-24 over a by-position table and
the byte loop, MySQL unescaping by ``str.replace`` and by the escape regex, a tuple's
values in one pass and by match-then-findall, patterns tried only where a match can
start and ``finditer`` over the whole text."""

from __future__ import annotations

import base64
import os
import re
from functools import lru_cache

from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkmap.extract import identifiers as ids
from darkmap.extract import pgp
from darkmap.importers import sqldump
from darkmap.importers.sqldump import iter_insert_rows
from darkmap.model import openpgp

_SETTINGS = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


@lru_cache(maxsize=1)
def dream_cells() -> tuple[str, ...]:
    """The PGP and description cells of the real Dream dump."""
    text = (DATA / "seized" / "dream-2016-sellers.sql").read_text(encoding="utf-8")
    return tuple(c for r in iter_insert_rows(text, 11) if r.values
                 for c in (r.values[5], r.values[7]) if c)


def test_crc24_by_position_is_the_byte_loop() -> None:
    span = openpgp._CRC24_SPAN
    for n in (0, 1, 2, 3, 255, 256, 257, span - 1, span, span + 1, span + 2, span + 3,
              2 * span, 3 * span + 7, 50_000):
        data = os.urandom(n)
        assert openpgp.crc24(data) == openpgp._crc24_loop(data), n
    # the RFC 4880 check value of the armor checksum
    assert openpgp.crc24(b"123456789") == 0x21CF02


@_SETTINGS
@given(st.binary(min_size=250, max_size=9000))
def test_crc24_any_bytes(data: bytes) -> None:
    assert openpgp.crc24(data) == openpgp._crc24_loop(data)


_PIECES = ["\\", "n", "r", "t", "'", '"', "0", "a", "%", "_", "Z", "b", "\\\\", "''", '""',
           "é", "1", "7", "8", "x", "N", "u", "\n", "\x00", "\ud800"]


@_SETTINGS
@given(st.lists(st.sampled_from(_PIECES), max_size=14), st.booleans())
def test_unescape_is_the_escape_regex(pieces: list[str], dq: bool) -> None:
    s = "".join(pieces)
    want = (sqldump._ESC_D if dq else sqldump._ESC_S).sub(sqldump._esc, s)
    assert sqldump._unescape(s, dq) == want


def test_unescape_on_the_real_dump_is_the_escape_regex() -> None:
    text = (DATA / "seized" / "dream-2016-sellers.sql").read_text(encoding="utf-8")
    cells = [v[1:-1] for v in sqldump._FAST_VALUES.findall(text) if v.startswith("'")]
    escaped = [c for c in cells if "\\" in c]
    assert len(escaped) > 1000  # descriptions and keys: \n, \', \", \\ and more
    for c in cells:
        assert sqldump._unescape(c) == sqldump._ESC_S.sub(sqldump._esc, c)


_TOKENS = ["(", ")", ",", "'a'", "'b\\'c'", "''''", "NULL", "null", "-1", "2.5", "1e3", " ",
           "\n", "'x", "\\", "0x1F", "'", "--", "'\\n'", "\\'", "''", "\\\\", "'\\\\'",
           "'\\\\\\''", "'it''s'", "a", "é"]


@_SETTINGS
@given(st.lists(st.sampled_from(_TOKENS), max_size=10))
def test_values_in_one_pass_are_match_then_findall(tokens: list[str]) -> None:
    text = "(" + "".join(tokens)
    m = sqldump._FAST_TUPLE.match(text, 0)
    got = sqldump._fast_values(text, 0)
    if m is None:
        assert got is None
    else:
        assert got == (sqldump._FAST_VALUES.findall(text, 1, m.end()), m.end())


def test_values_in_one_pass_on_the_real_dump() -> None:
    text = (DATA / "seized" / "dream-2016-sellers.sql").read_text(encoding="utf-8")
    starts = [m.start() for m in re.finditer(r"\(\d+,'", text)]
    assert len(starts) > 600
    for b in starts:
        m = sqldump._FAST_TUPLE.match(text, b)
        assert m is not None
        assert sqldump._fast_values(text, b) == (
            sqldump._FAST_VALUES.findall(text, b + 1, m.end()), m.end())
        cut = text[:m.end() - 2]  # a tuple whose end is not in the buffer yet
        assert sqldump._FAST_TUPLE.match(cut, b) is None and sqldump._fast_values(cut, b) is None


_CUES = ["", "\n", " ", "me@example.com", "jabber: foo@jabber.org", "xmpp:bar@xmpp.jp",
         "JID - a.b@c.de", "omemo", "otr ", "wickr: drugs_r_us", "Wickr ID = bob",
         "telegram @chan_name", "tg: handle1", "https://t.me/someone", "www.telegram.me/abcdef",
         "signal: +1 555 123 4567", "signal @name.42", "@", "a" * 70 + "@x.com", ".", "-",
         "1BoatSLRm1KTDbbHT8Sse4QeYp1cSZyGd6", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
         ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SKUArTMmDyr9bB6bTRQbp3s"
          "BWcqWbQDAyJMrb"), "05" + "ab" * 32, "expyuzz4wqqyqhjn.onion",
         "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion", ".ONION", "0", "l",
         "x" * 30, "2" * 20 + ".onion", "é", "\u0131", "\u212a", "a" * 64 + "@x.com",
         "b" * 63 + "@y.org", "x.y+z%w-v@host.org", "_@x.co", "a@b@c.com", "@@", "-@a.bc",
         "Bc1", ".oNion", "PgP",
         # non-ASCII text without the case folds is prefiltered too (#21)
         "ü", "→ ", "日本", "wickr: ñame", "\u0130", "\u017fignal: bob", "another ", " otr ",
         "jid: ä@b.cd", "€5 tg: handle2"]


def _whole(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Every pattern's matches by ``finditer`` over the whole text."""
    out = []
    for name in ("_BTC_RE", "_XMR_RE", "_SESSION_RE", "_ONION_RE", "_JID_CUE_RE",
                 "_EMAIL_RE", "_WICKR_RE", "_TG_RE", "_SIGNAL_RE"):
        rx: re.Pattern[str] = getattr(ids, name)
        out += [(name, m.span()) for m in rx.finditer(text)]
    return out


def _prefiltered(text: str) -> list[tuple[str, tuple[int, int]]]:
    """The same matches as the scan finds them: runs, onion starts, cue starts."""
    low = text.lower()
    runs = ids._alnum_runs(text)
    out = []
    for name, rx in (("_BTC_RE", ids._BTC_RE), ("_XMR_RE", ids._XMR_RE),
                     ("_SESSION_RE", ids._SESSION_RE)):
        out += [(name, m.span()) for a, b in runs for m in rx.finditer(text, a, b)]
    out += [("_ONION_RE", m.span()) for m in ids._onions(text)]
    for name, rx, cues in (("_JID_CUE_RE", ids._JID_CUE_RE, ids._JID_CUES),
                           ("_EMAIL_RE", None, None),  # one start per '@'
                           ("_WICKR_RE", ids._WICKR_RE, ids._WICKR_CUES),
                           ("_TG_RE", ids._TG_RE, ids._TG_CUES),
                           ("_SIGNAL_RE", ids._SIGNAL_RE, ids._SIGNAL_CUES)):
        found = (ids._emails(text) if rx is None or cues is None
                 else ids._cued(rx, text, low, cues))
        out += [(name, m.span()) for m in found]
    return out


@_SETTINGS
@given(st.integers(0, 10_000), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_CUES)),
                                        min_size=1, max_size=6))
def test_prefiltered_patterns_find_what_finditer_finds(index: int,
                                                       edits: list[tuple[float, str]]) -> None:
    cells = dream_cells()
    text = cells[index % len(cells)]
    for where, piece in edits:
        i = int(where * len(text))
        text = text[:i] + piece + text[i:]
    assert _prefiltered(text) == _whole(text)


def test_prefiltered_patterns_on_the_real_cells() -> None:
    found = 0
    for text in dream_cells():
        want = _whole(text)
        assert _prefiltered(text) == want
        found += len(want)
    assert found > 500  # the cells hold onions, e-mails and messenger handles


_ARMOR_EDITS = ["", "\n", " ", "=", "==", "=AbCd", "\t", "\r", "\x0b", "\u2028", "*", "é",
                "= " * 40 + "=AbCd ", "=" * 70,
                "Version: x\n", "\n\n", "-----END PGP PUBLIC KEY BLOCK-----",
                "begin pgp public key block", "BEG\u0131N PGP PUBLIC KEY BLOCK", "\u212aEY"]


def _blocks(text: str) -> list[tuple[object, ...]]:
    return [(b.start, b.end, b.armored, b.error, b.warnings,
             [(k.fingerprint, k.user_ids) for k in b.keys]) for b in pgp.parse_armored(text)]


def _reference_blocks(text: str) -> list[tuple[object, ...]]:
    """:func:`pgp.parse_armored` with the markers found by the case-insensitive regex."""
    upper = pgp._upper
    pgp._upper = lambda _text: None  # type: ignore[assignment]
    try:
        return _blocks(text)
    finally:
        pgp._upper = upper  # type: ignore[assignment]


def _reference_data(body: str) -> tuple[str, str | None]:
    """The armored body's data and CRC token read line by line, token by token."""
    tokens: list[str] = []
    in_headers = True
    for line in body.split("\n"):
        if in_headers:
            if not line.strip():
                continue
            if pgp._HEADER_RE.match(line) and not pgp._B64_LINE_RE.match(line.strip()):
                continue
            in_headers = False
        for tok in line.split():
            if pgp._CRC_RE.match(tok):
                return "".join(tokens), tok
            tokens.append(tok)
    return "".join(tokens), None


def _edited_key_cell(index: int, edits: list[tuple[float, str]]) -> str:
    """A real Dream cell holding a PGP block, with ``edits`` pasted in at their places."""
    cells = [c for c in dream_cells() if "PGP" in c.upper()]
    text = cells[index % len(cells)]
    for where, piece in edits:
        i = int(where * len(text))
        text = text[:i] + piece + text[i:]
    return text


@_SETTINGS
@given(st.integers(0, 10_000), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_ARMOR_EDITS)),
                                        min_size=1, max_size=5))
def test_armor_read_with_find_is_the_regex_and_line_reading(
        index: int, edits: list[tuple[float, str]]) -> None:
    text = _edited_key_cell(index, edits)
    assert _blocks(text) == _reference_blocks(text)
    for _start, _end, block in pgp.find_armor_blocks(pgp.normalise_armor_text(text)):
        b = pgp._find_begin(block)
        body = block[b[1]:] if b else block
        assert pgp._armor_data(body) == _reference_data(body)


def _blocks_by_dearmor(text: str) -> list[tuple[object, ...]]:
    """:func:`pgp.parse_armored` as each block's own :func:`pgp.dearmor` reads it (which
    finds the markers again in the block's text)."""
    out = []
    for start, end, block in pgp.find_armor_blocks(pgp.normalise_armor_text(text)):
        warnings: list[str] = []
        try:
            raw, warnings = pgp.dearmor(block)
            keys, more = pgp.parse_key_packets(raw)
            got: tuple[object, ...] = (None, warnings + more,
                                       [(k.fingerprint, k.user_ids) for k in keys])
        except pgp.ArmorError as exc:
            got = (str(exc), warnings, [])
        out.append((start, end, block.strip(), *got))
    return out


@_SETTINGS
@given(st.integers(0, 10_000), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_ARMOR_EDITS)),
                                        max_size=5))
def test_blocks_read_between_the_markers_found_are_dearmor(
        index: int, edits: list[tuple[float, str]]) -> None:
    text = _edited_key_cell(index, edits)
    assert _blocks(text) == _blocks_by_dearmor(text)


def test_blocks_of_the_real_cells_are_dearmor() -> None:
    cells = [c for c in dream_cells() if "PGP" in c.upper()]
    keys = 0
    for text in cells:
        got = _blocks(text)
        assert got == _blocks_by_dearmor(text)
        keys += sum(len(b[5]) for b in got)  # type: ignore[arg-type]
    assert keys > 600


@_SETTINGS
@given(st.binary(max_size=600), st.integers(0, 7))
def test_mpi_size_from_its_first_byte_is_the_integers(raw: bytes, spare: int) -> None:
    bits = max(0, len(raw) * 8 - spare) if raw else 0
    if (bits + 7) // 8 != len(raw):
        bits = len(raw) * 8
    size, got, end = pgp._mpi(bits.to_bytes(2, "big") + raw + b"tail", 0)
    assert (size, got, end) == (int.from_bytes(raw, "big").bit_length(), raw, 2 + len(raw))


def _dearmor_by_text(body: str, has_end: bool) -> tuple[bytes, list[str]]:
    """The armored body decoded the plain way: its tokens joined as text, junk removed by
    the pattern, then base64 (what ``pgp._dearmor_body`` does with ASCII bytes)."""
    warnings = [] if has_end else ["no END marker"]
    data, crc_text = pgp._armor_data(body)
    data = data.split("=", 1)[0]
    junk = len(pgp._ARMOR_CHARS_RE.findall(data))
    if junk:
        warnings.append(f"{junk} non-base64 characters dropped")
        data = pgp._ARMOR_CHARS_RE.sub("", data)
    if len(data) % 4 == 1:
        data = data[:-1]
        warnings.append("dangling base64 character dropped")
    data += "=" * (-len(data) % 4)
    if not data:
        raise pgp.ArmorError("armored block holds no base64 data")
    raw = base64.b64decode(data)
    if crc_text is None:
        warnings.append("no CRC24 line")
    else:
        want = int.from_bytes(base64.b64decode(crc_text[1:]), "big")
        got = openpgp._crc24_loop(raw)
        if want != got:
            raise pgp.ArmorError(f"armor CRC24 mismatch: block says {want:06X}, data gives "
                                 f"{got:06X} ({len(raw)} bytes decoded)")
    return raw, warnings


def _outcome(f, *args):  # type: ignore[no-untyped-def]
    try:
        return f(*args)
    except pgp.ArmorError as exc:
        return str(exc)


_BODY_EDITS = _ARMOR_EDITS + ["\x1c", "\x1f", "\x0c", "!", "-", "==", "A=B", "é=", " =zz",
                              "\u00a0", "Comment: x\n", "\n\n\n"]


@_SETTINGS
@given(st.integers(0, 10_000), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_BODY_EDITS)),
                                        max_size=5), st.booleans())
def test_armor_bytes_decode_as_the_text_does(index: int, edits: list[tuple[float, str]],
                                             has_end: bool) -> None:
    texts = [t for t in map(pgp.normalise_armor_text, dream_cells()) if pgp._armor_spans(t)]
    norm = texts[index % len(texts)]
    _start, end, b_start, b_end = pgp._armor_spans(norm)[0]
    body = norm[b_start:end if b_end is None else b_end]
    for where, piece in edits:
        i = int(where * len(body))
        body = body[:i] + piece + body[i:]
    assert _outcome(pgp._dearmor_body, body, has_end) == _outcome(_dearmor_by_text, body, has_end)


def test_armor_bytes_decode_the_real_keys_as_the_text_does() -> None:
    n = 0
    for cell in dream_cells():
        norm = pgp.normalise_armor_text(cell)
        for _start, end, b_start, b_end in pgp._armor_spans(norm):
            body = norm[b_start:end if b_end is None else b_end]
            got = _outcome(pgp._dearmor_body, body, b_end is not None)
            assert got == _outcome(_dearmor_by_text, body, b_end is not None)
            n += isinstance(got, tuple)
    assert n > 600
