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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
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

__all__ = ["REAL_PAGES_CAPTURED", "STAGES", "DemoContext", "StageResult", "StageSkipped",
           "run_stages"]

REAL_PAGES_CAPTURED: dict[str, datetime] = {
    # the real data's README: "saved Hansa market pages (June 2017)"; their footers state
    # their own times (2017-06, which come first)
    "hansa": datetime(2017, 6, 25),
    # README: 2019; the pages show feedback and logins up to 2019-11-18 and no time of
    # their own
    "empire": datetime(2019, 11, 18),
    # README: 2019; the pages state their "Server Time" (2019-10 and 2019-11), which
    # comes first
    "cryptonia": datetime(2019, 11, 18),
    # README: 2019, but Dream's seller pages state their own day ("Last active 19/11/2018
    # (today)", the newest): the pages that state none take that day
    "dream": datetime(2018, 11, 19),
    # README: 2019, but the pages show logins and feedback up to 2020-02-19: a capture
    # is not older than what it shows
    "apollon": datetime(2020, 2, 19),
}
"""When the real saved pages (``<real data>/pages/<market>``) were captured, for the
demo's ``ingest --captured-at``: the files' modification times are the day they were
copied (2026), not saved. docs/data-formats.md, "Times only as the source states them"."""


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


def _real_pages(real: Path | None) -> tuple[list[Path], list[tuple[Path, datetime]]]:
    """The real data folder as paths to ingest as they are, and the saved pages' market
    folders with the time they were captured (:data:`REAL_PAGES_CAPTURED`)."""
    if real is None or not real.exists():
        return [], []
    pages = real / "pages"
    stated = [(pages / m, t) for m, t in REAL_PAGES_CAPTURED.items() if (pages / m).is_dir()]
    if not stated:
        return [real], []
    # the other folders as they are (a top-level read-me or licence is not evidence)
    rest = [p for p in sorted(real.iterdir()) if p.is_dir() and p != pages]
    rest += [p for p in sorted(pages.iterdir())
             if p.is_dir() and p.name not in REAL_PAGES_CAPTURED]
    return rest, stated


def ingest_all(ws: Workspace, ctx: DemoContext) -> Any:
    """Ingest the simulated world and the real data folder; the real saved pages with
    the time each market's pages were captured (``--captured-at``)."""
    world = ([ctx.world / d for d in ("pages", "listings", "seized", "chain", "tags")]
             if ctx.world else [])  # truth.json is the answer key, never evidence
    rest, stated = _real_pages(ctx.real_data)
    paths = [p for p in (*world, *rest) if p.exists()]
    if not paths and not stated:
        raise StageSkipped("nothing to ingest")
    totals: Counter[str] = Counter()
    by_workers = 0
    runs = [(paths, None)] if paths else []
    for folder, when in [*runs, *(([f], t) for f, t in stated)]:
        # pages extracted by worker processes
        summary = ingest(ws, folder, jobs=default_jobs(), captured_at=when)
        totals.update(summary.as_dict()["totals"])
        by_workers += summary.prepared_ahead
    return {**totals, "pages_by_workers": by_workers}


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
