"""Throughput of drug classification + normalisation on real Hansa titles.

Prints JSON: listings/s (per CPU second of this process, and per wall second) for
the full per-listing assessment (class, substance, flags,
pack size, dose, USD prices) on the 14,773 Hansa titles repeated to about 100,000,
on one core, no embeddings. Run: .venv/bin/python bench/drugs.py
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from darkmap.assess.classify import classify
from darkmap.assess.fx import load_fx
from darkmap.assess.lexicon import load_lexicon
from darkmap.assess.listing import assess_listing
from darkmap.assess.quantity import parse_quantity
from darkmap.evaluate.drugs import read_listings

DATA = Path(os.environ.get("DARKMAP_DATA",
                           Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def main(target: int = 100_000) -> dict[str, object]:
    """Run the benchmark and return its figures."""
    rows = list(read_listings(DATA / "listings" / "hansa-2016-12.csv").values())
    reps = max(1, round(target / len(rows)))
    work = rows * reps
    lex, fx = load_lexicon(), load_fx()
    # CPU time of this process: the machine is shared, wall time is reported beside it
    c0 = time.process_time()
    for r in work:
        classify(r["title"], None, r["category_path"], lex)
    t_cls = time.process_time() - c0
    c0 = time.process_time()
    for r in work:
        parse_quantity(r["title"], "alprazolam")
    t_qty = time.process_time() - c0
    c0, w0 = time.process_time(), time.perf_counter()
    n_drug = 0
    for r in work:
        a = assess_listing(r["title"], None, r["category_path"], None, None, r["price_text"],
                           r["observed_at"], lexicon=lex, fx=fx)
        n_drug += a.drug_class != "non_drug"
    t_all, w_all = time.process_time() - c0, time.perf_counter() - w0
    return {
        "benchmark": "drugs.assess_listing", "source": "hansa-2016-12.csv titles",
        "distinct_listings": len(rows), "repeats": reps, "listings": len(work),
        "classify_per_s": round(len(work) / t_cls),
        "quantity_per_s": round(len(work) / t_qty),
        "assess_per_s": round(len(work) / t_all),
        "assess_per_s_wall": round(len(work) / w_all),
        "assess_cpu_seconds": round(t_all, 2), "load_average_1m": os.getloadavg()[0],
        "drug_share": round(n_drug / len(work), 3),
        "python": platform.python_version(), "machine": platform.machine(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
