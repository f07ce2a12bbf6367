"""The weighted term lexicon behind the drug classifier, and the text normaliser.

Terms live in ``data/lexicon.tsv`` (term, target, weight) and ``data/category.tsv``
(category segment, target, weight). A target is a substance from the taxonomy,
``non_drug``, ``@drug`` (evidence that the item is a drug without saying which) or
``@none`` (a phrase that only consumes its words, e.g. "coca cola" in an MDMA title).
Terms are matched on whole words after normalisation, longest phrase first; a term
written ``~stem`` matches inside words (``~furanyl`` finds "Furanylfentanyl").

Nothing is fetched at run time: the lexicon is data shipped with the package, and a
user can point ``DARKMAP_LEXICON`` at an extended copy.
"""

from __future__ import annotations

import html
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from darkmap.errors import BadInputError, NotFoundError

__all__ = ["Lexicon", "Match", "fold_lookalikes", "load_lexicon", "normalise", "tokens"]

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


# Cyrillic and Greek letters drawn like Latin ones (after casefolding: "Е" is "е"); the
# micro sign and Greek mu are left alone ("100µg" is micrograms, not "100mg")
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y"})
_LOOKALIKE_CHARS = frozenset(chr(c) for c in _LOOKALIKES)
# a word (letters only) holding a Latin letter and a look-alike is a mixed-script spelling
# ("Fеntanyl"); a word wholly in Cyrillic or Greek is that language and stays as written
_WORD = re.compile(r"[^\W\d_]++")
# the format characters (Unicode category Cf: zero-width space, soft hyphen, word joiner,
# direction marks...), as one class: a regex removes them at C speed where a test of
# each character's category cost a third of a title's classification
_FORMAT_CHARS = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]")
# four or more single letters spaced out: "F e n t a n y l"
_SPACED = re.compile(r"(?<!\w)(?:[a-z][ .](?=[a-z](?!\w))){3,}[a-z](?!\w)")


def _fold_word(m: re.Match[str]) -> str:
    word = m.group(0)
    if word.isascii() or _LOOKALIKE_CHARS.isdisjoint(word) \
            or not any("a" <= ch <= "z" for ch in word):
        return word
    return word.translate(_LOOKALIKES)


def fold_lookalikes(text: str) -> tuple[str, list[str]]:
    """A casefolded ``text`` with the tricks that hide a word from the lexicon undone, and
    what was undone: format characters (zero-width space, soft hyphen, word joiner)
    removed, Cyrillic or Greek look-alike letters inside a Latin word read as Latin,
    spaced-out letters ("f e n t a n y l") joined."""
    done: list[str] = []
    if not text.isascii():
        kept = _FORMAT_CHARS.sub("", text)
        if len(kept) != len(text):
            done.append("invisible characters removed")
            text = kept
        if not _LOOKALIKE_CHARS.isdisjoint(text):
            folded = _WORD.sub(_fold_word, text)
            if folded != text:
                done.append("Cyrillic or Greek look-alike letters read as Latin")
                text = folded
    if " " in text and _SPACED.search(text):
        text = _SPACED.sub(lambda m: m.group(0).replace(" ", "").replace(".", ""), text)
        done.append("spaced-out letters joined")
    return text, done


def normalise(text: str | None) -> str:
    """Lower-case, HTML-unescaped text with every run of non-word characters as one space
    (look-alike letters and invisible characters folded first: :func:`fold_lookalikes`)."""
    if not text:
        return ""
    if "&" in text:
        text = html.unescape(text)
    text = fold_lookalikes(text.casefold())[0]
    if not text.isascii():
        # "cocaína" -> "cocaina", "heroïne" -> "heroine"; µ stays a letter
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text).strip()


def tokens(text: str | None) -> list[str]:
    """The words of ``text`` after :func:`normalise`."""
    n = normalise(text)
    return n.split(" ") if n else []


# a digit between letters, or a 0 or 3 opening a word of letters: leetspeak
_LEET = re.compile(r"[a-z][01345780]|^[03][a-z]")
_LEET_MAP = str.maketrans({"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"})


def _unleet(word: str) -> tuple[str, ...]:
    """Readings of a leetspeak word: 1 as i and as l (at most two lookups)."""
    w = word.translate(_LEET_MAP)
    if not w.replace("1", "").isalpha():
        return ()
    return (w.replace("1", "i"), w.replace("1", "l")) if "1" in w else (w,)


@dataclass(slots=True, frozen=True)
class Match:
    """One lexicon term found in a text: the words, what they point to, their weight."""

    term: str
    target: str
    weight: float
    position: int


