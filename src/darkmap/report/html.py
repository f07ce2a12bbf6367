"""Render the registered report sections into one self-contained HTML file.

Market text is written by the people under investigation. Jinja2's autoescape keeps it
from scripting the analyst's browser; on top of that every string is shown through
:func:`~darkmap.model.display.exact_display` (control and bidi characters as visible escapes:
a right-to-left override cannot reverse what a cell appears to say) and cut: a table cell
shows :data:`CELL_CHARS` characters, and a longer value opens (``<details>``) on its first
:data:`FULL_CHARS` characters with its length stated, so a 200,000-character title can
neither bloat the report nor stall the browser, and the analyst still reads it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.display import exact_display, with_lookalike_marks
from darkmap.model.outputs import atomic_file
from darkmap.report import (
    section_collection,
    section_evaluation,
    section_markets,
    section_money,
    section_operations,
    section_personas,
    section_targets,
)
from darkmap.report.sections import Figure, Section, sections
from darkmap.store.operations import Space
from darkmap.store.overview import assessment_age, assessment_note
from darkmap.store.workspace import Workspace, refuse_output, utcnow

__all__ = ["BUILTIN_SECTIONS", "CELL_CHARS", "FULL_CHARS", "LABEL_CHARS", "TITLE_CHARS", "Shown",
           "build_sections", "display", "render_report", "shown", "svg_bars", "write_report"]

CELL_CHARS = 300
"""Characters a table cell shows; a longer value is cut (and opens on its full text)."""
FULL_CHARS = 20_000
"""Characters of a cut value the report holds (the part shown when the cell is opened)."""
TITLE_CHARS = 200
"""Characters of a heading, a chart's title, a fact's name."""
LABEL_CHARS = 40
"""Characters of a chart's bar label."""

#: The built-in sections, one module each, in report order. Importing a module registers
#: its section function; :func:`build_sections` draws every registered section by its
#: order (10 collection ... 90 evaluation), plug-in sections included.
BUILTIN_SECTIONS = (section_collection, section_markets, section_personas, section_targets,
                    section_money, section_operations, section_evaluation)


def svg_bars(fig: Figure, width: int = 640) -> Markup:
    """A horizontal bar chart as inline SVG (labels escaped)."""
    n = len(fig.values)
    if not n:
        return Markup("")
    top = max(*fig.values, 1e-9)
    bar_h, gap, label_w = 18, 4, 240
    height = n * (bar_h + gap) + 10
    parts = [(f'<svg class="chart" width="{width}" height="{height}" role="img" '
              f'aria-label="{html.escape(display(fig.title, TITLE_CHARS))}">')]
    for i, (label, value) in enumerate(zip(fig.labels, fig.values, strict=True)):
        y = i * (bar_h + gap) + 5
        w = max(1.0, (width - label_w - 70) * value / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">'
            f'{html.escape(display(label, LABEL_CHARS))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}"></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{value:,.6g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built here, every label and title escaped


def display(value: object, max_chars: int = TITLE_CHARS) -> str:
    """``value`` as report text: formatted (:func:`_fmt`), control and bidi characters
    shown as escapes and a backslash doubled, one to one (newlines and tabs kept: HTML
    folds them), cut to ``max_chars`` (:func:`~darkmap.model.display.exact_display`)."""
    return exact_display(_fmt(value), max_chars=max_chars, newlines=True)


@dataclass(frozen=True)
class Shown:
    """A table cell's value as shown: ``text`` (cut to :data:`CELL_CHARS`); when cut,
    ``full`` holds the value's first :data:`FULL_CHARS` characters and ``chars`` its
    length."""

    text: str
    full: str = ""
    chars: int = 0
    complete: bool = True
    """True when ``full`` is the whole value (as shown)."""

    @property
    def cut(self) -> bool:
        """True when ``text`` is not the whole value."""
        return bool(self.full)


def shown(value: object, max_chars: int = CELL_CHARS) -> Shown:
    """A table cell: ``value`` safe to show, cut when longer than ``max_chars``."""
    text = with_lookalike_marks(_fmt(value))  # an id that prints like another is marked
    whole = exact_display(text, max_chars=FULL_CHARS, newlines=True)
    complete = len(text) <= FULL_CHARS and len(whole) <= FULL_CHARS \
        and whole == exact_display(text, newlines=True)
    if complete and len(whole) <= max_chars:
        return Shown(whole)
    return Shown(exact_display(text, max_chars=max_chars, newlines=True), whole, len(text),
                 complete)


def build_sections(ws: Workspace) -> list[Section]:
    """Run every registered section function; skip those whose stage has not run."""
    out = []
    for _, _, fn in sections():
        sec = fn(ws)
        if sec is not None:
            out.append(sec)
    return out


def render_report(ws: Workspace, title: str = "darkmap report") -> str:
    """The report as an HTML string."""
    env = Environment(loader=PackageLoader("darkmap.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["bars"] = svg_bars
    env.filters["display"] = display
    tmpl = env.get_template("report.html.j2")
    return tmpl.render(title=title, generated_at=utcnow(), workspace=str(ws.path),
                       stale=assessment_note(assessment_age(ws.con)),
                       sections=build_sections(ws), fmt=_fmt, cell=shown,
                       full_chars=FULL_CHARS)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


def write_report(ws: Workspace, out: Path | None = None, user: str | None = None,
                 ops: Space | None = None) -> Path:
    """Write the report (default ``<workspace>/report.html``); return its path. With
    ``user``, the operations section shows what that user may read (audited; the
    workspace must be open for writing) of the records in ``ops`` (the team server) or
    the workspace; without, the report holds nothing operational.

    A folder of ``out`` that does not exist is a :class:`NotFoundError`; ``out`` naming a
    folder, or the workspace's folder, database or a capture
    (:func:`~darkmap.store.workspace.refuse_output`), is a :class:`BadInputError`. With
    ``user`` the file is its owner's only (0600).
    """
    out = out or ws.path / "report.html"
    refuse_output(out, ws.path)
    if out.is_dir():
        raise BadInputError(f"{out}: is a folder; give the report a file name, e.g. "
                            f"{out / 'report.html'}")
    if not out.parent.is_dir():
        raise NotFoundError(f"{out.parent}: no such folder for the report")
    with section_operations.reading_as(user, ops):
        text = render_report(ws)
    # a kill leaves the earlier report, not half of one; a report with the operations
    # section holds records of the user's agencies: its owner's only, as a package is
    with atomic_file(out, 0o600 if user is not None else None) as part:
        part.write_text(text, encoding="utf-8")
    return out
