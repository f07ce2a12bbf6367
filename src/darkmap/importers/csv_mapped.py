"""Listing datasets (CSV) read through declarative column mappings.

One importer, ``csv``, serves every CSV mapping in :mod:`darkmap.importers.mappings`:
``sniff`` scores each mapping against the file's first rows (header names, or field
counts and value patterns for headerless files, plus an optional file-name pattern) and
``read`` streams the file with the ``csv`` module through the best one.

Units are rows, located as ``row N`` where N is the line on which the record starts.
A row with the wrong number of fields, or whose required field fails its parse rule,
is quarantined with a reason naming the file, line and field; repeated listing ids are
kept as further observations of the same listing and counted in :class:`CsvStats`.

Hostile files are read in bounded memory and counted line by line. The text is UTF-8
unless a byte-order mark says UTF-8 or UTF-16 (as Excel and PowerShell write), and the
mark never stays on the first field. Lines are read in pieces of at most
:data:`PIECE` characters: a physical line longer than
:data:`~darkmap.model.limits.MAX_FIELD_CHARS` is never held whole, each of its fields
is cut at the cap (a :class:`~darkmap.model.records.CutRecord`). A record that runs
over several lines (a quoted line break) and then has the wrong number of fields most
likely lost a quote: its first line is quarantined and the lines after it are read
again, as are those of a record running over :data:`RECORD_CHARS` characters, so one
stray quote costs one row, never the rest of the file.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import re
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain, compress, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pyarrow as pa

from darkmap.importers.capped import CappedText
from darkmap.importers.mappings import (
    BUILTIN_MAPPINGS,
    ColumnMapper,
    FieldError,
    Mapping,
    MappingError,
    MapStats,
    RowMapper,
    mappings,
    market_key,
)
from darkmap.model import arrow_compute as ac
from darkmap.model.limits import FIELD_CHARS, MAX_FIELD_CHARS, MAX_SNIFF_NULS, cap_text
from darkmap.model.records import (
    CutRecord,
    ListingBatch,
    MarketRecord,
    QuarantineRecord,
    Record,
)
from darkmap.plugins import HEAD_BYTES, SourceFile

__all__ = ["PIECE", "RECORD_CHARS", "CsvImporter", "CsvStats", "MappedCsvReader",
           "absent_columns", "best_mapping", "csv_encoding", "gc_paused", "missing_columns",
           "score_mapping", "why_not"]

# fields are bounded by the readers below (line pieces, record budget), not by the module
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

PIECE = 1 << 13
"""Characters read from a line at a time; a block with a longer line is read carefully."""
RECORD_CHARS = 4 * MAX_FIELD_CHARS
"""Most characters one record may span over several lines before its first line is
quarantined (a quote is missing) and the lines after it are read again."""
_BLOCK_CHARS = 8 << 20
"""Most characters of lines parsed in one block on the fast path."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a block of work that creates no cycles.

    Objects without cycles are still freed by reference counting; the collector runs
    again afterwards (if it was on before) and catches anything left.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
_SNIFF_ROWS = 40


@dataclass(slots=True)
class CsvStats:
    """What a read found: units, outcomes and repairs (for reports and benchmarks)."""

    rows: int = 0
    stored_rows: int = 0
    quarantined_rows: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    repeated_listing_rows: int | None = 0
    distinct_listings: int | None = 0
    """None (with ``repeated_listing_rows``) when the reader was told not to count them."""
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


def csv_encoding(head: bytes, encoding: str = "utf-8") -> str:
    """The encoding to read a file in: a byte-order mark's (UTF-16, or UTF-8 without the
    mark), else ``encoding``."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8) and codecs.lookup(encoding).name == "utf-8":
        return "utf-8-sig"
    return encoding


def _dialect(mapping: Mapping) -> dict[str, Any]:
    c = mapping.csv
    return {"delimiter": c.get("delimiter", ","), "quotechar": c.get("quotechar", '"'),
            "skipinitialspace": bool(c.get("skipinitialspace", False)),
            "escapechar": c.get("escapechar"), "doublequote": bool(c.get("doublequote", True))}


def _read_block(pieces: Iterator[str], n: int) -> list[str]:
    """Up to ``n`` line pieces: fewer once they hold :data:`_BLOCK_CHARS` characters, or
    soon after a piece of a long line (the careful reader takes over there)."""
    lines: list[str] = []
    total = 0
    while len(lines) < n and total < _BLOCK_CHARS:
        more = list(islice(pieces, min(2048, n - len(lines))))
        if not more:
            break
        lines += more
        longest = max(map(len, more))
        if longest >= PIECE:
            break
        total += sum(map(len, more))
    return lines


_Line = tuple[int, str, "list[tuple[int, CutRecord]] | None"]
"""A physical line for the careful reader: its number, text (long lines capped) and the
cuts made in it (field index in the line, cut)."""


class _Runaway(Exception):
    """A record ran over :data:`RECORD_CHARS` characters across lines."""


class _TooLong(Exception):
    """A line whose fields, each cut at the cap, are still too long together."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _Feed:
    """Physical lines for ``csv.reader`` in careful mode.

    Pieces of one line are joined; a line over the cap is capped field by field as it
    is read (:func:`_cap_line`). The lines of the record being read are kept
    (:meth:`take`) so that they can be read again (:meth:`again`); a record that runs
    over :data:`RECORD_CHARS` characters stops the reader (:class:`_Runaway`).
    """

    def __init__(self, pieces: Iterator[str], base: int, dialect: dict[str, Any]) -> None:
        self.pieces = pieces
        self.next_line = base + 1
        self.dialect = dialect
        self.replay: deque[_Line] = deque()
        self.taken: list[_Line] = []
        self.chars = 0
        self.pushed = ""

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        item = self.replay.popleft() if self.replay else self._fresh()
        self.taken.append(item)
        self.chars += len(item[1])
        if self.chars > RECORD_CHARS and len(self.taken) > 1:
            raise _Runaway
        return item[1]

    def _piece(self) -> str:
        if self.pushed:
            p, self.pushed = self.pushed, ""
            return p
        return next(self.pieces, "")

    def _fresh(self) -> _Line:
        piece = self._piece()
        if not piece:
            raise StopIteration
        n = self.next_line
        self.next_line += 1
        if len(piece) < PIECE or piece[-1] == "\n":
            return n, piece, None
        parts, total = [piece], len(piece)
        while parts[-1][-1] != "\n" and len(parts[-1]) >= PIECE:
            if parts[-1][-1] == "\r":  # a \r\n may be split between two pieces
                nxt = self._piece()
                if nxt.startswith("\n"):
                    parts[-1] += "\n"
                    nxt = nxt[1:]
                self.pushed = nxt
                break
            if total > MAX_FIELD_CHARS:
                text, cuts = _cap_line(n, parts, self._piece, self.dialect)
                return n, text, cuts
            p = self._piece()
            if not p:
                break
            parts.append(p)
            total += len(p)
        return n, "".join(parts), None

    def take(self) -> list[_Line]:
        """The lines of the record just read (and forget them)."""
        lines, self.taken, self.chars = self.taken, [], 0
        return lines

    def again(self, lines: list[_Line]) -> None:
        """Read ``lines`` again before any new line."""
        self.replay.extendleft(reversed(lines))


