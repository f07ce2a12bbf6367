"""A deterministic simulator of darknet drug markets with ground truth.

``simulate(out, seed, SimParams(...))`` writes saved market pages in two layouts, a
listings CSV, a seized MySQL dump, Bitcoin blk files, GraphSense TagPacks and
``truth.json`` (who is behind which account, what each listing really is, who owns
which address). See docs/simulator.md.
"""

from darkmap.simulate.params import SimParams
from darkmap.simulate.run import simulate

__all__ = ["SimParams", "simulate"]
