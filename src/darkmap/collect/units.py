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
    """Outcomes per unit of one file (see the module docstring)."""

    __slots__ = ("_other", "_rows")

    def __init__(self) -> None:
        self._other: dict[str, str] = {}
        self._rows: list[np.ndarray] = []  # numbers N of stored units named "row N"

    def add(self, unit: str, outcome: str) -> None:
        """One record's ``outcome`` (``stored``, ``quarantined``, ``skipped``) for ``unit``."""
        prior = self._other.get(unit)
        if prior != "stored":
            self._other[unit] = outcome if prior is None or outcome == "stored" else prior

    def add_stored(self, locators: Sequence[str]) -> None:
        """Many locators whose records were all stored (a batch of rows)."""
        if not locators:
            return
        if "#" in "".join(locators):
            locators = [unit_of(x) for x in locators]
        numbers = _row_numbers(locators)
        if numbers is None:
            for unit in locators:
                self._other[unit] = "stored"
        else:
            self._rows.append(numbers)

    def counts(self) -> tuple[int, Counter[str]]:
        """Units read, and how many of them ended with each outcome."""
        rows = (distinct(np.concatenate(self._rows)) if self._rows
                else np.empty(0, dtype=np.int64))
        outcomes: Counter[str] = Counter()
        read = len(rows)
        outcomes["stored"] = len(rows)
        for unit, outcome in self._other.items():
            m = _ROW_UNIT.fullmatch(unit)
            if m is not None and len(rows):
                n = int(m.group(1))
                at = int(np.searchsorted(rows, n))
                if at < len(rows) and rows[at] == n:
                    continue  # a row stored in a batch: counted there
            read += 1
            outcomes[outcome] += 1
        return read, outcomes


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
