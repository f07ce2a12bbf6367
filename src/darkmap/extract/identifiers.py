"""Find identifiers that can link people in free text (descriptions, profiles, contacts).

Runs on every listing description, so it is built for speed: cheap substring tests
decide which patterns to try, and every candidate must pass the validator in
:mod:`darkmap.model.values` (checksums for Bitcoin, Monero and v3 onions), so random
words in the right alphabet are not reported. Messenger handles (Wickr, Telegram,
Jabber, Signal) have no syntax of their own and are only taken after a cue such as
``wickr: name``, ``telegram @name``, ``t.me/name`` or ``jabber - a@b.im``.

Armored PGP public keys become :class:`PgpKeyRecord` (the store also records their
fingerprint as an identifier); blocks that cannot be parsed are reported by
:func:`scan_text` in ``pgp_failures``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import cast

from darkmap.extract.pgp import (
    PgpBlock,
    normalise_armor_text,
    parse_normalised,
    parse_normalised_many,
)
from darkmap.model.records import IdentifierRecord, PgpKeyRecord
from darkmap.model.values import (
    clean_btc_address,
    clean_email,
    clean_jabber,
    clean_onion,
    clean_session,
    clean_signal,
    clean_telegram,
    clean_wickr,
    clean_xmr_address,
)

__all__ = ["PreparedScans", "ScanResult", "extract_identifiers", "scan_text"]

_CONTEXT = 40
_B58 = "1-9A-HJ-NP-Za-km-z"
_BTC_RE = re.compile(rf"(?<![{_B58}])[13][{_B58}]{{25,34}}(?![{_B58}])")
_BECH_RE = re.compile(r"(?<![0-9a-zA-Z])(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}(?![0-9a-zA-Z])")
_XMR_RE = re.compile(rf"(?<![{_B58}])[48][{_B58}]{{94}}(?:[{_B58}]{{11}})?(?![{_B58}])")
_EMAIL_RE = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b")
_ONION_RE = re.compile(r"(?<![a-z2-7])(?:[a-z2-7]{56}|[a-z2-7]{16})\.onion\b", re.I)
_SESSION_RE = re.compile(r"(?<![0-9a-fA-F])05[0-9a-fA-F]{64}(?![0-9a-fA-F])")
# Possessive: the spaces after a cue are taken once (``\s*(...)?\s*`` would try every
# split of 40,000 spaces between its two runs); no handle, JID or number starts with a space.
_SEP = r"\s*+(?:[:=>\-–|]+|\bis\b|\bat\b|\bon\b)?\s*+"
_WICKR_RE = re.compile(
    r"\bwickr(?:\s*+me)?(?:\s*+(?:id|name|user(?:name)?|handle))?(?!\w)" + _SEP
    + r"@?([A-Za-z0-9][A-Za-z0-9_.\-]{2,31})", re.I)
_TG_RE = re.compile(
    r"(?:\b(?:telegram|tg)(?:\s*+(?:id|name|user(?:name)?|handle|channel))?(?!\w)" + _SEP
    + r"@?|(?:https?://)?(?:www\.)?(?:t|telegram)\.me/)([A-Za-z][A-Za-z0-9_]{4,31})\b", re.I)
_JID_CUE_RE = re.compile(
    r"\b(?:jabber|xmpp|jid|omemo|otr)(?:\s*+(?:id|address|contact))?(?!\w)" + _SEP
    + r"(?:xmpp:)?([^\s@\"'<>:,;()]{1,64}@[A-Za-z0-9.\-]+\.[A-Za-z]{2,24})", re.I)
_SIGNAL_RE = re.compile(
    r"\bsignal(?:\s*+(?:id|number|no\.?|user(?:name)?|messenger))?(?!\w)" + _SEP
    + r"(\+?\d[\d\s().\-]{6,20}\d|@?[A-Za-z_][A-Za-z0-9_]{2,31}\.\d{2,9})", re.I)
_SPACE_RE = re.compile(r"\s+")
# One cheap search decides whether a text can hold anything at all (most titles cannot).
_ANY_RE = re.compile(
    rf"[13][{_B58}]{{25}}|bc1|[48][{_B58}]{{94}}|\.onion|05[0-9a-f]{{64}}|@|wickr|telegram"
    r"|\btg\b|\.me/|jabber|xmpp|\bjid\b|\botr\b|omemo|signal|PGP", re.I)

# ``_ANY_RE`` decided with C string methods where possible (the regex costs tens of
# nanoseconds per character, and most texts hold nothing). Its literal alternatives
# are found by lower-casing, exactly, in text without the only non-ASCII characters
# the case-insensitive regex matches to ASCII ones (lower-casing works per character,
# and no other character lowers to ASCII); the rest need one of a few short words or
# a run of 26 ASCII letters and digits before their regex is worth running.
_LITERAL_CUES = ("pgp", "bc1", ".onion", "@", "wickr", "telegram", ".me/", "jabber", "xmpp",
                 "omemo", "signal")  # "pgp" first: a key's cell holds it, and any cue will do
_REST_RE = re.compile(rf"[13][{_B58}]{{25}}|[48][{_B58}]{{94}}|05[0-9a-f]{{64}}"
                      r"|\btg\b|\bjid\b|\botr\b", re.I)
_REST_WORDS = ("tg", "jid", "otr")
_FOLDS = ("\u0130", "\u0131", "\u017f", "\u212a")
_ALNUM_RUN = bytes(97 if chr(c).isascii() and chr(c).isalnum() else 32 for c in range(256))
_RUN = b"a" * 26


class _Cues:
    """A text, its lower-casing and which cue words it holds, each word searched for
    once: the prefilter, the crypto scan and the contact scan ask about the same words
    (a substring test costs about a microsecond per 3,000 characters, and a profile
    text meets some thirty of them)."""

    __slots__ = ("_hits", "low", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = text.lower()
        self._hits: dict[str, bool] = {}

    def __contains__(self, word: str) -> bool:
        """``word in self.low`` (``word`` lower-case), remembered."""
        hit = self._hits.get(word)
        if hit is None:
            hit = self._hits[word] = word in self.low
        return hit


_SHORT = 512
"""Texts shorter than this are asked with plain substring tests of their lower-casing
(a method call costs more than such a test)."""


def _cues(text: str) -> _Cues | str:
    """What the scans ask ``word in`` of: a :class:`_Cues`, or a short text's lower-casing."""
    return _Cues(text) if len(text) >= _SHORT else text.lower()


