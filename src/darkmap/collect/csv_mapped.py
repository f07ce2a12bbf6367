"""Listing datasets (CSV) read through declarative column mappings.

One importer, ``csv``, serves every CSV mapping in :mod:`darkmap.collect.mappings`:
``sniff`` scores each mapping against the file's first rows (header names, or field
counts and value patterns for headerless files, plus an optional file-name pattern) and
``read`` streams the file with the ``csv`` module through the best one.

Units are rows, located as ``row N`` where N is the line on which the record starts.
A row with the wrong number of fields, or whose required field fails its parse rule,
is quarantined with a reason naming the file, line and field; repeated listing ids are
kept as further observations of the same listing and counted in :class:`CsvStats`.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkmap.collect.mappings import FieldError, Mapping, MapStats, RowMapper, mappings
from darkmap.model.records import MarketRecord, QuarantineRecord, Record
from darkmap.plugins import SourceFile, register_importer

__all__ = ["CsvImporter", "CsvStats", "MappedCsvReader", "best_mapping", "score_mapping"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_SNIFF_ROWS = 40


@dataclass(slots=True)
class CsvStats:
    """What a read found: units, outcomes and repairs (for reports and benchmarks)."""

    rows: int = 0
    stored_rows: int = 0
    quarantined_rows: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    repeated_listing_rows: int = 0
    distinct_listings: int = 0
    mapping: str = ""
    map: MapStats = field(default_factory=MapStats)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        m = self.map
        return {"mapping": self.mapping, "rows": self.rows, "stored_rows": self.stored_rows,
                "quarantined_rows": self.quarantined_rows,
                "quarantine_reasons": dict(self.quarantine_reasons),
                "repeated_listing_rows": self.repeated_listing_rows,
                "distinct_listings": self.distinct_listings, "feedback": m.feedback,
                "feedback_duplicates_skipped": m.feedback_duplicates_skipped,
                "feedback_fragments_dropped": m.feedback_fragments_dropped,
                "identifiers": m.identifiers, "pgp_keys": m.pgp_keys,
                "pgp_failures": m.pgp_failures}


def _dialect(mapping: Mapping) -> dict[str, Any]:
    c = mapping.csv
    return {"delimiter": c.get("delimiter", ","), "quotechar": c.get("quotechar", '"'),
            "skipinitialspace": bool(c.get("skipinitialspace", False)),
            "escapechar": c.get("escapechar"), "doublequote": bool(c.get("doublequote", True))}


class MappedCsvReader:
    """Iterate the records of one CSV file through one mapping; fills :attr:`stats`."""

    def __init__(self, path: Path, mapping: Mapping, source_name: str | None = None) -> None:
        self.path = Path(path)
        self.mapping = mapping
        self.name = source_name or self.path.name
        self.stats = CsvStats(mapping=mapping.name)
        assert mapping.rows is not None
        self.mapper = RowMapper(mapping, mapping.rows)
        self.stats.map = self.mapper.stats

    def _quarantine(self, line: int, reason: str, kind: str, excerpt: str,
                    fld: str | None) -> QuarantineRecord:
        self.stats.quarantined_rows += 1
        self.stats.quarantine_reasons[kind] += 1
        return QuarantineRecord(locator=f"row {line}", field=fld,
                                reason=f"{self.name} line {line}: {reason}"[:500],
                                excerpt=excerpt[:1000], market_id=self.mapping.market_id)

    def __iter__(self) -> Iterator[Record]:
        m = self.mapping
        header = bool(m.csv.get("header", True))
        enc = m.csv.get("encoding", "utf-8")
        yield MarketRecord(market_id=m.market_id, name=m.market_name)
        with open(self.path, encoding=enc, errors="replace", newline="") as fh:
            reader = csv.reader(fh, **_dialect(m))
            names: list[str] | None = None if header else list(m.csv.get("columns") or [])
            allowed: set[int] | None = set(m.recognise.get("field_counts") or []) or None
            prev_line = 0
            mapper = self.mapper
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    # a malformed quote: quarantine and carry on from the next line
                    line = prev_line + 1
                    prev_line = reader.line_num
                    self.stats.rows += 1
                    yield self._quarantine(line, f"CSV syntax error: {exc}", "csv syntax",
                                           "", None)
                    continue
                line = prev_line + 1
                prev_line = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if names is None:
                    names = [f.strip().strip("\ufeff").strip() for f in fields]
                    continue
                self.stats.rows += 1
                n = len(fields)
                ok = n in allowed if allowed else n == len(names)
                if not ok:
                    expect = (f"{min(allowed)}-{max(allowed)}" if allowed and len(allowed) > 1
                              else str(next(iter(allowed)) if allowed else len(names)))
                    missing = names[n] if n < len(names) else None
                    what = (f" (field '{missing}' missing)" if missing else
                            f" ({n - len(names)} extra)")
                    yield self._quarantine(
                        line, f"expected {expect} fields, found {n}{what}",
                        "wrong field count", ", ".join(fields)[:1000], missing)
                    continue
                row = dict(zip(names, fields))
                try:
                    recs = mapper.map_row(row, f"row {line}")
                except FieldError as exc:
                    fld = re.search(r"field '([^']+)'", str(exc))
                    yield self._quarantine(line, str(exc), "field: " + (fld.group(1) if fld
                                                                        else "?"),
                                           ", ".join(fields), fld.group(1) if fld else None)
                    continue
                self.stats.stored_rows += 1
                yield from recs
        refs = mapper.stats.listing_refs
        self.stats.distinct_listings = len(refs)
        self.stats.repeated_listing_rows = sum(v - 1 for v in refs.values() if v > 1)


# ------------------------------------------------------------------------------ sniff


def _head_rows(head: bytes, mapping: Mapping) -> list[list[str]]:
    text = head.decode(mapping.csv.get("encoding", "utf-8"), "replace")
    if len(head) >= 64 * 1024 and "\n" in text:
        text = text[:text.rfind("\n")]  # drop a row cut by the 64 KiB head
    try:
        return [r for _, r in zip(range(_SNIFF_ROWS), csv.reader(io.StringIO(text, newline=""),
                                                               **_dialect(mapping))) if r]
    except csv.Error:
        return []


def score_mapping(src: SourceFile, mapping: Mapping) -> float:
    """How well ``mapping`` fits ``src`` (0-1), from its first rows and file name."""
    if b"\x00" in src.head[:4096]:
        return 0.0
    rec = mapping.recognise
    name_pat = rec.get("filename")
    name_ok = bool(name_pat and re.search(name_pat, Path(src.source).name))
    rows = _head_rows(src.head, mapping)
    score = 0.0
    if rows and mapping.csv.get("header", True):
        want = {str(c).strip().lower() for c in rec.get("header") or []}
        have = {c.strip().strip("\ufeff").lower() for c in rows[0]}
        if want and want <= have:
            score = 0.9
    elif rows:
        counts = set(rec.get("field_counts") or [])
        cols = list(mapping.csv.get("columns") or [])
        pats = {(cols.index(k) if isinstance(k, str) else int(k)): re.compile(p)
                for k, p in (rec.get("patterns") or {}).items()
                if isinstance(k, int) or k in cols}
        good = 0
        for r in rows:
            if counts and len(r) not in counts:
                continue
            if all(i < len(r) and p.search(r[i].strip()) for i, p in pats.items()):
                good += 1
        if (counts or pats) and good / len(rows) >= 0.8:
            score = 0.85
    if name_ok:
        score = min(1.0, score + 0.05) if score else 0.3
    return score


def best_mapping(src: SourceFile) -> tuple[Mapping | None, float]:
    """The CSV mapping that fits ``src`` best, and its score."""
    scored = [(score_mapping(src, m), m.name, m) for m in mappings("csv")]
    scored.sort(key=lambda s: (-s[0], s[1]))
    if not scored or scored[0][0] <= 0:
        return None, 0.0
    return scored[0][2], scored[0][0]


class CsvImporter:
    """Listing datasets in CSV, read through the declarative mappings."""

    name = "csv"
    version = "1"

    def sniff(self, src: SourceFile) -> float:
        """The best mapping's score (0.85-1 when its header or patterns match)."""
        try:
            return best_mapping(src)[1]
        except Exception:  # noqa: BLE001 - sniffing must never break the pipeline
            return 0.0

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Yield the records of every row; bad rows become QuarantineRecords."""
        mapping, score = best_mapping(src)
        if mapping is None or score < 0.5:
            yield QuarantineRecord(locator="file", reason=f"{src.source}: no CSV mapping "
                                   "recognises this file")
            return
        yield from MappedCsvReader(src.path, mapping, Path(src.source).name)


register_importer(CsvImporter())
