"""The newest known value of a field over an entity's observations.

Each observation holds what one capture showed: a saved vendor page shows no profile text,
a seized database dump states no time, a search result row shows no description. Taking
one whole "latest" observation loses every field it did not show; these aggregates take
each field from the newest observation that has it instead. They are SQL text for a
``GROUP BY`` over an observation table (``account_observations``,
``listing_observations``).
"""

from __future__ import annotations

__all__ = ["NEWEST_FIRST", "latest", "newest", "newest_list"]

NEWEST_FIRST = "observed_at DESC NULLS LAST, obs_id"
"""Observations newest first: those with a time before those without (a dump that states
no time counts as the oldest), two as new by the smaller ``obs_id``."""


def latest(column: str) -> str:
    """SQL aggregate: ``column`` of the newest observation, whatever it holds (for the
    provenance of that observation)."""
    return f"first({column} ORDER BY {NEWEST_FIRST})"


def newest(column: str, has: str | None = None) -> str:
    """SQL aggregate: ``column`` of the newest observation where ``has`` holds (by default:
    where ``column`` is not NULL), else of the newest observation.

    ``has`` ties fields that belong together: a price is given with the currency of the
    observation that gave the price (``newest("currency", "price IS NOT NULL")``).
    """
    cond = has or f"{column} IS NOT NULL"
    return f"first({column} ORDER BY ({cond}) IS NOT TRUE, {NEWEST_FIRST})"


def newest_list(column: str) -> str:
    """:func:`newest` for a list column: an empty list shows nothing, as NULL does (the
    newest non-empty list, else the newest observation's list)."""
    return newest(column, f"len({column}) > 0")