@dataclass(slots=True)
class Lexicon:
    """Phrase table (up to ``max_len`` words) plus stems matched inside words."""

    phrases: dict[str, tuple[str, float]]
    stems: dict[str, tuple[str, float]]
    categories: dict[str, tuple[str, float]]
    max_len: int = 1
    _heads: dict[str, int] = field(default_factory=dict, repr=False)
    _stem_index: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _spaced_stems: list[str] = field(default_factory=list, repr=False)
    _cat_cache: dict[tuple[str, ...], list[Match]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # stems indexed by their first three characters: a stem search costs a few
        # dict lookups per word instead of one regex scan per stem
        for stem in sorted(self.stems, key=len, reverse=True):
            if " " in stem:
                self._spaced_stems.append(stem)
            else:
                self._stem_index.setdefault(stem[:3], []).append(stem)
        # first word of a phrase -> longest phrase starting with it (skips useless joins)
        for key in self.phrases:
            if " " in key:
                head = key.split(" ", 1)[0]
                self._heads[head] = max(self._heads.get(head, 1), key.count(" ") + 1)

    def find(self, words: list[str]) -> list[Match]:
        """Longest-phrase-first matches over ``words``; each word is used at most once."""
        out: list[Match] = []
        phrases = self.phrases
        n = len(words)
        i = 0
        heads = self._heads
        while i < n:
            hit = None
            top = min(heads.get(words[i], 1), n - i)
            for k in range(top, 0, -1):
                key = words[i] if k == 1 else " ".join(words[i:i + k])
                got = phrases.get(key)
                if got is not None:
                    hit = (key, got, k)
                    break
            if hit is None:
                w = words[i]
                got = None
                # "50xtc", "100mg": a number glued to a word; try the word alone
                if w[:1].isdigit() and not w.isdigit():
                    j = 1
                    while j < len(w) and (w[j].isdigit() or w[j] == "."):
                        j += 1
                    got = phrases.get(w[j:]) if len(w) - j > 1 else None
                    if got is not None:
                        out.append(Match(w[j:], got[0], got[1], i))
                if got is None and len(w) >= 4 and _LEET.search(w):
                    # "F3ntanyl", "X4n4x", "0xyc0d0ne": digits standing for letters
                    for plain in _unleet(w):
                        got = phrases.get(plain)
                        if got is not None:
                            out.append(Match(plain, got[0], got[1], i))
                            break
                i += 1
                continue
            key, (target, weight), k = hit
            out.append(Match(key, target, weight, i))
            i += k
        return out

    def find_stems(self, norm: str) -> list[Match]:
        """Stem matches inside words of an already normalised text."""
        if not self.stems:
            return []
        index = self._stem_index
        out = [Match("~" + st, *self.stems[st], -1) for st in self._spaced_stems if st in norm]
        phrases = self.phrases
        for word in norm.split(" "):
            if len(word) < 4 or word in phrases or word.isdigit():
                continue
            for i in range(len(word) - 2):
                cands = index.get(word[i:i + 3])
                if cands is None:
                    continue
                for stem in cands:
                    if word.startswith(stem, i):
                        target, weight = self.stems[stem]
                        out.append(Match("~" + stem, target, weight, -1))
        return out

    def category(self, segments: list[str]) -> list[Match]:
        """Matches of whole category-path segments (e.g. "Guides & Tutorials")."""
        key = tuple(segments)
        hit = self._cat_cache.get(key)
        if hit is None:
            hit = self._category(segments)
            if len(self._cat_cache) < 4096:
                self._cat_cache[key] = hit
        return hit

    def _category(self, segments: list[str]) -> list[Match]:
        out = []
        for seg in segments:
            key = normalise(seg)
            got = self.categories.get(key)
            if got is None and " " in key:
                for part in key.split(" "):
                    got = self.categories.get(part)
                    if got is not None:
                        key = part
                        break
            if got is not None:
                out.append(Match(key, got[0], got[1], -1))
        return out


def _read_table(text: str) -> list[tuple[str, str, float]]:
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        try:
            rows.append((parts[0].strip(), parts[1].strip(), float(parts[2])))
        except ValueError:
            continue
    return rows


def _data_text(name: str) -> str:
    return resources.files("darkmap.assess").joinpath("data", name).read_text(encoding="utf-8")


def _read_text(path: Path) -> str:
    """A user's lexicon: :class:`NotFoundError` when missing, :class:`BadInputError` when
    it cannot be read as UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: lexicon not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the lexicon: {exc}") from exc


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """The shipped lexicon, or the one at ``path`` / ``$DARKMAP_LEXICON`` if given."""
    path = path or os.environ.get("DARKMAP_LEXICON")
    text = _read_text(Path(path)) if path else _data_text("lexicon.tsv")
    phrases: dict[str, tuple[str, float]] = {}
    stems: dict[str, tuple[str, float]] = {}
    max_len = 1
    for term, target, weight in _read_table(text):
        if term.startswith("~"):
            stems.setdefault(normalise(term[1:]), (target, weight))
            continue
        key = normalise(term)
        # a lone letter or number ("b+" -> "b") would match everywhere
        if not key or (" " not in key and (len(key) < 2 or key.isdigit())):
            continue
        phrases.setdefault(key, (target, weight))
        max_len = max(max_len, key.count(" ") + 1)
    cats = {normalise(t): (tg, w) for t, tg, w in _read_table(_data_text("category.tsv"))}
    return Lexicon(phrases=phrases, stems=stems, categories=cats, max_len=max_len)
