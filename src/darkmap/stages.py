"""The built-in stages of the main job, each a thin call into its library."""

from __future__ import annotations

from typing import Any

from darkmap.collect.ingest import ingest
from darkmap.plugins import import_optional
from darkmap.pipeline import DemoContext, StageSkipped, register_stage
from darkmap.workspace import Workspace, utcnow

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
    return sim.simulate(ctx.world, ctx.seed, sim.SimParams(vendors=ctx.vendors))


@register_stage(20, "ingest")
def ingest_all(ws: Workspace, ctx: DemoContext) -> Any:
    """Ingest the simulated world and the real data folder."""
    world = ([ctx.world / d for d in ("pages", "listings", "seized", "chain", "tags")]
             if ctx.world else [])  # truth.json is the answer key, never evidence
    paths = [p for p in (*world, ctx.real_data) if p is not None and p.exists()]
    if not paths:
        raise StageSkipped("nothing to ingest")
    return ingest(ws, paths).as_dict()["totals"]


@register_stage(30, "link")
def link_personas(ws: Workspace, ctx: DemoContext) -> Any:
    """Link accounts into personas with every signal."""
    mod = _module("darkmap.resolve.link")
    res = mod.link(ws, mod.LinkOptions())
    s = res.summary
    return {k: s.get(k) for k in ("accounts", "personas", "multi_account_personas",
                                  "cross_market_personas", "seconds")}


@register_stage(40, "assess")
def assess_listings(ws: Workspace, ctx: DemoContext) -> Any:
    """Classify and normalise listings; sales, customers and jurisdiction."""
    mod = _module("darkmap.analyse.assess_store")
    s = mod.assess_workspace(ws)
    return {k: s.get(k) for k in ("listings_assessed", "fentanyl_risk", "counterfeit_pill")}


@register_stage(50, "money")
def follow_the_money(ws: Workspace, ctx: DemoContext) -> Any:
    """Cluster addresses; tie addresses published in the evidence to wallets and personas."""
    tags = _module("darkmap.chain.tags")
    cluster = _module("darkmap.chain.cluster")
    summary = cluster.run_clustering(ws)
    evidence = tags.sync_evidence_tags(ws)
    imported = ws.con.execute("SELECT count(*) FROM btc_tags WHERE origin = 'tagpack'"
                              ).fetchone()[0]
    return {"tagpack_tags": imported, "evidence_tags": evidence,
            **{k: summary.get(k) for k in ("clusters", "merge_edges", "coinjoins")}}


def _labels_from_truth(truth: dict[str, Any], out: Any) -> Any:
    """Write the world's listing truth as a label CSV for ``eval_drugs``."""
    import csv

    cols = ("listing_id", "drug_class", "substance", "counterfeit_pill", "fentanyl_risk",
            "units", "unit_kind", "dose_mg")
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for lid, x in sorted(truth["listings"].items()):
            w.writerow([lid, *("" if x.get(c) is None else x.get(c) for c in cols[1:])])
    return out


@register_stage(60, "evaluate")
def evaluate_against_truth(ws: Workspace, ctx: DemoContext) -> Any:
    """Score linking and clustering against the simulated world's truth."""
    import json

    truth_path = ctx.world / "truth.json" if ctx.world else None
    if truth_path is None or not truth_path.exists():
        raise StageSkipped("no simulated truth")
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    linking = import_optional("darkmap.resolve.evaluate")
    if linking is not None:
        out["linking"] = linking.eval_linking(ws, truth)
    chain = import_optional("darkmap.chain.evaluate")
    if chain is not None:
        out["chain"] = chain.eval_chain(ws, truth)
    drugs = import_optional("darkmap.analyse.evaluate")
    if drugs is not None and truth.get("listings"):
        labels = _labels_from_truth(truth, ws.path / "truth-labels.csv")
        report = drugs.eval_drugs(labels, workspace=ws)
        out["drugs"] = {k: v for k, v in report.items() if k not in ("errors", "missing")}
    for key, value in out.items():
        ws.con.execute("INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?)",
                       [key, json.dumps(value, default=str), str(truth_path), utcnow()])
    return {k: {m: v for m, v in val.items() if isinstance(v, (int, float))}
            for k, val in out.items()}