def _cap_line(n: int, parts: list[str], more: Callable[[], str], dialect: dict[str, Any]
              ) -> tuple[str, list[tuple[int, CutRecord]]]:
    """Line ``n``, given as ``parts`` and then read piece by piece from ``more``, with
    each field cut at the cap: the line rewritten (every field quoted) and the cuts.

    Fields are split as the ``csv`` module splits them (quotes, doubled quotes, an
    escape character, spaces after the delimiter); a field still open at the end of the
    line stays open, so the record goes on over the next line as it would have.
    Raises :class:`_TooLong` if the cut fields still hold over :data:`RECORD_CHARS`.
    """
    d, q = dialect["delimiter"], dialect["quotechar"] or ""
    esc, skip = dialect["escapechar"] or "", dialect["skipinitialspace"]
    double = dialect["doublequote"]
    plain = re.compile("[" + re.escape(d + esc) + "\r\n]")
    quoted = re.compile("[" + re.escape(q + esc) + "]") if q else None
    fields: list[tuple[str, CutRecord | None]] = []
    kept = 0
    # begin (of the line), start (of a field), field, quoted, quote (a quote in a quoted
    # field), esc and qesc (after an escape character), end (of the line)
    state = "begin"
    cur = CappedText()

    def close() -> None:
        nonlocal cur, kept
        fields.append(cur.result())
        kept += min(cur.chars, cur.cap)
        cur = CappedText()

    def feed(text: str) -> None:
        nonlocal state
        i, end = 0, len(text)
        while i < end:
            c = text[i]
            if state in ("esc", "qesc"):
                cur.add(c)
                state = "field" if state == "esc" else "quoted"
                i += 1
            elif state == "quoted" and quoted is not None:
                m = quoted.search(text, i)
                j = end if m is None else m.start()
                cur.add(text[i:j])
                if m is not None:
                    state = "qesc" if m.group() == esc else ("quote" if double else "field")
                    j += 1
                i = j
            elif state == "quote":
                if c == q:
                    cur.add(c)
                    state = "quoted"
                elif c == d:
                    close()
                    state = "start"
                elif c in "\r\n":
                    close()
                    state = "end"
                else:
                    cur.add(c)
                    state = "field"
                i += 1
            elif state == "start" and c == q and q:
                state = "quoted"
                i += 1
            elif state == "start" and c == " " and skip:
                i += 1
            elif state == "begin" and c in "\r\n":
                state = "end"  # an empty line: no record
            elif state == "begin":
                state = "start"
            elif state == "end":
                i = end
            else:  # start or field: up to the next delimiter, escape or line end
                m = plain.search(text, i)
                j = end if m is None else m.start()
                cur.add(text[i:j])
                state = "field"
                if m is not None:
                    g = m.group()
                    if g == d:
                        close()
                        state = "start"
                    elif g == esc:
                        state = "esc"
                    else:
                        close()
                        state = "end"
                    j += 1
                i = j

    pieces: Iterable[str] = parts
    last = ""
    while True:
        for p in pieces:
            feed(p)
            last = p
        if last.endswith(("\n", "\r")) or len(last) < PIECE:
            break
        p = more()
        if not p:
            break
        pieces = (p,)
    if state in ("esc", "qesc"):  # an escape character before the end of file
        cur.add("\n")
        state = "field" if state == "esc" else "quoted"
    open_quote = state == "quoted"
    if not open_quote and state not in ("end", "begin"):  # the end of file ends the field
        close()
    if kept > RECORD_CHARS:
        raise _TooLong(n, f"a line of {len(fields)} fields still holds {kept} characters "
                       f"with each cut at {MAX_FIELD_CHARS}")
    out, cuts = [], []
    for i, (text, cut) in enumerate(fields):
        out.append(_quote(text, q, esc, double))
        if cut is not None:
            cuts.append((i, cut))
    line = d.join(out)
    ending = "\r\n" if last.endswith("\r\n") else last[-1:] if last[-1:] in ("\r", "\n") else ""
    if open_quote:  # the line ending is in the field, which goes on over the next line
        head, cut = cur.result()
        line += (d if fields else "") + q + _escape_quotes(head, q, esc, double)
        if cut is not None:
            cuts.append((len(fields), cut))
        return line if line.endswith(ending) else line + ending, cuts
    return line + ending, cuts


