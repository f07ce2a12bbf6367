"""Report sections are plug-ins: each stage registers a function that draws its part.

A section function takes the workspace and returns a :class:`Section` (or ``None`` when
its stage has not run). All market-sourced text is escaped by Jinja2's autoescape: a
vendor's description can never script the analyst's browser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from darkmap.store.workspace import Workspace
from darkmap.store.workspace import table_exists as _table_exists

__all__ = ["Section", "Table", "register_section", "sections", "table_exists"]


@dataclass
class Table:
    """A table of plain values; the template escapes every cell."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass
class Figure:
    """A simple inline SVG bar chart of labelled values."""

    title: str
    labels: Sequence[str]
    values: Sequence[float]


@dataclass
class Section:
    """One part of the report."""

    key: str
    title: str
    summary: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SectionFn = Callable[[Workspace], Section | None]
_SECTIONS: list[tuple[int, str, SectionFn]] = []


def register_section(order: int, key: str) -> Callable[[SectionFn], SectionFn]:
    """Decorator: add a section function, drawn in ``order``."""
    def deco(fn: SectionFn) -> SectionFn:
        _SECTIONS[:] = [s for s in _SECTIONS if s[1] != key]
        _SECTIONS.append((order, key, fn))
        _SECTIONS.sort(key=lambda s: (s[0], s[1]))
        return fn
    return deco


def sections() -> list[tuple[int, str, SectionFn]]:
    """Registered sections in drawing order."""
    return list(_SECTIONS)


def table_exists(ws: Workspace, name: str) -> bool:
    """True when the workspace has table ``name`` (a stage's migration ran)."""
    return _table_exists(ws.con, name)
