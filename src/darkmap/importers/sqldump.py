"""Seized MySQL dumps (mysqldump text), streamed and mapped declaratively.

The reader never holds the dump in memory: it decodes the file in chunks (UTF-8, or
UTF-8 / UTF-16 with a byte-order mark, as PowerShell writes a redirected dump) and
reads it statement by statement, quote- and comment-aware. ``CREATE TABLE`` teaches it
each table's column names; the row tuples of ``INSERT INTO ... VALUES (...),(...);``
are read one at a time with MySQL's escaping rules and handed to the table's row
mapping (YAML files in :mod:`darkmap.importers.mappings`, ``format: sql``).

Damage is expected, and every row is counted. A row tuple that cannot be read (a lost
quote or separator, a stray backslash, junk, the wrong number of values) is
quarantined as ``insert S row R`` with the reason, and reading resynchronises at the
next row tuple: the first later ``(`` after a ``)`` (and an optional ``,`` or ``;``)
from which a whole tuple of the table's column count reads, followed by ``,`` or the
statement's end. Should the damage hide further row tuples, each one in it that starts
like a row of the table counts as one more quarantined row. Resynchronising stops at
the end of the statement: a line (or a ``;``) followed by a statement keyword, since
mysqldump escapes line breaks inside strings. A comment between row tuples is passed
over as MySQL passes it, but each row tuple in it (an unclosed ``/*`` may hide many)
counts as one quarantined row; a ``/*`` not closed before the statement's end ends
with it. Other statements that cannot be read
become ``statement N`` quarantines; an unreadable INSERT head, ``insert S``.

A quoted value longer than :data:`~darkmap.model.limits.MAX_FIELD_CHARS` is streamed,
never held whole, and cut to the cap: the row yields a
:class:`~darkmap.model.records.CutRecord` (the whole value's length and sha256) next
to its records.

Units: ``insert S row R`` (S counts INSERT statements from 1, R the row tuple in it).
"""

from __future__ import annotations

import codecs
import io
import re
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from darkmap.errors import BadInputError
from darkmap.importers.capped import CappedText
from darkmap.importers.mappings import FieldError, Mapping, MapStats, RowMapper, mappings
from darkmap.model.limits import MAX_FIELD_CHARS, MAX_SNIFF_NULS, cap_text
from darkmap.model.patterns import lazy_compile
from darkmap.model.records import (
    CutRecord,
    MarketRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
)
from darkmap.plugins import SourceFile

__all__ = [
    "InsertStatement",
    "SqlDumpImporter",
    "SqlRow",
    "SqlStats",
    "SqlSyntaxError",
    "Statement",
    "dump_encoding",
    "iter_insert_rows",
    "iter_statements",
    "parse_create_table",
    "parse_insert_head",
    "read_dump",
    "sniff_dump",
]

CHUNK = 1 << 20
MAX_STATEMENT = 16 << 20
"""Longest statement other than an INSERT that is held (INSERTs stream row by row); a
longer one is skipped to the next statement line and quarantined."""
MAX_TOKEN = 1 << 16
"""Longest unquoted token (number, word, hex literal) read in a row tuple."""
MAX_VALUES = 1 << 16
"""Most values one row tuple may hold when the table's columns are unknown."""
_HOLD = 4 * MAX_FIELD_CHARS
"""Most text kept behind the read position for a row that may still fail."""
_HEAD = 1 << 16
"""Lookahead for an INSERT head (table name and column list)."""

# every pattern is compiled on first use (darkmap.model.patterns): choosing the importer
# of any file imports this module, and most files are no dump
_KW = (r"(?:INSERT\s+(?:IGNORE\s+)?INTO\s|REPLACE\s+INTO\s|CREATE\s+TABLE\s|DROP\s+TABLE\s"
       r"|LOCK\s+TABLES\s|UNLOCK\s+TABLES|/\*!\d{5}|--\s|SET\s+[@\w]|USE\s|CREATE\s+DATABASE\s)")
_KEYWORD_LINE = lazy_compile(r"[ \t]*" + _KW, re.I)
_SPECIAL = lazy_compile(r"[;'\"`#]|--(?=\s)|/\*")
_STR_STOP = {"'": lazy_compile(r"['\\\n]"), '"': lazy_compile(r"[\"\\\n]"),
             "`": lazy_compile(r"[`\n]")}
_QSTOP = {"'": lazy_compile(r"['\\]"), '"': lazy_compile(r"[\"\\]")}
_QFAST = {"'": lazy_compile(r"'((?:[^'\\]++|\\.|'')*+)'", re.S),
          '"': lazy_compile(r'"((?:[^"\\]++|\\.|"")*+)"', re.S)}
_WS = lazy_compile(r"\s*+")
_SPACES = lazy_compile(r"[ \t\r]*+")
_BLANK = lazy_compile(r"(?:\s++|;)+")
_BARE = lazy_compile(r"""
      [xX]'(?P<hex>[0-9a-fA-F]*)'
    | 0x(?P<hex2>[0-9a-fA-F]+)
    | [bB]'(?P<bits>[01]*)'
    | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<cs>_\w+)\s*+(?=['"])
    | (?P<word>[A-Za-z_]\w*)
    """, re.X)
_FAST_VALUE = r"(?:'(?:[^'\\]++|\\.|'')*+'|NULL|-?\d++(?:\.\d++)?+(?:[eE][-+]?\d++)?+)"
_FAST_TUPLE = lazy_compile(r"\(\s*+" + _FAST_VALUE + r"\s*+(?:,\s*+" + _FAST_VALUE
                         + r"\s*+)*+\)", re.S)
_FAST_VALUES = lazy_compile(f"({_FAST_VALUE})", re.S)
_FAST_ITEM = lazy_compile(r"\s*+(" + _FAST_VALUE + r")\s*+([,)])", re.S)
"""One value of a plain tuple and what follows it: the values of a tuple ``_FAST_TUPLE``
matches, read in one pass (its match, then a ``findall`` of them, read the text twice)."""
_SEMI_END = (r"(?P<semi>;)(?=[ \t]*(?-i:INSERT[ ]INTO|REPLACE[ ]INTO|CREATE[ ]TABLE"
             r"|DROP[ ]TABLE|LOCK[ ]TABLES|UNLOCK[ ]TABLES|/\*!\d{5}))")
"""A ``;`` that ends a statement on a line another one follows on."""
_RESYNC = lazy_compile(
    r"(?:\)[ \t\r\n]{0,8}[,;]?|,)[ \t\r\n]{0,8}(?P<row>\()"
    r"|(?P<nl>\n)(?=[ \t]*" + _KW + ")|" + _SEMI_END, re.I)
_IN_BLOCK = lazy_compile(
    r"(?P<close>\*/)|\)[ \t\r\n]{0,8}[,;]?[ \t\r\n]{0,8}(?P<row>\()|(?P<nl>\n)|"
    + _SEMI_END, re.I)
"""In a ``/*`` comment between row tuples: its end, a row tuple's start, a line break
(the statement ends at one a statement keyword follows), a statement's ``;``."""
_IN_LINE = lazy_compile(
    r"\)[ \t\r]{0,8}[,;]?[ \t\r]{0,8}(?P<row>\()|(?P<nl>\n)|" + _SEMI_END, re.I)