def _low(cues: _Cues | str) -> str:
    return cues if isinstance(cues, str) else cues.low


def _may_hold(text: str, cues: _Cues | str | None = None) -> bool:
    """``_ANY_RE.search(text) is not None``, mostly without running it (``cues``: a
    :class:`_Cues` of ``text``, when the caller has one)."""
    if text.isascii() or _no_folds(text):
        if cues is None:
            cues = _cues(text)
        for cue in _LITERAL_CUES:  # a loop, not any(): this runs for every text
            if cue in cues:
                return True
        for word in _REST_WORDS:
            if word in cues:
                if _rest_word(text, _low(cues)):
                    return True
                break  # none is a word: an address may still be
        if _RUN not in text.encode("ascii", "replace").translate(_ALNUM_RUN):
            return False
        return _REST_RE.search(text) is not None
    return _ANY_RE.search(text) is not None


_REST_WORD_RE = re.compile(r"\b(?:tg|jid|otr)\b", re.I)


def _rest_word(text: str, low: str) -> bool:
    """``_REST_WORD_RE.search(text) is not None`` for text without ``_FOLDS`` (``low``
    its lower-casing, at the same offsets): tried where ``low`` holds one of the words
    ("otr" in "another" is no word, and a regex step per character of a long
    profile costs more than these finds)."""
    for word in _REST_WORDS:
        if low.count(word) > 64:  # (a text made of them: one scan)
            return _REST_WORD_RE.search(text) is not None
        p = low.find(word)
        while p >= 0:
            if _REST_WORD_RE.match(text, p):
                return True
            p = low.find(word, p + 1)
    return False


def _no_folds(text: str) -> bool:
    for c in _FOLDS:
        if c in text:
            return False
    return True


