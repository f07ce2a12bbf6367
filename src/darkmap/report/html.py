"""Render the registered report sections into one self-contained HTML file."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from darkmap.errors import NotFoundError
from darkmap.report import (
    section_collection,
    section_evaluation,
    section_markets,
    section_money,
    section_personas,
    section_targets,
)
from darkmap.report.sections import Figure, Section, sections
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["BUILTIN_SECTIONS", "build_sections", "render_report", "svg_bars", "write_report"]

#: The built-in sections, one module each, in report order. Importing a module registers
#: its section function; :func:`build_sections` draws every registered section by its
#: order (10 collection ... 90 evaluation), plug-in sections included.
BUILTIN_SECTIONS = (section_collection, section_markets, section_personas, section_targets,
                    section_money, section_evaluation)


def svg_bars(fig: Figure, width: int = 640) -> Markup:
    """A horizontal bar chart as inline SVG (labels escaped)."""
    n = len(fig.values)
    if not n:
        return Markup("")
    top = max(*fig.values, 1e-9)
    bar_h, gap, label_w = 18, 4, 240
    height = n * (bar_h + gap) + 10
    parts = [(f'<svg class="chart" width="{width}" height="{height}" role="img" '
              f'aria-label="{html.escape(fig.title)}">')]
    for i, (label, value) in enumerate(zip(fig.labels, fig.values, strict=True)):
        y = i * (bar_h + gap) + 5
        w = max(1.0, (width - label_w - 70) * value / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">'
            f'{html.escape(str(label)[:40])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}"></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{value:,.6g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built here, every label and title escaped


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
    tmpl = env.get_template("report.html.j2")
    return tmpl.render(title=title, generated_at=utcnow(), workspace=str(ws.path),
                       sections=build_sections(ws), fmt=_fmt)


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


def write_report(ws: Workspace, out: Path | None = None) -> Path:
    """Write the report (default ``<workspace>/report.html``); return its path.

    A folder of ``out`` that does not exist is a :class:`NotFoundError`.
    """
    out = out or ws.path / "report.html"
    if not out.parent.is_dir():
        raise NotFoundError(f"{out.parent}: no such folder for the report")
    out.write_text(render_report(ws), encoding="utf-8")
    return out
