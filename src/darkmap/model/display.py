"""Attacker-written text made safe to show (issue #18): terminal, CSV, HTML titles, shell.

Market text and file names are written by the people under investigation. Shown raw, a
control character can rewrite an analyst's terminal (``ESC [2J``, a window-title
sequence), a right-to-left override can reverse what a line appears to say, a cell
beginning with ``=`` runs as a formula in a spreadsheet, and a handle holding ``;`` or
``|`` runs a command when a printed command line is pasted into a shell. These functions
keep the information (every neutralised character is shown as a visible escape) and bound
length.

>>> for_display("listing\\u202elmth.exe")
'listing\\\\u202elmth.exe'
>>> for_display("\\x1b[2Jhello")
'\\\\x1b[2Jhello'
>>> for_display("x" * 20, max_chars=8)
'xxxxxxx…'
>>> csv_cell("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> print(shell_arg("hansa:x;reboot"), shell_arg("hansa:evil\\u202egnp"))
'hansa:x;reboot' $'hansa:evil\\u202egnp'
"""

from __future__ import annotations

import re
import shlex
import unicodedata

__all__ = ["AS_LATIN", "CONFUSABLE_SCRIPTS", "CSV_CELL_CHARS", "UNSAFE_CHARS", "columns",
           "csv_cell", "exact_display", "fit", "for_display", "lookalike_mark", "lookalike_pieces",
           "lookalike_reasons", "mixed_script", "pad", "shell_arg", "shell_path",
           "with_lookalike_marks", "with_lookalike_mark"]

UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028\u2029"
    "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ud800-\udfff\ufeff]")
