"""Report section "evaluation": how the stages score against the simulated world's truth
(the rows ``darkmap demo`` stored in ``evaluations``)."""

from __future__ import annotations

from typing import Any

from darkmap.report.sections import Section, Table, register_section
from darkmap.store.evaluations import stored_evaluations
from darkmap.store.workspace import Workspace

__all__ = ["evaluation_section"]


def _flat_metrics(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Scalar metrics of a result, then those one level down as ``key.metric``."""
    flat = [(k, v) for k, v in data.items() if isinstance(v, (int, float, str))]
    for k, v in data.items():
        if isinstance(v, dict):
            flat += [(f"{k}.{k2}", v2) for k2, v2 in v.items()
                     if isinstance(v2, (int, float, str))]
    return flat


@register_section(90, "evaluation")
def evaluation_section(ws: Workspace) -> Section | None:
    """How the stages score against the simulated world's ground truth."""
    rows = stored_evaluations(ws.con)
    if not rows:
        return None
    sec = Section("evaluation", "Evaluation against the simulated ground truth",
                  summary="The demo's simulated world comes with truth.json (who is behind "
                          "each account, who owns each address); these figures measure the "
                          "stages against it.")
    for ev in rows:
        sec.tables.append(Table(["metric", "value"], _flat_metrics(ev.result)[:40], ev.key))
    return sec
