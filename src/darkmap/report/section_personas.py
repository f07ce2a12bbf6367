"""Report section "personas": the largest and most cross-market personas, and the links
that made them."""

from __future__ import annotations

import json
from typing import Any

from darkmap.model.display import with_lookalike_mark
from darkmap.report.sections import Section, Table, register_section
from darkmap.store import entities as store
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["personas_section"]


def _signals_text(signals: Any, top: int = 4) -> str:
    """The ``top`` signals that contributed most to a link score, as one line: only
    those that speak for it (a signal that added nothing is no evidence; found by a
    documentation audit), ``-`` when none did."""
    data = json.loads(signals) if isinstance(signals, str) else (signals or {})
    parts = []
    for name, s in data.items():
        contrib = s.get("contribution") if isinstance(s, dict) else None
        if contrib is None:
            continue
        parts.append((float(contrib), name, s.get("value") if isinstance(s, dict) else s))
    parts = sorted((p for p in parts if round(p[0], 2) > 0), reverse=True)
    return "; ".join(f"{n}={_short(v)} ({c:+.2f})" for c, n, v in parts[:top]) or "-"


def _short(v: Any) -> str:
    text = f"{v:.2f}" if isinstance(v, float) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


@register_section(30, "personas")
def personas_section(ws: Workspace) -> Section | None:
    """The largest and most cross-market personas, with the links that made them."""
    if not table_has_rows(ws.con, "personas"):
        return None
    n = store.persona_counts(ws.con)
    top = store.cross_market_personas(ws.con, 15)
    sec = Section("personas", "Personas: accounts linked into the people behind them",
                  summary="Accounts are linked by hard identifiers (PGP keys, addresses, "
                          "contacts) and soft signals (handles, writing style, products, "
                          "prices, shipping, timing). Scores are calibrated match "
                          "probabilities; analysts confirm or reject with `darkmap judge`.",
                  facts={"personas": n.personas, "with several accounts": n.multi_account,
                         "across markets": n.cross_market})
    sec.tables.append(Table(["persona", "label", "accounts", "markets", "cohesion", "members"],
                            [t._replace(label=with_lookalike_mark(t.label)) for t in top],
                            "Most cross-market personas"))
    links = store.strongest_links(ws.con, [t.persona_id for t in top[:8]], 3)
    sec.tables.append(Table(
        ["persona", "account", "account", "match probability", "strongest evidence"],
        [(k.persona_id, k.a, k.b, k.score, _signals_text(k.signals)) for k in links],
        "Why: the strongest links inside those personas"))
    return sec
