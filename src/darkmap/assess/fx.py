"""Prices in USD at the listing's date: price-text parsing and a daily BTC/EUR table.

The shipped table ``data/fx_daily.csv`` (date, btc_usd, eur_usd) is built from monthly
reference points interpolated daily; its basis and error are stated in its header and
in docs/drugs.md. A better table can be dropped in without code changes: pass its path,
set ``$DARKMAP_FX_TABLE``, or put ``fx_daily.csv`` in the workspace folder. Any extra
column named ``<ccy>_usd`` (e.g. ``gbp_usd``) adds a currency. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from darkmap.errors import BadInputError, NotFoundError

__all__ = ["FxTable", "Price", "PriceBin", "load_fx", "parse_price", "parse_price_bin", "to_usd"]

_SYMBOLS = {"$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD",
            "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
            "£": "GBP", "gbp": "GBP", "btc": "BTC", "xbt": "BTC", "฿": "BTC",
            "bitcoin": "BTC", "mbtc": "MBTC", "xmr": "XMR", "cad": "CAD", "aud": "AUD",
            "chf": "CHF", "sek": "SEK"}
_PRICE_RE = re.compile(
    r"(us\$|\$|€|£|฿|usd|eur|euro|gbp|btc|xbt|mbtc|xmr|cad|aud|chf|sek)?\s*"
    r"(\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)\s*"
    r"(us\$|\$|€|£|฿|usd|eur|euros?|gbp|btc|xbt|mbtc|xmr|cad|aud|chf|sek|dollars?)?",
    re.IGNORECASE)
# a binned price as some datasets give it (Agora's "[1.00e-07,1.49e+00)"): a range, not a price
_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_BIN_RE = re.compile(rf"^\s*[\[(]\s*{_NUM}\s*,\s*{_NUM}\s*[\])]\s*$")


@dataclass(slots=True, frozen=True)
class PriceBin:
    """A price range as written ("[1.00e-07,1.49e+00)": 0 to 1.49), in ``currency``."""

    low: float
    high: float
    currency: str | None


def parse_price_bin(text: str | None, default_currency: str | None = None) -> PriceBin | None:
    """The bounds of a binned price ("[1.00e-07,1.49e+00)", "(0.5, 2]"); ``None`` when the
    text is not a bin. A bin is a range: it gives no point price (``parse_price`` reads
    none from it)."""
    if not text or len(text) > 200:
        return None
    m = _BIN_RE.match(text)
    if not m:
        return None
    lo, hi = float(m.group(1)), float(m.group(2))
    if not (lo == lo and hi == hi and 0 <= lo <= hi < 1e9):
        return None
    return PriceBin(lo, hi, (default_currency or "").upper() or None)


@dataclass(slots=True, frozen=True)
class Price:
    """An amount in a currency, as read from a price text."""

    amount: float
    currency: str
    tiered: bool = False


def parse_price(text: str | None, default_currency: str | None = None) -> Price | None:
    """Read "USD 340.00", "$1,500", "0.05 BTC", "52.50 EUR"; ``None`` when unreadable.

    A text with several prices (tiers) gives the first and ``tiered=True``; a binned
    price ("[1.00e-07,1.49e+00)") gives ``None``: a range is not a price.
    """
    if not text or len(text) > 200:
        return _parse_price(text[:200] if text else text, default_currency)
    return _parse_price_cached(text, default_currency)


@lru_cache(maxsize=65536)
def _parse_price_cached(text: str, default_currency: str | None) -> Price | None:
    return _parse_price(text, default_currency)


def _parse_price(text: str | None, default_currency: str | None = None) -> Price | None:
    """Read "USD 340.00", "$1,500", "0.05 BTC", "52.50 EUR"; ``None`` when unreadable.

    A text with several prices (tiers) gives the first and ``tiered=True``; a binned
    price ("[1.00e-07,1.49e+00)", see :func:`parse_price_bin`) gives none.
    """
    if not text or _BIN_RE.match(text):
        return None
    found = []
    for m in _PRICE_RE.finditer(text.strip()):
        cur = (m.group(1) or m.group(3) or "").casefold()
        raw = m.group(2)
        if re.fullmatch(r"\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?", raw):
            raw = re.sub(r"[,\s]", "", raw)
        else:
            raw = raw.replace(",", ".")
        try:
            amount = float(raw)
        except ValueError:
            continue
        ccy = _SYMBOLS.get(cur) or (default_currency or "").upper() or None
        if ccy and amount == amount and 0 <= amount < 1e9:
            found.append(Price(amount, ccy))
    if not found:
        return None
    first = found[0]
    if first.currency == "MBTC":
        first = Price(first.amount / 1000.0, "BTC")
    return Price(first.amount, first.currency, tiered=len(found) > 1)


class FxTable:
    """Daily USD rates by currency; lookups take the nearest earlier day in the table."""

    def __init__(self, days: np.ndarray, rates: dict[str, np.ndarray], source: str) -> None:
        self.days = days            # int64 days since 1970-01-01, sorted
        self.rates = rates          # currency -> USD per unit, aligned with days
        self.source = source
        self._cache: dict[tuple[str, date], tuple[float | None, str]] = {}

    @property
    def first_day(self) -> date:
        """First date covered."""
        return date.fromordinal(int(self.days[0]) + 719163)

    @property
    def last_day(self) -> date:
        """Last date covered."""
        return date.fromordinal(int(self.days[-1]) + 719163)

    def rate(self, currency: str, when: date | datetime | None) -> tuple[float | None, str]:
        """USD per unit of ``currency`` on ``when``, and a note ("" when exact)."""
        currency = (currency or "").upper()
        if currency == "USD":
            return 1.0, ""
        arr = self.rates.get(currency)
        if arr is None:
            return None, f"no {currency}/USD rate in fx table"
        if when is None:
            return None, "listing has no date"
        d = when.date() if isinstance(when, datetime) else when
        key = (currency, d)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._lookup(arr, d)
            if len(self._cache) < 200_000:
                self._cache[key] = hit
        return hit

    def _lookup(self, arr: np.ndarray, d: date) -> tuple[float | None, str]:
        day = d.toordinal() - 719163
        i = int(np.searchsorted(self.days, day, side="right")) - 1
        note = ""
        if i < 0:
            i, note = 0, f"date {d} before fx table; first rate used"
        elif day > self.days[-1]:
            note = f"date {d} after fx table; last rate used"
        v = float(arr[i])
        return (v if v > 0 else None), note

    def rates_for(self, currency: str, days: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`rate` over int64 day numbers (NaN when unknown)."""
        currency = (currency or "").upper()
        if currency == "USD":
            return np.ones(len(days))
        arr = self.rates.get(currency)
        if arr is None:
            return np.full(len(days), np.nan)
        idx = np.clip(np.searchsorted(self.days, days, side="right") - 1, 0, len(arr) - 1)
        return arr[idx]