def _escape_quotes(text: str, q: str, esc: str, double: bool) -> str:
    if not q or (q not in text and not (esc and esc in text)):
        return text
    if esc:
        text = text.replace(esc, esc + esc)
    return text.replace(q, q + q if double or not esc else esc + q)


def _quote(text: str, q: str, esc: str, double: bool) -> str:
    """``text`` as one quoted field (read back as ``text`` by the same dialect)."""
    return q + _escape_quotes(text, q, esc, double) + q if q else text


class MappedCsvReader:
    """Iterate the records of one CSV file through one mapping; fills :attr:`stats`.

    With ``columnar`` (and a mapping :class:`ColumnMapper` can serve), well-formed rows
    come out as :class:`ListingBatch` blocks instead of one ListingRecord each, with
    the same content; broken rows are still QuarantineRecords, in file order.
    """

    BLOCK = 16_384

    def __init__(self, path: Path, mapping: Mapping, source_name: str | None = None,
                 columnar: bool = False, count_listings: bool = True) -> None:
        self.path = Path(path)
        self.mapping = mapping
        self.name = source_name or self.path.name
        self.stats = CsvStats(mapping=mapping.name)
        if mapping.rows is None:
            raise MappingError(f"{mapping.name}: a CSV mapping needs a 'rows' section")
        self.mapper = RowMapper(mapping, mapping.rows, count_listings)
        self.stats.map = self.mapper.stats
        # a market per row (a market column) goes through the row mapper
        self.columns = (ColumnMapper(self.mapper)
                        if columnar and ColumnMapper.eligible(mapping.rows)
                        and not mapping.market_column else None)
        self.market = mapping.market_id or None  # None: each row names its market

    def _quarantine(self, line: int, reason: str, kind: str, excerpt: str,
                    fld: str | None, limit: str | None = None,
                    market: str | None = None) -> QuarantineRecord:
        self.stats.quarantined_rows += 1
        self.stats.quarantine_reasons[kind] += 1
        return QuarantineRecord(locator=f"row {line}", field=fld,
                                reason=f"{self.name} line {line}: {reason}"[:500],
                                excerpt=excerpt[:1000], market_id=market or self.market,
                                limit=limit)

    def _row_market(self, row: dict[str, Any]) -> str | None:
        """The market a row's market cell names (a mapping with a market column), or
        None (no market column, or the cell is empty)."""
        col = self.mapping.market_column
        if not col:
            return None
        text = (row.get(col) or "").strip()
        return market_key(text) if text and text not in self.mapping.null_values else None

    def _wrong_count(self, line: int, fields: list[str], names: list[str],
                     allowed: set[int] | None) -> QuarantineRecord:
        n = len(fields)
        expect = (f"{min(allowed)}-{max(allowed)}" if allowed and len(allowed) > 1
                  else str(next(iter(allowed)) if allowed else len(names)))
        missing = names[n] if n < len(names) else None
        what = f" (field '{missing}' missing)" if missing else f" ({n - len(names)} extra)"
        market = (self._row_market(dict(zip(names, fields, strict=False)))
                  if self.mapping.market_column else None)
        return self._quarantine(line, f"expected {expect} fields, found {n}{what}",
                                "wrong field count", ", ".join(fields[:50])[:1000], missing,
                                market=market)

    def _blocks(self) -> Iterator[tuple[list[str], list[Any]]]:
        """(column names, block) pairs; a block lists ``(line, fields)`` rows of the right
        field count, QuarantineRecords for the others and CutRecords, in file order.

        Lines are read a block at a time (in pieces of at most :data:`PIECE`
        characters) and parsed in one call; while every record sits on one short
        line, record k of a block is on the block's line k. A block with a record over
        several lines (a quoted line break), a long line or a CSV syntax error is
        parsed again record by record, as is the rest of the file after it.
        """
        m = self.mapping
        header = bool(m.csv.get("header", True))
        dialect = _dialect(m)
        self._names: list[str] = [] if header else list(m.csv.get("columns") or [])
        self._need_header = header
        with open(self.path, "rb") as raw:
            enc = csv_encoding(raw.read(4), m.csv.get("encoding", "utf-8"))
        with open(self.path, encoding=enc, errors="replace", newline="") as fh:
            pieces = iter(partial(fh.readline, PIECE), "")
            base = 0  # lines before the current block
            while True:
                lines = _read_block(pieces, self.BLOCK)
                if not lines:
                    return
                recs = None
                if max(map(len, lines)) < PIECE:
                    try:
                        recs = list(csv.reader(lines, **dialect))
                    except csv.Error:
                        recs = None
                if (recs is None or len(recs) != len(lines)
                        or any("\n" in f or "\r" in f for f in (recs[-1] if recs else ()))):
                    yield from self._careful(chain(lines, pieces), dialect, base)
                    return
                block = self._fast_block(recs, base)
                base += len(lines)
                del recs, lines  # held by this frame while suspended otherwise
                if block:
                    self.stats.rows += len(block)
                    out = [block]
                    del block
                    yield self._names, out.pop()

    def _counts(self) -> set[int]:
        allowed = set(self.mapping.recognise.get("field_counts") or [])
        return allowed or {len(self._names)}

    def _fast_block(self, recs: list[list[str]], base: int) -> list[Any]:
        """A block whose record k is on line ``base + k + 1``."""
        lens = np.fromiter(map(len, recs), dtype=np.int64, count=len(recs))
        odd = lens <= 1
        if self._need_header or odd.any():
            out: list[Any] = []
            for k, fields in enumerate(recs):
                self._row(out, base + k + 1, fields)
            return out
        good = np.isin(lens, list(self._counts()))
        if good.all():
            return list(enumerate(recs, base + 1))
        out = []
        for k in range(len(recs)):
            if good[k]:
                out.append((base + k + 1, recs[k]))
            else:
                self._row(out, base + k + 1, recs[k])
        return out

    def _row(self, out: list[Any], line: int, fields: list[str]) -> None:
        """Sort one record into ``out``: skipped if blank, the header, a row or a quarantine."""
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            return
        if self._need_header:
            self._names = [f.strip().strip("\ufeff").strip() for f in fields]
            self._need_header = False
            return
        if len(fields) in self._counts():
            out.append((line, fields))
        else:
            allowed = set(self.mapping.recognise.get("field_counts") or []) or None
            out.append(self._wrong_count(line, fields, self._names, allowed))

    def _fits(self, fields: list[str]) -> bool:
        """Whether ``_row`` would keep ``fields`` (blank, the header, or a right count)."""
        return (self._need_header or not fields
                or (len(fields) == 1 and not fields[0].strip())
                or len(fields) in self._counts())

    def _careful(self, pieces: Iterator[str], dialect: dict[str, Any],
                 base: int) -> Iterator[tuple[list[str], list[Any]]]:
        """Record by record, with each record's first line, from line ``base + 1`` on.

        A record that fails after running over several lines is quarantined on its first
        line only, and the lines after it are read again (see the module's docstring).
        """
        feed = _Feed(pieces, base, dialect)
        reader = csv.reader(feed, **dialect)
        block: list[Any] = []
        rows = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, _Runaway, _TooLong) as exc:
                rows += self._broken(block, feed, exc)
                reader = csv.reader(feed, **dialect)
                continue
            lines = feed.take()
            line = lines[0][0]
            if len(lines) > 1 and not self._fits(fields):
                block.append(self._quarantine(
                    line, f"a record over lines {line}-{lines[-1][0]} has {len(fields)} "
                    "fields: a quote is probably missing; the lines after this one are read "
                    "again", "wrong field count", "".join(x[1] for x in lines)[:1000], None))
                rows += 1
                feed.again(lines[1:])
                reader = csv.reader(feed, **dialect)
                continue
            before = len(block)
            block.extend(self._cuts(line, fields, lines))
            self._row(block, line, fields)
            if len(block) > before and type(block[-1]) is not CutRecord:
                rows += 1
            if len(block) >= self.BLOCK:
                self.stats.rows += rows
                yield self._names, block
                block, rows = [], 0
        if block:
            self.stats.rows += rows
            yield self._names, block

    def _broken(self, block: list[Any], feed: _Feed, exc: Exception) -> int:
        """Quarantine the first line of a record the reader could not finish; the lines
        after it are read again (a long line's rest is dropped). Returns 1 (the row)."""
        lines = feed.take()
        if isinstance(exc, _TooLong):
            if lines:  # the long line went on a record begun above it: that one fails too
                block.append(self._quarantine(
                    lines[0][0], f"the record goes on over line {exc.line}, which is too "
                    "long; the lines after this one are read again", "record too long", "",
                    None, FIELD_CHARS))
                feed.again(lines[1:])
            block.append(self._quarantine(exc.line, str(exc), "record too long", "", None,
                                          FIELD_CHARS))
            return 1 + bool(lines)
        if isinstance(exc, _Runaway):
            line, limit = lines[0][0], FIELD_CHARS
            why = (f"a record runs over {RECORD_CHARS} characters (lines {line}-"
                   f"{lines[-1][0]}): a quote is probably missing; the lines after this one "
                   "are read again")
        else:
            line, limit = (lines[0][0] if lines else feed.next_line - 1), None
            why = f"CSV syntax error: {exc}"
        block.append(self._quarantine(line, why, "csv syntax" if limit is None else
                                      "record too long", "", None, limit))
        feed.again(lines[1:])
        return 1

    def _cuts(self, line: int, fields: list[str], lines: list[_Line]) -> list[CutRecord]:
        """The cuts of a record's fields: those of its long lines, and any field still
        over the cap (one that ran over several lines) cut here."""
        names = self._names
        out = []
        for _n, _text, cuts in lines:
            for i, cut in cuts or ():
                cut.locator, cut.market_id = f"row {line}", self.market
                cut.field = names[i] if i < len(names) else f"field {i + 1}"
                out.append(cut)
        if max(map(len, fields), default=0) > MAX_FIELD_CHARS:
            for i, f in enumerate(fields):
                if len(f) > MAX_FIELD_CHARS:
                    fields[i], one = cap_text(f, names[i] if i < len(names) else
                                              f"field {i + 1}", f"row {line}",
                                              market_id=self.market)
                    if one is not None:
                        out.append(one)
        return out

    def _map_one(self, names: list[str], line: int, fields: list[str]) -> list[Record]:
        """The records of one row through the row mapper (a quarantine if it fails)."""
        try:
            # a mapping's field_counts may allow rows shorter or longer than the header
            row = dict(zip(names, fields, strict=False))
            recs = self.mapper.map_row(row, f"row {line}")
        except FieldError as exc:
            fld = re.search(r"field '([^']+)'", str(exc))
            return [self._quarantine(line, str(exc), "field: " + (fld.group(1) if fld else "?"),
                                     ", ".join(fields), fld.group(1) if fld else None,
                                     market=self._row_market(row))]
        self.stats.stored_rows += 1
        return recs

    def __iter__(self) -> Iterator[Record]:
        m = self.mapping
        if not m.market_column:  # else the row mapper announces each market it meets
            yield MarketRecord(market_id=m.market_id, name=m.market_name)
        blocks = self._blocks()
        while self.columns is not None:
            # a block is parsed and mapped with the cycle collector paused: it builds tens
            # of thousands of lists and tuples (no cycles among them) that would otherwise
            # trigger collections walking them all, about 5% of a large CSV's ingest
            with gc_paused():
                got = next(blocks, None)
                if got is None:
                    break
                recs = list(self._columnar(self.columns, *got))
                del got  # the block's rows die here, uncollected and untraversed
            yield from recs
        for names, block in blocks:
            for item in block:
                if type(item) is not tuple:
                    yield item
                else:
                    yield from self._map_one(names, *item)
        refs = self.mapper.stats.listing_refs
        if refs is None:
            self.stats.distinct_listings = self.stats.repeated_listing_rows = None
        else:
            self.stats.distinct_listings = refs.distinct
            self.stats.repeated_listing_rows = refs.rows - refs.distinct

    def _columnar(self, cm: ColumnMapper, names: list[str], block: list[Any]
                  ) -> Iterator[Record]:
        """One block through the column mapper: its mapped rows become a ListingBatch.

        Rows the column mapper does not map go through the row mapper. Should one of
        them still yield a listing, the batch is cut there so that every table gets its
        rows in file order.
        """
        rows = [item for item in block if type(item) is tuple]
        n = len(rows)
        lines = [r[0] for r in rows]
        fields = [r[1] for r in rows]
        shortest = min(map(len, fields), default=0)
        where = {name: j for j, name in enumerate(names)}  # a repeated name: the last wins
        cols: dict[str, list[str | None]] = {}
        for c in cm.columns():
            j = where.get(c)
            if j is None:
                cols[c] = [None] * n
            elif j < shortest:
                cols[c] = list(map(itemgetter(j), fields))
            else:
                cols[c] = [f[j] if len(f) > j else None for f in fields]
        units = [f"row {x}" for x in lines]
        found = self.mapper.stats.identifiers
        try:
            attrs, ok = cm.map_block(cols, n)
            refs = attrs["listing_ref"]
            handles = attrs.get("vendor_handle") or [None] * n
            mapped = np.flatnonzero(ok)
            idents = cm.identifier_records(cols, mapped, refs, handles, units)
        except (pa.ArrowException, UnicodeError):  # text Arrow cannot hold (lone surrogates)
            self.mapper.stats.identifiers = found
            for item in block:
                yield from ([item] if type(item) is not tuple else
                            self._map_one(names, *item))
            return
        counted = self.mapper.stats.listing_refs
        if counted is not None:
            counted.update(refs if len(mapped) == n else [refs[i] for i in mapped.tolist()])
        # rows the column mapper left to the row mapper; they normally fail (quarantine)
        redo = {k: self._map_one(names, *rows[k]) for k in np.flatnonzero(~ok).tolist()}
        if all(type(r) is QuarantineRecord for recs in redo.values() for r in recs):
            # nothing but the batch reaches the listing tables: quarantines first, then
            # every mapped row of the block in one batch (same rows, same table order)
            k = 0
            for item in block:
                if type(item) is tuple:
                    if k in redo:
                        yield from redo[k]
                    k += 1
                else:
                    yield item
            yield from self._batch(attrs, units, ok, idents)
            return
        k = start = 0  # rows[start:k] is the current run of mapped rows
        for item in block:
            if type(item) is tuple:
                if ok[k]:
                    k += 1
                    continue
                yield from self._batch(attrs, units, self._run(n, start, k), idents)
                yield from redo[k]
                k += 1
                start = k
            else:
                yield from self._batch(attrs, units, self._run(n, start, k), idents)
                start = k
                yield item
        yield from self._batch(attrs, units, self._run(n, start, k), idents)

    @staticmethod
    def _run(n: int, a: int, b: int) -> Any:
        sel = np.zeros(n, dtype=bool)
        sel[a:b] = True
        return sel

    def _batch(self, attrs: dict[str, Any], units: list[str], sel: Any,
               idents: dict[int, list[Record]]) -> Iterator[Record]:
        """The rows ``sel`` (a numpy mask) as one ListingBatch, then their identifiers."""
        count = int(sel.sum())
        if not count:
            return
        self.stats.stored_rows += count
        if count == len(units):
            cols, locs = attrs, units
        else:
            mask = sel.tolist()
            keep = pa.array(mask, pa.bool_())
            cols = {k: (list(compress(v, mask)) if isinstance(v, list) else ac.filter_by(v, keep))
                    for k, v in attrs.items()}
            locs = list(compress(units, mask))
        yield ListingBatch(market_id=self.mapping.market_id, locators=locs, columns=cols)
        for i in sorted(idents):
            if sel[i]:
                yield from idents[i]


