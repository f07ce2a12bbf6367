"""darkmap's limits on hostile input (issue #18), in one place.

Everything darkmap reads is written by the people under investigation, so every reader
bounds what one file, one field or one structure may cost. A unit or file that breaks a
limit is quarantined with the limit's name (:class:`~darkmap.errors.LimitExceeded`); a
free-text field longer than its cap is cut and the cut recorded
(:class:`~darkmap.model.records.CutRecord`), its whole value staying in the capture.

The names below are the ones the run summary counts under ``limits``.

>>> text, cut = cap_text("x" * 10, "description", "row 5", cap=4)
>>> text, cut.original_chars, cut.kept_chars
('xxxx', 10, 4)
>>> cap_text("short", "title", "row 1") == ("short", None)
True
"""

from __future__ import annotations

import hashlib
import re

from darkmap.errors import LimitExceeded
from darkmap.model.records import CutRecord

__all__ = [
    "ELEMENT_SIBLINGS",
    "FIELD_CHARS",
    "FILE_BYTES",
    "FILE_SECONDS",
    "MAX_FIELD_CHARS",
    "MAX_FILE_SECONDS",
    "MAX_NESTING",
    "MAX_SNIFF_NULS",
    "MAX_TREE_DEPTH",
    "NESTING_DEPTH",
    "TREE_DEPTH",
    "YAML_ALIASES",
    "cap_text",
    "check_nesting",
]

# limit names (keys of the summary's ``limits``)
ELEMENT_SIBLINGS = "element_siblings"
FIELD_CHARS = "field_chars"
FILE_BYTES = "file_bytes"
FILE_SECONDS = "seconds"
NESTING_DEPTH = "nesting_depth"
TREE_DEPTH = "tree_depth"
YAML_ALIASES = "yaml_aliases"

MAX_FIELD_CHARS = 1_000_000
"""A free-text field keeps at most this many characters (the longest real description in
the bundled markets is under 40,000)."""
MAX_NESTING = 512
"""Deepest nesting of brackets or elements a parser is given (real pages nest < 60)."""
MAX_SNIFF_NULS = 16
"""NULs the first 4 KiB of a text file (a CSV, a seized dump) may hold and still be taken
for text when sniffed: a stray one is damage, and costs the row that holds it; many, a
binary file."""
MAX_TREE_DEPTH = 256
"""Deepest folder ingest descends into below a root."""
MAX_FILE_SECONDS = 10.0
"""Wall-clock seconds one file's import may take before it is stopped and quarantined."""


def cap_text(value: str, field: str, locator: str, cap: int = MAX_FIELD_CHARS,
             market_id: str | None = None) -> tuple[str, CutRecord | None]:
    """``value`` cut to ``cap`` characters, and the record of the cut (None if whole)."""
    if len(value) <= cap:
        return value, None
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return value[:cap], CutRecord(locator=locator, field=field, original_chars=len(value),
                                  kept_chars=cap, value_sha256=digest, market_id=market_id)


def check_nesting(text: str | bytes, opens: str = "[{(", closes: str = "]})",
                  limit: int = MAX_NESTING, what: str = "brackets") -> None:
    """Raise :class:`LimitExceeded` if brackets in ``text`` nest deeper than ``limit``.

    A linear scan that ignores quoting (a bracket inside a string counts too), so it may
    over-count, never under-count: use it as a guard before a recursive parser.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    brackets = re.sub(f"[^{re.escape(opens + closes)}]+", "", text)
    if len(brackets) <= limit:
        return
    depth = deepest = 0
    for ch in brackets.translate({ord(c): "(" for c in opens} | {ord(c): ")" for c in closes}):
        if ch == "(":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    raise LimitExceeded(NESTING_DEPTH, f"{what} nested deeper than {limit}")
        elif ch == ")" and depth:
            depth -= 1
