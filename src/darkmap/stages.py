"""The built-in stages of the main job, each a thin call into its library."""

from __future__ import annotations

from typing import Any

from darkmap.collect.ingest import ingest
from darkmap.plugins import import_optional
from darkmap.pipeline import DemoContext, StageSkipped, register_stage
from darkmap.workspace import Workspace

__all__: list[str] = []


def _module(name: str) -> Any:
    mod = import_optional(name)
    if mod is None:
        raise StageSkipped(f"{name} is not available")
    return mod


@register_stage(10, "simulate")
def simulate_world(ws: Workspace, ctx: DemoContext) -> Any:
    """Generate the synthetic world (skipped when the context already has one)."""
    if ctx.world is None:
        raise StageSkipped("no world folder given")
    if (ctx.world / "truth.json").exists():
        return {"world": str(ctx.world), "reused": True}
    sim = _module("darkmap.simulate")
    return sim.simulate(seed=ctx.seed, vendors=ctx.vendors, out=ctx.world)


@register_stage(20, "ingest")
def ingest_all(ws: Workspace, ctx: DemoContext) -> Any:
    """Ingest the simulated world and the real data folder."""
    paths = [p for p in (ctx.world, ctx.real_data) if p is not None and p.exists()]
    if not paths:
        raise StageSkipped("nothing to ingest")
    return ingest(ws, paths).as_dict()["totals"]