# ------------------------------------------------------------------------------ sniff


class _HeadRows:
    """The first non-empty rows of a head in one dialect, parsed only as far as asked.

    Sniffing stops reading a head once its score is decided (an HTML page fails a
    headerless mapping within a few rows), so most heads are never parsed to the end.
    :meth:`rows` is what parsing the first ``_SNIFF_ROWS`` records gives: their
    non-empty rows, or none at all when the CSV syntax fails within them.
    """

    __slots__ = ("_reader", "_seen", "found", "failed", "done")

    def __init__(self, head: bytes, enc: str, dialect: dict[str, Any]) -> None:
        self._reader = csv.reader(_head_lines(head, enc), **dialect)
        self._seen = 0
        self.found: list[list[str]] = []
        self.failed = False
        self.done = False

    def upto(self, k: int) -> list[list[str]]:
        """At least ``k`` non-empty rows when the first records hold that many."""
        while len(self.found) < k and not self.done:
            if self._seen >= _SNIFF_ROWS:
                self.done = True
                break
            try:
                row = next(self._reader)
            except StopIteration:
                self.done = True
                break
            except csv.Error:
                self.failed = self.done = True
                break
            self._seen += 1
            if row:
                self.found.append(row)
        return self.found

    def rows(self) -> list[list[str]]:
        """Every row sniffing may look at (none when the syntax fails)."""
        self.upto(_SNIFF_ROWS)
        return [] if self.failed else self.found


