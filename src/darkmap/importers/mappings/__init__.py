"""Declarative dataset mappings: load the YAML files and turn rows into records.

A mapping file (see docs/data-formats.md) says how to recognise a dataset, which market
it belongs to, and how each column becomes a field of a record. The CSV importer
(:mod:`darkmap.importers.csv_mapped`) and the SQL dump importer
(:mod:`darkmap.importers.sqldump`) both hand each row, as a dict of column -> cell text,
to a :class:`RowMapper` compiled from the mapping. Field specs are compiled once into
small closures so mapping a row costs a handful of function calls.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from darkmap.errors import BadInputError
from darkmap.extract import identifiers
from darkmap.extract.identifiers import PreparedScans, scan_text
from darkmap.model import arrow_compute as ac
from darkmap.model.fingerprints import DistinctCount
from darkmap.model.records import (
    AccountRecord,
    FeedbackRecord,
    ListingRecord,
    MarketRecord,
    PgpKeyRecord,
    QuarantineRecord,
    Record,
)

# libyaml's safe loader when present (same documents, about 6x faster)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "BUILTIN_MAPPINGS",
    "ColumnMapper",
    "FieldError",
    "Mapping",
    "MappingError",
    "RowMapper",
    "RowMapping",
    "add_mapping_dir",
    "add_mapping_file",
    "forget_added_mappings",
    "load_mapping",
    "market_key",
    "mappings",
    "parse_datetime",
    "parse_price",
    "split_cell",
]

BUILTIN_MAPPINGS = Path(__file__).resolve().parent
"""The folder of the mappings darkmap ships."""
_BUILTIN_DIR = BUILTIN_MAPPINGS
_EXTRA_DIRS: list[Path] = []
_EXTRA_FILES: list[Path] = []
_RECORD_TYPES: dict[str, type] = {
    "account": AccountRecord, "listing": ListingRecord, "feedback": FeedbackRecord,
    "market": MarketRecord,
}


class MappingError(BadInputError):
    """A mapping file is invalid; the message names the file and the key."""


class FieldError(BadInputError):
    """A cell could not be parsed by its rule; the message says why."""


# ------------------------------------------------------------------------ parse rules

_WS_RE = re.compile(r"\s+")
_NUM_RE = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
_PRICE_RE = re.compile(
    r"^\s*(?:(?P<c1>[A-Za-z]{3}|[$€£฿Ƀ])\s*)?"
    r"(?P<num>[-+]?(?:\d{1,3}(?:\.\d{3})+,\d+|\d[\d,]*(?:\.\d+)?|\.\d+))"
    r"\s*(?P<c2>[A-Za-z]{3}|[$€£฿Ƀ])?\s*$")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "฿": "BTC", "Ƀ": "BTC"}
# a decimal comma: the last comma followed by other than exactly three digits ("89,50")
_DECIMAL_COMMA_RE = re.compile(r",(?:\d{1,2}|\d{4,})$")
_RANGE_RE = re.compile(
    r"^\s*[\[(]\s*(?P<lo>[-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*,\s*"
    r"(?P<hi>[-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*[\])]\s*$")
_DT_RE = re.compile(
    r"^\s*(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<frac>\d+))?)?"
    r"\s*(?:(?P<z>Z|UTC|GMT)|(?P<oh>[+-]\d{2}):?(?P<om>\d{2}))?(?:\s+[A-Z]{2,5})?\s*$")
_PREFIX_RE = re.compile(r"^(?:from|to|ships? (?:from|to))\s*:\s*", re.I)
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _squash(text: str) -> str:
    """``_WS_RE.sub(" ", text).strip()``: for str patterns ``\\s`` is ``str.isspace``,
    which is what ``split`` and ``strip`` use; this is several times faster."""
    return " ".join(text.split())


def _tz(spec: str | None) -> timezone:
    if not spec or spec.upper() in ("UTC", "Z"):
        return UTC
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", spec.strip())
    if not m:
        raise MappingError(f"bad timezone {spec!r} (use +HH:MM)")
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(delta if m.group(1) == "+" else -delta)


@lru_cache(maxsize=4096)
def _parse_dt_cached(text: str, fmt: str | None, tz: timezone) -> datetime:
    if fmt:
        try:
            dt = datetime.strptime(text.strip(), fmt)
        except ValueError as exc:
            raise FieldError(f"not a date in format {fmt}") from exc
    else:
        m = _DT_RE.match(text)
        if not m:
            raise FieldError("not a recognised date/time")
        iso = m.group("date")
        if m.group("time"):
            t = m.group("time")
            iso += "T" + (t if len(t) == 8 else t + ":00")
            if m.group("frac"):
                iso += "." + m.group("frac")[:6].ljust(6, "0")
        if m.group("oh"):
            iso += f"{m.group('oh')}:{m.group('om')}"
        elif m.group("z"):
            iso += "+00:00"
        try:
            dt = datetime.fromisoformat(iso)
        except ValueError as exc:
            raise FieldError(f"invalid date/time: {exc}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(UTC)


def parse_datetime(text: str, fmt: str | None = None, tz: timezone = UTC) -> datetime:
    """Parse a timestamp to an aware UTC datetime.

    Handles ``2016-12-11 20:13:54.654635085 -0500 EST`` (Go's time format: nanoseconds
    truncated, the numeric offset wins over the zone abbreviation), ISO 8601, and an
    explicit ``strptime`` format. Naive values are taken to be in ``tz``.
    """
    return _parse_dt_cached(text, fmt, tz)


def parse_price(text: str, default_currency: str | None = None) -> tuple[float, str | None]:
    """``"USD 340.00"`` / ``"$1,320.31"`` / ``"0.05 BTC"`` -> (amount, currency)."""
    m = _PRICE_RE.match(text)
    if not m:
        raise FieldError("not a price")
    cur = m.group("c1") or m.group("c2")
    cur = _SYMBOLS.get(cur, cur.upper()) if cur else default_currency
    return _amount(m.group("num"), "not a price"), cur


def _amount(num: str, what: str) -> float:
    """``1,320.31``, ``1.320,31`` and ``89,50`` as floats: a comma followed by exactly
    three digits separates thousands, any other last comma is a decimal comma."""
    text = (num.replace(".", "").replace(",", ".") if _DECIMAL_COMMA_RE.search(num)
            else num.replace(",", ""))
    try:
        value = float(text)
    except ValueError as exc:
        raise FieldError(what) from exc
    return _finite(value)


def _finite(value: float) -> float:
    """``value``, or a :class:`FieldError` when it is no finite number: a cell of 400
    digits reads as ``inf``, which the store never holds (exports audit, finding 8)."""
    if not math.isfinite(value):
        raise FieldError("number out of range (not a finite number)")
    return value


INT_LIMIT = 2**31
"""Integers a mapping reads lie strictly between -INT_LIMIT and INT_LIMIT: the store's
counts are 32-bit, and a market's text may state any number of digits."""


