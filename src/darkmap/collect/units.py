"""The outcome of every unit of one file, counted in memory that stays small.

A file's units are what its importer reads one by one (a page, ``row N`` of a CSV,
``insert S row R`` of a dump); the ingest summary says how many were read and how many
of them were stored, quarantined or skipped, and these must reconcile. A unit is
*stored* if anything of it was stored, else quarantined or skipped as its first
outcome says.

Most units of a big dataset are plain rows stored in batches (``row N``). Kept as
strings in a dict, ten million of them cost about a gigabyte; here their numbers go
into numpy arrays (8 bytes each) and only the other units, few in any file, into a
dict. :meth:`UnitTally.counts` gives exactly what one dict of every unit would give.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from darkmap.model import arrow_compute as ac
from darkmap.model.arrays import distinct

__all__ = ["UnitTally", "unit_of"]

_ROW_PREFIX = "row "
_ROW_UNIT = re.compile(r"row ([1-9][0-9]{0,17})")
"""A unit named by its line number alone (no leading zero: one name per number)."""


def unit_of(locator: str) -> str:
    """The unit a locator belongs to: ``row 5#feedback 2`` belongs to ``row 5``."""
    return locator.split("#", 1)[0]


class UnitTally:
    """Outcomes per unit of one file (see the module docstring), and each unit's market.

    A unit's market is the first one a record of it names (a CSV with a market column
    holds rows of several markets); :meth:`counts_by_market` splits the counts so.
    """

    __slots__ = ("_other", "_rows", "_row_markets", "_states")

    def __init__(self) -> None:
        # unit -> (outcome, market): the pairs are shared (see _state), so a unit costs
        # its dict entry alone
        self._other: dict[str, tuple[str, str | None]] = {}
        self._rows: list[np.ndarray] = []  # numbers N of stored units named "row N"
        self._row_markets: list[str | None] = []  # the market of each array of _rows
        self._states: dict[tuple[str, str | None], tuple[str, str | None]] = {}

    def _state(self, outcome: str, market: str | None) -> tuple[str, str | None]:
        key = (outcome, market)
        return self._states.setdefault(key, key)

    def add(self, unit: str, outcome: str, market: str | None = None) -> None:
        """One record's ``outcome`` (``stored``, ``quarantined``, ``skipped``) for ``unit``,
        and the market the record names (None: none)."""
        prior = self._other.get(unit)
        if prior is None:
            self._other[unit] = self._state(outcome, market)
            return
        was, mkt = prior
        now = outcome if was != "stored" and outcome == "stored" else was
        if now != was or (mkt is None and market is not None):
            self._other[unit] = self._state(now, market if mkt is None else mkt)

    def add_stored(self, locators: Sequence[str], market: str | None = None) -> None:
        """Many locators whose records were all stored (a batch of rows of ``market``)."""
        if not locators:
            return
        if "#" in "".join(locators):
            locators = [unit_of(x) for x in locators]
        numbers = _row_numbers(locators)
        if numbers is None:
            for unit in locators:
                self.add(unit, "stored", market)
        else:
            self._rows.append(numbers)
            self._row_markets.append(market)

    def _stored_rows(self) -> np.ndarray:
        return (distinct(np.concatenate(self._rows)) if self._rows
                else np.empty(0, dtype=np.int64))

    @staticmethod
    def _in(rows: np.ndarray, unit: str) -> bool:
        """Whether ``unit`` is ``row N`` of a row stored in a batch (counted there)."""
        m = _ROW_UNIT.fullmatch(unit)
        if m is None or not len(rows):
            return False
        n = int(m.group(1))
        at = int(np.searchsorted(rows, n))
        return at < len(rows) and rows[at] == n

    def counts(self) -> tuple[int, Counter[str]]:
        """Units read, and how many of them ended with each outcome."""
        rows = self._stored_rows()
        outcomes: Counter[str] = Counter()
        read = len(rows)
        outcomes["stored"] = len(rows)
        for unit, (outcome, _market) in self._other.items():
            if self._in(rows, unit):
                continue  # a row stored in a batch: counted there
            read += 1
            outcomes[outcome] += 1
        return read, outcomes

    def counts_by_market(self, default: str | None) -> dict[str | None, Counter[str]]:
        """:meth:`counts` split by each unit's market: market -> ``read`` and outcomes.

        A unit no record of which names a market counts under ``default``; the counts of
        all markets add up to :meth:`counts`.
        """
        out: dict[str | None, Counter[str]] = {}
        rows = self._stored_rows()
        if len(rows):
            arrays = self._rows
            labels = np.concatenate([np.full(len(a), k, dtype=np.int64)
                                     for k, a in enumerate(arrays)])
            numbers = np.concatenate(arrays)
            _, first = np.unique(numbers, return_index=True)  # a row's first batch
            for k, n in zip(*np.unique(labels[first], return_counts=True), strict=True):
                mkt = self._row_markets[int(k)]
                c = out.setdefault(default if mkt is None else mkt, Counter())
                c["read"] += int(n)
                c["stored"] += int(n)
        for unit, (outcome, market) in self._other.items():
            if self._in(rows, unit):
                continue
            c = out.setdefault(default if market is None else market, Counter())
            c["read"] += 1
            c[outcome] += 1
        return out


def _row_numbers(units: Sequence[str]) -> np.ndarray | None:
    """The numbers N of units that are all named ``row N`` (as :data:`_ROW_UNIT`), or
    None when any is named otherwise."""
    arr = pa.array(units, pa.string())
    if not ac.all_true(ac.starts_with(arr, _ROW_PREFIX)):
        return None
    digits = ac.utf8_slice_codeunits(arr, len(_ROW_PREFIX))
    if not ac.all_true(ac.match_substring_regex(digits, r"^[1-9][0-9]{0,17}$")):
        return None
    return np.asarray(ac.cast(digits, pa.int64()).to_numpy(zero_copy_only=False),
                      dtype=np.int64)