def _head_lines(head: bytes, enc: str) -> Iterator[str]:
    """The lines of ``head.decode(enc, "replace")`` as ``io.StringIO(text, newline="")``
    gives them, the text cut before its last ``\\n`` when the head is a full 64 KiB
    (its last row may be torn), decoded only as far as the lines are read.

    Text is split up to its last ``\\n`` so far, which splits lines exactly as in the
    whole text; the last complete line waits, as the cut may still shorten it.
    """
    cut = len(head) >= HEAD_BYTES
    if codecs.lookup(enc).name not in _INCREMENTAL_SAFE:
        text = head.decode(enc, "replace")
        if cut and "\n" in text:
            text = text[:text.rfind("\n")]
        yield from io.StringIO(text, newline="")
        return
    dec = codecs.getincrementaldecoder(enc)(errors="replace")
    pending: str | None = None  # the last line ending in \n, held back
    rest = ""
    start, size = 0, 4096
    while True:
        final = start >= len(head)
        rest += dec.decode(b"", final=True) if final else dec.decode(head[start:start + size])
        start += size
        size *= 2
        end = rest.rfind("\n") + 1
        if end:
            for line in io.StringIO(rest[:end], newline=""):
                if pending is not None:
                    yield pending
                pending = line
            rest = rest[end:]
        if final:
            break
    if pending is not None:
        if cut:  # the text ends before the last \n: that line loses it, the rest goes
            if pending[:-1]:
                yield pending[:-1]
            return
        yield pending
    yield from io.StringIO(rest, newline="")