def _int(text: str) -> int:
    s = text.strip().replace(",", "")
    m = _NUM_RE.match(s)
    if not m or "." in m.group() or "e" in m.group().lower():
        raise FieldError("not an integer")
    digits = m.group()
    # a cell of thousands of digits would cost Python's int() its digit limit (an error
    # of its own) before any range check: no integer in range has more than 10 digits
    if len(digits.lstrip("+-").lstrip("0")) > 10 or abs(value := int(digits)) >= INT_LIMIT:
        raise FieldError(f"integer out of range (at most {INT_LIMIT - 1:,})")
    return value


def _float(text: str) -> float:
    m = _NUM_RE.match(text.strip())
    if not m:
        raise FieldError("not a number")
    return _amount(m.group(), "not a number")


def _place(text: str) -> str | None:
    s = _PREFIX_RE.sub("", _squash(text))
    return s or None


# ------------------------------------------------------------------------- mappings


@dataclass(slots=True)
class _FieldSpec:
    target: str
    column: str | None
    columns: list[str] | None
    group: str | None
    const: Any
    parse: str
    required: bool
    opts: dict[str, Any]


@dataclass(slots=True)
class _RecordSpec:
    type: str
    fields: list[_FieldSpec]
    column: str | None = None
    split: re.Pattern[str] | None = None
    strip_prefix: str | None = None
    dedupe: str | None = None
    split_end: re.Pattern[str] | None = None


@dataclass(slots=True)
class RowMapping:
    """How one row (CSV line or SQL table row) becomes records."""

    records: list[_RecordSpec]
    identifiers: list[tuple[str, str]]
    pgp: list[tuple[str, str]]

    def columns(self) -> set[str]:
        """Every column this mapping reads."""
        cols: set[str] = set()
        for r in self.records:
            if r.column:
                cols.add(r.column)
            for f in r.fields:
                if f.column:
                    cols.add(f.column)
                cols.update(f.columns or [])
        cols.update(c for c, _ in self.identifiers)
        cols.update(c for c, _ in self.pgp)
        return cols

    def required_columns(self) -> list[tuple[str, str]]:
        """(column, field) for every column a required field reads: a row without it
        is quarantined, so a file without it is not this mapping's file."""
        return [(c, f"{r.type}.{f.target}") for r in self.records for f in r.fields
                if f.required for c in ([f.column] if f.column else f.columns or [])]


@dataclass(slots=True)
class Mapping:
    """A parsed mapping file."""

    format: str
    name: str
    market_id: str
    market_name: str
    null_values: frozenset[str]
    recognise: dict[str, Any]
    csv: dict[str, Any]
    rows: RowMapping | None
    tables: dict[str, RowMapping]
    path: Path | None = None
    description: str = ""
    market_column: str | None = None
    """The column naming each row's market (``market: {column: ...}``); ``market_id`` is
    then empty and every row's market is its cell (see :func:`market_key`)."""
    market_name_column: str | None = None
    """The column holding each row's market name (default: the market column's cell)."""

    def market_text(self) -> str:
        """The market as a person reads it: ``hansa`` or ``column 'market'``."""
        return self.market_id or f"column {self.market_column!r}"


def market_key(text: str) -> str:
    """A market id from a cell naming the market: spaces squashed to ``-``, case-folded
    (``Dream Market`` -> ``dream-market``)."""
    return "-".join(text.split()).casefold()


_PARSES = {"text", "line", "int", "int_text", "float", "sum_int", "price", "price_range",
           "datetime", "date", "list", "place", "places", "bool", "days_before_observed",
           "join", "day_number", "unix_time"}
_UNIX_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# day numbers and unix times outside year 1..9999 cannot be a datetime
_MAX_DAYS = 3_000_000


def _field_spec(where: str, target: str, raw: Any) -> _FieldSpec:
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: field {target!r} must be a column name or a mapping")
    parse = raw.get("parse", "text")
    if parse not in _PARSES:
        raise MappingError(f"{where}: field {target!r}: unknown parse rule {parse!r}")
    srcs = [k for k in ("column", "columns", "group", "value") if k in raw]
    if len(srcs) != 1:
        raise MappingError(f"{where}: field {target!r} needs exactly one of "
                           "column / columns / group / value")
    opts = {k: v for k, v in raw.items()
            if k not in ("column", "columns", "group", "value", "parse", "required")}
    if "timezone" in opts:
        opts["tz"] = _tz(opts["timezone"])
    if "format" in opts:
        fmts = opts["format"]
        if isinstance(fmts, list):
            if not fmts or not all(isinstance(f, str) for f in fmts):
                raise MappingError(f"{where}: field {target!r}: format must be a text or a "
                                   "list of texts")
            opts["format"] = tuple(fmts)
        else:
            opts["format"] = str(fmts)
    if parse == "day_number":
        epoch = raw.get("epoch")
        try:
            opts["epoch"] = _parse_dt_cached(str(epoch), None, opts.get("tz", UTC))
        except FieldError as exc:
            raise MappingError(f"{where}: field {target!r}: day_number needs an epoch date "
                               f"(epoch: 1970-01-01), not {epoch!r}") from exc
    if parse == "unix_time" and str(opts.get("unit", "s")) not in _UNIX_UNITS:
        raise MappingError(f"{where}: field {target!r}: unix_time unit must be one of "
                           f"{sorted(_UNIX_UNITS)}")
    if "scale" in opts:
        if target != "rating":
            raise MappingError(f"{where}: field {target!r}: scale is for the rating field "
                               "(it sets rating_scale)")
        scale = opts["scale"]
        if (isinstance(scale, bool) or not isinstance(scale, int | float)
                or not 0 < scale < math.inf):
            raise MappingError(f"{where}: field 'rating': scale must be a positive number "
                               f"(5 for stars, 100 for a percentage), not {scale!r}")
    cols = raw.get("columns")
    if cols is not None and not (isinstance(cols, list) and all(isinstance(c, str) for c in cols)):
        raise MappingError(f"{where}: field {target!r}: columns must be a list of names")
    return _FieldSpec(target, raw.get("column"), cols, raw.get("group"), raw.get("value"),
                      parse, bool(raw.get("required", False)), opts)