"""In a ``#`` or ``-- `` comment between row tuples: as :data:`_IN_BLOCK`, to the line end."""
_OPEN_ROW = lazy_compile(r"[ \t\r\n]{0,8}[,;]?[ \t\r\n]{0,8}(\()")
"""A row tuple's start right after a comment's opening."""
_HIDDEN_EXCERPTS = 64
"""Excerpts kept of the row tuples one comment hides (each is counted)."""
_VALUE_START = (r"(?:'(?:[^'\\\n]|\\.){0,256}'"
                r'|"(?:[^"\\\n]|\\.){0,256}"'
                r"|[-+]?\d{1,40}(?:\.\d{1,40})?|NULL)")
_ROW_START = lazy_compile(r"\(\s{0,8}(" + _VALUE_START + r")\s{0,8}[,)]\s{0,8}(" + _VALUE_START
                        + r")?", re.I)


class SqlSyntaxError(BadInputError):
    """A row tuple could not be read; ``row`` is its number in the statement (1-based)."""

    def __init__(self, message: str, row: int = 0) -> None:
        super().__init__(message)
        self.row = row

    def __reduce__(self) -> tuple[type[SqlSyntaxError], tuple[str, int]]:
        # pickled (a reader in another process raised it) with its row
        return type(self), (str(self), self.row)


@dataclass(slots=True)
class Statement:
    """One SQL statement other than a readable INSERT: its number (1-based), first line,
    text, or why it is broken."""

    number: int
    line: int
    text: str
    error: str | None = None


@dataclass(slots=True)
class SqlRow:
    """One row tuple of an INSERT: its number, its values (None when it could not be
    read), why not, an excerpt, and the values cut at their cap (column index, cut)."""

    number: int
    values: list[str | None] | None
    error: str | None = None
    excerpt: str = ""
    cuts: list[tuple[int, CutRecord]] = field(default_factory=list)
    category: str = "syntax error in row"
    """What kind of fault a row that could not be read is (a quarantine reason's count)."""


@dataclass(slots=True)
class _Hidden:
    """Row tuples that comments between row tuples hide: the first comment's opening
    (its characters and offset), where the last ends, whether it ran to the statement's
    end (never closed in it), how many row tuples they hide and excerpts of the first."""

    opener: str
    at: int
    end: int
    unclosed: bool
    rows: int = 0
    excerpts: list[str] = field(default_factory=list)

    def where(self) -> str:
        """The comment, in words."""
        what = f"a {self.opener!r} comment opened at char {self.at}"
        if not self.unclosed:
            close = "closed" if self.opener == "/*" else "to its line's end"
            return f"{what} ({close} at char {self.end})"
        return f"{what}, not closed before the statement's end (char {self.end})"


# ------------------------------------------------------------------------------ text


class _Text:
    """The dump's text, decoded chunk by chunk and addressed by absolute offsets.

    ``buf`` holds the text from offset ``base``; :meth:`fill` reads one more chunk and
    drops the text before ``keep``, which no reader needs any more.
    """

    __slots__ = ("fh", "chunk", "dec", "buf", "base", "keep", "eof", "lines")

    def __init__(self, fh: IO[bytes], chunk: int, encoding: str) -> None:
        self.fh = fh
        self.chunk = chunk
        self.dec = codecs.getincrementaldecoder(encoding)("replace")
        self.buf = ""
        self.base = 0
        self.keep = 0
        self.eof = False
        self.lines = 1  # the line number of buf[0]

    @property
    def end(self) -> int:
        """Offset after the last character read so far."""
        return self.base + len(self.buf)

    def fill(self) -> bool:
        """Read one more chunk; False once the file is exhausted."""
        if self.eof:
            return False
        data = self.fh.read(self.chunk)
        if data:
            tail = self.dec.decode(data)
        else:
            self.eof = True
            tail = self.dec.decode(b"", final=True)
        drop = self.keep - self.base
        if drop > 0:
            self.lines += self.buf.count("\n", 0, drop)
            self.buf = self.buf[drop:] + tail
            self.base = self.keep
        elif tail:
            self.buf += tail
        return True

    def ensure(self, pos: int, n: int) -> bool:
        """Have ``n`` characters from ``pos`` in the buffer if the file holds them;
        True when they are all there."""
        while self.end - pos < n:
            if not self.fill():
                return False
        return True

    def line_at(self, pos: int) -> int:
        """The line number of offset ``pos`` (still in the buffer)."""
        return self.lines + self.buf.count("\n", 0, max(0, pos - self.base))

    def snippet(self, pos: int, n: int = 30) -> str:
        """Up to ``n`` characters from ``pos`` (what is in the buffer), to the line end."""
        i = max(0, pos - self.base)
        return self.buf[i:i + n].split("\n", 1)[0]


_ESC = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%",
        "_": "\\_"}
_ESC_S = lazy_compile(r"\\(.)|''", re.S)
_ESC_D = lazy_compile(r'\\(.)|""', re.S)


def _esc(m: re.Match[str]) -> str:
    c = m.group(1)
    if c is None:
        return m.group()[0]
    return _ESC.get(c, c)


_NOT_PYTHON_ESC = lazy_compile(r"\\(?:[^nrt'\"\\0]|0[0-7]|\Z)")
"""A backslash that does not open an escape of a Python bytes literal meaning what it
means to MySQL: one followed by anything but ``n r t ' " \\`` or a ``0`` that no octal
digit follows, or at the end. Every backslash is tried, also the second of an escaped
pair, so the test is stricter than it need be, never looser. (A search for a doubled
quote in the same pattern would cost seven times as much: no single first character.)"""


def _unescape(s: str, dq: bool = False) -> str:
    quote2 = '""' if dq else "''"
    # (a quote character is found with memchr; the doubled quote needs a slower search)
    doubled = quote2[0] in s and quote2 in s
    if "\\" not in s:
        return (_ESC_D if dq else _ESC_S).sub(_esc, s) if doubled else s
    if not doubled and _NOT_PYTHON_ESC.search(s) is None:
        # every escape is one mysqldump writes (\n \r \t \' \" \\ \0) and means what
        # it means in a Python bytes literal: undone by the codec's C loop in one pass
        # (str.replace costs about 0.1 us an occurrence, and a key's cell holds 55 \n)
        return codecs.escape_decode(s.encode("utf-8", "surrogatepass"))[0].decode(
            "utf-8", "surrogatepass")
    return (_ESC_D if dq else _ESC_S).sub(_esc, s)


class _Fail(Exception):
    """A row tuple does not read: why, and where."""

    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.at = at


class _Accept(Exception):
    """A candidate row tuple read far enough to be taken (a value over the cap)."""


# -------------------------------------------------------------------------- the reader