# codecs whose incremental decoder gives exactly what one decode() call gives
_INCREMENTAL_SAFE = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252",
                     "iso8859-15"}


_HEADS: dict[tuple[Any, ...], _HeadRows] = {}
_HEAD_OF: list[bytes] = []  # the head whose rows _HEADS holds
# a headerless mapping needs >= 80% good rows among at most _SNIFF_ROWS: this many bad
# ones decide that it fails, whatever follows
_BAD_ROWS_DECIDE = _SNIFF_ROWS - int(0.8 * _SNIFF_ROWS) + 1


def _head_rows(head: bytes, mapping: Mapping) -> _HeadRows:
    """The rows of ``head`` in ``mapping``'s dialect (parsed once per dialect, lazily)."""
    enc = mapping.csv.get("encoding", "utf-8")
    dialect = _dialect(mapping)
    if not _HEAD_OF or _HEAD_OF[0] is not head:
        _HEADS.clear()
        _HEAD_OF[:] = [head]
    enc = csv_encoding(head[:4], enc)
    key = (enc, *sorted(dialect.items()))
    rows = _HEADS.get(key)
    if rows is None:
        rows = _HEADS[key] = _HeadRows(head, enc, dialect)
    return rows


def _headerless_fits(head: _HeadRows, mapping: Mapping) -> bool:
    """>= 80% of the head's rows have an allowed field count and match the patterns."""
    counts, pats = _row_tests(mapping)
    if not (counts or pats):
        return False
    good = bad = 0
    k = 0
    while True:
        found = head.upto(k + 1)
        if k >= len(found):
            break
        r = found[k]
        k += 1
        if (not counts or len(r) in counts) and all(
                i < len(r) and p.search(r[i].strip()) for i, p in pats.items()):
            good += 1
        else:
            bad += 1
            if bad >= _BAD_ROWS_DECIDE:
                return False
    rows = head.rows()
    return bool(rows) and good / len(rows) >= 0.8