def _row_mapping(where: str, raw: dict[str, Any]) -> RowMapping:
    recs = []
    for i, r in enumerate(raw.get("records") or []):
        w = f"{where}: records[{i}]"
        rtype = r.get("type")
        if rtype not in _RECORD_TYPES:
            raise MappingError(f"{w}: type must be one of {sorted(_RECORD_TYPES)}")
        cls = _RECORD_TYPES[rtype]
        fields = []
        for target, spec in (r.get("fields") or {}).items():
            if target not in getattr(cls, "__slots__", ()):
                raise MappingError(f"{w}: {cls.__name__} has no field {target!r}")
            fields.append(_field_spec(w, target, spec))
        split = split_end = None
        if r.get("split"):
            try:
                split = re.compile(r["split"], re.S)
                split_end = re.compile(r["split_end"], re.S) if r.get("split_end") else None
            except re.error as exc:
                raise MappingError(f"{w}: bad split regex: {exc}") from exc
            if not r.get("column"):
                raise MappingError(f"{w}: split needs the column it applies to")
        recs.append(_RecordSpec(rtype, fields, r.get("column"), split, r.get("strip_prefix"),
                                r.get("dedupe"), split_end))
    idents = [(d["column"], d.get("field", d["column"])) for d in raw.get("identifiers") or []]
    pgp = [(d["column"], d.get("field", "pgp")) for d in raw.get("pgp") or []]
    if not recs:
        raise MappingError(f"{where}: no records defined")
    return RowMapping(recs, idents, pgp)


def _check_declared_columns(where: str, raw: dict[str, Any], rows: RowMapping,
                            market_column: str | None) -> None:
    """A headerless CSV mapping names its columns (``csv.columns``): a field reading a
    column not among them would be empty in every row, so the mapping is refused."""
    spec = raw.get("csv") or {}
    if not isinstance(spec, dict) or spec.get("header", True):
        return
    declared = [str(c) for c in spec.get("columns") or []]
    read = sorted(rows.columns() | ({market_column} if market_column else set()))
    unknown = [c for c in read if c not in declared]
    if unknown:
        raise MappingError(f"{where}: column {unknown[0]!r} is read but not among csv.columns "
                           f"({', '.join(declared)}); a headerless file's columns are "
                           "those listed")


