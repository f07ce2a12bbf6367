"""The main job, end to end: simulate → ingest → every analysis stage → report.

Stages are registered in order; each is a function of the workspace (and the demo's
context) that reads what earlier stages stored and writes its own tables. A stage whose
module is not installed is reported as skipped, never faked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkmap.workspace import Workspace

__all__ = ["DemoContext", "StageResult", "register_stage", "run_stages", "stages"]


@dataclass
class DemoContext:
    """What the stages share: the simulated world's folder and real data to add."""

    world: Path | None = None
    real_data: Path | None = None
    seed: int = 7
    vendors: int = 300
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    """How one stage went."""

    name: str
    seconds: float
    status: str  # "ok", "skipped" or "failed"
    detail: Any = None


StageFn = Callable[[Workspace, DemoContext], Any]
_STAGES: list[tuple[int, str, StageFn]] = []


def register_stage(order: int, name: str) -> Callable[[StageFn], StageFn]:
    """Decorator: add a stage to the main job at position ``order``."""
    def deco(fn: StageFn) -> StageFn:
        _STAGES[:] = [s for s in _STAGES if s[1] != name]
        _STAGES.append((order, name, fn))
        _STAGES.sort(key=lambda s: (s[0], s[1]))
        return fn
    return deco


def stages() -> list[tuple[int, str, StageFn]]:
    """The registered stages in running order."""
    from darkmap import stages as _builtin  # noqa: F401  (registers the built-in stages)

    return list(_STAGES)


class StageSkipped(Exception):
    """Raised by a stage whose capability is not available; the job goes on."""


def run_stages(ws: Workspace, ctx: DemoContext,
               on_stage: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run every stage in order; a failing stage stops the job (and is reported)."""
    results = []
    for _, name, fn in stages():
        t0 = time.perf_counter()
        try:
            detail = fn(ws, ctx)
            res = StageResult(name, time.perf_counter() - t0, "ok", detail)
        except StageSkipped as exc:
            res = StageResult(name, time.perf_counter() - t0, "skipped", str(exc))
        ctx.results[name] = res.detail
        results.append(res)
        if on_stage:
            on_stage(res)
    return results
