"""Seized MySQL dumps (mysqldump text), streamed and mapped declaratively.

The reader never holds the dump in memory: it decodes the file in chunks and splits it
into statements at ``;`` outside strings and comments. ``CREATE TABLE`` teaches it each
table's column names; ``INSERT INTO ... VALUES (...),(...);`` rows are decoded with
MySQL's escaping rules and handed to the table's row mapping (YAML files in
:mod:`darkmap.importers.mappings`, ``format: sql``).

Damage is expected. A statement that cannot be parsed, or a row with the wrong number of
values, becomes a :class:`QuarantineRecord` (``insert S row R`` or ``statement N``) with
the reason; scanning resynchronises at the next statement. mysqldump escapes newlines
inside strings, so a raw newline followed by a statement keyword inside a "string" means
a quote was lost: the broken statement is cut there instead of swallowing the file.

Units: ``insert S row R`` (S counts INSERT statements from 1, R the row tuple in it).
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from darkmap.errors import BadInputError
from darkmap.importers.mappings import FieldError, Mapping, MapStats, RowMapper, mappings
from darkmap.model.records import MarketRecord, QuarantineRecord, Record, SkipRecord
from darkmap.plugins import SourceFile

__all__ = [
    "SqlDumpImporter",
    "SqlStats",
    "SqlSyntaxError",
    "Statement",
    "iter_insert_rows",
    "iter_statements",
    "parse_create_table",
    "parse_insert_head",
    "read_dump",
]

CHUNK = 1 << 20
MAX_STATEMENT = 512 << 20

_KEYWORD_LINE = re.compile(
    r"[ \t]*(?:INSERT\s+(?:IGNORE\s+)?INTO\s|REPLACE\s+INTO\s|CREATE\s+TABLE\s|DROP\s+TABLE\s"
    r"|LOCK\s+TABLES\s|UNLOCK\s+TABLES|/\*!\d{5}|--\s|SET\s+[@\w]|USE\s|CREATE\s+DATABASE\s)",
    re.I)
_SPECIAL = re.compile(r"[;'\"`#]|--(?=\s)|/\*")
_STR_STOP = {"'": re.compile(r"['\\\n]"), '"': re.compile(r"[\"\\\n]"), "`": re.compile(r"[`\n]")}


class SqlSyntaxError(BadInputError):
    """A statement could not be parsed; ``row`` is the row tuple where it failed (1-based)."""

    def __init__(self, message: str, row: int = 0) -> None:
        super().__init__(message)
        self.row = row


@dataclass(slots=True)
class Statement:
    """One SQL statement: its number (1-based), first line, text, or why it is broken."""

    number: int
    line: int
    text: str
    error: str | None = None


class _Scanner:
    """Splits text decoded chunk by chunk into statements (quote- and comment-aware).

    ``start`` is where the current statement began in ``buf``; text before it is
    dropped whenever more input is read, so memory holds one statement plus a chunk.
    """

    def __init__(self, fh: IO[bytes], chunk: int, encoding: str) -> None:
        self.fh = fh
        self.chunk = chunk
        self.dec = codecs.getincrementaldecoder(encoding)("replace")
        self.buf = ""
        self.start = 0
        self.eof = False
        self.line = 1
        self.number = 0

    def _fill(self) -> int:
        """Read a chunk, dropping text before ``start``; return how far indices moved."""
        data = self.fh.read(self.chunk)
        if data:
            tail = self.dec.decode(data)
        else:
            self.eof = True
            tail = self.dec.decode(b"", final=True)
        shift = self.start
        self.buf = self.buf[shift:] + tail
        self.start = 0
        return shift

    def _emit(self, end: int, error: str | None = None) -> Statement | None:
        text = self.buf[self.start:end]
        first = self.line + text[:len(text) - len(text.lstrip())].count("\n")
        self.line += text.count("\n")
        body = _strip_leading_comments(text)
        if not body:
            return None
        self.number += 1
        return Statement(self.number, first, body, error)

    def __iter__(self) -> Iterator[Statement]:
        i = 0
        while True:
            if len(self.buf) - self.start > MAX_STATEMENT:
                yield from self._oversized()
                i = 0
                continue
            m = _SPECIAL.search(self.buf, i)
            if m is None:
                if self.eof:
                    st = self._emit(len(self.buf))
                    if st is not None:
                        st.error = "statement not terminated by ';' at end of file"
                        yield st
                    return
                resume = max(i, len(self.buf) - 2)
                i = resume - self._fill()
                continue
            tok = m.group()
            if tok == ";":
                st = self._emit(m.start())
                self.start = i = m.end()
                if st is not None:
                    yield st
                continue
            if tok in ("--", "#", "/*"):
                close = "*/" if tok == "/*" else "\n"
                j = self.buf.find(close, m.end())
                if j < 0:
                    if self.eof:
                        i = len(self.buf)
                    else:
                        i = m.start() - self._fill()
                    continue
                i = j + len(close)
                continue
            res = self._string(m.start(), tok)
            if isinstance(res, Statement):
                yield res
                i = self.start
            elif res is None:
                return
            else:
                i = res

    def _string(self, qpos: int, q: str) -> int | Statement | None:
        """Skip the string opened at ``qpos``: its end, a broken Statement, or None at EOF."""
        stop = _STR_STOP[q]
        j = qpos + 1
        while True:
            k_m = stop.search(self.buf, j)
            if (k_m is None or k_m.start() + 64 > len(self.buf)) and not self.eof:
                if len(self.buf) - self.start > MAX_STATEMENT:
                    return qpos + 1  # let the caller's size check give up on it
                shift = self._fill()
                j -= shift
                qpos -= shift
                continue
            if k_m is None:
                st = self._emit(len(self.buf), f"unterminated {q} string at end of file")
                self.start = len(self.buf)
                return st
            k = k_m.start()
            c = self.buf[k]
            if c == "\\" and q != "`":
                j = k + 2
                continue
            if c == "\n":
                if _KEYWORD_LINE.match(self.buf, k + 1):
                    st = self._emit(k, f"unterminated {q} string opened at char "
                                    f"{qpos - self.start} (a quote is missing); "
                                    "resynchronised at the next statement")
                    self.start = k
                    if st is None:  # pragma: no cover - a string start is never blank
                        return k + 1
                    return st
                j = k + 1
                continue
            if self.buf[k + 1:k + 2] == q:
                j = k + 2  # doubled quote
                continue
            return k + 1

    def _oversized(self) -> Iterator[Statement]:
        """Give up on a statement over MAX_STATEMENT and skip to the next statement line."""
        self.number += 1
        st = Statement(self.number, self.line, self.buf[self.start:self.start + 1000],
                       f"statement longer than {MAX_STATEMENT} characters; skipped")
        pos = self.start
        while True:
            for nl in re.finditer("\n", self.buf[pos:]):
                at = pos + nl.end()
                if _KEYWORD_LINE.match(self.buf, at):
                    self.line += self.buf.count("\n", self.start, at)
                    self.start = at
                    yield st
                    return
            if self.eof:
                self.start = len(self.buf)
                yield st
                return
            self.line += self.buf.count("\n", self.start, max(self.start, len(self.buf) - 64))
            self.start = max(self.start, len(self.buf) - 64)
            self._fill()
            pos = 0


def _strip_leading_comments(text: str) -> str:
    s = text.strip()
    while s:
        if s.startswith(("--", "#")):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1:].lstrip()
        elif s.startswith("/*") and not s.startswith("/*!"):
            end = s.find("*/")
            s = "" if end < 0 else s[end + 2:].lstrip()
        else:
            break
    return s


def _only_comments(text: str) -> bool:
    return not re.sub(r"(?m)^\s*(--\s.*|#.*)$", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S)
                      ).strip()


def iter_statements(fh: IO[bytes], chunk: int = CHUNK,
                    encoding: str = "utf-8") -> Iterator[Statement]:
    """Statements of a dump read from a binary file object, ``chunk`` bytes at a time."""
    return iter(_Scanner(fh, chunk, encoding))


# ------------------------------------------------------------------------- statements

_NAME = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_INSERT_RE = re.compile(
    rf"(?:/\*.*?\*/\s*)*(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*"
    rf"(?:INTO\s+)?(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)\s*(?:\((?P<cols>[^)]*)\)\s*)?"
    r"VALUES?\s*", re.I | re.S)
_CREATE_RE = re.compile(
    rf"(?:/\*.*?\*/\s*)*CREATE\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)\s*\(", re.I | re.S)
_NOT_COLUMNS = {"PRIMARY", "KEY", "UNIQUE", "INDEX", "CONSTRAINT", "FOREIGN", "FULLTEXT",
                "SPATIAL", "CHECK"}
_TOKEN = re.compile(
    r"""\s*(?:
      '(?P<s>(?:[^'\\]++|\\.|'')*+)'
    | "(?P<d>(?:[^"\\]++|\\.|"")*+)"
    | _\w+\s*'(?P<s2>(?:[^'\\]++|\\.|'')*+)'
    | [xX]'(?P<hex>[0-9a-fA-F]*)'
    | 0x(?P<hex2>[0-9a-fA-F]+)
    | [bB]'(?P<bits>[01]*)'
    | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<word>[A-Za-z_]\w*)
    | (?P<p>[(),;])
    )""", re.S | re.X)
_ESC = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%",
        "_": "\\_"}
_ESC_S = re.compile(r"\\(.)|''", re.S)
_ESC_D = re.compile(r'\\(.)|""', re.S)


def _unquote_name(name: str) -> str:
    last = re.split(r"\s*\.\s*(?=[`\w$])", name.strip())[-1]
    return last[1:-1].replace("``", "`") if last.startswith("`") else last


def _esc(m: re.Match[str]) -> str:
    c = m.group(1)
    if c is None:
        return m.group()[0]
    return _ESC.get(c, c)


def _unescape(s: str, dq: bool = False) -> str:
    if "\\" not in s and ("''" not in s if not dq else '""' not in s):
        return s
    return (_ESC_D if dq else _ESC_S).sub(_esc, s)


def parse_create_table(text: str) -> tuple[str, list[str]] | None:
    """``(table, column names)`` from a CREATE TABLE statement, or ``None``."""
    m = _CREATE_RE.match(text)
    if not m:
        return None
    body = text[m.end():]
    cols, depth, cur, q = [], 0, [], ""
    for ch in body:
        if q:
            cur.append(ch)
            if ch == q:
                q = ""
            continue
        if ch in "`'\"":
            q = ch
            cur.append(ch)
        elif ch == "(":
            depth += 1
            cur.append(ch)
        elif ch == ")":
            if depth == 0:
                cols.append("".join(cur))
                break
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            cols.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    names = []
    for d in cols:
        d = d.strip()
        if not d:
            continue
        first = re.match(_NAME, d)
        if not first or (not d.startswith("`") and first.group().upper() in _NOT_COLUMNS):
            continue
        names.append(_unquote_name(first.group()))
    return _unquote_name(m.group("name")), names


def parse_insert_head(text: str) -> tuple[str, list[str] | None, int] | None:
    """``(table, explicit columns or None, offset of the first tuple)`` of an INSERT."""
    m = _INSERT_RE.match(text)
    if not m:
        return None
    cols = None
    if m.group("cols") is not None:
        cols = [_unquote_name(c) for c in m.group("cols").split(",") if c.strip()]
    return _unquote_name(m.group("name")), cols, m.end()


def _value(m: re.Match[str]) -> tuple[bool, str | None]:
    """(is a value, value) for one token; punctuation gives (False, char)."""
    g = m.lastgroup
    if g is None:  # every alternative of _TOKEN is a named group
        return False, m.group()
    if g == "s" or g == "s2":
        return True, _unescape(m.group(g))
    if g == "d":
        return True, _unescape(m.group(g), dq=True)
    if g == "num":
        return True, m.group(g)
    if g == "word":
        w = m.group(g).upper()
        if w == "NULL":
            return True, None
        if w in ("TRUE", "FALSE"):
            return True, "1" if w == "TRUE" else "0"
        if w in ("DEFAULT", "CURRENT_TIMESTAMP", "NOW"):
            return True, None
        raise SqlSyntaxError(f"unexpected word {m.group(g)[:30]!r}")
    if g in ("hex", "hex2"):
        h = m.group(g)
        return True, bytes.fromhex(h if len(h) % 2 == 0 else "0" + h).decode("utf-8", "replace")
    if g == "bits":
        b = m.group(g) or "0"
        return True, str(int(b, 2))
    return False, m.group(g)


def iter_insert_rows(text: str, offset: int) -> Iterator[list[str | None]]:
    """Row tuples of an INSERT from ``offset``; raises :class:`SqlSyntaxError` on damage.

    Rows before the damage have been yielded; the error's ``row`` is the broken tuple.
    """
    pos, row = offset, 0
    tok = _TOKEN.match
    while True:
        m = tok(text, pos)
        if m is None or m.group("p") != "(":
            if m is None and not text[pos:].strip():
                if row == 0:
                    raise SqlSyntaxError("INSERT without any row", 1)
                return
            got = text[pos:pos + 30].strip()
            raise SqlSyntaxError(f"expected '(' at char {pos}, found {got!r}", row + 1)
        row += 1
        pos = m.end()
        vals: list[str | None] = []
        while True:
            m = tok(text, pos)
            if m is None:
                raise SqlSyntaxError(f"cannot read a value at char {pos}: "
                                     f"{text[pos:pos + 30].strip()!r}", row)
            pos = m.end()
            try:
                is_val, v = _value(m)
            except SqlSyntaxError as exc:
                raise SqlSyntaxError(f"{exc} at char {m.start()}", row) from None
            if not is_val:
                if v == ")" and not vals:
                    break
                raise SqlSyntaxError(f"expected a value at char {m.start()}, found {v!r}", row)
            vals.append(v)
            m = tok(text, pos)
            if m is None or m.group("p") not in (",", ")"):
                found = text[pos:pos + 30].strip()
                raise SqlSyntaxError(f"expected ',' or ')' at char {pos}, found {found!r}", row)
            pos = m.end()
            if m.group("p") == ")":
                break
        yield vals
        m = tok(text, pos)
        if m is None:
            if text[pos:].strip():
                raise SqlSyntaxError(f"junk after row at char {pos}: "
                                     f"{text[pos:pos + 30].strip()!r}", row + 1)
            return
        p = m.group("p")
        if p == ",":
            pos = m.end()
            continue
        if p == ";" and not text[m.end():].strip():
            return
        raise SqlSyntaxError(f"expected ',' between rows at char {pos}, found "
                             f"{text[pos:pos + 30].strip()!r}", row + 1)


# ----------------------------------------------------------------------------- reader


@dataclass(slots=True)
class SqlStats:
    """Counts of one dump read (for tests, reports and benchmarks)."""

    statements: int = 0
    inserts: int = 0
    rows: int = 0
    stored_rows: int = 0
    quarantined_rows: int = 0
    broken_statements: int = 0
    skipped_statements: int = 0
    tables: dict[str, list[str]] = field(default_factory=dict)
    rows_by_table: Counter[str] = field(default_factory=Counter)
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    map: dict[str, MapStats] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "statements", "inserts", "rows", "stored_rows", "quarantined_rows",
            "broken_statements", "skipped_statements")}
        out["rows_by_table"] = dict(self.rows_by_table)
        out["quarantine_reasons"] = dict(self.quarantine_reasons)
        out["pgp"] = {t: {"blocks": s.pgp_blocks, "keys": s.pgp_keys,
                          "failures": s.pgp_failures,
                          "cells_without_block": s.pgp_cells_without_block}
                      for t, s in self.map.items()}
        out["identifiers"] = sum(s.identifiers for s in self.map.values())
        return out


def _mapper_for(table: str, source_name: str, candidates: list[Mapping]) -> RowMapper | None:
    have = [m for m in candidates if table in m.tables]
    if not have:
        return None
    named = [m for m in have if m.recognise.get("filename")
             and re.search(m.recognise["filename"], source_name)]
    m = (named or have)[0]
    return RowMapper(m, m.tables[table])


def read_dump(path: Path, source_name: str | None = None, stats: SqlStats | None = None,
              candidates: list[Mapping] | None = None, chunk: int = CHUNK,
              encoding: str = "utf-8") -> Iterator[Record]:
    """Yield the records of a mysqldump file through the SQL mappings.

    Rows of tables no mapping names give one SkipRecord per INSERT statement.
    """
    name = source_name or Path(path).name
    st = stats if stats is not None else SqlStats()
    maps = candidates if candidates is not None else mappings("sql")
    mappers: dict[str, RowMapper | None] = {}
    with open(path, "rb") as fh:
        for stmt in iter_statements(fh, chunk, encoding):
            st.statements += 1
            head = stmt.text[:40].lstrip("( \t\n").upper()
            is_insert = head.startswith(("INSERT", "REPLACE"))
            if is_insert:
                st.inserts += 1
            where = f"{name} statement {stmt.number} (line {stmt.line})"
            unit = f"insert {st.inserts}" if is_insert else f"statement {stmt.number}"
            if stmt.error:
                st.broken_statements += 1
                st.quarantine_reasons["broken statement"] += 1
                yield QuarantineRecord(locator=unit, reason=f"{where}: {stmt.error}"[:500],
                                       excerpt=stmt.text[:1000])
                continue
            if not is_insert:
                ct = parse_create_table(stmt.text) if "CREATE" in head else None
                if ct:
                    st.tables[ct[0]] = ct[1]
                continue
            yield from _insert(stmt, st, unit, where, name, maps, mappers)


def _insert(stmt: Statement, st: SqlStats, unit: str, where: str, name: str,
            maps: list[Mapping], mappers: dict[str, RowMapper | None]) -> Iterator[Record]:
    parsed = parse_insert_head(stmt.text)
    if parsed is None:
        st.broken_statements += 1
        st.quarantine_reasons["unreadable INSERT"] += 1
        yield QuarantineRecord(locator=unit, reason=f"{where}: cannot read INSERT head",
                               excerpt=stmt.text[:1000])
        return
    table, cols, offset = parsed
    if table not in mappers:
        mappers[table] = _mapper_for(table, name, maps)
        if mappers[table] is not None:
            m = mappers[table].mapping  # type: ignore[union-attr]
            st.map[table] = mappers[table].stats  # type: ignore[union-attr]
            if all(x is None or x.mapping.market_id != m.market_id
                   for t, x in mappers.items() if t != table):
                yield MarketRecord(market_id=m.market_id, name=m.market_name)
    mapper = mappers[table]
    if mapper is None:
        st.skipped_statements += 1
        yield SkipRecord(page_type="sql_table", locator=unit,
                         reason=f"table `{table}` is not in any SQL mapping")
        return
    cols = cols or st.tables.get(table)
    market = mapper.market_id
    r = 0
    try:
        for r, vals in enumerate(iter_insert_rows(stmt.text, offset), 1):
            st.rows += 1
            st.rows_by_table[table] += 1
            runit = f"{unit} row {r}"
            names = cols or [f"c{i + 1}" for i in range(len(vals))]
            if len(vals) != len(names):
                st.quarantined_rows += 1
                st.quarantine_reasons["wrong value count"] += 1
                yield QuarantineRecord(
                    locator=runit, market_id=market, excerpt=repr(vals)[:1000],
                    reason=f"{where} row {r}: {len(vals)} values, table `{table}` has "
                           f"{len(names)} columns")
                continue
            try:
                recs = mapper.map_row(dict(zip(names, vals, strict=True)), runit)
            except FieldError as exc:
                st.quarantined_rows += 1
                fld = re.search(r"field '([^']+)'", str(exc))
                st.quarantine_reasons["field: " + (fld.group(1) if fld else "?")] += 1
                yield QuarantineRecord(locator=runit, market_id=market,
                                       field=fld.group(1) if fld else None,
                                       reason=f"{where} row {r}: {exc}"[:500],
                                       excerpt=repr(vals)[:1000])
                continue
            st.stored_rows += 1
            yield from recs
    except SqlSyntaxError as exc:
        st.rows += 1
        st.quarantined_rows += 1
        st.quarantine_reasons["syntax error in row"] += 1
        yield QuarantineRecord(
            locator=f"{unit} row {exc.row}", market_id=market,
            reason=f"{where} row {exc.row}: {exc}; rest of the statement skipped"[:500],
            excerpt=stmt.text[:300])


# ----------------------------------------------------------------------------- importer

_DUMP_HINT = re.compile(r"(?:^|\n)\s*(?:--\s*MySQL dump|CREATE\s+TABLE\s|INSERT\s+INTO\s)", re.I)
_TABLE_NAMES = re.compile(rf"(?:CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|INSERT\s+INTO)\s+"
                          rf"({_NAME}(?:\s*\.\s*{_NAME})?)", re.I)


def sniff_dump(src: SourceFile) -> tuple[float, Mapping | None]:
    """How sure we are ``src`` is a dump, and the mapping that names its tables."""
    if b"\x00" in src.head[:4096]:
        return 0.0, None
    text = src.head.decode("utf-8", "replace")
    if not _DUMP_HINT.search(text):
        return 0.0, None
    tables = {_unquote_name(n) for n in _TABLE_NAMES.findall(text)}
    best: tuple[float, Mapping | None] = (0.6 if tables else 0.0, None)
    for m in mappings("sql"):
        if tables & set(m.tables):
            score = 0.9
            pat = m.recognise.get("filename")
            if pat and re.search(pat, Path(src.source).name):
                score = 0.95
            if score > best[0]:
                best = (score, m)
    return best


class SqlDumpImporter:
    """mysqldump text files, mapped per table through the SQL mappings."""

    name = "sqldump"
    version = "1"

    def sniff_range(self, src: SourceFile) -> tuple[float, float] | None:
        """(0, 0) for markup, or when the head holds none of the words a dump starts with."""
        if src.head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":  # a dump never opens with a tag
            return (0.0, 0.0)
        head = src.head.lower()
        if b"create table" in head or b"insert into" in head or b"mysql dump" in head:
            return None
        if b"create" in head or b"insert" in head:  # odd whitespace: let sniff decide
            return None
        return (0.0, 0.0)

    def sniff(self, src: SourceFile) -> float:
        """0.9+ when a mapping names a table in the dump, 0.6 for other dumps."""
        try:
            return sniff_dump(src)[0]
        except Exception:  # noqa: BLE001 - sniffing must never break the pipeline
            return 0.0

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Yield records; broken statements and rows become QuarantineRecords."""
        yield from read_dump(src.path, Path(src.source).name)

