"""Where a vendor most likely operates from: ISO-3166 alpha-2 country with confidence.

Evidence kinds, each with a budget (its weight when it is plentiful and unanimous):

=================  ======  ==========================================================
kind               budget  source
=================  ======  ==========================================================
ships_from           4.0   the "ships from" field of each listing and vendor profile
shipping_phrase      3.0   "UK to UK", "USA domestic", "ships from Germany" in titles,
                           descriptions, profiles and terms
parcel               1.5   feedback saying where the parcel came from ("stamp from NL")
language             1.5   language of the vendor's own texts (German -> DE/AT/CH ...)
currency             1.0   a national currency in prices (GBP -> GB, AUD -> AU ...)
=================  ======  ==========================================================

A kind with *n* observations contributes ``budget * (1 - exp(-n/2)) * share(country)``;
the country with the highest total wins and ``confidence = top / (total + 1)``, so thin
or split evidence stays below 0.5. Product origins ("Afghan heroin", "Dutch MDMA",
"Moroccan hash") are *not* evidence: only shipping phrases and fields are read.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar, cast

from darkmap.model.countries import country_aliases, country_code

__all__ = ["Jurisdiction", "TextMemo", "country_code", "detect_language", "infer_jurisdiction",
           "parcel_countries", "shipping_countries"]

_T = TypeVar("_T")

BUDGETS = {"ships_from": 4.0, "shipping_phrase": 3.0, "parcel": 1.5, "language": 1.5,
           "currency": 1.0}
LANGUAGE_COUNTRIES = {
    "de": {"DE": 0.7, "AT": 0.2, "CH": 0.1}, "nl": {"NL": 0.8, "BE": 0.2},
    "fr": {"FR": 0.8, "BE": 0.1, "CH": 0.1}, "es": {"ES": 0.6, "MX": 0.2, "CO": 0.1, "AR": 0.1},
    "it": {"IT": 0.9, "CH": 0.1}, "sv": {"SE": 1.0}, "pl": {"PL": 1.0},
    "pt": {"PT": 0.5, "BR": 0.5}, "da": {"DK": 1.0}, "no": {"NO": 1.0}, "fi": {"FI": 1.0},
    "cs": {"CZ": 1.0}, "ru": {"RU": 0.7, "UA": 0.3}}
CURRENCY_COUNTRIES = {"GBP": "GB", "AUD": "AU", "CAD": "CA", "SEK": "SE", "CHF": "CH",
                      "NOK": "NO", "DKK": "DK", "PLN": "PL", "CZK": "CZ", "NZD": "NZ"}
_STOPWORDS = {
    "en": "the and with for you your this are from will our not all have only".split(),
    "de": "und der die das nicht mit ist für ich wir sie auf bei versand ein eine auch".split(),
    "nl": "het een van en niet met voor wij zijn ook verzending naar je jij".split(),
    "fr": "le la les et des pour avec est nous vous une pas livraison du".split(),
    "es": "el la los las y con para por una envío envio es no del que".split(),
    "it": "il di che e la per con non una sono spedizione gli del".split(),
    "sv": "och att det som för med är på inte en av frakt vi".split(),
    "pl": "i w nie na jest się do z że wysyłka to".split(),
    "pt": "e de o a para com não uma do da envio que".split(),
    "da": "og at det er til med ikke på en af vi".split(),
    "no": "og å det er til med ikke på en av vi".split(),
    "fi": "ja on ei että se kanssa toimitus".split(),
    "cs": "a je se na že to s v do pro".split(),
}
_STOP_INDEX: dict[str, list[str]] = defaultdict(list)
for _lang, _words in _STOPWORDS.items():
    for _w in _words:
        _STOP_INDEX[_w].append(_lang)


@dataclass(slots=True)
class Jurisdiction:
    """The most likely country, its confidence and every piece of evidence used."""

    country: str | None
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    evidence: list[dict[str, object]] = field(default_factory=list)


_SHIP_VERBS = frozenset({"ship", "ships", "shipping", "shipped", "sent", "sending", "send",
                         "posted", "post", "dispatch", "dispatched", "delivered", "mailed"})
_DEST_WORDS = frozenset({"worldwide", "world", "europe", "eu", "all", "everywhere",
                        "international"})


@lru_cache(maxsize=1)
def _alias_words() -> tuple[dict[str, str], int]:
    al = {re.sub(r"[\W_]+", " ", k).strip(): v for k, v in country_aliases().items()}
    return al, max(k.count(" ") + 1 for k in al)


def _countries_at(words: list[str]) -> list[tuple[int, int, str]]:
    al, longest = _alias_words()
    out = []
    i = 0
    while i < len(words):
        for k in range(min(longest, len(words) - i), 0, -1):
            c = al.get(" ".join(words[i:i + k]) if k > 1 else words[i])
            if c:
                out.append((i, i + k, c))
                i += k - 1
                break
        i += 1
    return out


def shipping_countries(text: str | None) -> list[str]:
    """Countries a text says it ships from ("UK to UK", "ships from Germany", "USA domestic")."""
    if not text:
        return []
    words = re.findall(r"[^\W_]+", text.casefold())
    found = []
    hits = _countries_at(words)
    for n, (i, j, c) in enumerate(hits):
        nxt = hits[n + 1] if n + 1 < len(hits) else None
        if nxt and nxt[2] == c and (nxt[0] == j or (nxt[0] == j + 1 and words[j] in ("to", "2"))):
            found.append(c)                                   # "UK to UK", "USA-USA"
        elif (j < len(words) and words[j] == "domestic") or (
                i > 0 and words[i - 1] == "domestic") or (
                i > 1 and words[i - 2] == "domestic" and words[i - 1] in ("shipping", "in")):
            found.append(c)                                   # "USA domestic"
        elif i > 0 and words[i - 1] == "from" and (
                any(w in _SHIP_VERBS for w in words[max(0, i - 4):i - 1])
                or (j + 1 < len(words) and words[j] == "to" and words[j + 1] in _DEST_WORDS)):
            found.append(c)                                   # "ships from Germany"
    return found


_PARCEL_RE = re.compile(r"(?:stamp|postmark|post mark|postage|parcel|package|pack|letter)\w*\s+"
                        r"(?:\w+\s+){0,3}?(?:from|in|was)\s+(?:the\s+)?([a-z][a-z ]{1,25})")


def parcel_countries(text: str | None) -> list[str]:
    """Countries a feedback says a parcel came from ("stamp from NL", "package from Germany")."""
    if not text:
        return []
    out = []
    for m in _PARCEL_RE.finditer(text.casefold()):
        words = m.group(1).split()
        for k in range(min(3, len(words)), 0, -1):
            c = country_code(" ".join(words[:k]))
            if c:
                out.append(c)
                break
    return out


def detect_language(text: str | None) -> str | None:
    """Language of a text by stopword counts (None when unsure or too short)."""
    if not text:
        return None
    if len(re.findall(r"[а-яё]", text.casefold())) >= 10:
        return "ru"
    hits: Counter[str] = Counter()
    for w in re.findall(r"[^\W\d_]+", text.casefold()):
        for lang in _STOP_INDEX.get(w, ()):
            hits[lang] += 1
    if not hits:
        return None
    (best, n), *rest = hits.most_common(2) + [("", 0)]
    second = rest[0][1] if rest else 0
    return best if n >= 3 and n >= 1.5 * second else None


class TextMemo:
    """What each text says (shipping countries, parcel countries, language), worked out
    once per text for a run over many vendors.

    The same texts come back: every account's texts are read again for its persona, and
    a vendor repeats one description on many listings. The findings are pure functions
    of the text, so a remembered one is the one that would be worked out again."""

    def __init__(self) -> None:
        self._found: dict[Callable[[str], Any], dict[str, Any]] = {}

    def _of(self, find: Callable[[str], _T], text: str | None, none: _T) -> _T:
        """``find(text)``, worked out the first time ``text`` is asked of ``find``."""
        if not text:
            return none
        seen = self._found.setdefault(find, {})
        if text not in seen:
            seen[text] = find(text)
        return cast(_T, seen[text])

    def shipping(self, text: str | None) -> list[str]:
        """:func:`shipping_countries` of ``text``."""
        return self._of(shipping_countries, text, [])

    def parcel(self, text: str | None) -> list[str]:
        """:func:`parcel_countries` of ``text``."""
        return self._of(parcel_countries, text, [])

    def language(self, text: str | None) -> str | None:
        """:func:`detect_language` of ``text``."""
        return self._of(detect_language, text, None)


def infer_jurisdiction(ships_from: list[str | None], texts: list[str | None],
                       currencies: list[str | None], feedback: list[str | None],
                       memo: TextMemo | None = None) -> Jurisdiction:
    """Combine the evidence of one vendor (account or persona) into a country
    (``memo``: the findings of texts already read in this run)."""
    memo = memo or TextMemo()
    obs: dict[str, list[tuple[str, str]]] = defaultdict(list)  # kind -> [(country, raw)]
    for s in ships_from:
        c = country_code(s)
        if c:
            obs["ships_from"].append((c, s or ""))
    for t in texts:
        for c in memo.shipping(t):
            obs["shipping_phrase"].append((c, (t or "")[:80]))
    for f in feedback:
        for c in memo.parcel(f):
            obs["parcel"].append((c, (f or "")[:80]))
    langs = Counter(lang for lang in (memo.language(t) for t in texts) if lang)
    for cur in currencies:
        c = CURRENCY_COUNTRIES.get((cur or "").upper())
        if c:
            obs["currency"].append((c, cur or ""))
    scores: dict[str, float] = defaultdict(float)
    evidence: list[dict[str, object]] = []
    for kind, items in obs.items():
        n = len(items)
        sat = 1.0 - math.exp(-n / 2.0)
        counts = Counter(c for c, _ in items)
        for c, k in counts.items():
            w = BUDGETS[kind] * sat * k / n
            scores[c] += w
            example = next(raw for cc, raw in items if cc == c)
            evidence.append({"kind": kind, "country": c, "count": k, "weight": round(w, 3),
                             "example": example})
    if langs:
        n = sum(langs.values())
        sat = 1.0 - math.exp(-n / 2.0)
        for lang, k in langs.items():
            for c, share in LANGUAGE_COUNTRIES.get(lang, {}).items():
                w = BUDGETS["language"] * sat * share * k / n
                scores[c] += w
                evidence.append({"kind": "language", "country": c, "count": k,
                                 "weight": round(w, 3), "example": lang})
    if not scores:
        return Jurisdiction(None, 0.0, {}, evidence)
    top = max(scores, key=lambda c: scores[c])
    conf = scores[top] / (sum(scores.values()) + 1.0)
    evidence.sort(key=lambda e: -float(e["weight"]))  # type: ignore[arg-type]
    return Jurisdiction(top, round(conf, 3), {k: round(v, 3) for k, v in scores.items()},
                        evidence)
