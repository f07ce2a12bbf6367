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

__all__ = ["CSV_CELL_CHARS", "UNSAFE_CHARS", "columns", "csv_cell", "fit", "for_display",
           "pad", "shell_arg", "shell_path"]

UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028\u2029"
    "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
"""C0/C1 controls (but tab, newline, CR), bidi embeddings/overrides/isolates and marks,
zero-width characters (space, non-joiner, joiner, word joiner, invisible operators:
two handles that print alike must not be two accounts that look one), line/paragraph
separators and the BOM."""
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
    (ending in ``…``)."""
    s = str(text)
    if max_chars is not None and len(s) > max_chars:
        s = s[:max(max_chars - 1, 0)] + "…"
    return (UNSAFE_CHARS if newlines else _UNSAFE_OR_NEWLINE).sub(_escape, s)


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
    bidi characters are escaped; the cell is cut to ``max_chars`` (``…`` marks the cut).
    Numbers and None pass unchanged."""
    if not isinstance(value, str):
        return value
    s = for_display(value, max_chars=max_chars, newlines=True)
    if s.startswith(_FORMULA_START):
        s = "'" + s
    return s


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