def _aligned(text: str) -> bool:
    """True when ASCII words a case-insensitive pattern matches in ``text`` are found,
    at the same offsets, in ``text.lower()``: ASCII text, or text without ``_FOLDS``
    (the only characters that such a pattern matches to ASCII letters, and the only
    one, U+0130, whose lower-casing is two characters long)."""
    return text.isascii() or _no_folds(text)


# Words that follow a cue in prose ("wickr is down") and are never the handle.
_STOPWORDS = frozenset("""
    the and for you your our only now not are was will can any all via with please
    contact message msg add here there this that same also available upon request
    down app account user username name handle channel group below above ask me us
    id number only. offline online
""".split())

# Servers that host XMPP accounts rather than mailboxes: an address on them is a JID.
_XMPP_DOMAINS = frozenset("""
    jabber.org jabber.de jabber.ru jabber.cz jabber.at jabber.fr jabber.me jabber.calyxinstitute.org
    jabber.ccc.de jabber.systemli.org jabber.hot-chilli.net jabbim.com jabbim.cz jabb.im
    xmpp.jp xmpp.is xmpp.co xmpp.zone exploit.im creep.im blah.im sure.im thesecure.biz
    darkness.su 404.city securejabber.me dukgo.com jabber.sk jabber.dk xmpp.net
    jabberes.org jabber.space jabber.cat jabber.no xmpp.ru default.rs yax.im
""".split())


@dataclass(slots=True)
class ScanResult:
    """All identifier records found in a text, plus PGP blocks that could not be read."""

    records: list[IdentifierRecord | PgpKeyRecord] = dc_field(default_factory=list)
    pgp_blocks: list[PgpBlock] = dc_field(default_factory=list)

    @property
    def pgp_failures(self) -> list[PgpBlock]:
        """Armored blocks that yielded no key (``error`` says why)."""
        return [b for b in self.pgp_blocks if b.error]


def _context(text: str, start: int, end: int) -> str:
    lo, hi = max(0, start - _CONTEXT), min(len(text), end + _CONTEXT)
    return _SPACE_RE.sub(" ", text[lo:hi]).strip()


@dataclass(slots=True)
class _Step:
    """The first step of :func:`scan_text` on a text that may hold an identifier: the
    text to scan (HTML entities and ``\\n`` literals undone), its cues, and when it
    holds a BEGIN marker, its normalised text and the PGP blocks parsed from it; then
    what the scans find in it (:func:`_found`)."""

    text: str
    cues: _Cues | str
    norm: str | None = None
    blocks: list[PgpBlock] = dc_field(default_factory=list)
    found: list[tuple[str, str, str]] | None = None  # see _found; None: not yet scanned


def _first_step(text: str) -> _Step | None:
    """:class:`_Step` of a non-empty ``text`` without its blocks parsed; None when it
    can hold nothing."""
    cues = _cues(text)
    given = text
    if not _may_hold(text, cues) and "&" not in text and "\\" not in text:
        return None
    if "&" in text:
        text = html.unescape(text)
    if "\\n" in text:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    if text is not given:
        cues = _cues(text)
    step = _Step(text, cues)
    if "pgp" in cues and ("PGP" in text or "pgp" in text):
        # the marker's words in the upper-cased text; in ASCII text, as surely in the
        # lower-cased one the cues hold (only other characters case-map across ASCII)
        if ("begin pgp public key block" in cues if text.isascii()
                else "BEGIN PGP PUBLIC KEY BLOCK" in text.upper()):
            step.norm = normalise_armor_text(text)  # the text the block offsets refer to
    return step


_NOT_PREPARED = _Step("", "")


class PreparedScans:
    """The steps of :func:`scan_text` that do not depend on its other arguments, done
    ahead for many texts (the free-text cells of the next rows a mapper maps): the PGP
    blocks of all of them parsed together
    (:func:`~darkmap.extract.pgp.parse_normalised_many`: one pass of numpy for their
    armor checksums, not one each), then the address and contact scans of each (the
    same code run for many texts in a row runs faster than between other work).
    ``scan_text(text, ..., prepared=p)`` takes a text's steps from here, once; a text
    not prepared (or met again) is scanned as usual."""

    __slots__ = ("_steps",)

    def __init__(self, texts: Iterable[str]) -> None:
        self._steps: dict[str, _Step | None] = {}
        armored: list[_Step] = []
        for text in texts:
            if not text or text in self._steps:
                continue
            step = self._steps[text] = _first_step(text)
            if step is not None and step.norm is not None:
                armored.append(step)
        parsed = parse_normalised_many([cast(str, st.norm) for st in armored])
        for st, blocks in zip(armored, parsed, strict=True):
            st.blocks = blocks
        for step in self._steps.values():
            if step is not None:
                step.found = _found(step)

    def take(self, text: str) -> _Step | None:
        """The step prepared for ``text`` (``_NOT_PREPARED`` if none), forgotten."""
        return self._steps.pop(text, _NOT_PREPARED)