class InsertStatement:
    """An ``INSERT ... VALUES`` statement whose row tuples are read on demand.

    Iterate :meth:`rows` once, or call :meth:`skip` (a quick scan to its end); the
    reader skips whatever is left before it goes on to the next statement.
    """

    def __init__(self, reader: _Reader, number: int, line: int, table: str,
                 columns: list[str] | None, start: int) -> None:
        self.number = number
        self.line = line
        self.table = table
        self.columns = columns
        self._reader = reader
        self._start = start
        self._state = "new"  # new, rows (being read), done (skipped)
        self._end = start
        self._done: list[Any] = [False, start]  # the rows reached the end; where it is

    def rows(self, ncols: int | None = None) -> Iterator[SqlRow]:
        """The row tuples, each read or quarantined; ``ncols`` the table's column count."""
        if self._state != "new":
            raise RuntimeError("the rows of an INSERT statement are read once")
        self._state = "rows"
        yield from self._reader.rows(self._start, ncols, self._done)
        self._end = self._done[1]

    def skip(self) -> None:
        """Pass over the statement without reading its rows."""
        if self._state == "new":
            self._end = self._reader.skip_statement(self._start)
            self._state = "done"

    def _finish(self) -> int:
        """The statement's end, reading (and dropping) any rows left unread."""
        if self._state == "new":
            self.skip()
        elif not self._done[0]:
            for _ in self._reader.rows(self._done[1], None, self._done):
                pass
            self._end = self._done[1]
        return self._end