"""C0/C1 controls (but tab, newline, CR), bidi embeddings/overrides/isolates and marks,
zero-width characters (space, non-joiner, joiner, word joiner, invisible operators:
two handles that print alike must not be two accounts that look one), line/paragraph
separators, lone surrogates (no text encodes them: a page showing one failed to be
sent, review of the record form, finding 1) and the BOM."""
_UNSAFE_OR_NEWLINE = re.compile(UNSAFE_CHARS.pattern[:-1] + "\t\n\r]")
CSV_CELL_CHARS = 32_000
"""Longest CSV cell written (spreadsheets hold 32,767 characters per cell)."""
_SHELL_ESCAPED = re.compile(UNSAFE_CHARS.pattern[:-1] + "\t\n\r\\\\'!]")
"""What ``$'...'`` quoting writes as an escape: the unsafe characters, the backslash and
quote it would read, and ``!`` (interactive bash's history expansion)."""
_STORED_ESCAPE = re.compile(r"\\\\|\\x[0-9a-f]{2}")
"""The escapes of a path as darkmap stores it (``darkmap.collect.fs_policy.storable_path``):
a doubled backslash, and ``\\xNN`` for a byte that is not UTF-8."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def for_display(text: object, max_chars: int | None = None, newlines: bool = False) -> str:
    """``text`` with every control and bidi character shown as an escape (``\\x1b``,
    ``\\u202e``); newlines and tabs too unless ``newlines``; cut to ``max_chars``
    (ending in ``…``). For a terminal line, which is composed of pieces already shown
    this way (a backslash is left as it is, so that a piece is never escaped twice);
    a file handed on uses :func:`exact_display`."""
    s = str(text)
    if max_chars is not None and len(s) > max_chars:
        s = s[:max(max_chars - 1, 0)] + "…"
    return (UNSAFE_CHARS if newlines else _UNSAFE_OR_NEWLINE).sub(_escape, s)


_EXACT = re.compile(UNSAFE_CHARS.pattern[:-1] + "\\\\]")
_EXACT_OR_NEWLINE = re.compile(UNSAFE_CHARS.pattern[:-1] + "\t\n\r\\\\]")


def _exact_escape(m: re.Match[str]) -> str:
    return "\\\\" if m.group() == "\\" else _escape(m)


def exact_display(text: object, max_chars: int | None = None, newlines: bool = False) -> str:
    """``text`` shown one to one: as :func:`for_display` (control and bidi characters as
    escapes) with a backslash doubled, so that two different texts never show alike (a
    handle holding a BEL, ``bel\\x07``, and one spelling it, ``bel\\\\x07``: found by
    the exports audit, finding 4). Cut so that the shown text, escapes included, is at
    most ``max_chars`` long, ``…`` marking the cut and no escape cut in two (a cut
    before the escapes let 31,000 control characters make a 124,000-character CSV
    cell: finding 5). For a CSV cell and the HTML report.

    >>> print(exact_display("bel\\x07"), exact_display("bel\\\\x07"))
    bel\\x07 bel\\\\x07
    >>> exact_display("\\x01" * 10, max_chars=9)
    '\\\\x01\\\\x01…'
    """
    s = str(text)
    rx = _EXACT if newlines else _EXACT_OR_NEWLINE
    if max_chars is None:
        return rx.sub(_exact_escape, s)
    head = s[:max_chars + 1]  # a shown text is never shorter than the text
    shown = rx.sub(_exact_escape, head)
    if len(head) == len(s) and len(shown) <= max_chars:
        return shown
    room = max(max_chars - 1, 0)
    pieces: list[str] = []
    used = at = 0
    for m in [*rx.finditer(head), None]:
        plain = head[at:len(head) if m is None else m.start()]
        kept = plain[:room - used]
        pieces.append(kept)
        used += len(kept)
        if m is None or len(kept) < len(plain):
            break
        escape = _exact_escape(m)
        if used + len(escape) > room:
            break
        pieces.append(escape)
        used += len(escape)
        at = m.end()
    return "".join(pieces) + "…"


def _char_columns(c: str) -> int:
    """Terminal columns one (safe) character takes: 2 for East Asian wide and full-width
    characters (CJK, most emoji), 0 for combining marks, format characters (the
    zero-width joiner) and variation selectors, else 1."""
    if c < "\u0300":  # ASCII and Latin-1: one column (controls are escaped before)
        return 1
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def columns(text: str) -> int:
    """The terminal columns ``text`` takes (as :func:`for_display` shows it)."""
    if text.isascii():
        return len(text)
    return sum(_char_columns(c) for c in text)


def fit(text: object, width: int, newlines: bool = False) -> str:
    """``text`` as :func:`for_display` shows it, cut so that it takes at most ``width``
    terminal columns (ending in ``…``): a wide character (CJK, an emoji) takes two, a
    combining mark none, and an escape is never cut in two. Market titles hold all of
    these, and a cut by characters let such a line run past the table's edge."""
    s = str(text)
    unsafe = UNSAFE_CHARS if newlines else _UNSAFE_OR_NEWLINE
    if len(s) <= width and s.isascii() and not unsafe.search(s):
        return s
    pieces: list[str] = []
    used = 0
    for c in s:
        shown = unsafe.sub(_escape, c)
        w = columns(shown)
        if used + w > width:
            while pieces and used + 1 > width:  # room for the ellipsis
                used -= columns(pieces.pop())
            return "".join(pieces) + ("…" if width >= 1 else "")
        pieces.append(shown)
        used += w
    return "".join(pieces)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` (already safe and cut) padded with spaces to ``width`` terminal columns,
    on the left when ``right`` (numbers)."""
    gap = " " * max(width - columns(text), 0)
    return gap + text if right else text + gap


def csv_cell(value: object, max_chars: int = CSV_CELL_CHARS) -> object:
    """A CSV cell that a spreadsheet shows as text: a string starting with ``=``, ``+``,
    ``-``, ``@``, tab or CR (or their full-width forms) gets a leading ``'``; control and
    bidi characters are escaped and a backslash doubled, one to one
    (:func:`exact_display`); the cell, escapes and ``'`` included, is cut to
    ``max_chars`` (``…`` marks the cut). Numbers and None pass unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        return "'" + exact_display(value, max_chars=max_chars - 1, newlines=True)
    return exact_display(value, max_chars=max_chars, newlines=True)


def _shell_escape(m: re.Match[str]) -> str:
    c = m.group()
    if c in "\\'":
        return "\\" + c
    if c == "\x00":  # no argument can hold NUL: the visible escape, never a cut argument
        return "\\\\x00"
    return f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}"


def shell_arg(text: str) -> str:
    """``text`` as one argument of a command line printed for an analyst to paste into a
    shell (``darkmap judge A B``): single-quoted (:func:`shlex.quote`), so ``;``, ``|``,
    ``$(...)`` or quotes in a handle stay part of the argument and run nothing. Text with
    control or bidi characters is written in bash/zsh ``$'...'`` quoting with the
    characters as escapes (``\\u202e``): the line shows no hidden character and the
    shell passes the exact text (NUL, which no argument can hold, stays the escape
    ``\\x00``)."""
    if not _UNSAFE_OR_NEWLINE.search(text):
        return shlex.quote(text)
    return "$'" + _SHELL_ESCAPED.sub(_shell_escape, text) + "'"


def shell_path(stored: str) -> str:
    """A path as darkmap stores it (``darkmap.collect.fs_policy.storable_path``: a name
    that is not UTF-8 is kept with ``\\xNN`` per undecodable byte and every backslash
    doubled) as one shell argument naming the same file-system bytes: :func:`shell_arg`
    of a plain path; a stored one with escapes in ``$'...'`` quoting, which reads
    ``\\\\`` as a backslash and ``\\xNN`` as that byte.

    >>> shell_path("/data/pages/listing 1.html")
    "'/data/pages/listing 1.html'"
    >>> shell_path("/data/caf\\\\xe9's")
    "$'/data/caf\\\\xe9\\\\'s'"
    """
    if "\\\\" not in stored and "\\x" not in stored:
        return shell_arg(stored)
    out: list[str] = []
    pos = 0
    for m in _STORED_ESCAPE.finditer(stored):
        out.append(_SHELL_ESCAPED.sub(_shell_escape, stored[pos:m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(_SHELL_ESCAPED.sub(_shell_escape, stored[pos:]))
    return "$'" + "".join(out) + "'"


# scripts whose letters pass for Latin ones (Cyrillic а, о, р, Greek Τ, Ο, Ρ)
CONFUSABLE_SCRIPTS = frozenset({"CYRILLIC", "GREEK"})


# the Cyrillic and Greek letters (case-folded) that print like a Latin one
AS_LATIN = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "α": "a", "β": "b", "ε": "e", "η": "h", "ι": "i",
    "κ": "k", "μ": "m", "ν": "n", "ο": "o", "ρ": "p", "τ": "t", "υ": "y", "χ": "x",
    "ζ": "z"})


def _script(c: str) -> str:
    """The script of a letter as its Unicode name begins (``LATIN``, ``CYRILLIC``)."""
    return unicodedata.name(c, "").split(" ", 1)[0]


def mixed_script(handle: str) -> bool:
    """True for a handle that mixes Latin letters with Cyrillic or Greek ones: a
    look-alike of a Latin name ("TheShоp" with a Cyrillic о) prints as that name."""
    scripts = {_script(c) for c in unicodedata.normalize("NFKC", handle or "") if c.isalpha()}
    return "LATIN" in scripts and bool(scripts & CONFUSABLE_SCRIPTS)


_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164"
                       "\uffa0" + "".join(map(chr, range(0xFE00, 0xFE10))))
"""Characters that print as nothing but are no format character (Unicode's Cf, tested
apart): the combining grapheme joiner, Hangul fillers, Khmer vowels inherent, Mongolian
free variation selectors and the variation selectors."""
_MARKET_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}:")
"""The market part of an account id (``hansa:``): ASCII, printed as it is."""
_MARK_CHARS = 3
"""Characters a mark names of each kind (then "+N more")."""


def _named(chars: list[str], show: bool = True) -> str:
    """Up to :data:`_MARK_CHARS` distinct characters as ``о=U+043E CYRILLIC SMALL LETTER
    O`` (``show``: with the character itself; never for an invisible one)."""
    distinct = list(dict.fromkeys(chars))
    named = [(f"{c}=" if show else "") + f"U+{ord(c):04X} " + unicodedata.name(c, "UNNAMED")
             for c in distinct[:_MARK_CHARS]]
    more = len(distinct) - _MARK_CHARS
    return ", ".join(named) + (f" +{more} more" if more > 0 else "")


def lookalike_reasons(text: str, account_id: bool = True) -> list[str]:
    """Why ``text`` (an account id ``market:handle``, or a handle when not
    ``account_id``) may print like a name it is not, one reason per kind: ``mixed
    script`` (Latin mixed with Cyrillic or Greek letters, as :func:`mixed_script`
    decides: the letters outside the script of the rest), ``invisible`` (format
    characters such as the zero-width joiner or a bidi override, and other characters
    that print as nothing), ``confusable`` (compatibility forms of letters and digits
    such as full-width or mathematical ones, and a name wholly of Cyrillic or Greek
    letters that each print like a Latin one). Empty for plain ASCII."""
    if text.isascii():
        return []
    m = _MARKET_ID.match(text) if account_id else None
    handle = text[m.end():] if m else text
    out: list[str] = []
    if mixed_script(handle):
        out.append("mixed script: " + _named(_outside_majority(handle)))
    hidden = [c for c in handle if c in _INVISIBLE or unicodedata.category(c) == "Cf"]
    if hidden:
        out.append("invisible: " + _named(hidden, show=False))
    compat = [c for c in handle if not c.isascii() and c.isalnum()
              and unicodedata.normalize("NFKC", c) != c
              and unicodedata.normalize("NFKC", c).isascii()]
    if compat:
        out.append("confusable: " + _named(compat))
    latin = _whole_script_lookalike(handle)
    if latin:
        out.append(f"confusable: every letter prints like Latin ({latin})")
    return out


def _outside_majority(handle: str) -> list[str]:
    """The letters of ``handle`` (a mixed-script one) outside the script most of its
    letters are in; at a tie, those outside Latin."""
    letters = [(c, _script(unicodedata.normalize("NFKC", c)[:1] or c))
               for c in handle if c.isalpha()]
    counts: dict[str, int] = {}
    for _, sc in letters:
        counts[sc] = counts.get(sc, 0) + 1
    most = max(counts, key=lambda sc: (counts[sc], sc == "LATIN"))
    return [c for c, sc in letters if sc != most]


def _whole_script_lookalike(handle: str) -> str | None:
    """What ``handle`` prints like when its letters are all Cyrillic or Greek ones that
    each print like a Latin one ("рор" prints like "pop"), else None."""
    letters = [c for c in handle if c.isalpha()]
    if len(letters) < 2 or not all(_script(c) in CONFUSABLE_SCRIPTS for c in letters):
        return None
    read = handle.casefold().translate(AS_LATIN)
    if not (read.isascii() and read.isprintable()) or not any(c.isalpha() for c in read):
        return None
    return read


def lookalike_mark(text: object, account_id: bool = True) -> str:
    """The mark printed after an account id (or a handle, when not ``account_id``) that
    may print like a name it is not (:func:`lookalike_reasons`), else "":

    >>> lookalike_mark("hansa:theshоp")
    '[!mixed script: о=U+043E CYRILLIC SMALL LETTER O]'

    It holds no invisible or bidi character itself (they are named by code point)."""
    if text is None:
        return ""
    reasons = lookalike_reasons(str(text), account_id)
    return f"[!{'; '.join(reasons)}]" if reasons else ""


_WORD_RUN = re.compile(r"\S+")


def lookalike_pieces(text: str) -> list[tuple[str, str]]:
    """``text``, a sentence that names account ids (why `persona show` says a link was
    left apart: "the pair hansa:theshоp ~ agora:x scores p=0.120"), cut after each id
    that carries a mark (:func:`lookalike_mark`): ``(piece, mark)`` pairs, the last
    mark "". An id is a word holding ``:``."""
    if text.isascii():
        return [(text, "")]
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _WORD_RUN.finditer(text):
        word = m.group()
        mark = lookalike_mark(word) if ":" in word and not word.isascii() else ""
        if mark:
            out.append((text[pos:m.end()], mark))
            pos = m.end()
    out.append((text[pos:], ""))
    return out


def with_lookalike_mark(name: str | None, account_id: bool = False) -> str | None:
    """``name`` (a handle or persona label; an account id when ``account_id``) followed
    by its :func:`lookalike_mark` when it has one; None stays None."""
    mark = lookalike_mark(name, account_id)
    return f"{name} {mark}" if mark else name


def with_lookalike_marks(text: str) -> str:
    """``text`` with the mark of each account id in it that may print like a name it is
    not written after that id (:func:`lookalike_pieces`), for output that is plain text
    (a report's cell, a package's line): "hansa:theshоp [!mixed script: ...] ~ agora:x"."""
    return "".join(f"{piece} {mark}" if mark else piece
                   for piece, mark in lookalike_pieces(text))
