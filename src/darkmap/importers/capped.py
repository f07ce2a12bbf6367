"""A text value read piece by piece and cut at the field cap, never held whole.

The CSV and SQL importers read values that may be any length (a hostile dump can hold
one 100 MB description). :class:`CappedText` keeps the first
:data:`~darkmap.model.limits.MAX_FIELD_CHARS` characters of what it is given, counts the
rest and hashes all of it, so that the cut is recorded exactly as
:func:`~darkmap.model.limits.cap_text` records it for a value held whole.

>>> v = CappedText(cap=4)
>>> for piece in ("ab", "cdef", "g"):
...     v.add(piece)
>>> text, cut = v.result("title", "row 5")
>>> text, cut.original_chars, cut.kept_chars, cut.locator
('abcd', 7, 4, 'row 5')
"""

from __future__ import annotations

import hashlib

from darkmap.model.limits import MAX_FIELD_CHARS
from darkmap.model.records import CutRecord

__all__ = ["CappedText"]


class CappedText:
    """The first ``cap`` characters of a value given in pieces, its length and the
    sha256 of the whole (UTF-8, lone surrogates passed through)."""

    __slots__ = ("cap", "head", "kept", "chars", "sha")

    def __init__(self, cap: int = MAX_FIELD_CHARS) -> None:
        self.cap = cap
        self.head: list[str] = []
        self.kept = 0
        self.chars = 0
        self.sha = hashlib.sha256()

    def add(self, piece: str) -> None:
        """Append ``piece``."""
        self.chars += len(piece)
        self.sha.update(piece.encode("utf-8", "surrogatepass"))
        if self.kept < self.cap:
            part = piece[:self.cap - self.kept]
            self.head.append(part)
            self.kept += len(part)

    def result(self, field: str = "", locator: str = "", market_id: str | None = None
               ) -> tuple[str, CutRecord | None]:
        """The value (cut when longer than the cap) and the record of the cut, or None."""
        text = "".join(self.head)
        if self.chars <= self.cap:
            return text, None
        return text, CutRecord(locator=locator, field=field, original_chars=self.chars,
                               kept_chars=len(text), value_sha256=self.sha.hexdigest(),
                               market_id=market_id)