class _Reader:
    """Statements and row tuples of one dump (see :func:`iter_statements`)."""

    def __init__(self, fh: IO[bytes], chunk: int, encoding: str) -> None:
        self.t = _Text(fh, chunk, encoding)
        self.number = 0
        self.held = True  # the current row's start is still in the buffer
        # the statement whose rows are read: the kinds of its first row's first values
        # and its column count once known, the row tuples comments hid between rows (not
        # yet yielded), and whether the last gap ended in a comment at its end
        self.kinds: tuple[str, ...] | None = None
        self.want: int | None = None
        self.hidden: _Hidden | None = None
        self.cut = False

    # -- statements -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Statement | InsertStatement]:
        pos = 0
        while True:
            s = self._skip_blank(pos)
            if s is None:
                return
            self.number += 1
            line = self.t.line_at(s)
            ins = self._insert_head(s, line)
            if ins is not None:
                yield ins
                pos = ins._finish()
                continue
            end, text, error = self._statement(s)
            yield Statement(self.number, line, text, error)
            pos = end

    def _skip_blank(self, pos: int) -> int | None:
        """Offset of the next statement's first character after blanks, ``;`` and
        comments (not ``/*!`` ones, which are statements); None at the end of file."""
        t = self.t
        while True:
            t.keep = pos
            if not t.ensure(pos, 3):
                if pos >= t.end:
                    return None
            b = pos - t.base
            m = _BLANK.match(t.buf, b)
            if m is not None and m.end() > b:
                pos = t.base + m.end()
                continue
            c2 = t.buf[b:b + 2]
            if (c2 == "--" and (b + 2 >= len(t.buf) or t.buf[b + 2].isspace())) or c2[:1] == "#":
                pos = self._find(pos, "\n")
                continue
            if c2 == "/*" and t.buf[b + 2:b + 3] != "!":
                pos = self._find(pos + 2, "*/")
                continue
            return pos

    def _find(self, pos: int, what: str, drop: bool = True) -> int:
        """Offset after the next ``what`` from ``pos``, or the end of file; ``drop``: the
        text before ``pos`` is not needed any more."""
        t = self.t
        while True:
            if drop:
                t.keep = max(t.keep, pos)
            j = t.buf.find(what, pos - t.base)
            if j >= 0:
                return t.base + j + len(what)
            pos = max(pos, t.end - len(what) + 1)
            if not t.fill():
                return t.end

    def _insert_head(self, s: int, line: int) -> InsertStatement | None:
        t = self.t
        t.ensure(s, _HEAD)
        b = s - t.base
        if not t.buf[b:b + 7].upper().startswith(("INSERT", "REPLACE")):
            return None
        m = _INSERT_RE.match(t.buf, b, b + _HEAD)
        if m is None:
            return None
        cols = None
        if m.group("cols") is not None:
            cols = [_unquote_name(c) for c in m.group("cols").split(",") if c.strip()]
        return InsertStatement(self, self.number, line, _unquote_name(m.group("name")), cols,
                               t.base + m.end())

    def _statement(self, s: int, hold: bool = True) -> tuple[int, str, str | None]:
        """Scan the statement at ``s`` to its ``;``: (offset after it, text, error).

        When ``hold`` is false the text is dropped as the scan goes (and not returned).
        """
        t = self.t
        t.keep = s
        i = s
        while True:
            if hold and t.end - s > MAX_STATEMENT:
                return self._oversized(s)
            if not hold:
                t.keep = max(s, i - 2)
            m = _SPECIAL.search(t.buf, i - t.base)
            if m is None:
                i = max(i, t.end - 2)
                if not t.fill():
                    return t.end, self._text(s, t.end, hold), \
                        "statement not terminated by ';' at end of file"
                continue
            tok, k = m.group(), t.base + m.start()
            if tok == ";":
                return k + 1, self._text(s, k, hold), None
            if tok in ("--", "#", "/*"):
                i = self._find(k + len(tok), "*/" if tok == "/*" else "\n", drop=not hold)
                continue
            j, error = self._skip_string(s, k, tok, hold)
            if error is not None:
                return j, self._text(s, j, hold), error
            i = j

    def _text(self, s: int, e: int, hold: bool) -> str:
        if not hold:
            return ""
        t = self.t
        return t.buf[s - t.base:e - t.base].rstrip()

    def _skip_string(self, s: int, q_at: int, q: str, hold: bool) -> tuple[int, str | None]:
        """Pass the string opened at ``q_at``: (offset after it, None), or where the
        statement must be cut and why (a quote lost, or the end of file)."""
        t = self.t
        stop = _STR_STOP[q]
        j = q_at + 1
        while True:
            if not hold:
                t.keep = max(s, j - 1)
            m = stop.search(t.buf, j - t.base)
            if (m is None or m.start() + 64 > len(t.buf)) and not t.eof:
                if hold and t.end - s > MAX_STATEMENT:
                    return j, None  # the caller's size check gives up on it
                if m is None:
                    j = max(j, t.end - 1)
                t.fill()
                continue
            if m is None:
                return t.end, f"unterminated {q} string at end of file"
            k = t.base + m.start()
            c = m.group()
            if c == "\\":
                j = k + 2
                continue
            if c == "\n":
                if _KEYWORD_LINE.match(t.buf, m.start() + 1):
                    return k, (f"unterminated {q} string opened at char {q_at - s} (a quote "
                               "is missing); resynchronised at the next statement")
                j = k + 1
                continue
            if t.buf[m.start() + 1:m.start() + 2] == q:
                j = k + 2  # doubled quote
                continue
            return k + 1, None

    def _oversized(self, s: int) -> tuple[int, str, str]:
        """Give up on a statement over MAX_STATEMENT: skip to the next statement line."""
        t = self.t
        text = t.buf[s - t.base:s - t.base + 1000]
        error = f"statement longer than {MAX_STATEMENT} characters; skipped"
        pos = s
        while True:
            t.keep = max(s, pos - 1)
            b = pos - t.base
            for nl in re.finditer("\n", t.buf[b:len(t.buf) - 64] if not t.eof else t.buf[b:]):
                if _KEYWORD_LINE.match(t.buf, b + nl.end()):
                    return b + nl.end() + t.base, text, error
            pos = max(pos, t.end - 64) if not t.eof else t.end
            if not t.fill():
                return t.end, text, error

    def skip_statement(self, s: int) -> int:
        """Offset after the INSERT statement at ``s``, scanned without reading rows."""
        return self._statement(s, hold=False)[0]

    # -- row tuples -------------------------------------------------------------------

    def rows(self, pos: int, ncols: int | None, box: list[Any]) -> Iterator[SqlRow]:
        """Read row tuples from ``pos``. ``box`` is ``[done, offset]``: where to go on
        from, and once the statement's end is reached, True and the offset after it."""
        t = self.t
        row = 0
        want = ncols  # values a candidate tuple must hold when resynchronising
        kinds: tuple[str, ...] | None = None
        self.kinds, self.want, self.hidden = None, want, None
        while True:
            pos = self._gap(pos)
            h = self._take_hidden()
            if h is not None:  # row tuples in comments before pos
                go_on, row = yield from self._hidden_rows(h, pos, row, want, kinds, box)
                if go_on is None:
                    return
                pos = go_on
                continue
            t.keep = pos
            self.held = True
            row += 1
            if pos >= t.end:  # end of file
                box[:] = [True, t.end]
                if row == 1:
                    yield SqlRow(row, None, "INSERT without any row tuple at end of file")
                return
            try:
                if t.buf[pos - t.base] != "(":
                    raise _Fail(f"expected '(' at char {pos}, found "
                                f"{t.snippet(pos).strip()!r}", pos)
                vals, cuts, end, first = self._tuple(pos, ncols, validating=False)
                self.kinds = kinds or first  # (for a comment after the row)
                nxt, done = self._after(end, row)
            except _Fail as exc:
                self.kinds = kinds
                start = pos if self.held else exc.at
                excerpt = t.buf[start - t.base:start - t.base + 300] if self.held else ""
                # before any row read, the failed row's own start is the best shape
                # known should no later row read whole
                own = self._shape(pos) if kinds is None and self.held else None
                nxt_row, extra, stop = self._resync(start + 1 if self.held else exc.at,
                                                    want, kinds, own)
                where = (f"resynchronised at the next row tuple (char {nxt_row})"
                         if nxt_row is not None else "the statement ends there")
                box[:] = [nxt_row is None, stop]
                yield SqlRow(row, None, f"{exc}; {where}", excerpt)
                first_lost = row
                for _ in range(extra):
                    row += 1
                    yield SqlRow(row, None, f"lost in the damage that starts in row "
                                 f"{first_lost} (a row tuple that does not read; {where})")
                if nxt_row is None:
                    return
                pos = nxt_row
                continue
            if kinds is None:
                kinds, want = first, want or len(vals)
                self.want = want
            box[:] = [done, nxt]
            yield SqlRow(row, vals, cuts=cuts)
            if done:
                return
            pos = nxt

    def _take_hidden(self) -> _Hidden | None:
        """The row tuples comments hid that :meth:`_gap` found, taken (None: none)."""
        h, self.hidden = self.hidden, None
        return h

    def _hidden_rows(self, h: _Hidden, pos: int, row: int, want: int | None,
                     kinds: tuple[str, ...] | None, box: list[Any]
                     ) -> Generator[SqlRow, None, tuple[int | None, int]]:
        """Yield the row tuples comments hid (``h``; the comments end at ``pos``) as rows
        ``row + 1`` on; return where reading goes on (None: the statement ends) and the
        last row number. A comment that closes inside the last row it hid leaves the
        rest of that row: reading resynchronises after it."""
        t = self.t
        go_on: int | None = pos
        tail, extra = "", 0
        if h.unclosed:
            go_on = None
            box[:] = [True, pos]
        elif h.rows and pos < t.end and t.buf[pos - t.base] != "(":
            try:  # the rest of the last row hidden is nothing but a ',' or the end
                nxt, done = self._after(pos, row + h.rows)
                go_on = None if done else nxt
                box[:] = [done, nxt]
            except _Fail:
                go_on, extra, stop = self._resync(pos, want, kinds, kinds)
                box[:] = [go_on is None, stop]
                tail = ("; the comment closes inside it: resynchronised at the next row "
                        f"tuple (char {go_on})" if go_on is not None else
                        "; the comment closes inside it and the statement ends there")
        else:
            box[:] = [False, pos]
        for k in range(h.rows):
            row += 1
            yield SqlRow(row, None, (
                f"row tuple {k + 1} of {h.rows} hidden in {h.where()}, between row tuples "
                "(MySQL reads it as a comment): counted, not read"
                + (tail if k == h.rows - 1 else "")),
                h.excerpts[k] if k < len(h.excerpts) else "",
                category="row hidden in a comment")
        last_hidden = row
        for _ in range(extra):
            row += 1
            yield SqlRow(row, None, f"lost in the damage after the comment that hides row "
                         f"{last_hidden} (a row tuple that does not read{tail})")
        return go_on, row

    def _gap(self, pos: int, count: bool = True) -> int:
        """Offset after blanks and comments from ``pos`` (between row tuples); row tuples
        a comment hides are counted in :attr:`hidden` when ``count`` (see
        :meth:`_comment`), and :attr:`cut` says whether a comment ran to the statement's
        end (the offset is then that end)."""
        t = self.t
        self.cut = False
        while True:
            if t.end - pos < 3:
                t.ensure(pos, 3)
            b = pos - t.base
            e = _end_of(_WS, t.buf, b)
            if e > b:
                pos = t.base + e
                if e == len(t.buf) and t.fill():
                    continue
            b = pos - t.base
            c2 = t.buf[b:b + 2]
            if c2 == "/*" or (c2 == "--" and (b + 2 >= len(t.buf) or t.buf[b + 2].isspace())
                              ) or c2[:1] == "#":
                pos = self._comment(pos, count)
                if self.cut:
                    return pos
            else:
                return pos

    def _comment(self, pos: int, count: bool) -> int:
        """Pass the comment at ``pos`` between row tuples (``/*``, ``#`` or ``-- ``): the
        offset after it.

        A ``/*`` comment ends at its ``*/``, a line comment at its line's end; either
        ends at the statement's end should that come first (a line break a statement
        keyword follows, or a ``;`` on the line before one: mysqldump escapes line
        breaks in strings), as a resynchronisation does, and sets :attr:`cut`. Each row
        tuple start in it (right after its opening, or after a ``)`` and an optional
        ``,``) like a row of the statement (:func:`_like`) counts as a row it hides, in
        :attr:`hidden`, when ``count``; else (a candidate row being validated) nothing
        is counted, the text is kept, and a comment longer than the cap is taken
        (:class:`_Accept`).
        """
        t = self.t
        t.ensure(pos, 82)
        c2 = t.buf[pos - t.base:pos - t.base + 2]
        opener = c2 if c2 in ("/*", "--") else "#"
        rx = _IN_BLOCK if opener == "/*" else _IN_LINE
        i = pos + len(opener)
        found: list[int] = []  # the offsets of the rows counted (for their excerpts)
        hid = 0
        m0 = _OPEN_ROW.match(t.buf, i - t.base)
        if count and m0 is not None:
            hid += self._hides(t.base + m0.start(1), found)
        while True:
            if count:
                t.keep = max(t.keep, i)
            elif i - pos > MAX_FIELD_CHARS:
                raise _Accept
            m = rx.search(t.buf, i - t.base)
            if (m is None or m.start() + 82 > len(t.buf)) and not t.eof:
                i = max(i, t.end - 82)
                t.fill()
                continue
            if m is None:
                end, cut = t.end, True
                break
            k, g = t.base + m.start(), m.lastgroup
            if g == "row":
                c = t.base + m.start("row")
                if count:
                    hid += self._hides(c, found)
                i = c + 1
                continue
            if g == "close":
                end, cut = k + 2, False
            elif g == "nl":
                cut = _KEYWORD_LINE.match(t.buf, m.start() + 1) is not None
                if opener == "/*" and not cut:
                    i = k + 1
                    continue
                end = k if cut else k + 1
            else:  # a statement's ';'
                end, cut = k + 1, True
            break
        self.cut = cut
        if count and (hid or cut):
            self._note_hidden(opener, pos, end, cut, hid, found)
        return end

    def _hides(self, c: int, found: list[int]) -> int:
        """1 when a row tuple like the statement's starts at ``c`` (in a comment), with
        its excerpt kept in ``found``; else 0."""
        got = self._shape(c)
        if got is None or not _like(got, self.kinds, self.want):
            return 0
        if len(found) < _HIDDEN_EXCERPTS:
            found.append(c)
        return 1

    def _note_hidden(self, opener: str, at: int, end: int, cut: bool, rows: int,
                     found: list[int]) -> None:
        """Add a comment's hidden row tuples to :attr:`hidden` (the excerpts of those at
        ``found`` still in the buffer)."""
        t = self.t
        h = self.hidden
        if h is None:
            h = self.hidden = _Hidden(opener, at, end, cut)
        h.end, h.unclosed, h.rows = end, cut, h.rows + rows
        for c in found:
            if len(h.excerpts) < _HIDDEN_EXCERPTS:
                h.excerpts.append(t.buf[c - t.base:c - t.base + 300] if c >= t.base else "")

    def _after(self, end: int, row: int, count: bool = True) -> tuple[int, bool]:
        """What follows the row tuple ending at ``end``: (where the next row or statement
        starts, whether the statement ends); raises :class:`_Fail` on anything but a
        ``,`` or a ``;`` that ends the line or precedes another statement. Row tuples a
        comment hides there (when ``count``) are left in :attr:`hidden` for
        :meth:`rows`, which goes on from the offset returned."""
        t = self.t
        p = self._gap(end, count)
        if count and self.hidden is not None:
            return p, False
        if self.cut:
            return p, True
        if p >= t.end:
            return p, True  # end of file: the rows read are whole
        c = t.buf[p - t.base]
        if c == ",":
            return p + 1, False
        if c == ";":
            t.ensure(p, 80)
            b = p + 1 - t.base
            q = _end_of(_SPACES, t.buf, b)
            if t.buf[q:q + 1] != "(":
                return p + 1, True
        raise _Fail(f"row {row} is followed by {t.snippet(p).strip()!r} at char {p}, "
                    "not by ',' or the statement's end", p)

    def _tuple(self, pos: int, ncols: int | None, validating: bool
               ) -> tuple[list[str | None], list[tuple[int, CutRecord]], int, tuple[str, ...]]:
        """Read the row tuple opened at ``pos``: (values, cuts, offset after ``)``, kinds of
        its first two values). Raises :class:`_Fail`; when ``validating``, also
        :class:`_Accept` once a value runs over the cap."""
        t = self.t
        b = pos - t.base
        fast = _fast_values(t.buf, b)
        if fast is not None and (fast[1] < len(t.buf) or t.eof):
            return self._fast(fast[0], b, fast[1], ncols)
        i = pos + 1
        vals: list[str | None] = []
        cuts: list[tuple[int, CutRecord]] = []
        kinds: list[str] = []
        most = ncols if ncols else MAX_VALUES
        while True:
            i = self._ws(i, pos, validating)
            if i >= t.end:
                raise _Fail("row tuple not closed at end of file", i)
            b = i - t.base
            c = t.buf[b]
            if c == ")" and not vals:
                break
            cut: CutRecord | None = None
            v: str | None
            if c == "'" or c == '"':
                v, cut, i = self._string(i, c, pos, validating)
                kind = "s"
            else:
                v, i, kind = self._bare(i, pos, validating)
            if len(kinds) < 2:
                kinds.append(kind)
            vals.append(v)
            if cut is not None:
                cuts.append((len(vals) - 1, cut))
            if len(vals) > most:
                has = f" (the table has {ncols} columns)" if ncols else ""
                raise _Fail(f"more than {most} values{has} at char {i}", i)
            i = self._ws(i, pos, validating)
            if i >= t.end:
                raise _Fail("row tuple not closed at end of file", i)
            c = t.buf[i - t.base]
            if c == ",":
                i += 1
                continue
            if c == ")":
                break
            raise _Fail(f"expected ',' or ')' at char {i}, found {t.snippet(i).strip()!r}", i)
        if ncols and len(vals) != ncols:
            raise _Fail(f"{len(vals)} values, the table has {ncols} columns", i)
        return vals, cuts, i + 1, tuple(kinds)

    def _fast(self, toks: list[str], b: int, e: int, ncols: int | None
              ) -> tuple[list[str | None], list[tuple[int, CutRecord]], int, tuple[str, ...]]:
        """The values of a tuple of plain strings, numbers and NULLs at ``buf[b:e]``
        (``toks``: their text, as :func:`_fast_values` read it)."""
        t = self.t
        if ncols and len(toks) != ncols:
            raise _Fail(f"{len(toks)} values, the table has {ncols} columns", t.base + e)
        vals: list[str | None] = [
            None if x == "NULL" else _unescape(x[1:-1]) if x[0] == "'" else x for x in toks]
        cuts: list[tuple[int, CutRecord]] = []
        if e - b > MAX_FIELD_CHARS:
            for k, v in enumerate(vals):
                if v is not None and len(v) > MAX_FIELD_CHARS:
                    vals[k], cut = cap_text(v, "", "")
                    if cut is not None:
                        cuts.append((k, cut))
        kinds = tuple("s" if x[0] == "'" else "null" if x == "NULL" else "n" for x in toks[:2])
        return vals, cuts, t.base + e, kinds

    def _room(self, at: int, start: int, validating: bool) -> bool:
        """Read one more chunk while scanning at ``at`` a tuple opened at ``start``.

        A candidate (``validating``) that runs longer than the cap is taken
        (:class:`_Accept`); a row read for real lets its start go once too much text
        is held behind it (it can then only resynchronise from where it failed).
        """
        t = self.t
        if validating:
            if at - start > MAX_FIELD_CHARS:
                raise _Accept
        elif t.end - t.keep > _HOLD:
            t.keep = max(t.keep, at)
            self.held = False
        return t.fill()

    def _ws(self, i: int, start: int, validating: bool) -> int:
        t = self.t
        while True:
            b = i - t.base
            e = _end_of(_WS, t.buf, b)
            if e < len(t.buf) or t.eof:
                return t.base + e
            i = t.base + e
            self._room(i, start, validating)

    def _bare(self, i: int, start: int, validating: bool) -> tuple[str | None, int, str]:
        """An unquoted token at ``i``: (value, offset after it, kind)."""
        t = self.t
        while True:
            b = i - t.base
            m = _BARE.match(t.buf, b)
            if m is not None and (m.end() < len(t.buf) or t.eof):
                break
            if t.eof or t.end - i > MAX_TOKEN:
                if m is None:
                    raise _Fail(f"cannot read a value at char {i}: "
                                f"{t.snippet(i).strip()!r}", i)
                break
            self._room(i, start, validating)
        g = m.lastgroup
        end = t.base + m.end()
        if g == "num":
            return m.group(g), end, "n"
        if g == "word":
            w = m.group(g).upper()
            if w == "NULL":
                return None, end, "null"
            if w in ("TRUE", "FALSE"):
                return ("1" if w == "TRUE" else "0"), end, "n"
            if w in ("DEFAULT", "CURRENT_TIMESTAMP", "NOW"):
                return None, end, "w"
            raise _Fail(f"unexpected word {m.group(g)[:30]!r} at char {i}", i)
        if g == "cs":  # _charset 'string'
            q = t.buf[m.end()]
            v, _cut, end = self._string(end, q, start, validating)
            return v, end, "s"
        if g in ("hex", "hex2"):
            h = m.group(g)
            return (bytes.fromhex(h if len(h) % 2 == 0 else "0" + h).decode("utf-8", "replace"),
                    end, "x")
        b_ = m.group("bits") or "0"
        return str(int(b_, 2)), end, "n"

    def _string(self, q_at: int, q: str, start: int, validating: bool
                ) -> tuple[str, CutRecord | None, int]:
        """The quoted value opened at ``q_at``: (value, its cut or None, offset after it).

        One regex reads a string that closes within the buffer; a longer one is read
        stop by stop, and past the cap streamed into a :class:`CappedText`.
        """
        t = self.t
        dq = q == '"'
        b = q_at - t.base
        m = _QFAST[q].match(t.buf, b)
        if m is not None and (m.end() < len(t.buf) or t.eof):
            v = _unescape(m.group(1), dq)
            if len(v) > MAX_FIELD_CHARS:
                v, cut = cap_text(v, "", "")
                return v, cut, t.base + m.end()
            return v, None, t.base + m.end()
        stop = _QSTOP[q]
        j = c0 = q_at + 1  # scanned up to j; content from c0 is still in the buffer
        long: CappedText | None = None
        while True:
            m2 = stop.search(t.buf, j - t.base)
            if m2 is None or m2.start() + 1 >= len(t.buf):
                if t.eof:
                    if m2 is None or m2.group() == "\\":
                        raise _Fail(f"unterminated string at end of file (opened at char "
                                    f"{q_at})", t.end)
                else:
                    j = t.end if m2 is None else t.base + m2.start()
                    if validating:
                        if j - q_at > MAX_FIELD_CHARS:
                            raise _Accept
                    elif j - c0 > MAX_FIELD_CHARS:
                        long = long or CappedText()
                        long.add(_unescape(t.buf[c0 - t.base:j - t.base], dq))
                        c0 = j
                        t.keep = max(t.keep, j)
                        self.held = False
                    self._room(j, start, validating)
                    continue
            k = t.base + m2.start()
            if m2.group() == "\\":
                j = k + 2
                continue
            if t.buf[k + 1 - t.base:k + 2 - t.base] == q:
                j = k + 2  # a doubled quote
                continue
            piece = _unescape(t.buf[c0 - t.base:k - t.base], dq)
            if long is None:
                if len(piece) > MAX_FIELD_CHARS:
                    piece, cut = cap_text(piece, "", "")
                    return piece, cut, k + 1
                return piece, None, k + 1
            long.add(piece)
            v, cut = long.result()
            return v, cut, k + 1

    # -- resynchronising --------------------------------------------------------------

    def _resync(self, pos: int, want: int | None, kinds: tuple[str, ...] | None,
                own: tuple[str, ...] | None = None) -> tuple[int | None, int, int]:
        """From ``pos`` on, the next row tuple that reads: (its offset or None at the
        statement's end, further row starts passed in the damage, the statement's end).

        A row start passed counts when its first values are of the ``kinds`` of the
        first row read; before any row read whole, of the kinds of the row tuple where
        reading resumes, else of ``own`` (the failed row's own start), else any start
        of two values."""
        t = self.t
        passed: Counter[tuple[str, ...]] = Counter()  # the shapes of the row starts passed
        while True:
            t.keep = max(t.keep, pos)
            m = _RESYNC.search(t.buf, pos - t.base)
            if (m is None or m.start() + 80 > len(t.buf)) and not t.eof:
                pos = max(pos, t.end - 80)
                t.fill()
                continue
            if m is None:
                return None, _count_like(passed, kinds or own, want), t.end
            k = t.base + m.start()
            if m.group("row") is not None:
                c = t.base + m.start("row")
                if self._candidate(c, want):
                    ref = kinds or self._shape(c) or own
                    return c, _count_like(passed, ref, want), c
                got = self._shape(c)
                if got is not None:
                    passed[got] += 1
                pos = c
                continue
            if m.group("nl") is not None:
                return None, _count_like(passed, kinds or own, want), k
            return None, _count_like(passed, kinds or own, want), k + 1

    def _candidate(self, c: int, want: int | None) -> bool:
        """Whether a whole row tuple (``want`` values) reads at ``c`` and is followed by
        ``,`` or the statement's end."""
        try:
            _vals, _cuts, end, _k = self._tuple(c, want, validating=True)
            self._after(end, 0, count=False)
        except _Accept:
            return True
        except _Fail:
            return False
        return True

    def _shape(self, c: int) -> tuple[str, ...] | None:
        """The kinds of the first (up to two) values of the row tuple that seems to start
        at ``c``; None when no row starts there."""
        t = self.t
        t.ensure(c, 1200)
        m = _ROW_START.match(t.buf, c - t.base)
        if m is None:
            return None
        return tuple(_kind(g) for g in m.groups() if g is not None)