def score_mapping(src: SourceFile, mapping: Mapping, name: str | None = None) -> float:
    """How well ``mapping`` fits ``src`` (0-1), from its first rows and file name."""
    # one NUL in the first row once made the whole file unrecognised (found by fuzzing)
    if (src.head[:4096].count(b"\x00") > MAX_SNIFF_NULS
            and csv_encoding(src.head[:4]) != "utf-16"):
        return 0.0
    rec = mapping.recognise
    name_pat = rec.get("filename")
    if name is None:
        name = Path(src.source).name
    name_ok = bool(name_pat and re.search(name_pat, name))
    head = _head_rows(src.head, mapping)
    score = 0.0
    if mapping.csv.get("header", True):
        want = _wanted_header(mapping)
        first = head.upto(1)
        if first and missing_columns(mapping, _header_names(first[0])):
            return 0.0  # every row would be quarantined: not this mapping's file
        if (want and first
                and want <= {c.lower() for c in _header_names(first[0])}
                and head.rows()):
            score = 0.9
    elif _headerless_fits(head, mapping):
        score = 0.85
    if name_ok:
        score = min(1.0, score + 0.05) if score else 0.3
    return score


def _header_names(fields: list[str]) -> list[str]:
    """A header row's column names as the reader keys its rows by them."""
    return [f.strip().strip("\ufeff").strip() for f in fields]


def missing_columns(mapping: Mapping, names: Iterable[str]) -> list[tuple[str, str]]:
    """(column, field) of each column a required field of ``mapping`` reads (or its
    market column) that a header of ``names`` lacks: such a file's every row would be
    quarantined, so the mapping does not fit it."""
    if mapping.rows is None:
        return []
    need = _plan(mapping, "required", lambda m: [
        *(m.rows.required_columns() if m.rows else []),
        *([(m.market_column, "market.column")] if m.market_column else [])])
    have = set(names)
    return [(c, f) for c, f in need if c not in have]


def absent_columns(src: SourceFile, mapping: Mapping) -> list[str]:
    """One note per column ``mapping`` reads (a field that is not required, a feedback
    column, an identifier scan) that the header of ``src`` lacks: that value is empty in
    every row, which a mistyped column name in a mapping would otherwise leave unsaid.
    None for a headerless mapping (its columns are checked when it is loaded)."""
    if mapping.rows is None or not mapping.csv.get("header", True):
        return []
    first = _head_rows(sniffing_head(src).head, mapping).upto(1)
    if not first:
        return []
    have = set(_header_names(first[0]))
    readers: dict[str, list[str]] = {}
    for r in mapping.rows.records:
        if r.column:
            readers.setdefault(r.column, []).append(f"{r.type} records")
        for f in r.fields:
            for c in [f.column] if f.column else f.columns or []:
                readers.setdefault(c, []).append(f"{r.type}.{f.target}")
    for c, fld in mapping.rows.identifiers:
        readers.setdefault(c, []).append(f"identifiers ({fld})")
    for c, _ in mapping.rows.pgp:
        readers.setdefault(c, []).append("PGP keys")
    where = f"mapping {mapping.name!r}" + (f" ({mapping.path.name})" if mapping.path else "")
    return [f"{where}: column {c!r} ({', '.join(readers[c])}) is not in the file's header: "
            "empty in every row" for c in sorted(readers) if c not in have][:20]


_WHY_COLUMNS = 20
"""Header columns a why-not message lists (a hostile header may hold thousands)."""


def why_not(src: SourceFile) -> str | None:
    """Why no CSV mapping reads ``src``, when one comes near: its file-name pattern
    matches or its ``recognise.header`` names are at least half in the file's header.
    Names what is missing (a column a required field reads, or a header name it looks
    for) and the columns the header has; of several near mappings, one the analyst gave
    (not built in) first, then the one missing least. ``None`` when none comes near."""
    src = sniffing_head(src)
    name = Path(src.source).name
    near: list[tuple[bool, int, str, str]] = []
    for m in mappings("csv"):
        if not m.csv.get("header", True):
            continue
        first = _head_rows(src.head, m).upto(1)
        if not first:
            continue
        names = _header_names(first[0])
        lower = {c.lower() for c in names}
        want = _wanted_header(m)
        pat = m.recognise.get("filename")
        if not (bool(pat and re.search(pat, name))
                or (bool(want) and 2 * len(want & lower) >= len(want))):
            continue
        has = ", ".join(repr(c[:40]) for c in names[:_WHY_COLUMNS]) + (
            f" and {len(names) - _WHY_COLUMNS} more" if len(names) > _WHY_COLUMNS else "")
        where = f"mapping {m.name!r}" + (f" ({m.path.name})" if m.path else "")
        builtin = m.path is not None and m.path.resolve().parent == BUILTIN_MAPPINGS
        if miss := missing_columns(m, names):
            col, fld = miss[0]
            why = (f"{where}: field {fld} reads column {col!r}, which the file's header "
                   f"lacks (it has {has})")
            near.append((builtin, len(miss), m.name, why))
        elif absent := sorted(want - lower):
            why = (f"{where}: recognise.header looks for "
                   f"{', '.join(repr(c) for c in absent)}, which the file's header lacks "
                   f"(it has {has})")
            near.append((builtin, len(absent), m.name, why))
    return min(near)[3] if near else None


_PLANS: dict[tuple[int, str], tuple[Mapping, Any]] = {}
_T = TypeVar("_T")


