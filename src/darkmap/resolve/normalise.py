"""Handle normalisation: the part of a vendor name that survives a move to a new market.

Vendors decorate a known name rather than drop it: ``xXFrostKingXx``, ``frostking_official``,
``Fr0stK1ng420``. ``handle_key`` removes case, separators, leetspeak, decorative affixes
and trailing digits so such variants meet in one block; the similarity of the keys is
one linking signal, never a link on its own.
"""

from __future__ import annotations

import re
import unicodedata

from darkmap.model.display import AS_LATIN, mixed_script

__all__ = ["as_latin", "handle_forms", "handle_key", "handle_skeleton", "mixed_script",
           "same_normalised"]

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


def handle_skeleton(handle: str) -> str:
    """Case-folded, accent-free handle with separators and invisible characters
    removed (digits kept). Letters of every script are kept: a Cyrillic name is itself,
    and a Latin name with one Cyrillic letter is not the Latin name."""
    text = unicodedata.normalize("NFKD", handle or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _SEP.sub("", text)
    return "".join(c for c in text if c.isalnum())


def as_latin(handle: str) -> str:
    """The skeleton with Cyrillic and Greek look-alike letters read as the Latin ones
    they print like: what a reader sees ("TheShоp" -> "theshop"). For finding a
    look-alike's victim, never for calling two handles the same."""
    return handle_skeleton(handle).translate(AS_LATIN)


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


_DECORATION = re.compile(r"(420|710|69|19\d\d|20\d\d)$")


def _undecorated(raw: str) -> str:
    """``raw`` without a trailing 420/710/69 or year: decoration, not part of the name."""
    return _DECORATION.sub("", raw) or raw


def _trailing_digits_dropped(s: str) -> str:
    """``s`` without trailing digits when they follow a word (``gecko99``); digits
    inside a name are left (they may be leetspeak)."""
    if re.search(r"[a-z]{3}", s.rstrip("0123456789")) and re.fullmatch(r"[a-z]+\d+", s):
        return _DIGITS.sub("", s)
    return s


def handle_key(handle: str) -> str:
    """A blocking key for a handle: de-leeted, de-decorated, digits dropped.

    >>> handle_key("xXFr0stK1ngXx_420") == handle_key("FrostKing-official")
    True
    """
    raw = handle_skeleton(handle)
    if not raw:
        return ""
    s = _trailing_digits_dropped(_undecorated(raw)).translate(_LEET)
    s = _strip_affixes(s)
    s = _DIGITS.sub("", s) or s
    return s or raw


def handle_forms(handle: str) -> tuple[str, str]:
    """The handle normalised by one transformation each: ``(digits dropped, no
    leetspeak read; leetspeak read, no digits dropped)``, both de-decorated.

    :func:`handle_key` applies both, which is right for blocking but reads a digit two
    ways: ``g3cko`` (3 read as e) and ``Gecko99`` (99 dropped) both become ``gecko``.
    """
    raw = handle_skeleton(handle)
    if not raw:
        return "", ""
    base = _undecorated(raw)
    dropped = _strip_affixes(_trailing_digits_dropped(base))
    dropped = _DIGITS.sub("", dropped) or dropped
    leet = _strip_affixes(base.translate(_LEET))
    return dropped or raw, leet or raw


def same_normalised(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are one name after one transformation: the same with
    digits dropped, or the same with leetspeak read (not a mix of the two)."""
    fa, fb = handle_forms(a), handle_forms(b)
    return bool(fa[0]) and (fa[0] == fb[0] or fa[1] == fb[1])