def _like(got: tuple[str, ...], ref: tuple[str, ...] | None, want: int | None) -> bool:
    """Whether a row start of the kinds ``got`` starts like a row of the kinds ``ref``
    (their first values alike); with no ``ref``, whether it holds the first two values of
    a row (one, of a one-column table)."""
    if ref is None:
        return len(got) == min(2, want or 2)
    return got == ref[:len(got)] and len(got) == min(2, len(ref))


def _count_like(passed: Counter[tuple[str, ...]], ref: tuple[str, ...] | None,
                want: int | None) -> int:
    """How many of the row starts ``passed`` (counted by their kinds) are like ``ref``."""
    return sum(n for got, n in passed.items() if _like(got, ref, want))


def _fast_values(buf: str, b: int) -> tuple[list[str], int] | None:
    """The value tokens of the tuple opened at ``buf[b]`` and the offset after its ``)``,
    when ``_FAST_TUPLE`` matches there (plain strings, numbers and NULLs); else None.

    Each value is one ``_FAST_ITEM`` match, except a string directly followed by its
    ``,`` or ``)``, whose closing quote is found with ``str.find`` (C speed instead of a
    regex step per character): the first quote after the opening one that an even run
    of backslashes precedes and no second quote follows (``\\'`` and ``''`` are in the
    string), which is where the possessive string pattern stops.
    """
    toks: list[str] = []
    i = b + 1
    n = len(buf)
    find = buf.find
    while True:
        if i < n and buf[i] == "'":
            j = i + 1
            while True:
                k = find("'", j)
                if k < 0:
                    return None  # no closing quote in the buffer: no match either
                p = k - 1
                while buf[p] == "\\":  # stops at the opening quote at the latest
                    p -= 1
                if (k - 1 - p) % 2:  # an escaped quote
                    j = k + 1
                elif k + 1 < n and buf[k + 1] == "'":  # a doubled quote
                    j = k + 2
                else:
                    break
            c = buf[k + 1:k + 2]
            if c == "," or c == ")":
                toks.append(buf[i:k + 1])
                if c == ")":
                    return toks, k + 2
                i = k + 2
                continue
        m = _FAST_ITEM.match(buf, i)
        if m is None:
            return None
        toks.append(m.group(1))
        if m.group(2) == ")":
            return toks, m.end()
        i = m.end()


