"""Attacker-written text made safe to show (issue #18): terminal, CSV, HTML titles.

Market text and file names are written by the people under investigation. Shown raw, a
control character can rewrite an analyst's terminal (``ESC [2J``, a window-title
sequence), a right-to-left override can reverse what a line appears to say, and a cell
beginning with ``=`` runs as a formula in a spreadsheet. These functions keep the
information (every neutralised character is shown as a visible escape) and bound length.

>>> for_display("listing\\u202elmth.exe")
'listing\\\\u202elmth.exe'
>>> for_display("\\x1b[2Jhello")
'\\\\x1b[2Jhello'
>>> for_display("x" * 20, max_chars=8)
'xxxxxxx…'
>>> csv_cell("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
"""

from __future__ import annotations

import re

__all__ = ["CSV_CELL_CHARS", "UNSAFE_CHARS", "csv_cell", "for_display"]

UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
    "\u202a-\u202e\u2066-\u2069\ufeff]")
"""C0/C1 controls (but tab, newline, CR), bidi embeddings/overrides/isolates and marks,
line/paragraph separators and the BOM."""
_UNSAFE_OR_NEWLINE = re.compile(UNSAFE_CHARS.pattern[:-1] + "\t\n\r]")
CSV_CELL_CHARS = 32_000
"""Longest CSV cell written (spreadsheets hold 32,767 characters per cell)."""
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