def _plan(mapping: Mapping, kind: str, make: Callable[[Mapping], _T]) -> _T:
    """What ``make(mapping)`` gives, remembered per mapping object (mappings are fixed)."""
    key = (id(mapping), kind)
    hit = _PLANS.get(key)
    if hit is None or hit[0] is not mapping:
        if len(_PLANS) > 1000:  # mappings are few; this only bounds misuse
            _PLANS.clear()
        hit = _PLANS[key] = (mapping, make(mapping))
    return cast(_T, hit[1])  # stored under this kind by this function only


def _wanted_header(mapping: Mapping) -> set[str]:
    return _plan(mapping, "header", lambda m: {
        str(c).strip().lower() for c in m.recognise.get("header") or []})


def _row_tests(mapping: Mapping) -> tuple[set[int], dict[int, re.Pattern[str]]]:
    def make(m: Mapping) -> tuple[set[int], dict[int, re.Pattern[str]]]:
        rec = m.recognise
        cols = list(m.csv.get("columns") or [])
        return (set(rec.get("field_counts") or []),
                {(cols.index(k) if isinstance(k, str) else int(k)): re.compile(p)
                 for k, p in (rec.get("patterns") or {}).items()
                 if isinstance(k, int) or k in cols})
    return _plan(mapping, "rows", make)


MAX_SNIFF_BYTES = 8 * 1024 * 1024
"""How far sniffing reads a file whose first row does not end within its head."""


def sniffing_head(src: SourceFile) -> SourceFile:
    """``src`` with a head that holds its first rows whole: a head of :data:`HEAD_BYTES`
    without two line breaks (a first row, or a header, longer than the head) is read on,
    up to :data:`MAX_SNIFF_BYTES`, until it has them. Cut mid-row, the one row such a
    head held was a torn one, and no mapping fitted it (found by fuzzing)."""
    if (len(src.head) < HEAD_BYTES or src.head.count(b"\n") >= 2
            or not _may_be_csv(src.head)):
        return src
    parts = [src.head]
    breaks = src.head.count(b"\n")
    have = len(src.head)
    try:
        with open(src.path, "rb") as fh:
            fh.seek(have)
            while breaks < 2 and have < MAX_SNIFF_BYTES:
                chunk = fh.read(min(have, MAX_SNIFF_BYTES - have))
                if not chunk:
                    break
                parts.append(chunk)
                breaks += chunk.count(b"\n")
                have += len(chunk)
    except OSError:
        return src
    return replace(src, head=b"".join(parts))


def _may_be_csv(head: bytes) -> bool:
    """Whether a head could start a CSV: text (few NULs) not opening as markup or JSON.
    A minified page or a one-line JSON file would otherwise be read to 8 MiB and parsed
    as CSV at every sniff (0.4 s for a JSON file)."""
    enc = csv_encoding(head[:4])
    if enc != "utf-16" and head[:4096].count(b"\x00") > MAX_SNIFF_NULS:
        return False
    lead = head[:4096].decode(enc, "replace").lstrip("\ufeff \t\r\n")
    return lead[:1] not in ("<", "{", "[")


def best_mapping(src: SourceFile) -> tuple[Mapping | None, float]:
    """The CSV mapping that fits ``src`` best, and its score."""
    src = sniffing_head(src)
    name = Path(src.source).name
    scored = [(score_mapping(src, m, name), m.name, m) for m in mappings("csv")]
    scored.sort(key=lambda s: (-s[0], s[1]))
    if not scored or scored[0][0] <= 0:
        return None, 0.0
    return scored[0][2], scored[0][0]


class CsvImporter:
    """Listing datasets in CSV, read through the declarative mappings."""

    name = "csv"
    version = "1"
    times_from_source = True
    """A fact's observation time is the time its row states (a mapped date column);
    where none is stated it is unknown (NULL), never the file's modification time."""
    reads_apart = True
    """``read`` is a pure function of the file: a large one may be read in a process of
    its own while the pipeline writes (:mod:`darkmap.collect.apart`)."""

    def media_type(self, src: SourceFile) -> str:
        """A dataset table it reads is CSV (the capture's ``media_type``)."""
        return "text/csv"

    def sniff(self, src: SourceFile) -> float:
        """The best mapping's score (0.85-1 when its header or patterns match)."""
        try:
            return best_mapping(src)[1]
        except Exception:  # noqa: BLE001 - sniffing must never break the pipeline
            return 0.0

    def why_not(self, src: SourceFile) -> str | None:
        """For a file no importer reads: what keeps the nearest mapping from fitting."""
        return why_not(src)

    def notes(self, src: SourceFile) -> list[str]:
        """What the analyst should know before trusting the file's records: the columns
        the chosen mapping reads that the file's header lacks (see :func:`absent_columns`)."""
        mapping, score = best_mapping(src)
        if mapping is None or score < 0.5:
            return []
        return absent_columns(src, mapping)

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Yield the records of every row; bad rows become QuarantineRecords."""
        mapping, score = best_mapping(src)
        if mapping is None or score < 0.5:
            yield QuarantineRecord(locator="file", reason=f"{src.source}: no CSV mapping "
                                   "recognises this file")
            return
        # the pipeline reports no count of distinct listings: not counting them saves
        # ~10% of a large file's CPU
        yield from MappedCsvReader(src.path, mapping, Path(src.source).name, columnar=True,
                                   count_listings=False)

