"""What an export is asked for: the subgraph (personas, countries) and format options."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ExportOptions"]


@dataclass(frozen=True)
class ExportOptions:
    """Options every exporter understands (each ignores those that are not its own).

    ``personas`` (persona ids or member account ids) and ``countries`` (ISO codes) narrow
    the export to a subgraph: the accounts they select, their personas, listings, keys,
    selectors and captures, and the links between selected accounts. ``subjects``
    (persona or account ids: what ``--case`` links to) narrows it the same way; options
    given together keep the accounts every one of them selects. ``extended``: the
    FtM export uses darkmap's extension schemata. ``tables`` / ``all_tables``: which
    analytical tables the csv and parquet exporters write.
    """

    personas: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    extended: bool = False
    tables: tuple[str, ...] = ()
    all_tables: bool = False

    @property
    def narrowed(self) -> bool:
        """True when a persona, country or case selection was asked for."""
        return bool(self.personas or self.countries or self.subjects)