def _end_of(rx: re.Pattern[str], text: str, i: int) -> int:
    """Where a pattern that may match empty text, matched at ``i``, ends."""
    m = rx.match(text, i)
    return i if m is None else m.end()


def _kind(token: str) -> str:
    if token[:1] in "'\"":
        return "s"
    return "null" if token.upper() == "NULL" else "n"


def dump_encoding(head: bytes, default: str = "utf-8") -> str:
    """The text encoding of a dump from its first bytes: a byte-order mark's, or
    ``default``."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return default


def iter_statements(fh: IO[bytes], chunk: int = CHUNK,
                    encoding: str = "utf-8") -> Iterator[Statement | InsertStatement]:
    """Statements of a dump read from a binary file object, ``chunk`` bytes at a time.

    A readable INSERT comes as an :class:`InsertStatement` whose rows are read (or
    skipped) before the next statement is; every other statement as a
    :class:`Statement`.
    """
    return iter(_Reader(fh, chunk, encoding))


def iter_insert_rows(sql: str, ncols: int | None = None) -> Iterator[SqlRow]:
    """The row tuples of the INSERT statements in ``sql`` (for tests and tools)."""
    for st in iter_statements(io.BytesIO(sql.encode("utf-8", "surrogatepass")), 1 << 16,
                              "utf-8"):
        if isinstance(st, InsertStatement):
            yield from st.rows(ncols)


# ------------------------------------------------------------------------- statements

_NAME = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_INSERT_RE = lazy_compile(
    rf"(?:/\*.*?\*/\s*)*(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*"
    rf"(?:INTO\s+)?(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)\s*(?:\((?P<cols>[^)]*)\)\s*)?"
    r"VALUES?\s*", re.I | re.S)
_CREATE_RE = lazy_compile(
    rf"(?:/\*.*?\*/\s*)*CREATE\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)\s*\(", re.I | re.S)
_NOT_COLUMNS = {"PRIMARY", "KEY", "UNIQUE", "INDEX", "CONSTRAINT", "FOREIGN", "FULLTEXT",
                "SPATIAL", "CHECK"}


def _unquote_name(name: str) -> str:
    last = re.split(r"\s*\.\s*(?=[`\w$])", name.strip())[-1]
    return last[1:-1].replace("``", "`") if last.startswith("`") else last


def parse_create_table(text: str) -> tuple[str, list[str]] | None:
    """``(table, column names)`` from a CREATE TABLE statement, or ``None``."""
    m = _CREATE_RE.match(text)
    if not m:
        return None
    body = text[m.end():]
    cols, depth, cur, q, esc = [], 0, [], "", False
    for ch in body:
        if q:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\" and q != "`":  # MySQL escapes in strings, not in names
                esc = True
            elif ch == q:
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
    fields_cut: int = 0
    tables: dict[str, list[str]] = field(default_factory=dict)
    rows_by_table: Counter[str] = field(default_factory=Counter)
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    map: dict[str, MapStats] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "statements", "inserts", "rows", "stored_rows", "quarantined_rows",
            "broken_statements", "skipped_statements", "fields_cut")}
        out["rows_by_table"] = dict(self.rows_by_table)
        out["quarantine_reasons"] = dict(self.quarantine_reasons)
        out["pgp"] = {t: {"blocks": s.pgp_blocks, "keys": s.pgp_keys,
                          "failures": s.pgp_failures,
                          "cells_without_block": s.pgp_cells_without_block}
                      for t, s in self.map.items()}
        out["identifiers"] = sum(s.identifiers for s in self.map.values())
        return out


def _mapper_for(table: str, source_name: str, candidates: list[Mapping]) -> RowMapper | None:
    """The mapper of the mapping that reads ``table``: among those naming it, one whose
    filename pattern matches first, and of those the one loaded last (a mapping given
    with ``--mapping`` or in ``DARKMAP_MAPPINGS`` before a built-in one)."""
    have = [m for m in candidates if table in m.tables]
    if not have:
        return None
    named = [m for m in have if m.recognise.get("filename")
             and re.search(m.recognise["filename"], source_name)]
    m = (named or have)[-1]
    return RowMapper(m, m.tables[table])


def read_dump(path: Path, source_name: str | None = None, stats: SqlStats | None = None,
              candidates: list[Mapping] | None = None, chunk: int = CHUNK,
              encoding: str | None = None) -> Iterator[Record]:
    """Yield the records of a mysqldump file through the SQL mappings.

    ``encoding`` defaults to the one a byte-order mark names, else UTF-8. Rows of
    tables no mapping names give one SkipRecord per INSERT statement.
    """
    name = source_name or Path(path).name
    st = stats if stats is not None else SqlStats()
    maps = candidates if candidates is not None else mappings("sql")
    mappers: dict[str, RowMapper | None] = {}
    with open(path, "rb") as fh:
        enc = encoding or dump_encoding(fh.read(4))
        fh.seek(0)
        for stmt in iter_statements(fh, chunk, enc):
            st.statements += 1
            where = f"{name} statement {stmt.number} (line {stmt.line})"
            if isinstance(stmt, InsertStatement):
                st.inserts += 1
                yield from _insert(stmt, st, f"insert {st.inserts}", where, name, maps,
                                   mappers)
                continue
            head = stmt.text[:40].lstrip("( \t\n").upper()
            is_insert = head.startswith(("INSERT", "REPLACE"))
            if is_insert:
                st.inserts += 1
            unit = f"insert {st.inserts}" if is_insert else f"statement {stmt.number}"
            if stmt.error or is_insert:
                st.broken_statements += 1
                kind = "broken statement" if stmt.error else "unreadable INSERT"
                st.quarantine_reasons[kind] += 1
                why = stmt.error or "cannot read INSERT head"
                yield QuarantineRecord(locator=unit, reason=f"{where}: {why}"[:500],
                                       excerpt=stmt.text[:1000])
                continue
            ct = parse_create_table(stmt.text) if "CREATE" in head else None
            if ct:
                st.tables[ct[0]] = ct[1]
                continue
            hidden = 0 if head.startswith(("CREATE", "ALTER")) else _hidden_rows(stmt.text)
            if hidden:
                st.broken_statements += 1
                st.quarantine_reasons["statement not read, with rows"] += 1
                yield QuarantineRecord(
                    locator=unit, excerpt=stmt.text[:1000], reason=(
                        f"{where}: not a statement darkmap reads (it starts "
                        f"{stmt.text.lstrip()[:30]!r}), yet it holds about {hidden:,} row "
                        "tuple(s), not read: a damaged INSERT, or rows behind an "
                        "unterminated comment?")[:500])


_VALUES = lazy_compile(r"\bVALUES\s*\(", re.I)
_TUPLE_SEP = lazy_compile(r"\)\s*,\s*\(")


def _hidden_rows(text: str) -> int:
    """Row tuples a statement darkmap does not read seems to hold: after ``VALUES (`` or
    between ``),(``; 0 when it holds none (``SET``, ``LOCK TABLES``... are read as
    nothing, silently, as MySQL's own settings)."""
    if _VALUES.search(text) is None and _TUPLE_SEP.search(text) is None:
        return 0
    return len(_TUPLE_SEP.findall(text)) + 1


def _insert(stmt: InsertStatement, st: SqlStats, unit: str, where: str, name: str,
            maps: list[Mapping], mappers: dict[str, RowMapper | None]) -> Iterator[Record]:
    table = stmt.table
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
        stmt.skip()
        yield SkipRecord(page_type="sql_table", locator=unit,
                         reason=f"table `{table}` is not in any SQL mapping")
        return
    cols = stmt.columns or st.tables.get(table)
    market = mapper.market_id
    for group in _row_groups(stmt.rows(len(cols) if cols else None)):
        mapper.prepare([dict(zip(cols or _names(len(row.values)), row.values, strict=False))
                        for row in group if row.values is not None])
        yield from _map_rows(group, mapper, cols, st, table, unit, where, market)


_GROUP_ROWS = 64
"""Rows read ahead of their mapping, for :meth:`RowMapper.prepare` to scan their free
text together (their PGP keys' checksums in one numpy pass)."""
_GROUP_CHARS = 1 << 20
"""A group of rows ends once its values hold this many characters (a few rows of values
at their cap hold no more than one such row did)."""


def _row_groups(rows: Iterator[SqlRow]) -> Iterator[list[SqlRow]]:
    """``rows`` in lists of up to :data:`_GROUP_ROWS` (and :data:`_GROUP_CHARS`); should
    reading fail, the rows read before come first, then the error."""
    group: list[SqlRow] = []
    chars = 0
    try:
        for row in rows:
            group.append(row)
            chars += sum(len(v) for v in row.values if v) if row.values else 0
            if len(group) >= _GROUP_ROWS or chars >= _GROUP_CHARS:
                yield group
                group, chars = [], 0
    except Exception:
        if group:
            yield group
        raise
    if group:
        yield group


def _names(n: int) -> list[str]:
    """Column names of a table whose columns are unknown: ``c1`` ... ``cn``."""
    return [f"c{i + 1}" for i in range(n)]


def _map_rows(group: list[SqlRow], mapper: RowMapper, cols: list[str] | None, st: SqlStats,
              table: str, unit: str, where: str, market: str | None) -> Iterator[Record]:
    """The records of a group of rows of ``table`` (see :func:`_insert`)."""
    for row in group:
        r = row.number
        st.rows += 1
        st.rows_by_table[table] += 1
        runit = f"{unit} row {r}"
        vals = row.values
        names = cols or _names(len(vals or ()))
        for i, cut in row.cuts:
            cut.locator, cut.market_id = runit, market
            cut.field = names[i] if i < len(names) else f"c{i + 1}"
            st.fields_cut += 1
            yield cut
        if vals is None:
            st.quarantined_rows += 1
            st.quarantine_reasons[row.category] += 1
            yield QuarantineRecord(locator=runit, market_id=market,
                                   reason=f"{where} row {r}: {row.error}"[:500],
                                   excerpt=row.excerpt[:300])
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


# ----------------------------------------------------------------------------- importer

# a line starting (after spaces) with a dump's first words; the spaces exclude "\n", so
# each line is read once (``\s*`` read every later line again from every line start:
# quadratic on a file of blank lines, 63 s on 60,000 of them, found by fuzzing)
_DUMP_HINT = lazy_compile(r"(?:^|\n)[^\S\n]*(?:--\s*MySQL dump|CREATE\s+TABLE\s|"
                          r"INSERT\s+INTO\s)", re.I)
_TABLE_NAMES = lazy_compile(rf"(?:CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|INSERT\s+INTO)\s+"
                          rf"({_NAME}(?:\s*\.\s*{_NAME})?)", re.I)


def _head_text(head: bytes) -> str:
    """The sniffing head decoded the way :func:`read_dump` will decode the file."""
    enc = dump_encoding(head)
    if enc == "utf-16" and len(head) % 2:
        head = head[:-1]
    return head.decode(enc, "replace")


def sniff_dump(src: SourceFile) -> tuple[float, Mapping | None]:
    """How sure we are ``src`` is a dump, and the mapping that names its tables."""
    text = _head_text(src.head)
    if text[:4096].count("\0") > MAX_SNIFF_NULS:
        return 0.0, None
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
            if score >= best[0]:  # the one loaded last, as the reader takes
                best = (score, m)
    return best


class SqlDumpImporter:
    """mysqldump text files, mapped per table through the SQL mappings."""

    name = "sqldump"
    version = "1"
    times_from_source = True
    """A fact's observation time is the time its row states (a mapped date column);
    where none is stated it is unknown (NULL), never the file's modification time."""
    reads_apart = False
    """Not read apart (:mod:`darkmap.collect.apart`): reading is about three quarters of
    a dump's cost, so the pipeline would wait for the reader anyway, and the records'
    long texts cost pickling (1 GB dump: 69 s against 67 s, 87 s of CPU against 71)."""

    def sniff_range(self, src: SourceFile) -> tuple[float, float] | None:
        """(0, 0) for markup, or when the head holds none of the words a dump starts with."""
        head = src.head
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return None  # let sniff decode it
        if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":  # a dump never opens with a tag
            return (0.0, 0.0)
        head = head.lower()
        if b"create table" in head or b"insert into" in head or b"mysql dump" in head:
            return None
        if b"create" in head or b"insert" in head:  # odd whitespace: let sniff decide
            return None
        return (0.0, 0.0)

    def media_type(self, src: SourceFile) -> str:
        """A dump it reads is SQL text (the capture's ``media_type``)."""
        return "application/sql"

    def sniff(self, src: SourceFile) -> float:
        """0.9+ when a mapping names a table in the dump, 0.6 for other dumps."""
        try:
            return sniff_dump(src)[0]
        except Exception:  # noqa: BLE001 - sniffing must never break the pipeline
            return 0.0

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Yield records; broken statements and rows become QuarantineRecords."""
        yield from read_dump(src.path, Path(src.source).name)