def scan_text(text: str, *, market_id: str | None, account_handle: str | None,
              listing_ref: str | None = None, field: str, locator: str,
              key_records: bool = True, prepared: PreparedScans | None = None) -> ScanResult:
    """Like :func:`extract_identifiers`, also returning every PGP block found.

    ``key_records=False`` leaves the keys' :class:`PgpKeyRecord` out of ``records`` (for
    a caller that makes its own from ``pgp_blocks``); ``prepared`` may hold this text's
    steps, done ahead (:class:`PreparedScans`: the same result).
    """
    out = ScanResult()
    if not text:
        return out
    step = prepared.take(text) if prepared is not None else _NOT_PREPARED
    if step is _NOT_PREPARED:
        step = _first_step(text)
        if step is not None and step.norm is not None:
            step.blocks = parse_normalised(step.norm)
    if step is None:
        return out
    recs = out.records
    if step.norm is not None:
        blocks = out.pgp_blocks = step.blocks
        fprs: set[str] = set()
        for b in blocks if key_records else ():
            for k in b.keys:
                if k.fingerprint in fprs:
                    continue
                fprs.add(k.fingerprint)
                recs.append(k.to_record(market_id=market_id,
                                        account_handle=account_handle, field=field,
                                        locator=locator))
    for kind, value, context in step.found if step.found is not None else _found(step):
        recs.append(IdentifierRecord(
            kind=kind, value=value, market_id=market_id, account_handle=account_handle,
            listing_ref=listing_ref, field=field, context=context, locator=locator))
    return out


def _found(step: _Step) -> list[tuple[str, str, str]]:
    """The identifiers the address and contact scans find in a step's text, its PGP
    blocks blanked out: ``(kind, value, context)``, each (kind, value) once, in the
    order found."""
    text, cues = step.text, step.cues
    if step.norm is not None and step.blocks:
        # the key's base64 must not be scanned for addresses and handles
        text = _blank_blocks(step.norm, step.blocks)
        cues = _cues(text)
    seen: set[tuple[str, str]] = set()
    found: list[tuple[str, str, str]] = []

    def add(kind: str, value: str | None, start: int, end: int) -> None:
        if value is None or (kind, value) in seen:
            return
        seen.add((kind, value))
        found.append((kind, value, _context(text, start, end)))

    _scan_crypto(text, add, cues)
    _scan_contacts(text, add, cues)
    return found


def _blank_blocks(norm: str, blocks: list[PgpBlock]) -> str:
    """``norm`` (normalised text) with each block replaced by a space."""
    parts, pos = [], 0
    for b in blocks:
        parts.append(norm[pos:b.start])
        parts.append(" ")
        pos = b.end
    parts.append(norm[pos:])
    return "".join(parts)