def _parse_table(text: str, source: str) -> FxTable:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    cols = [c for c in (reader.fieldnames or []) if c and c.lower().endswith("_usd")]
    if not reader.fieldnames or "date" not in reader.fieldnames or not cols:
        raise BadInputError(f"{source}: fx table needs a 'date' column and '<ccy>_usd' columns")
    days: list[int] = []
    vals: dict[str, list[float]] = {c: [] for c in cols}
    for row in reader:
        try:
            d = date.fromisoformat((row.get("date") or "").strip()[:10])
        except ValueError:
            continue  # a bad row is skipped; the table stays usable
        days.append(d.toordinal() - 719163)
        for c in cols:
            try:
                vals[c].append(float(row.get(c) or "nan"))
            except ValueError:
                vals[c].append(float("nan"))
    if not days:
        raise BadInputError(f"{source}: fx table has no readable rows")
    order = np.argsort(np.array(days))
    d_arr = np.array(days, dtype=np.int64)[order]
    rates = {c[:-4].upper(): np.array(v, dtype=float)[order] for c, v in vals.items()}
    return FxTable(d_arr, rates, source)


def _read_text(path: Path) -> str:
    """A user's fx table: :class:`NotFoundError` when missing, :class:`BadInputError`
    when it cannot be read as UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: fx table not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the fx table: {exc}") from exc


@lru_cache(maxsize=8)
def _load(path: str | None) -> FxTable:
    if path:
        return _parse_table(_read_text(Path(path)), path)
    text = resources.files("darkmap.assess").joinpath("data", "fx_daily.csv").read_text(
        encoding="utf-8")
    return _parse_table(text, "darkmap:data/fx_daily.csv")


def load_fx(path: str | Path | None = None, workspace: Path | None = None) -> FxTable:
    """The fx table: ``path``, else ``$DARKMAP_FX_TABLE``, else the workspace's
    ``fx_daily.csv``, else the shipped approximation."""
    if path is None:
        path = os.environ.get("DARKMAP_FX_TABLE") or None
    if path is None and workspace is not None and (workspace / "fx_daily.csv").is_file():
        path = workspace / "fx_daily.csv"
    return _load(str(path) if path else None)


def to_usd(amount: float | None, currency: str | None, when: date | datetime | None,
           fx: FxTable | None = None) -> tuple[float | None, str]:
    """Convert ``amount`` to USD at ``when``; returns (usd or None, note)."""
    if amount is None or currency is None:
        return None, "no price"
    rate, note = (fx or load_fx()).rate(currency, when)
    if rate is None:
        return None, note
    return amount * rate, note
