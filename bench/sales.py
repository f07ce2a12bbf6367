"""Sales estimates on held-out simulated worlds: coverage and error of orders, units, customers.

Each world: ``darkmap simulate`` with feedback rates drawn per market in 0.3-0.95 (unknown
to the estimator), only the newest feedback page saved per vendor, 70% of profiles showing
their feedback total, 5% hidden feedback, 20% of repeat orders covered by an earlier
review; then ingest, link, assess, and :func:`darkmap.evaluate.sales.sales_pairs` against
its truth. Prints JSON: pooled scores over all worlds, and per world, plus seconds.

Run: .venv/bin/python bench/sales.py [--seeds 101,102,103,104] [--vendors 300]
The seeds 1-4 were used to choose the estimator's constants; report the others.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import darkmap
from darkmap.evaluate.sales import MEASURES, sales_pairs, score

KNOBS = {"market_feedback_rate_min": 0.3, "market_feedback_rate_max": 0.95,
         "feedback_pages_kept": 1, "feedback_totals_shown": 0.7, "hidden_feedback_rate": 0.05,
         "multi_order_review_rate": 0.2, "orders_per_listing": 12.0, "chain": False}


def one_world(seed: int, vendors: int, root: Path) -> dict[str, Any]:
    """Simulate, ingest, link, assess one world; return its evaluation tuples."""
    world, wsdir = root / f"world-{seed}", root / f"ws-{seed}"
    darkmap.simulate_world(world, seed=seed,
                           params=darkmap.SimParams(vendors=vendors, **KNOBS))  # type: ignore[arg-type]
    ws = darkmap.init_workspace(wsdir)
    try:
        darkmap.ingest(ws, [world / "pages", world / "listings", world / "seized"])
        darkmap.link(ws)
        t0 = time.perf_counter()
        darkmap.assess_listings(ws)
        seconds = time.perf_counter() - t0
        pairs = sales_pairs(ws, world / "truth.json")
    finally:
        ws.close()
    pairs["assess_seconds"] = round(seconds, 2)
    return pairs


def _scores(pairs: dict[str, Any]) -> dict[str, Any]:
    return {"accounts": {m: score(pairs["accounts"][m]) for m in MEASURES},
            "personas": {m: score(pairs["personas"][m]) for m in MEASURES},
            "accounts_orders_by_basis": {b: score(v) for b, v in pairs["account_basis"].items()},
            "personas_orders_by_basis": {b: score(v) for b, v in pairs["persona_basis"].items()}}


def main() -> None:
    """Run the worlds and print the JSON figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="101,102,103,104")
    ap.add_argument("--vendors", type=int, default=300)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    pooled: dict[str, Any] = {k: defaultdict(list) for k in
                              ("accounts", "personas", "account_basis", "persona_basis")}
    per_world = {}
    with tempfile.TemporaryDirectory(prefix="darkmap-bench-sales-") as tmp:
        for seed in seeds:
            p = one_world(seed, args.vendors, Path(tmp))
            per_world[seed] = {"orders_accounts": score(p["accounts"]["orders"]),
                               "orders_personas": score(p["personas"]["orders"]),
                               "assess_seconds": p["assess_seconds"]}
            for k in pooled:
                for m, v in p[k].items():
                    pooled[k][m].extend(v)
    print(json.dumps({"bench": "sales", "seeds": seeds, "vendors": args.vendors,
                      "knobs": KNOBS, "pooled": _scores(pooled), "per_world": per_world},
                     indent=1))


if __name__ == "__main__":
    main()
