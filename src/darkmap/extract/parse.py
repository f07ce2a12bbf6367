"""Typed values from the strings a market page shows: prices, counts, dates.

Every function returns ``None`` for text it cannot read; nothing here raises on bad
input, and nothing invents a value (a relative date without an observation time stays
unresolved).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

__all__ = ["clean_text", "parse_date", "parse_float", "parse_int", "parse_price",
           "parse_within"]

_WS_RE = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
# ``_WS_RE.sub(" ", text)`` in two quicker steps: each of its characters but the space
# becomes a space (``str.replace``, for those present), then each run of two or more
# spaces becomes one (a literal-led pattern: the regex engine skips to each "  " instead
# of testing the class at every character). A maximal run of ``_WS_RE`` characters is
# then exactly a maximal run of spaces, so both give the same text.
_WS_OTHERS = ("\t", "\r", "\f", "\v", "\u00a0",
              *(chr(c) for c in range(0x2000, 0x200C)), "\u202f", "\u205f", "\u3000")
_WS_ASCII_OTHERS = _WS_OTHERS[:4]
_SPACES_RE = re.compile("  +")
# Two or more line breaks in a whitespace run become one: from the run's first line break to
# its end (the blanks before it end a line, which is stripped anyway). Led by a literal
# "\n", each run is read once (``\s*\n\s*(?:\n\s*)+`` tried every start inside a run:
# quadratic on 40,000 U+2028, which are whitespace but not collapsed by ``_WS_RE``).
_NL_RE = re.compile(r"\n[^\S\n]*+\n\s*+")
_INT_RE = re.compile(r"[-+]?\d[\d,\u00a0 ]*")
# a decimal comma as in prices ("4,85/5", "1.234,5"); a comma before exactly three digits
# separates thousands ("1,250"); the digits before a comma are taken possessively, so a
# long run of digits is read once
_FLOAT_RE = re.compile(r"[-+]?(?:\d{1,3}(?:\.\d{3}){1,8},\d++|\d++,(?!\d{3}(?!\d))\d++"
                       r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")

_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "฿": "BTC", "Ƀ": "BTC",
            "₿": "BTC", "ɱ": "XMR", "Ł": "LTC", "¥": "JPY", "A$": "AUD", "C$": "CAD",
            "AU$": "AUD", "CA$": "CAD"}
_CODES = {"USD", "EUR", "GBP", "BTC", "XMR", "LTC", "BCH", "AUD", "CAD", "CHF", "SEK",
          "NOK", "DKK", "PLN", "CZK", "JPY", "CNY", "RUB", "TRY", "ZEC", "ETH", "DASH",
          "MBTC"}
# At most 8 thousands groups: the number-then-currency patterns start at every group of
# "1 111 111 ..." (a space may precede a number), so an unbounded chain is quadratic.
# A decimal comma ("€ 89,50", "1.234,50 EUR", "0,0041 BTC") is a comma followed by other
# than exactly three digits; "1,250" stays one thousand two hundred and fifty.
_NUM = (r"(\d{1,3}(?:[.\u00a0 ]\d{3}){1,8},\d{1,2}(?!\d)|\d+,(?!\d{3}(?!\d))\d++"
        r"|\d{1,3}(?:[,\u00a0 ]\d{3}){1,8}(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_DECIMAL_COMMA_RE = re.compile(r",(?:\d{1,2}|\d{4,})$")
_CODE_ALT = "|".join(sorted(_CODES, key=len, reverse=True))
_SYM_ALT = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_PRICE_RES = (
    re.compile(rf"(?<![A-Za-z])({_CODE_ALT})\s*{_NUM}", re.I),
    re.compile(rf"(?<![\w*.,]){_NUM}\s*({_CODE_ALT})(?![A-Za-z])", re.I),
    re.compile(rf"({_SYM_ALT})\s*{_NUM}"),
    re.compile(rf"(?<![\w*.,]){_NUM}\s*({_SYM_ALT})"),
)

_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
    "%B %d, %Y %H:%M", "%B %d, %Y", "%b %d, %Y %H:%M", "%b %d, %Y", "%d %B %Y",
    "%d %b %Y", "%d %b %Y %H:%M", "%b %d %Y", "%Y/%m/%d", "%d.%m.%Y %H:%M", "%d.%m.%Y",
)
_REL_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
              "h": 3600, "hr": 3600, "hour": 3600, "d": 86400, "day": 86400,
              "w": 604800, "week": 604800, "mo": 2592000, "month": 2592000,
              "y": 31536000, "yr": 31536000, "year": 31536000}
_REL_PART_RE = re.compile(r"(\d+)\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|"
                          r"months?|years?|yrs?|mo|[smhdwy])\b", re.I)
_REL_ONLY_RE = re.compile(r"^\s*(?:about\s+|~\s*)?(?:\d+\s*[a-z]+[\s,]*)+(?:ago)?\s*$", re.I)


def clean_text(text: str | None, multiline: bool = False) -> str:
    """Collapse whitespace; keep paragraph breaks when ``multiline``."""
    if not text:
        return ""
    if multiline:
        for ch in _WS_ASCII_OTHERS if text.isascii() else _WS_OTHERS:
            if ch in text:
                text = text.replace(ch, " ")
        text = _SPACES_RE.sub(" ", text)
        text = _NL_RE.sub("\n", text)
        return "\n".join([line.strip() for line in text.split("\n")]).strip()
    return " ".join(text.split())


def parse_int(text: object) -> int | None:
    """The first integer in ``text`` (``1,067 sold`` -> 1067)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text
    m = _INT_RE.search(str(text or ""))
    if not m:
        return None
    digits = re.sub(r"[,\u00a0 ]", "", m.group(0))
    try:
        value = int(digits)
    except ValueError:
        return None
    return value if abs(value) < 2**31 else None


