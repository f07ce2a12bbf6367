"""Stream ``truth.json`` (the shared contract in docs/simulator.md) to disk.

The file is written member by member, never built as one dict, so a world with millions
of addresses costs no more memory than its largest section's entries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import IO

from darkmap.simulate.sales_truth import account_sales_truth, actor_sales_truth
from darkmap.simulate.world import World, day_date

__all__ = ["write_truth"]


def _dump(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


def _section(fh: IO[str], name: str, items: object, first: bool = False) -> None:
    fh.write(("" if first else ",\n") + f"{_dump(name)}: {{")
    sep = "\n"
    for key, value in items:  # type: ignore[attr-defined]
        fh.write(f"{sep}{_dump(key)}: {_dump(value)}")
        sep = ",\n"
    fh.write("\n}")


def write_truth(world: World, path: Path, address_owner_file: Path | None,
                wallets: dict[str, tuple[str, str]], cashouts: list[dict[str, str]]) -> None:
    """Write truth.json; ``address_owner_file`` holds the streamed address members."""
    w = world
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("{\n" + f"\"seed\": {w.seed},\n\"params\": {_dump(w.params.as_dict())}")
        _section(fh, "markets", ((m.market_id, {
            "name": m.name, "layout": m.layout,
            "opened": f"{day_date(m.opened):%Y-%m-%d}",
            "closed": f"{day_date(m.closed):%Y-%m-%d}" if m.closed is not None else None,
            "fate": m.fate, "onion": m.onion, "seized_dump": m.seized, "listings_csv": m.csv,
            "feedback_rate": (round(w.market_feedback_rates[m.idx], 4)
                              if m.idx in w.market_feedback_rates else None),
        }) for m in w.markets))
        _section(fh, "actors", ((a.actor_id, {
            "country": a.country,
            "accounts": [w.account_id(w.accounts[i]) for i in a.accounts],
            "pgp_fingerprints": list(dict.fromkeys(w.keys[k].fingerprint for k in a.keys)),
            **actor_sales_truth(w, a.idx),
        }) for a in w.actors))
        _section(fh, "accounts", ((w.account_id(acc), {
            "actor": w.actors[acc.actor].actor_id,
            "market": w.markets[acc.market].market_id,
            "handle": acc.handle, "role": "vendor",
            "pgp_fingerprints": [w.keys[k].fingerprint for k in acc.keys],
            "true_orders": acc.true_orders,
            "active": [f"{day_date(acc.start):%Y-%m-%d}", f"{day_date(acc.end):%Y-%m-%d}"],
            **account_sales_truth(w, acc),
        }) for acc in w.accounts))
        _section(fh, "listings", ((w.listing_id(lst), {
            "account": w.account_id(w.accounts[lst.account]),
            "drug_class": lst.line.drug_class, "substance": lst.line.substance,
            "counterfeit_pill": lst.line.counterfeit_pill, "fentanyl_risk": lst.fentanyl_risk,
            "units": lst.units, "unit_kind": lst.line.unit_kind, "dose_mg": lst.dose,
            "true_orders": lst.true_orders,
        }) for lst in w.listings))
        fh.write(",\n\"chain\": {\n\"address_owner\": {\n")
        if address_owner_file is not None:
            with open(address_owner_file, encoding="utf-8") as src:
                shutil.copyfileobj(src, fh)
        fh.write("\n}")
        _section(fh, "wallets", ((wid, {"kind": kind, "owner": owner})
                                 for wid, (kind, owner) in wallets.items()))
        fh.write(",\n\"cashouts\": [")
        fh.write(",".join("\n" + _dump(c) for c in cashouts))
        fh.write("\n]\n}\n}\n")