def load_mapping(path: Path) -> Mapping:
    """Read and validate one mapping file (raises :class:`MappingError`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a SafeLoader (C or Python)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MappingError(f"{path}: cannot read mapping: not valid YAML ({at}"
                           f"{exc.problem or exc.context}); see docs/data-formats.md") from exc
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: cannot read mapping: not UTF-8 text (byte "
                           f"{exc.start})") from exc
    except (OSError, yaml.YAMLError) as exc:
        why = " ".join(str(exc).split())  # one line
        raise MappingError(f"{path}: cannot read mapping: {why}") from exc
    where = str(path)
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: not a YAML mapping")
    fmt = raw.get("format")
    if fmt not in ("csv", "sql"):
        raise MappingError(f"{where}: format must be csv or sql")
    market = raw.get("market") or {}
    if not isinstance(market, dict):
        raise MappingError(f"{where}: market must be {{id: ..., name: ...}} or "
                           "{column: ...}")
    column = market.get("column")
    if not raw.get("name") or bool(market.get("id")) == bool(column):
        raise MappingError(f"{where}: name and one of market.id or market.column are required")
    if column and fmt != "csv":
        raise MappingError(f"{where}: market.column is for csv mappings (a sql mapping names "
                           "its market with market.id)")
    nulls = frozenset(str(v) for v in raw.get("null_values", ["", "NULL"]))
    rows, tables = None, {}
    if fmt == "csv":
        rows = _row_mapping(where, raw)
        _check_declared_columns(where, raw, rows, column)
    else:
        for t, spec in (raw.get("tables") or {}).items():
            tables[t] = _row_mapping(f"{where}: tables.{t}", spec or {})
        if not tables:
            raise MappingError(f"{where}: a sql mapping needs tables")
    mid = str(market.get("id") or "")
    return Mapping(fmt, str(raw["name"]), mid, str(market.get("name", mid)), nulls,
                   raw.get("recognise") or {}, raw.get("csv") or {}, rows, tables, Path(path),
                   str(raw.get("description", "")).strip(),
                   str(column) if column else None,
                   str(market["name_column"]) if market.get("name_column") else None)


def add_mapping_dir(path: Path) -> None:
    """Also load mappings from ``path`` (later folders override earlier names)."""
    p = Path(path)
    if p not in _EXTRA_DIRS:
        _EXTRA_DIRS.append(p)
    _load_all.cache_clear()


def add_mapping_file(path: Path) -> Mapping:
    """Also use the mapping file ``path`` (checked now: a bad file raises
    :class:`MappingError` naming it); it overrides a loaded mapping of the same name."""
    p = Path(path).resolve()
    if not p.is_file():
        raise MappingError(f"{path}: no such mapping file")
    m = load_mapping(p)
    if p not in _EXTRA_FILES:
        _EXTRA_FILES.append(p)
    _load_all.cache_clear()
    return m


def forget_added_mappings() -> None:
    """Stop using the folders and files added by :func:`add_mapping_dir` and
    :func:`add_mapping_file` (a long-lived process ingesting for several cases)."""
    _EXTRA_DIRS.clear()
    _EXTRA_FILES.clear()
    _load_all.cache_clear()


@lru_cache(maxsize=8)
def _load_all(env: str) -> tuple[Mapping, ...]:
    dirs = [_BUILTIN_DIR, *(Path(d) for d in env.split(os.pathsep) if d), *_EXTRA_DIRS]
    by_name: dict[str, Mapping] = {}
    files = [f for d in dirs for f in sorted(d.glob("*.y*ml"))] + _EXTRA_FILES
    for f in files:
        m = load_mapping(f)
        by_name[m.name] = m
    return tuple(by_name.values())


def mappings(fmt: str | None = None) -> list[Mapping]:
    """Every known mapping (built-in, ``$DARKMAP_MAPPINGS``, added folders), by format."""
    return [m for m in _load_all(os.environ.get("DARKMAP_MAPPINGS", "")) if
            fmt is None or m.format == fmt]


# ------------------------------------------------------------------------ row mapper

_NULLABLE = {"vendor_handle"}


@lru_cache(maxsize=16)
def _required_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls)
                 if f.default is dataclasses.MISSING
                 and f.default_factory is dataclasses.MISSING)


Getter = Callable[[dict[str, Any]], Any]


@dataclass(slots=True)
class MapStats:
    """Counts a row mapper keeps while it maps (reported by readers and benchmarks)."""

    feedback: int = 0
    feedback_duplicates_skipped: int = 0
    feedback_fragments_dropped: int = 0
    identifiers: int = 0
    pgp_blocks: int = 0
    pgp_keys: int = 0
    pgp_failures: int = 0
    pgp_cells_without_block: int = 0
    listing_refs: DistinctCount | None = field(default_factory=DistinctCount)
    """The listing ids of the rows mapped (counted, not kept: ten million cost 160 MB);
    None where the caller does not want them counted (the ingest pipeline: ~10% of a
    large CSV's CPU for a figure its summary does not report)."""


class RowMapper:
    """Maps rows (dict column -> text or None) to records for one mapping.

    ``map_row`` returns the records of one unit or raises :class:`FieldError` naming
    the field; the reader turns that into a QuarantineRecord.
    """

    def __init__(self, mapping: Mapping, rows: RowMapping, count_listings: bool = True) -> None:
        self.mapping = mapping
        self.rows = rows
        self.market_id = mapping.market_id
        self.nulls = mapping.null_values
        self.stats = MapStats()
        if not count_listings:
            self.stats.listing_refs = None
        self._markets: set[str] = set()  # markets met in a market column
        self._seen_feedback: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
        self._prepared: PreparedScans | None = None  # see prepare
        self._compiled = [(spec, _RECORD_TYPES[spec.type],
                           [(f.target, f, self._getter(f)) for f in spec.fields])
                          for spec in rows.records]
        # the scale a record's `rating` field declares (`scale: 5`), by record spec
        self._scales = {id(spec): _rating_scale(spec) for spec in rows.records}

    # -- compilation ------------------------------------------------------------------

    def _cell(self, row: dict[str, Any], col: str) -> str | None:
        v = row.get(col)
        if v is None:
            return None
        s = v.strip()
        return None if s in self.nulls or v in self.nulls else v

    def _getter(self, f: _FieldSpec) -> Getter:
        """A function row -> parsed value (or a dict of several attributes)."""
        nulls, cell, p, o = self.nulls, self._cell, f.parse, f.opts
        if f.const is not None:
            return lambda row: f.const
        if f.columns:
            cols = f.columns
            if p == "sum_int":
                def sum_int(row: dict[str, Any]) -> int | None:
                    vals = []
                    for c in cols:
                        v = cell(row, c)
                        if v is not None:
                            try:
                                vals.append(_int(v))
                            except FieldError:
                                pass
                    if not vals:
                        return None
                    total = sum(vals)
                    if abs(total) >= INT_LIMIT:
                        raise FieldError(f"sum out of range (at most {INT_LIMIT - 1:,})")
                    return total
                return sum_int
            sep = o.get("sep", " / " if p == "join" else None)

            def multi(row: dict[str, Any]) -> Any:
                parts = [_squash(v) for c in cols
                         if (v := cell(row, c)) is not None]
                parts = [x for x in parts if x and x not in nulls]
                if p == "join":
                    return (" / " if sep is None else sep).join(parts) if parts else None
                return parts
            return multi
        key = f.column or f.group
        if key is None:  # `value: null`: nothing to read
            raise MappingError(f"field {f.target!r}: needs a column, columns, group or value")
        conv = self._converter(f)

        def get(row: dict[str, Any]) -> Any:
            v = row.get(key)
            if v is None or v in nulls:
                return None
            if v.strip() in nulls:
                return None
            return conv(v, row)
        return get

    def _converter(self, f: _FieldSpec) -> Callable[[str, dict[str, Any]], Any]:
        p, o = f.parse, f.opts
        if p == "text":
            return lambda v, row: v.strip()
        if p == "line":
            return lambda v, row: _squash(v)
        if p == "int":
            return lambda v, row: _int(v)
        if p == "int_text":
            def int_text(v: str, row: dict[str, Any]) -> str:
                s = v.strip()
                if not s.isdigit():
                    raise FieldError("not a numeric id")
                return s
            return int_text
        if p == "float":
            return lambda v, row: _float(v)
        if p == "bool":
            def boolean(v: str, row: dict[str, Any]) -> bool:
                s = v.strip().lower()
                if s in _TRUE:
                    return True
                if s in _FALSE:
                    return False
                raise FieldError("not a boolean")
            return boolean
        if p == "price":
            cur = o.get("currency")

            def price(v: str, row: dict[str, Any]) -> dict[str, Any]:
                amount, c = parse_price(v, cur)
                return {"price": amount, "currency": c, "price_text": v.strip()}
            return price
        if p == "price_range":
            cur, mid = o.get("currency"), bool(o.get("midpoint", False))

            def price_range(v: str, row: dict[str, Any]) -> dict[str, Any]:
                m = _RANGE_RE.match(v)
                if not m:
                    raise FieldError("not a price range like [a,b)")
                lo, hi = _finite(float(m.group("lo"))), _finite(float(m.group("hi")))
                return {"price": _finite((lo + hi) / 2) if mid else None, "currency": cur,
                        "price_text": v.strip()}
            return price_range
        if p == "day_number":
            epoch: datetime = o["epoch"]

            def day_number(v: str, row: dict[str, Any]) -> datetime:
                n = _float(v)
                if not abs(n) < _MAX_DAYS:
                    raise FieldError("day number out of range")
                try:
                    return epoch + timedelta(days=n)
                except OverflowError as exc:
                    raise FieldError("day number out of range") from exc
            return day_number
        if p == "unix_time":
            per = _UNIX_UNITS[str(o.get("unit", "s"))]

            def unix_time(v: str, row: dict[str, Any]) -> datetime:
                n = _float(v) / per
                if not abs(n) < _MAX_DAYS * 86400:
                    raise FieldError("unix time out of range")
                try:
                    return _EPOCH + timedelta(seconds=n)
                except OverflowError as exc:
                    raise FieldError("unix time out of range") from exc
            return unix_time
        if p in ("datetime", "date") and isinstance(o.get("format"), tuple):
            fmts, tz = o["format"], o.get("tz", UTC)

            def any_format(v: str, row: dict[str, Any]) -> datetime:
                for fmt in fmts:
                    try:
                        return parse_datetime(v, fmt, tz)
                    except FieldError:
                        continue
                raise FieldError(f"not a date in any of the formats {', '.join(fmts)}")
            return any_format
        if p in ("datetime", "date"):
            fmt, tz = o.get("format"), o.get("tz", UTC)
            if p == "date" and not fmt:
                def date(v: str, row: dict[str, Any]) -> datetime:
                    dt = parse_datetime(v.strip()[:10], None, tz)
                    return dt
                return date
            return lambda v, row: parse_datetime(v, fmt, tz)
        if p == "list":
            sep = o.get("sep", ",")
            return lambda v, row: [x for x in (_squash(s)
                                               for s in v.split(sep)) if x]
        if p == "place":
            return lambda v, row: _place(v)
        if p == "places":
            sep = o.get("sep", ",")
            nulls = self.nulls

            def places(v: str, row: dict[str, Any]) -> list[str]:
                out = []
                for s in v.split(sep):
                    pl = _place(s)
                    if pl and pl not in nulls:
                        out.append(pl)
                return out
            return places
        if p == "days_before_observed":
            def days(v: str, row: dict[str, Any]) -> datetime | None:
                obs: datetime | None = row.get("__observed_at__")
                if not obs:
                    return None
                try:
                    return obs - timedelta(days=_int(v))
                except OverflowError:  # before year 1 or past 9999
                    raise FieldError("days out of range") from None
            return days
        raise MappingError(f"parse rule {p!r} not usable here")

    # -- mapping ----------------------------------------------------------------------

    def _build(self, cls: type, fields: list[tuple[str, _FieldSpec, Getter]],
               row: dict[str, Any], base: dict[str, Any]) -> Any:
        kw = dict(base)
        for target, spec, get in fields:
            try:
                val = get(row)
            except FieldError as exc:
                if spec.required:
                    key = spec.column or spec.group
                    cell = row.get(key) if key is not None else None
                    raise FieldError(f"field '{target}' (column '{key}')"
                                     f": {exc}: {str(cell)[:80]!r}") from None
                val = None
            if val is None:
                if spec.required:
                    raise FieldError(f"field '{target}' (column '{spec.column or spec.group}')"
                                     " is empty")
                continue
            if isinstance(val, dict):
                for k, x in val.items():
                    if x is not None or k not in kw:
                        kw[k] = x
            else:
                kw[target] = val
        for name in _required_fields(cls):
            if kw.get(name) is None and name not in _NULLABLE:
                raise FieldError(f"{cls.__name__} needs field '{name}', which is not mapped "
                                 "or empty")
            kw.setdefault(name, None)
        return cls(**kw)

    def _row_market(self, row: dict[str, Any], out: list[Record]) -> None:
        """Set :attr:`market_id` from the row's market column; a market met for the
        first time is announced by a MarketRecord in ``out``."""
        col = self.mapping.market_column or ""
        text = self._cell(row, col)
        mid = market_key(text) if text else ""
        if not mid:
            raise FieldError(f"field 'market' (column '{col}') is empty")
        self.market_id = mid
        if mid not in self._markets:
            self._markets.add(mid)
            name_col = self.mapping.market_name_column
            name = (self._cell(row, name_col) if name_col else None) or text or mid
            out.append(MarketRecord(market_id=mid, name=_squash(name)))

    def map_row(self, row: dict[str, Any], unit: str) -> list[Record]:
        """Records for one row; raises :class:`FieldError` if a required field fails."""
        out: list[Record] = []
        if self.mapping.market_column:
            self._row_market(row, out)
        handle: str | None = None
        ref: str | None = None
        title: str | None = None
        observed: datetime | None = None
        built: list[AccountRecord | ListingRecord | FeedbackRecord | MarketRecord] = []
        for spec, cls, fields in self._compiled:
            if spec.split is not None:
                continue
            rec = self._build(cls, fields, row, {"market_id": self.market_id, "locator": unit}
                              if cls is not MarketRecord else {"market_id": self.market_id})
            built.append(rec)
            if cls is AccountRecord or cls is FeedbackRecord:
                scale = self._scales[id(spec)]
                if scale is not None and rec.rating is not None and rec.rating_scale is None:
                    rec.rating_scale = scale
            if cls is AccountRecord and handle is None:
                handle = rec.handle
                observed = observed or rec.observed_at
            elif cls is ListingRecord:
                ref = ref or rec.listing_ref
                title = title or rec.title
                if handle is None:
                    handle = rec.vendor_handle
                observed = observed or rec.observed_at
                if self.stats.listing_refs is not None:
                    self.stats.listing_refs.add(rec.listing_ref)
        # every record of the row takes the row's time unless it maps its own, and a
        # feedback record its vendor and listing, as split feedback does
        for rec in built:
            if observed is not None and rec.observed_at is None:
                rec.observed_at = observed
            if type(rec) is FeedbackRecord:
                if rec.vendor_handle is None:
                    rec.vendor_handle = handle
                if rec.listing_ref is None:
                    rec.listing_ref = ref
                    if rec.listing_title is None:
                        rec.listing_title = title
                self.stats.feedback += 1
        out.extend(built)
        for spec, _cls, fields in self._compiled:
            if spec.split is not None:
                out.extend(self._split_feedback(spec, fields, row, unit, handle, ref, title,
                                                observed))
        self._identifiers(row, unit, handle, ref, out)
        return out

    def _split_feedback(self, spec: _RecordSpec, fields: list[tuple[str, _FieldSpec, Getter]],
                        row: dict[str, Any], unit: str, handle: str | None, ref: str | None,
                        title: str | None, observed: datetime | None) -> list[Record]:
        text = self._cell(row, spec.column or "")
        if not text:
            return []
        text = _squash(text)
        if spec.strip_prefix and text.startswith(spec.strip_prefix):
            text = text[len(spec.strip_prefix):].strip()
        out: list[Record] = []
        seen_here: Counter[tuple[Any, ...]] = Counter()
        prior = self._seen_feedback[ref or ""] if spec.dedupe == "listing" else None
        end = 0
        base = {"market_id": self.market_id, "vendor_handle": handle, "listing_ref": ref,
                "listing_title": title, "text": ""}
        for m in split_cell(spec, text):
            end = m.end()
            groups = m.groupdict()
            groups["__observed_at__"] = observed
            try:
                fb = self._build(FeedbackRecord, fields, groups, base)
            except FieldError:
                self.stats.feedback_fragments_dropped += 1
                continue
            if fb.rating is not None and fb.rating_scale is None:
                fb.rating_scale = self._scales[id(spec)]
            if prior is not None:
                key = (fb.rating, fb.text, fb.buyer_masked)
                seen_here[key] += 1
                if seen_here[key] <= prior[key]:
                    self.stats.feedback_duplicates_skipped += 1
                    continue
            fb.observed_at = observed
            fb.locator = f"{unit}#feedback {len(out) + 1}"
            out.append(fb)
        if prior is not None:
            for key, n in seen_here.items():
                if n > prior[key]:
                    prior[key] = n
        if text[end:].strip():
            self.stats.feedback_fragments_dropped += 1
        self.stats.feedback += len(out)
        return out

    def prepare(self, rows: list[dict[str, Any]]) -> None:
        """Scan ahead the free-text cells of ``rows``, the next rows :meth:`map_row`
        will map (:class:`~darkmap.extract.identifiers.PreparedScans`: their PGP keys
        parsed together). Only a cost: what ``map_row`` returns is the same."""
        cols = [col for col, _fld in (*self.rows.pgp, *self.rows.identifiers)]
        self._prepared = PreparedScans(text for row in rows for col in cols
                                       if (text := self._cell(row, col)))

    def _identifiers(self, row: dict[str, Any], unit: str, handle: str | None,
                     ref: str | None, out: list[Record]) -> None:
        k = 0
        for cols, is_pgp in ((self.rows.pgp, True), (self.rows.identifiers, False)):
            for col, fld in cols:
                text = self._cell(row, col)
                if not text:
                    continue
                res = scan_text(text, market_id=self.market_id, account_handle=handle,
                                listing_ref=ref, field=fld, locator=unit, key_records=False,
                                prepared=self._prepared)
                for r in res.records:
                    if not isinstance(r, PgpKeyRecord):
                        out.append(r)
                        self.stats.identifiers += 1
                if is_pgp and not res.pgp_blocks:
                    self.stats.pgp_cells_without_block += 1
                    k += 1
                    out.append(QuarantineRecord(
                        locator=f"{unit}#pgp {k}", field=col, market_id=self.market_id,
                        reason=f"PGP column '{col}' holds no armored public key block",
                        excerpt=text[:200]))
                for b in res.pgp_blocks:
                    k += 1
                    self.stats.pgp_blocks += 1
                    if b.error:
                        self.stats.pgp_failures += 1
                        out.append(QuarantineRecord(
                            locator=f"{unit}#pgp {k}", field=col, market_id=self.market_id,
                            reason=f"PGP key block {k} in column '{col}': {b.error}",
                            excerpt=b.armored[:300]))
                        continue
                    for key in b.keys:
                        self.stats.pgp_keys += 1
                        out.append(key.to_record(market_id=self.market_id,
                                                 account_handle=handle, field=fld,
                                                 locator=f"{unit}#pgp {k}"))


def _rating_scale(spec: _RecordSpec) -> float | None:
    """The scale the ``rating`` field of ``spec`` declares (``scale: 5``), if any."""
    return next((float(f.opts["scale"]) for f in spec.fields
                 if f.target == "rating" and "scale" in f.opts), None)


def split_cell(spec: _RecordSpec, text: str) -> Iterator[re.Match[str]]:
    """The matches of ``spec.split`` in ``text``, up to the last match of ``split_end``.

    A split pattern whose text part is lazy (``(?P<text>.*?) END``) is tried from every
    start to the end of the cell when no END follows: quadratic on hostile text.
    Matching only up to the end of the last END gives the same matches in linear time.
    """
    if spec.split is None:
        return iter(())
    endpos = len(text)
    if spec.split_end is not None:
        endpos = _last_end(spec.split_end, text)
    return spec.split.finditer(text, 0, endpos)


def _last_end(rx: re.Pattern[str], text: str) -> int:
    """The end of the last match of ``rx`` in ``text`` (0 if none), searched in windows
    from the end of the text that grow fourfold (linear for a linear ``rx``)."""
    n, width = len(text), 64
    while True:
        start = max(0, n - width)
        last = 0
        for m in rx.finditer(text, start):
            last = m.end()
        if last or not start:
            return last
        width *= 4


def iter_columns(rows: Iterable[RowMapping]) -> set[str]:
    """Union of the columns a set of row mappings reads."""
    out: set[str] = set()
    for r in rows:
        out |= r.columns()
    return out


# --------------------------------------------------------------------- column mapper
#
# The row mapper above is the reference. The column mapper maps a block of rows at
# once and must give exactly the records the row mapper would: every column kernel
# either computes a cell the way the row rule does (memoised per distinct cell, so the
# same Python code runs) or, for the few high-volume rules, decides with Arrow that a
# cell is in a shape whose result is known (an ASCII id, a clean title, a plain
# timestamp) and leaves every other cell to the row rule. A row with any required
# field empty or failing is not mapped here at all: the row mapper redoes it, which
# also gives its exact quarantine reason.

_ERR = object()  # a cell whose parse rule failed (FieldError)
_NO_ROW: dict[str, Any] = {}  # the row argument of a converter in column mode
_COLUMN_PARSES = {"text", "line", "int", "int_text", "float", "bool", "price", "price_range",
                  "datetime", "date", "list", "place", "places", "day_number", "unix_time"}
_DICT_PARSES = {"price": ("price", "currency", "price_text"),
                "price_range": ("price", "currency", "price_text")}
# Python's str.isspace() characters among ASCII; ``\s`` in a str pattern matches these
_PY_ASCII_WS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_RE2_WS = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"
_IDENTITY_SAFE = {  # ASCII cells matching these are returned unchanged by the rule
    "text": r"^[^\t\n\x0b\x0c\r\x1c-\x1f ](?:.*[^\t\n\x0b\x0c\r\x1c-\x1f ])?$",
    "line": r"^[^\t\n\x0b\x0c\r\x1c-\x1f ]"
            r"(?:[^\t\n\x0b\x0c\r\x1c-\x1f ]| [^\t\n\x0b\x0c\r\x1c-\x1f ])*$",
    "int_text": r"^[0-9]+$",
}
_FAST_DT = (r"^(?P<y>(?:19|2[01])[0-9]{2})-(?P<mo>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12][0-9]|3[01])"
            r"[T ](?P<h>[01][0-9]|2[0-3]):(?P<mi>[0-5][0-9])(?::(?P<s>[0-5][0-9]))?"
            r"(?:[.,](?P<f>[0-9]{1,30}))?"
            r"(?: ?(?P<z>Z|UTC|GMT)| ?(?P<oh>[+-](?:[01][0-9]|2[0-3])):?(?P<om>[0-5][0-9])"
            r"(?: [A-Z]{2,5})?)?$")


# One shape of _FAST_DT at fixed offsets (every field in place, 9 fraction digits, a
# numeric offset): what Go writes, and what the Hansa scrape holds. ASCII only.
_FIXED_DT = (r"^(?:19|2[01])[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
             r"[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{9}"
             r" [+-](?:[01][0-9]|2[0-3])[0-5][0-9](?: [A-Z]{2,5})?$")


def _civil_micros(y: Any, mo: Any, d: Any, h: Any, mi: Any, sec: Any, micros: Any,
                  off: Any) -> tuple[Any, Any]:
    """Microseconds since the epoch (UTC) from civil fields and a UTC offset in seconds,
    and whether the day exists in its month (2016-02-30 does not: the row rule rejects
    it, and numpy would roll it over)."""
    month = (y - 1970) * 12 + (mo - 1)
    days = month.astype("datetime64[M]").astype("datetime64[D]") + (d - 1)
    ok = days.astype("datetime64[M]").astype(np.int64) == month
    secs = days.astype(np.int64) * 86400 + h * 3600 + mi * 60 + sec
    return (secs - off) * 1_000_000 + micros, ok


def _fixed_dt_micros(arr: Any) -> tuple[Any, Any]:
    """:func:`_civil_micros` of cells that all match ``_FIXED_DT`` (no nulls).

    The shape is ASCII at fixed offsets, so the digits are read straight from the
    string array's bytes.
    """
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    _, offsets, data = arr.buffers()
    start = np.frombuffer(offsets, dtype=np.int32)[arr.offset:arr.offset + len(arr)]
    raw = np.frombuffer(data, dtype=np.uint8)

    def num(a: int, b: int) -> Any:
        v = np.zeros(len(start), dtype=np.int64)
        for k in range(a, b):
            v = v * 10 + (raw[start + k].astype(np.int64) - 48)
        return v

    sign = np.where(raw[start + 30] == ord("-"), -1, 1)
    off = sign * (num(31, 33) * 3600 + num(33, 35) * 60)
    # the fraction's first six digits are its microseconds, as on the general path
    return _civil_micros(num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16),
                         num(17, 19), num(20, 26), off)


