"""Benchmark: the assessment's title rules on hostile floods, seconds at two lengths.

Each flood repeats what a pack, dose, classification or flag rule looks for ("1st ",
"2k's ", "min 1", "fent-free "...) to 5,000 and 20,000 characters; for each, the best of
``--repeats`` runs of the quantity parser (six substances) and the whole listing
assessment, and the ratio of the two times. Linear work gives about 4 (a 4x longer
title), quadratic about 16. Prints JSON; never passes or fails
(``tests/test_drugs_audit_assess.py`` checks that each flood is read whole).

    .venv/bin/python bench/drugs_hostile.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from darkmap.assess.listing import assess_listing
from darkmap.assess.quantity import parse_quantity

FLOODS = ["1 ", "1st ", "min ", "min 1", "1.000g ", "kilo 1.000g ", "x 1 000 ", "1 aa bb ",
          "2k's ", "5k+ ", "$1 each pill ", "1g + ", "1g+", "1g & 1x ", "10mg thc ",
          "99mg 99 ", "1 " + " " * 50, "fent-free ", "fent1", "fentanyl test strips ",
          "f3nt4nyl ", "f\u0435n ", "\u0435", "fen\u200b", "a b c d ", "not sell fakes ",
          "bar chocolate ", "+ crack ", "seeds tobacco ", "w0uld n0t ", "1-1 pills ", "1 - ",
          "100 perc 30s ", "30s ", "m30 blues x 1 ", "lorazepam 2g x 10 ", "2,5 gr x 1 ",
          "nasal spray 1x 1ml ", "spray 1mg ", "patch 1ug/hr ", "patches 1 pcs 1mg/h ",
          "1 x 1 pills ", "1oo ", "1 count ", "1 packs of 1 ", "pack of a a 1 ", "4fa tab ",
          "1/500 ", "1/1 mg ", "1-1g ", "raffle 1g ",
          "half g ", ".1 of a gram ", ".1 (sample) ", "1 comprimés ",
          "1x 1mg/1ml 1ml ",
          "op 80 x 1 ", "x [1 "]
SIZES = (5_000, 20_000)


def cost(unit: str, n: int) -> float:
    """Seconds to read a flood of ``unit`` ``n`` characters long, every way a title is."""
    text = (unit * (n // len(unit) + 1))[:n]
    t0 = time.perf_counter()
    for sub in ("mdma", "cannabis_edible", "mixed", "cocaine", "oxycodone",
                "other_benzodiazepine"):
        parse_quantity(text + " 10mg", sub)
    assess_listing(text, text, ["Drugs"], price_text="USD 0.01")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for unit in FLOODS:
        small, big = (min(cost(unit, n) for _ in range(args.repeats)) for n in SIZES)
        rows.append({"flood": unit.strip() or repr(unit), "seconds_5k": round(small, 5),
                     "seconds_20k": round(big, 5), "ratio": round(big / small, 2)})
    worst = max(rows, key=lambda r: r["ratio"])
    print(json.dumps({"floods": rows, "worst_ratio": worst["ratio"], "worst": worst["flood"],
                      "load_average": os.getloadavg()[0]}, indent=1))


if __name__ == "__main__":
    main()
