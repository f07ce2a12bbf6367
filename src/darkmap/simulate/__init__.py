"""A deterministic simulator of darknet drug markets with ground truth.

``simulate(out, seed, SimParams(...))`` writes saved market pages in two layouts, a
listings CSV, a seized MySQL dump, Bitcoin blk files, GraphSense TagPacks and
``truth.json`` (who is behind which account, what each listing really is, who owns
which address). See docs/simulator.md.

``simulate`` is loaded on first use (PEP 562): its modules import numpy and
cryptography, and every ``import darkmap.simulate.<module>`` runs this file first
(``darkmap simulate --help`` reads only :class:`SimParams`' defaults).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from darkmap.simulate.params import SimParams

if TYPE_CHECKING:
    from darkmap.simulate.run import simulate

__all__ = ["SimParams", "simulate"]


def __getattr__(name: str) -> object:
    """Load :func:`~darkmap.simulate.run.simulate` on first use."""
    if name != "simulate":
        raise AttributeError(f"module 'darkmap.simulate' has no attribute {name!r}")
    from darkmap.simulate.run import simulate  # noqa: PLC0415 - deferred, see above

    globals()[name] = simulate
    return simulate
