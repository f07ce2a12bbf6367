"""The main job, end to end: simulate → ingest → link → assess → money → evaluate →
operation.

:data:`STAGES` is the job as a plain ordered tuple; each stage is a function of the
workspace (and the demo's context) that reads what earlier stages stored and writes its
own tables. A stage that has nothing to work on (no world, no truth) says so and is
reported as skipped, never faked. The report is drawn after the stages (``darkmap demo``).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkmap.assess.stage import assess_workspace
from darkmap.chain.cluster import run_clustering
from darkmap.chain.tags import sync_evidence_tags
from darkmap.collect.ingest import ingest
from darkmap.collect.prefetch import default_jobs
from darkmap.evaluate.clustering import eval_chain
from darkmap.evaluate.drugs import eval_drugs
from darkmap.evaluate.linking import eval_linking, load_truth
from darkmap.evaluate.sales import eval_sales
from darkmap.export import ftm_subgraph
from darkmap.ops.demo import run_demo_operation
from darkmap.resolve.link import LinkOptions, link
from darkmap.simulate import SimParams, simulate
from darkmap.store import operations as ops_store
from darkmap.store.chain import tag_count
from darkmap.store.evaluations import save_evaluation
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["STAGES", "DemoContext", "StageResult", "StageSkipped", "run_stages"]


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


StageFn = Callable[[Workspace, "DemoContext"], Any]


class StageSkipped(Exception):
    """Raised by a stage whose capability is not available; the job goes on."""


def run_stages(ws: Workspace, ctx: DemoContext,
               on_stage: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run every stage in order; a failing stage stops the job (and is reported)."""
    results = []
    for name, fn in STAGES:
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


def simulate_world(ws: Workspace, ctx: DemoContext) -> Any:
    """Generate the synthetic world (skipped when the context already has one)."""
    if ctx.world is None:
        raise StageSkipped("no world folder given")
    if (ctx.world / "truth.json").exists():
        return {"world": str(ctx.world), "reused": True}
    return simulate(ctx.world, ctx.seed, SimParams(vendors=ctx.vendors))


def ingest_all(ws: Workspace, ctx: DemoContext) -> Any:
    """Ingest the simulated world and the real data folder."""
    world = ([ctx.world / d for d in ("pages", "listings", "seized", "chain", "tags")]
             if ctx.world else [])  # truth.json is the answer key, never evidence
    paths = [p for p in (*world, ctx.real_data) if p is not None and p.exists()]
    if not paths:
        raise StageSkipped("nothing to ingest")
    summary = ingest(ws, paths, jobs=default_jobs())  # pages extracted by worker processes
    return {**summary.as_dict()["totals"], "pages_by_workers": summary.prepared_ahead}


def link_personas(ws: Workspace, ctx: DemoContext) -> Any:
    """Link accounts into personas with every signal."""
    res = link(ws, LinkOptions())
    s = res.summary
    return {k: s.get(k) for k in ("accounts", "personas", "multi_account_personas",
                                  "cross_market_personas", "seconds")}


def assess_listings(ws: Workspace, ctx: DemoContext) -> Any:
    """Classify and normalise listings; sales, customers and jurisdiction."""
    s = assess_workspace(ws)
    return {k: s.get(k) for k in ("listings_assessed", "fentanyl_risk", "counterfeit_pill")}


def follow_the_money(ws: Workspace, ctx: DemoContext) -> Any:
    """Cluster addresses; tie addresses published in the evidence to wallets and personas."""
    summary = run_clustering(ws)
    evidence = sync_evidence_tags(ws)
    imported = tag_count(ws.con, "tagpack")
    return {"tagpack_tags": imported, "evidence_tags": evidence,
            **{k: summary.get(k) for k in ("clusters", "merge_edges", "coinjoins")}}


def _labels_from_truth(truth: dict[str, Any], out: Any) -> Any:
    """Write the world's listing truth as a label CSV for ``eval_drugs``."""
    cols = ("listing_id", "drug_class", "substance", "counterfeit_pill", "fentanyl_risk",
            "units", "unit_kind", "dose_mg")
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for lid, x in sorted(truth["listings"].items()):
            w.writerow([lid, *("" if x.get(c) is None else x.get(c) for c in cols[1:])])
    return out


def evaluate_against_truth(ws: Workspace, ctx: DemoContext) -> Any:
    """Score linking and clustering against the simulated world's truth."""
    truth_path = ctx.world / "truth.json" if ctx.world else None
    if truth_path is None or not truth_path.exists():
        raise StageSkipped("no simulated truth")
    truth = load_truth(truth_path)
    out: dict[str, Any] = {}
    out["linking"] = eval_linking(ws, truth)
    out["chain"] = eval_chain(ws, truth)
    if truth.get("listings"):
        labels = _labels_from_truth(truth, ws.path / "truth-labels.csv")
        report = eval_drugs(labels, workspace=ws)
        out["drugs"] = {k: v for k, v in report.items() if k not in ("errors", "missing")}
    if truth.get("accounts"):
        sales = eval_sales(ws, truth)
        out["sales"] = {f"{kind}.{m}.{k}": v for kind in ("accounts", "personas")
                        for m, score in sales[kind].items()  # type: ignore[literal-required,unused-ignore]
                        for k, v in score.items() if m in ("orders", "pills", "customers")}
    for key, value in out.items():
        save_evaluation(ws.con, key, value, str(truth_path), utcnow())
    return {k: {m: v for m, v in val.items() if isinstance(v, (int, float))}
            for k, val in out.items()}


def record_operation(ws: Workspace, ctx: DemoContext) -> Any:
    """Two agencies act on a simulated persona: a case, a controlled buy with a fentanyl
    lab result, its parcel, a seizure, an arrest, a deconfliction notice, a package per
    country (``<workspace>/packages/CC``) and the reported figures of past operations."""
    truth_path = ctx.world / "truth.json" if ctx.world else None
    if truth_path is None or not truth_path.exists():
        raise StageSkipped("no simulated world")
    if ops_store.any_user(ws.con):
        raise StageSkipped("the workspace holds an operation already")
    reported = (ctx.real_data / "operations" / "jcode-operations.csv"
                if ctx.real_data else None)
    markets = sorted(load_truth(truth_path).get("markets", {}))
    if ops_store.demo_target(ws.con, markets) is None:
        raise StageSkipped("no persona with a listing on the simulated markets")
    return run_demo_operation(ws, markets, ws.path / "packages", reported,
                              ftm_subgraph).summary()


STAGES: tuple[tuple[str, StageFn], ...] = (
    ("simulate", simulate_world),
    ("ingest", ingest_all),
    ("link", link_personas),
    ("assess", assess_listings),
    ("money", follow_the_money),
    ("evaluate", evaluate_against_truth),
    ("operation", record_operation),
)