def _alnum_runs(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every maximal run of 26 or more ASCII letters and digits.

    Base58, Monero and Session addresses are made of such characters and bounded by
    others, so each lies inside one run, and their patterns, searched run by run, find
    what they find in the whole text (the edges of a run are no letters or digits, as
    the end of the searched text is none): C-speed ``find`` instead of a regex step
    per character of the text.
    """
    tr = text.encode("ascii", "replace").translate(_ALNUM_RUN)
    runs = []
    j = tr.find(_RUN)
    while j >= 0:
        e = tr.find(b" ", j)
        if e < 0:
            runs.append((j, len(tr)))
            break
        runs.append((j, e))
        j = tr.find(_RUN, e)
    return runs


def _onions(text: str, low: str | None = None) -> list[re.Match[str]]:
    """``list(_ONION_RE.finditer(text))``: in :func:`_aligned` text tried only where a
    match can start, 56 or 16 characters before a ``.onion`` (found by ``str.find``);
    ``low`` is ``text.lower()`` when the caller has it."""
    if not _aligned(text):
        return list(_ONION_RE.finditer(text))
    if low is None:
        low = text.lower()
    if low.count(".onion") * 16 > len(text):  # a text made of ".onion"s: one scan
        return list(_ONION_RE.finditer(text))
    starts = []
    p = low.find(".onion")
    while p >= 0:
        starts += [s for s in (p - 56, p - 16) if s >= 0]
        p = low.find(".onion", p + 6)
    return _matches_at(_ONION_RE, text, starts)


def _matches_at(rx: re.Pattern[str], text: str, starts: Iterable[int]) -> list[re.Match[str]]:
    """The matches of ``rx`` anchored at ``starts``, in order and without overlap, as
    ``finditer`` would find them when every match starts at one of ``starts``."""
    out: list[re.Match[str]] = []
    last = 0
    for st in sorted(starts):
        if st >= last and (m := rx.match(text, st)) is not None:
            out.append(m)
            last = m.end()
    return out


def _scan_crypto(text: str, add, cues: _Cues | str | None = None) -> None:  # type: ignore[no-untyped-def]
    # Base58 and hex addresses are runs of 26+ ASCII letters and digits (their
    # patterns are case-sensitive and ASCII-only): only those runs are searched.
    # The case-sensitive tests for "bc1" and ".onion" are asked only of a text whose
    # lower-casing holds the word (no other character lowers to these ASCII ones)
    if cues is None:
        cues = _cues(text)
    runs = _alnum_runs(text)
    for a, b in runs:
        for m in _BTC_RE.finditer(text, a, b):
            add("btc_address", clean_btc_address(m.group()), m.start(), m.end())
    if "bc1" in cues and ("bc1" in text or "BC1" in text):
        for m in _BECH_RE.finditer(text):
            add("btc_address", clean_btc_address(m.group()), m.start(), m.end())
    for a, b in runs:
        if b - a >= 95:
            for m in _XMR_RE.finditer(text, a, b):
                add("xmr_address", clean_xmr_address(m.group()), m.start(), m.end())
    if ".onion" in cues and (".onion" in text or ".ONION" in text or ".Onion" in text):
        for m in _onions(text, _low(cues)):
            add("onion", clean_onion(m.group()), m.start(), m.end())
    if any(b - a >= 66 for a, b in runs) and "05" in text:
        for a, b in runs:
            if b - a >= 66:
                for m in _SESSION_RE.finditer(text, a, b):
                    add("session", clean_session(m.group()), m.start(), m.end())


def _handle(value: str, cleaner: Callable[[str], str | None]) -> str | None:
    v = value.rstrip(".-_")
    if v.casefold() in _STOPWORDS:
        return None
    return cleaner(v)


def _occurrences(low: str, word: str) -> Iterator[int]:
    p = low.find(word)
    while p >= 0:
        yield p
        p = low.find(word, p + 1)


def _cued(rx: re.Pattern[str], text: str, low: str,
          cues: tuple[tuple[str, int], ...]) -> list[re.Match[str]]:
    """``list(rx.finditer(text))`` for a pattern whose every match starts at most ``back``
    characters before one of its ``(cue, back)`` words (lower-case): in
    :func:`_aligned` text (``low`` its lower-casing, at the same offsets; the letters
    of a match's cue are ASCII there) tried only at those starts, in
    order and without overlap as ``finditer`` would; C-speed ``find`` for the cues
    instead of a regex step per character."""
    if not _aligned(text) or len(low) != len(text):
        return list(rx.finditer(text))
    found = [(p, back) for word, back in cues for p in _occurrences(low, word)]
    if sum(back + 1 for _p, back in found) > len(text) // 4:
        return list(rx.finditer(text))  # (a text made of cues: one C-speed scan is cheaper)
    starts: set[int] = set()
    for p, back in found:
        starts.update(range(max(0, p - back), p + 1))
    return _matches_at(rx, text, starts)


_LOCAL_RUN = bytes(97 if chr(c).isalnum() or chr(c) in "_.%+-" else 32 for c in range(128)) \
    + b" " * 128
"""ASCII bytes of ``[\\w.%+\\-]`` (what may not precede an e-mail's local part) to ``a``,
the rest to a space."""


def _emails(text: str) -> list[re.Match[str]]:
    """``list(_EMAIL_RE.finditer(text))``, tried only where a match can start, one
    place per ``@``.

    A local part is 1-64 of ``[A-Za-z0-9._%+-]`` and must not follow a character of
    ``[\\w.%+-]``, which holds them all: a match that takes the ``@`` at ``p`` starts
    where the run of such characters that ends at ``p`` starts (any later start has
    one of them before it), and only when that run is at most 64 long.
    """
    n = text.count("@")
    if n > len(text) // 4:
        return list(_EMAIL_RE.finditer(text))  # (a text made of '@'s: one scan)
    # one byte per character; a non-ASCII one (a "?") is no local-part character
    tr = text.encode("ascii", "replace").translate(_LOCAL_RUN)
    starts = []
    p = text.find("@")
    while p >= 0:
        lo = max(0, p - 65)
        j = tr.rfind(b" ", lo, p)
        if j >= 0:
            if j + 1 < p:
                starts.append(j + 1)
        elif lo == 0 and p > 0:
            starts.append(0)
        p = text.find("@", p + 1)
    return _matches_at(_EMAIL_RE, text, starts)


_JID_CUES = (("jabber", 0), ("xmpp", 0), ("jid", 0), ("omemo", 0), ("otr", 0))
_WICKR_CUES = (("wickr", 0),)
_TG_CUES = (("telegram", 0), ("tg", 0), (".me/", 24))  # https://www.telegram.me/
_SIGNAL_CUES = (("signal", 0),)


def _scan_contacts(text: str, add, cues: _Cues | str | None = None) -> None:  # type: ignore[no-untyped-def]
    if cues is None:
        cues = _cues(text)
    low = _low(cues)
    jids: set[tuple[int, int]] = set()
    if "jabber" in cues or "xmpp" in cues or "jid" in cues or "omemo" in cues or "otr" in cues:
        for m in _cued(_JID_CUE_RE, text, low, _JID_CUES):
            add("jabber", clean_jabber(m.group(1)), m.start(1), m.end(1))
            jids.add(m.span(1))
    if "@" in cues:
        for m in _emails(text):
            if m.span() in jids:
                continue
            domain = m.group().rsplit("@", 1)[1].lower()
            if domain in _XMPP_DOMAINS or domain.startswith(("jabber.", "xmpp.")):
                add("jabber", clean_jabber(m.group()), m.start(), m.end())
            else:
                add("email", clean_email(m.group()), m.start(), m.end())
    if "wickr" in cues:
        for m in _cued(_WICKR_RE, text, low, _WICKR_CUES):
            add("wickr", _handle(m.group(1), clean_wickr), m.start(1), m.end(1))
    if "telegram" in cues or "tg" in cues or ".me/" in cues:
        for m in _cued(_TG_RE, text, low, _TG_CUES):
            add("telegram", _handle(m.group(1), clean_telegram), m.start(1), m.end(1))
    if "signal" in cues:
        for m in _cued(_SIGNAL_RE, text, low, _SIGNAL_CUES):
            add("signal", clean_signal(m.group(1)), m.start(1), m.end(1))


def extract_identifiers(text: str, *, market_id: str | None, account_handle: str | None,
                        listing_ref: str | None = None, field: str,
                        locator: str) -> list[IdentifierRecord | PgpKeyRecord]:
    """Every linking identifier in ``text``, normalised, each with a context snippet.

    Finds armored PGP public keys (as :class:`PgpKeyRecord`), checksum-valid Bitcoin
    and Monero addresses, e-mails, onion hosts, Session ids, and Wickr / Telegram /
    Jabber / Signal handles introduced by a cue. Each (kind, value) is reported once.
    ``field`` and ``locator`` are copied onto every record; never raises on bad text.
    """
    return scan_text(text, market_id=market_id, account_handle=account_handle,
                     listing_ref=listing_ref, field=field, locator=locator).records