def _plain_dt_micros(arr: Any, naive: int) -> tuple[Any, Any]:
    """:func:`_civil_micros` of cells split by ``_FAST_DT``, and which cells matched it.

    ``naive`` is the offset (seconds) of values without a zone.
    """
    parts = ac.extract_regex(arr, _FAST_DT)
    matched = _np_bool(ac.and_(ac.is_valid(parts), ac.string_is_ascii(arr)))
    # Arrow scalars, not Python ones: converting a Python scalar makes pyarrow retry
    # an optional import (dateutil) on every call
    empty = pa.scalar("", pa.string())

    def text(name: str) -> pa.StringArray:
        filled: pa.StringArray = ac.coalesce_with(parts.field(name), empty)
        return filled

    def num(name: str, default: str = "0") -> Any:
        v = text(name)
        v = ac.if_else(ac.equal(v, empty), pa.scalar(default, pa.string()), v)
        return _np_int64(v)

    frac = ac.utf8_rpad(ac.utf8_slice_codeunits(text("f"), 0, 6), width=6, padding="0")
    micros = _np_int64(frac)
    oh = text("oh")
    has_oh = ac.not_equal(oh, empty)
    off_h = _np_int64(ac.if_else(has_oh, ac.utf8_slice_codeunits(oh, 1, 3),
                                 pa.scalar("0", pa.string())))
    sign = np.where(_np_bool(ac.starts_with(oh, "-")), -1, 1)
    off = np.where(_np_bool(has_oh), sign * (off_h * 3600 + num("om") * 60),
                   np.where(_np_bool(ac.not_equal(text("z"), empty)), 0, naive))
    us, ok = _civil_micros(num("y", "1970"), num("mo", "1"), num("d", "1"), num("h"),
                           num("mi"), num("s"), micros, off)
    return us, matched & ok


