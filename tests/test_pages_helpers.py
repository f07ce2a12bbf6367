"""Shared helpers for the per-market page tests (not a test module)."""

from __future__ import annotations

from conftest import DATA

from darkmap.extract.engine import PageResult, extract_page

PAGES = DATA / "pages"


def extract(rel: str) -> PageResult:
    """Extract one real saved page by its path under data/pages."""
    path = PAGES / rel
    return extract_page(path.read_bytes(), str(path))


def of(res: PageResult, kind: str) -> list:
    """The records of one type (by class name without ``Record``)."""
    return [r for r in res.records if type(r).__name__ == f"{kind}Record"]
