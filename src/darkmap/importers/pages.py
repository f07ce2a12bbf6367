"""The ``pages`` importer: saved market HTML pages through the template engine.

``sniff`` is sure (0.9) of HTML that a market template recognises and moderately sure
(0.55) of any other HTML, so an HTML page of an unknown market is still read and
recorded as a ``SkipRecord`` ("no template matches") instead of vanishing. A file named
as a page (``.html``, ``.htm``, ``.xhtml``) whose bytes are a known binary format (a PNG, a
ZIP: :func:`~darkmap.extract.decode.binary_kind`) is claimed at 0.5 and quarantined,
naming the file and what it is, never read as a page (a PNG carrying "<html>" in its
metadata was once read as an Empire page).

The template engine (selectolax, the templates) is imported when a page is sniffed or
read, not with this module: choosing the importer of any file loads every importer
(:mod:`darkmap.plugins`).

Extraction is a pure function of the page's bytes: with ``darkmap ingest --jobs N`` it
runs ahead in worker processes (:meth:`PagesImporter.preparer`,
:mod:`darkmap.collect.prefetch`) and :meth:`PagesImporter.read` takes the result.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from typing import Any

from darkmap.extract.decode import DEFAULT_MAX_BYTES, binary_kind, decode_page, looks_like_html
from darkmap.model.records import QuarantineRecord, Record
from darkmap.plugins import Preparer, SourceFile

__all__ = ["PagesImporter", "extract_ahead"]


def extract_ahead(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The page's :class:`~darkmap.extract.engine.PageResult` (run in a worker process)."""
    from darkmap.extract.engine import extract_page  # noqa: PLC0415 - see the docstring

    return extract_page(data, source, max_bytes=max_bytes)


def _load_templates() -> object:
    """The templates, loaded and prepared (:func:`~darkmap.extract.engine.warm`) in the
    pipeline's process before the workers are forked, so that each starts with them."""
    from darkmap.extract.engine import load_templates, warm  # noqa: PLC0415 - see the docstring

    templates = load_templates()
    warm(templates)
    return templates


_PAGE_SUFFIXES = (".html", ".htm", ".xhtml")
_UNKNOWN_BINARY = "application/octet-stream"
_BINARY_PAGE = 0.5
"""The sniff score of a binary file named as a page: the lowest an importer is chosen
at, so any importer that reads the format wins."""


def _binary_page(src: SourceFile) -> str | None:
    """What known binary format a file named as a page is ("a PNG image"), or None
    (other bytes that are no HTML, NUL bytes of no known format, are recognised by no
    importer, as any file nothing reads)."""
    binary = binary_kind(src.head)
    if binary is None or binary[1] == _UNKNOWN_BINARY \
            or not src.source.lower().endswith(_PAGE_SUFFIXES):
        return None
    return binary[0]


class PagesImporter:
    """Reads one saved HTML page per file (the unit is ``page``)."""

    name = "pages"
    version = "1"

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def media_type(self, src: SourceFile) -> str:
        """A saved page is HTML (the capture's ``media_type``); a binary file named as
        a page is what its bytes are (``image/png``)."""
        binary = binary_kind(src.head)
        return binary[1] if binary is not None else "text/html"

    def sniff(self, src: SourceFile) -> float:
        """0.9 for HTML a template recognises, 0.55 for other HTML, 0.5 for a binary
        file named as a page (to quarantine it), 0 otherwise."""
        if not looks_like_html(src.head):
            return _BINARY_PAGE if _binary_page(src) is not None else 0.0
        from darkmap.extract.engine import (  # noqa: PLC0415 - HTML only, see the docstring
            Page,
            detect_market,
            load_templates,
        )

        try:
            head = decode_page(src.head)
            page = Page(head.text, src.source, head.utf8)
            if detect_market(page, load_templates()) is not None:
                return 0.9
        except Exception:  # noqa: BLE001, S110 - sniffing must never break the pipeline
            pass
        return 0.55

    def sniff_range(self, src: SourceFile) -> tuple[float, float]:
        """Bounds of :meth:`sniff` from the bytes alone: (0.55, 0.9) for HTML, else 0.

        Lets :func:`darkmap.plugins.best_importer` skip parsing the page when no other
        importer scores within that range (the usual case), so a page is parsed once.
        """
        if looks_like_html(src.head):
            return (0.55, 0.9)
        score = _BINARY_PAGE if _binary_page(src) is not None else 0.0
        return (score, score)

    def preparer(self) -> Preparer:
        """Extraction ahead, in a worker, of every HTML file within :attr:`max_bytes`;
        the templates are loaded before the workers start, so that each starts with them."""
        return Preparer(self.name, self._wants, partial(extract_ahead, max_bytes=self.max_bytes),
                        setup=_load_templates)

    def _wants(self, head: bytes, size: int) -> bool:
        return size <= self.max_bytes and looks_like_html(head)

    def _bytes(self, src: SourceFile) -> bytes:
        """The page's bytes (up to ``max_bytes + 1``): the sniffing head when that
        already holds the whole capture (most pages), else read from the store."""
        head = src.head
        if len(head) <= self.max_bytes and os.stat(src.path).st_size == len(head):
            return head
        with open(src.path, "rb") as fh:
            return fh.read(self.max_bytes + 1)

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Yield the page's records; an unreadable page is one ``QuarantineRecord``."""
        binary = _binary_page(src)
        if binary is not None:
            yield QuarantineRecord(locator="page", reason=f"{src.source}: not a page: the "
                                   f"file is {binary} (its name says HTML)")
            return
        ahead = src.prepared
        if ahead is not None and ahead.importer == self.name:
            done = ahead.result()  # extracted by a worker from these very bytes
            if done is not None:
                yield from done.records
                return
        try:
            data = self._bytes(src)
        except OSError as exc:
            yield QuarantineRecord(locator="page", reason=f"{src.source}: cannot read: {exc}")
            return
        from darkmap.extract.engine import extract_page  # noqa: PLC0415 - see the docstring

        try:
            result = extract_page(data, src.source, max_bytes=self.max_bytes)
        except Exception as exc:  # noqa: BLE001 - hostile pages: keep the unit, say why
            yield QuarantineRecord(locator="page", excerpt=data[:200].decode("utf-8", "replace"),
                                   reason=f"{src.source}: page extraction failed: "
                                          f"{type(exc).__name__}: {exc}"[:500])
            return
        yield from result.records