def _np_int64(arr: Any) -> np.ndarray:
    """An Arrow array of integer text (or numbers) as a numpy int64 array."""
    ints: pa.Array[Any] = ac.cast(arr, pa.int64())
    out: np.ndarray = ints.to_numpy(zero_copy_only=False)
    return out


def _np_bool(arr: Any) -> Any:
    """An Arrow boolean array as a numpy bool array, nulls as False."""
    return np.asarray(ac.coalesce_with(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


_ARROW_TYPES: dict[type, pa.DataType] = {str: pa.string(), float: pa.float64(),
                                          int: pa.int64(), bool: pa.bool_()}


def _arrow_type(values: list[Any]) -> pa.DataType | None:
    """The Arrow type of plain values (text, numbers, lists of text); None if unsure.

    Saying it spares pyarrow's type inference, which retries optional imports each call.
    """
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) != 1:
        return pa.string() if not kinds else None
    kind = kinds.pop()
    if kind is list and all(type(x) is str for v in values if v is not None for x in v):
        return pa.list_(pa.string())
    return _ARROW_TYPES.get(kind)


def _take(values: list[Any], idx: Any) -> Any:
    """``[values[i] for i in idx]``, as an Arrow array when Arrow can type the values."""
    try:
        return ac.take(pa.array(values, type=_arrow_type(values)), idx)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return [values[i] for i in idx.to_pylist()]


class ColumnMapper:
    """Maps a block of rows column by column, for mappings of one plain listing per row.

    :meth:`eligible` says whether a row mapping can be mapped this way (one ``listing``
    record, no feedback split, no PGP columns, single-column fields with column-safe
    parse rules, no two fields setting the same attribute). :meth:`map_block` returns
    the listing attributes as columns and which rows it mapped; the others must go
    through :meth:`RowMapper.map_row`.
    """

    def __init__(self, mapper: RowMapper) -> None:
        if not self.eligible(mapper.rows):
            raise MappingError(f"{mapper.mapping.name}: not mappable column by column")
        self.mapper = mapper
        self.nulls = mapper.nulls
        self.market_id = mapper.market_id
        self.fields = mapper.rows.records[0].fields
        self._conv = {id(f): mapper._converter(f) for f in self.fields if f.column}
        self._ident_rx: str | None = None
        self._arrays: dict[int, tuple[list[Any], Any]] = {}  # this block's columns in Arrow

    def _arrow(self, col: list[str | None]) -> Any:
        """``col`` as an Arrow string array, converted once per block."""
        hit = self._arrays.get(id(col))
        if hit is None or hit[0] is not col:
            hit = self._arrays[id(col)] = (col, pa.array(col, pa.string()))
        return hit[1]

    @staticmethod
    def eligible(rows: RowMapping) -> bool:
        """True when :meth:`map_block` gives the same records as the row mapper."""
        if len(rows.records) != 1 or rows.pgp:
            return False
        spec = rows.records[0]
        if spec.type != "listing" or spec.split is not None:
            return False
        seen: set[str] = set()
        for f in spec.fields:
            if f.const is None and not (f.column and f.parse in _COLUMN_PARSES):
                return False
            if f.target in ("market_id", "locator"):
                return False
            attrs = _DICT_PARSES.get(f.parse, (f.target,)) if f.const is None else (f.target,)
            if seen & set(attrs):
                return False
            seen |= set(attrs)
        return True

    def columns(self) -> set[str]:
        """The source columns a block needs."""
        return {f.column for f in self.fields if f.column} | {
            c for c, _ in self.mapper.rows.identifiers}

    # -- kernels ------------------------------------------------------------------------

    def _one(self, f: _FieldSpec) -> Callable[[str | None], Any]:
        """The row rule for one cell: None when null, ``_ERR`` when it fails."""
        nulls, conv = self.nulls, self._conv[id(f)]

        def one(v: str | None) -> Any:
            if v is None or v in nulls or v.strip() in nulls:
                return None
            try:
                return conv(v, _NO_ROW)  # column parses never read the row
            except FieldError:
                return _ERR
        return one

    def _memo(self, f: _FieldSpec, col: list[str | None]) -> tuple[list[Any], Any, Any]:
        """The row rule once per distinct cell.

        Returns (result per distinct cell, Arrow indices of each row's cell in it,
        numpy mask of rows whose cell is absent or failed); failures become None.
        """
        one = self._one(f)
        # Arrow finds the distinct cells (a null cell is one of them)
        enc = ac.dictionary_encode(self._arrow(col), null_encoding="encode")
        results = [one(v) for v in enc.dictionary.to_pylist()]
        idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        gone = np.fromiter((r is None or r is _ERR for r in results), dtype=bool,
                           count=len(results))
        results = [None if r is _ERR else r for r in results]
        return (results, ac.from_numpy(idx), gone[idx] if gone.any() else
                np.zeros(len(col), bool))

    def _identity(self, f: _FieldSpec, col: list[str | None]) -> tuple[list[Any], Any]:
        """Cells in the rule's identity-safe shape stay as they are; the rest run the rule."""
        arr = self._arrow(col)
        safe = _np_bool(ac.and_(ac.string_is_ascii(arr),
                                ac.match_substring_regex(arr, _IDENTITY_SAFE[f.parse])))
        absent = np.zeros(len(col), dtype=bool)
        out = list(col)
        if self.nulls:
            is_null = _np_bool(ac.is_in(arr, value_set=pa.array(sorted(self.nulls),
                                                                pa.string())))
            for i in np.flatnonzero(safe & is_null).tolist():
                out[i] = None
                absent[i] = True
        one = self._one(f)
        for i in np.flatnonzero(~safe).tolist():
            v = one(col[i])
            if v is None or v is _ERR:
                out[i] = None
                absent[i] = True
            else:
                out[i] = v
        return out, absent

    def _datetime(self, f: _FieldSpec, col: list[str | None]) -> tuple[Any, Any]:
        """Plain timestamps with Arrow and numpy, every other cell by the row rule.

        Cells of one fixed-width shape (Go's ``2016-12-11 20:13:54.654635085 -0500
        EST``) are cut at fixed offsets; other plain ones are split by the
        ``_FAST_DT`` pattern (an Arrow regex extract, several times slower).
        Returns (naive UTC timestamp array, numpy mask of absent cells).
        """
        n = len(col)
        arr = self._arrow(col)
        tz = f.opts.get("tz", UTC)
        naive = int(tz.utcoffset(None).total_seconds())  # offset of zone-less values
        fixed = _np_bool(ac.match_substring_regex(arr, _FIXED_DT))
        us = np.zeros(n, dtype=np.int64)
        matched = np.zeros(n, dtype=bool)
        if fixed.any():
            at = np.flatnonzero(fixed)
            us[at], matched[at] = _fixed_dt_micros(ac.take(arr, ac.from_numpy(at)))
        if not fixed.all():
            at = np.flatnonzero(~fixed)
            us[at], matched[at] = _plain_dt_micros(ac.take(arr, ac.from_numpy(at)), naive)
        valid = matched.copy()
        if self.nulls:
            valid &= ~_np_bool(ac.is_in(arr, value_set=pa.array(sorted(self.nulls),
                                                                pa.string())))
        one = self._one(f)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        step = timedelta(microseconds=1)
        for i in np.flatnonzero(~matched).tolist():
            v = one(col[i])
            if v is not None and v is not _ERR:
                us[i] = (v - epoch) // step
                valid[i] = True
        return ac.from_numpy(us, pa.timestamp("us"), mask=~valid), ~valid

    # -- blocks -------------------------------------------------------------------------

    def map_block(self, cols: dict[str, list[str | None]], n: int) -> tuple[dict[str, Any], Any]:
        """Listing attributes of ``n`` rows as columns, and a numpy mask of mapped rows.

        ``cols`` holds each source column's cells (None where the row has no such
        field). Unmapped rows (a required field empty or failing, or the record lacking
        ``listing_ref`` or ``title``) must be redone by :meth:`RowMapper.map_row`.
        """
        self._arrays.clear()
        ok = np.ones(n, dtype=bool)
        out: dict[str, Any] = {}
        absent: dict[str, Any] = {}
        for f in self.fields:
            if f.const is not None:
                out[f.target] = [f.const] * n
                absent[f.target] = np.zeros(n, dtype=bool)
                continue
            col = cols[f.column]  # type: ignore[index]
            if f.parse == "datetime" and not f.opts.get("format"):
                vals, gone = self._datetime(f, col)
            elif f.parse in _IDENTITY_SAFE:
                vals, gone = self._identity(f, col)
            else:
                results, idx, gone = self._memo(f, col)
                if f.parse in _DICT_PARSES:
                    for key in _DICT_PARSES[f.parse]:
                        out[key] = _take([r[key] if r is not None else None
                                          for r in results], idx)
                    vals = None
                else:
                    vals = _take(results, idx)
            if f.required:
                ok &= ~gone
            if vals is not None:
                out[f.target] = vals
                absent[f.target] = gone
        for name in ("listing_ref", "title"):  # ListingRecord's required attributes
            ok &= ~absent[name] if name in absent else np.zeros(n, dtype=bool)
        return out, ok

    def identifier_records(self, cols: dict[str, list[str | None]], rows: Any,
                           refs: list[Any], handles: list[Any],
                           units: list[str]) -> dict[int, list[Record]]:
        """Identifier records of the given rows (indices), by row, as the row mapper finds.

        A cell is scanned only if it could hold something: a cheap Arrow test, taken
        from the scanner's own prefilter, rules out most cells (titles) at once.
        """

        out: dict[int, list[Record]] = {}
        wanted = np.zeros(len(refs), dtype=bool)
        wanted[rows] = True
        nulls = self.nulls
        for col_name, fld in self.mapper.rows.identifiers:
            col = cols.get(col_name)
            if col is None:
                continue
            arr = self._arrow(col)
            rx = self._identifier_prefilter()
            cand = (np.ones(len(col), dtype=bool) if rx is None else
                    _np_bool(ac.match_substring_regex(arr, rx, ignore_case=True)))
            for i in np.flatnonzero(cand & wanted).tolist():
                v = col[i]
                if v is None or v in nulls or v.strip() in nulls:
                    continue
                res = scan_text(v, market_id=self.market_id, account_handle=handles[i],
                                listing_ref=refs[i], field=fld, locator=units[i],
                                key_records=False)
                for r in res.records:
                    if not isinstance(r, PgpKeyRecord):
                        out.setdefault(i, []).append(r)
                        self.mapper.stats.identifiers += 1
        return out

    def _identifier_prefilter(self) -> str | None:
        """An RE2 pattern true for every text in which the scanner may find anything.

        The scanner returns nothing unless its prefilter ``_ANY_RE`` (case-insensitive)
        matches or the text holds ``&`` or ``\\``. RE2 with ``ignore_case`` matches
        wherever Python does, except that Python also folds U+0130 and U+0131 onto
        ``i`` (RE2's ``\\b`` is ASCII-only, which only widens it); those two are added.
        """
        if self._ident_rx is None:
            # the scanner's own first test (private, read so the two cannot drift apart)
            rx = getattr(identifiers, "_ANY_RE", None)
            pattern = f"(?:{rx.pattern})|[&\\\\\u0130\u0131]" if rx is not None else ""
            try:
                ac.match_substring_regex(pa.array(["x"], pa.string()), pattern,
                                         ignore_case=True)
            except Exception:  # noqa: BLE001 - not RE2 syntax: scan every cell
                pattern = ""
            self._ident_rx = pattern
        return self._ident_rx or None