def parse_float(text: object) -> float | None:
    """The first decimal number in ``text`` (``4.85/5`` -> 4.85, ``99.39%`` -> 99.39,
    ``1,250`` -> 1250.0); a decimal comma as in prices (``4,85/5`` -> 4.85, ``1.234,5``
    -> 1234.5), which used to read as 485 and 1.234."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _FLOAT_RE.search(str(text or ""))
    if not m:
        return None
    num = m.group(0)
    try:
        value = (float(num.replace(".", "").replace(",", "."))
                 if _DECIMAL_COMMA_RE.search(num) else float(num.replace(",", "")))
    except ValueError:
        return None
    return value if value == value and abs(value) < 1e15 else None


def _amount(num: str) -> float:
    """A number matched by ``_NUM`` as a float: ``1,250.00`` and ``1.250,00`` alike."""
    if _DECIMAL_COMMA_RE.search(num):
        return float(re.sub(r"[.\u00a0 ]", "", num).replace(",", "."))
    return float(re.sub(r"[,\u00a0 ]", "", num))


def parse_price(text: str | None) -> tuple[float | None, str | None]:
    """``(amount, currency)`` of the first price in ``text``; currency as an ISO code."""
    if not text:
        return None, None
    best: tuple[int, float, str] | None = None
    for i, rx in enumerate(_PRICE_RES):
        m = rx.search(text)
        if not m:
            continue
        a, b = m.group(1), m.group(2)
        cur, num = (a, b) if i in (0, 2) else (b, a)
        cur = _SYMBOLS.get(cur, cur.upper())
        try:
            amount = _amount(num)
        except ValueError:
            continue
        best = (m.start(), amount, cur)
        break  # patterns are in order of preference: "USD 5" before "5 USD" before "$5"
    if best is None:
        return parse_float(text), None
    _, amount, cur = best
    if cur == "MBTC":
        return amount / 1000.0, "BTC"
    return amount, cur


def _relative(text: str, observed_at: datetime | None) -> datetime | None:
    low = text.strip().lower()
    if observed_at is None:
        return None
    day = observed_at.replace(hour=0, minute=0, second=0, microsecond=0)
    if low in ("today", "just now", "now") or low.startswith("today"):
        return day if low.startswith("today") else observed_at
    if low.startswith("yesterday"):
        return day - timedelta(days=1)
    if not _REL_ONLY_RE.match(low):
        return None
    total = 0
    for n, unit in _REL_PART_RE.findall(low):
        key = unit.lower()
        key = key if key in _REL_UNITS else key.rstrip("s")
        if key not in _REL_UNITS:
            return None
        total += int(n) * _REL_UNITS[key]
    if total == 0 and not _REL_PART_RE.search(low):
        return None
    try:
        return observed_at - timedelta(seconds=total)
    except OverflowError:
        return None


_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MDY_RE = re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})(?:,? (\d\d?):(\d\d)(?::(\d\d))?)?$")
_ISO_RE = re.compile(r"^\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d)?)?$")


def _fast_date(s: str) -> datetime | None:
    """The common shapes without strptime (which is slow): ISO and ``Nov 17, 2019 21:24``."""
    try:
        if _ISO_RE.match(s):
            return datetime.fromisoformat(s)
        m = _MDY_RE.match(s)
        if m:
            month = _MONTHS.get(m.group(1)[:3].lower())
            if month is None or (len(m.group(1)) > 3 and not m.group(1).lower().startswith(
                    ("january", "february", "march", "april", "may", "june", "july", "august",
                     "september", "october", "november", "december", "sept"))):
                return None
            hh, mm, ss = (int(m.group(i)) if m.group(i) else 0 for i in (4, 5, 6))
            return datetime(int(m.group(3)), month, int(m.group(2)), hh, mm, ss)
    except ValueError:
        return None
    return None


def parse_date(text: object, observed_at: datetime | None = None,
               formats: tuple[str, ...] | list[str] = ()) -> datetime | None:
    """An absolute date from ``text``, or a relative one resolved against ``observed_at``."""
    if isinstance(text, datetime):
        return text
    s = clean_text(str(text or ""))
    if not s or len(s) > 80:
        return None
    s = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", s)
    candidates = dict.fromkeys((s, re.sub(r"\s*\(.*?\)\s*", " ", s).strip(),
                                s.split(" UTC")[0].strip()))
    for candidate in candidates:
        for fmt in formats:
            try:
                return datetime.strptime(candidate, fmt)
            except ValueError:
                continue
        fast = _fast_date(candidate)
        if fast is not None:
            return fast
    if not any(ch.isdigit() for ch in s) or _REL_ONLY_RE.match(s):
        return _relative(s, observed_at)
    for candidate in candidates:
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(candidate, fmt)
            except ValueError:
                continue
    m = re.search(r"\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d)?)?", s)
    if m and m.group(0) != s:  # an ISO date inside other text; one that no format
        return parse_date(m.group(0))  # read on its own (2019-02-30) is no date at all
    return _relative(s, observed_at)


_WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
                 "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12,
                 "24": 24, "48": 48}
# "within the last 24 hours", "Whithin the last week" (sic), "in the past two weeks"
_WITHIN_RE = re.compile(
    r"(?i)\b(?:w\w{0,3}ithin|in)\s(?:the\s)?(?:last|past)\s(?:(\d{1,4}|[a-z]{1,6})\s)?"
    r"(seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b")


def parse_within(text: object) -> float | None:
    """Seconds of a relative span such as "Within the last 3 days" (259200.0).

    The account was seen at most that long before the page was observed; an
    unreadable text (or one naming no unit) gives ``None``.
    """
    if not isinstance(text, str):
        return None
    m = _WITHIN_RE.search(text[:500])
    if m is None:
        return None
    count = m.group(1)
    n = 1 if count is None else int(count) if count.isdigit() else _WORD_NUMBERS.get(
        count.lower())
    if n is None:
        return None
    unit = m.group(2).lower().rstrip("s")
    return float(n * _REL_UNITS[unit])
