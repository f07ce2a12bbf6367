"""``darkmap simulate``: write a synthetic market ecosystem with ground truth.

The simulator itself (numpy, cryptography) is imported when the command runs (#21); its
``--help`` reads only the parameters' defaults."""

from __future__ import annotations

import time
from pathlib import Path

import click

from darkmap.cli.common import DarkmapError, FiniteFloat, emit_json, main
from darkmap.simulate.params import SimParams

__all__ = ["simulate_cmd"]

_D = SimParams()
_SHARE = FiniteFloat(0.0, 1.0)


@main.command("simulate")
@click.option("--seed", type=int, default=1, show_default=True, help="World seed.")
@click.option("--vendors", type=click.IntRange(min=1), default=_D.vendors, show_default=True,
              help="Number of vendor accounts.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Output folder (must be empty, or an earlier simulation with --force).")
@click.option("--markets", type=click.IntRange(4, 8), default=_D.markets, show_default=True,
              help="Number of markets (4-8).")
@click.option("--style-noise", type=_SHARE, default=_D.style_noise, show_default=True)
@click.option("--handle-change-rate", type=_SHARE, default=_D.handle_change_rate,
              show_default=True)
@click.option("--key-reuse-rate", type=_SHARE, default=_D.key_reuse_rate, show_default=True)
@click.option("--key-rotation-rate", type=_SHARE, default=_D.key_rotation_rate,
              show_default=True)
@click.option("--multi-account-rate", type=_SHARE, default=_D.multi_account_rate,
              show_default=True)
@click.option("--migration-rate", type=_SHARE, default=_D.migration_rate, show_default=True)
@click.option("--price-noise", type=_SHARE, default=_D.price_noise, show_default=True)
@click.option("--coinjoin-rate", type=_SHARE, default=_D.coinjoin_rate, show_default=True)
@click.option("--orders-per-listing", type=FiniteFloat(min=0.0), default=_D.orders_per_listing,
              show_default=True)
@click.option("--market-feedback-rates", type=(_SHARE, _SHARE), default=None,
              help="Draw each market's feedback rate uniformly in LO HI (e.g. 0.3 0.95).")
@click.option("--feedback-pages-kept", type=click.IntRange(min=0), default=0, show_default=True,
              help="Save only the newest N feedback pages per vendor (0: all).")
@click.option("--feedback-totals-shown", type=_SHARE, default=_D.feedback_totals_shown,
              show_default=True, help="Share of profiles that show their feedback total.")
@click.option("--hidden-feedback-rate", type=_SHARE, default=0.0, show_default=True,
              help="Share of feedback counted in totals but not shown as a row.")
@click.option("--removed-feedback-rate", type=_SHARE, default=0.0, show_default=True,
              help="Share of feedback removed (neither counted nor shown).")
@click.option("--multi-order-review-rate", type=_SHARE, default=0.0, show_default=True,
              help="Chance a repeat order of a buyer is covered by its earlier review.")
@click.option("--pages/--no-pages", default=True, show_default=True,
              help="Write the saved HTML pages.")
@click.option("--chain/--no-chain", default=True, show_default=True,
              help="Write the Bitcoin blk files and TagPacks.")
@click.option("--force", is_flag=True, help="Replace an earlier simulation in --out.")
def simulate_cmd(seed: int, vendors: int, out: Path, markets: int, style_noise: float,
                 handle_change_rate: float, key_reuse_rate: float, key_rotation_rate: float,
                 multi_account_rate: float, migration_rate: float, price_noise: float,
                 coinjoin_rate: float, orders_per_listing: float,
                 market_feedback_rates: tuple[float, float] | None, feedback_pages_kept: int,
                 feedback_totals_shown: float, hidden_feedback_rate: float,
                 removed_feedback_rate: float, multi_order_review_rate: float, pages: bool,
                 chain: bool, force: bool) -> None:
    """Generate a synthetic multi-market world with ground truth (truth.json).

    Same seed and options give byte-identical output. See docs/simulator.md.

    Example: darkmap simulate --seed 1 --vendors 300 --out world-1
    (sales test: --market-feedback-rates 0.3 0.95 --feedback-pages-kept 1)
    """
    if out.exists() and not out.is_dir():
        raise DarkmapError(f"{out}: exists and is not a folder; choose another --out")
    params = SimParams(
        vendors=vendors, markets=markets, style_noise=style_noise,
        handle_change_rate=handle_change_rate, key_reuse_rate=key_reuse_rate,
        key_rotation_rate=key_rotation_rate, multi_account_rate=multi_account_rate,
        migration_rate=migration_rate, price_noise=price_noise, coinjoin_rate=coinjoin_rate,
        orders_per_listing=orders_per_listing, pages=pages, chain=chain,
        market_feedback_rate_min=market_feedback_rates[0] if market_feedback_rates else None,
        market_feedback_rate_max=market_feedback_rates[1] if market_feedback_rates else None,
        feedback_pages_kept=feedback_pages_kept, feedback_totals_shown=feedback_totals_shown,
        hidden_feedback_rate=hidden_feedback_rate, removed_feedback_rate=removed_feedback_rate,
        multi_order_review_rate=multi_order_review_rate)
    from darkmap.simulate import simulate  # noqa: PLC0415

    t0 = time.perf_counter()
    summary = simulate(out, seed, params, force=force)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["out"] = str(out)
    emit_json(summary)
