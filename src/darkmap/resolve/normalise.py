"""Handle normalisation: the part of a vendor name that survives a move to a new market.

Vendors decorate a known name rather than drop it: ``xXFrostKingXx``, ``frostking_official``,
``Fr0stK1ng420``. ``handle_key`` removes case, separators, leetspeak, decorative affixes
and trailing digits so such variants meet in one block; the similarity of the keys is
one linking signal, never a link on its own.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["handle_key", "handle_skeleton"]

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "8": "b", "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})
# Decorations seen on vendor names across markets; generic, not tied to any one source.
_PREFIXES = ("official", "therealthe", "thereal", "real", "the", "mr", "mrs", "dr",
             "xxx", "xx", "its", "im")
_SUFFIXES = ("official", "officiel", "original", "store", "shop", "shoppe", "market",
             "direct", "vendor", "team", "inc", "ltd", "co", "back", "returns", "reborn",
             "new", "xxx", "xx", "v2", "v3", "us", "usa", "uk", "eu", "nl", "de", "au",
             "ca")
_SEP = re.compile(r"[\s_\-\.\*~=]+")
_DIGITS = re.compile(r"\d+")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def handle_skeleton(handle: str) -> str:
    """Case-folded, accent-free handle with separators removed (digits kept)."""
    text = unicodedata.normalize("NFKD", handle or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _SEP.sub("", text)
    return _NON_WORD.sub("", text)


def _strip_affixes(s: str) -> str:
    """``s`` without its decorating prefixes and suffixes, one of each per round.

    Works on two offsets and slices once: slicing each round copied the rest of the
    handle every time (quadratic on "the" repeated 300,000 times).
    """
    start, end = 0, len(s)
    changed = True
    while changed and end - start > 3:
        changed = False
        for p in _PREFIXES:
            if s.startswith(p, start, end) and end - start - len(p) >= 3:
                start, changed = start + len(p), True
                break
        for suf in _SUFFIXES:
            if s.endswith(suf, start, end) and end - start - len(suf) >= 3:
                end, changed = end - len(suf), True
                break
    return s[start:end]


def handle_key(handle: str) -> str:
    """A blocking key for a handle: de-leeted, de-decorated, digits dropped.

    >>> handle_key("xXFr0stK1ngXx_420") == handle_key("FrostKing-official")
    True
    """
    raw = handle_skeleton(handle)
    if not raw:
        return ""
    # 420/710 and years are decoration; other digits inside a name are leetspeak.
    s = re.sub(r"(420|710|69|19\d\d|20\d\d)$", "", raw) or raw
    s = _DIGITS.sub("", s) if re.search(r"[a-z]{3}", s.rstrip("0123456789")) and \
        re.fullmatch(r"[a-z]+\d+", s) else s
    s = s.translate(_LEET)
    s = _strip_affixes(s)
    s = _DIGITS.sub("", s) or s
    return s or raw
