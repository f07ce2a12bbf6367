"""Generate a whole simulated world into a folder: pages, datasets, chain, tags, truth.

>>> simulate(Path("world"), seed=1, params=SimParams(vendors=300))  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError
from darkmap.simulate.datasets import write_csv, write_sqldump
from darkmap.simulate.money_flows import plan_payout_addresses, simulate_chain
from darkmap.simulate.page_writer import write_pages
from darkmap.simulate.params import SimParams
from darkmap.simulate.rand import stream
from darkmap.simulate.truth import write_truth
from darkmap.simulate.world import build_world

__all__ = ["OUTPUT_ENTRIES", "simulate"]

OUTPUT_ENTRIES = ("pages", "listings", "seized", "chain", "tags", "truth.json")
_ADDR_TMP = ".address_owner.tmp"
_DIRECT_DEAL_RATE = 0.05  # vendors who print a BTC address on their profile


def _prepare(out: Path, force: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return
    foreign = [n for n in present if n not in OUTPUT_ENTRIES and n != _ADDR_TMP]
    if not force or foreign:
        raise BadInputError(
            f"{out}: folder is not empty ({', '.join(present[:5])}); "
            + ("use --force to replace a previous simulation" if not foreign else
               "it holds files the simulator did not write; choose another folder"))
    for name in present:
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def simulate(out: Path, seed: int, params: SimParams, force: bool = False) -> dict[str, Any]:
    """Write the world for ``seed`` into ``out``; return what was written (counts)."""
    _prepare(out, force)
    world = build_world(seed, params)
    summary: dict[str, Any] = {
        "seed": seed, "markets": len(world.markets), "actors": len(world.actors),
        "accounts": len(world.accounts), "listings": len(world.listings),
        "orders": len(world.orders), "pgp_keys": len(world.keys),
    }
    tmp = out / _ADDR_TMP
    wallets: dict[str, tuple[str, str]] = {}
    cashouts: list[dict[str, str]] = []
    payments: dict[int, tuple[str, str]] = {}
    if params.chain:
        with open(tmp, "w", encoding="utf-8", newline="\n") as sink:
            res = simulate_chain(world, out / "chain", sink)
        payout: list[str | None] = list(res.payout_address)
        wallets, cashouts, payments = res.wallets, res.cashouts, res.order_payment
        summary.update(blocks=res.blocks, transactions=res.transactions,
                       cashouts=len(res.cashouts), wallets=len(res.wallets),
                       unpaid_orders=res.unpaid_orders,
                       blk_files=res.files)
    else:
        plan_payout_addresses(world)  # keeps random streams identical either way
        payout = [None] * len(world.accounts)
    shown = {a.idx: payout[a.idx] for a in world.accounts
             if payout[a.idx] and stream(seed, "direct", a.idx).random() < _DIRECT_DEAL_RATE}
    if params.pages:
        summary["pages"] = write_pages(world, out, shown)  # type: ignore[arg-type]
    summary["csv_rows"] = {m.market_id: write_csv(world, m, out) for m in world.markets
                           if m.csv}
    seized = next(m for m in world.markets if m.seized)
    summary["seized_rows"] = write_sqldump(world, seized, out,
                                           payout, payments)
    write_truth(world, out / "truth.json", tmp if params.chain else None, wallets, cashouts)
    if tmp.exists():
        tmp.unlink()
    return summary
