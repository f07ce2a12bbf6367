"""Exporters: FollowTheMoney, GEXF/GraphML, STIX 2.1, MISP, CSV/Parquet.

Each format is one module with an exporter class (declared in pyproject.toml under the
entry point group ``darkmap.exporters``); :func:`run_export` hands it the workspace and
the :class:`ExportOptions` (subgraph selection and format options).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from darkmap.errors import BadInputError
from darkmap.export.options import ExportOptions
from darkmap.plugins import Exporter

__all__ = ["ExportOptions", "ftm_subgraph", "run_export"]


def _format_options(options: ExportOptions) -> set[str]:
    """The format options ``options`` asks for (``extended``, ``tables``)."""
    return ({"extended"} if options.extended else set()) | (
        {"tables"} if options.tables or options.all_tables else set())


def run_export(exporter: Exporter, workspace: object, out: Path,
               options: ExportOptions | None = None) -> dict[str, int]:
    """Run ``exporter`` on ``workspace`` into ``out`` with ``options``.

    A format option the exporter does not take (its ``format_options``: ``extended``,
    ``tables``) is a :class:`BadInputError`. An exporter whose ``export`` takes no options
    (a plug-in written for the two-argument protocol) runs without them; asking it for
    any is a :class:`BadInputError`.
    """
    options = options or ExportOptions()
    extra = _format_options(options) - set(getattr(exporter, "format_options", ()))
    if extra:
        flags = {"extended": "--extended", "tables": "--table/--all"}
        raise BadInputError(f"the {exporter.name} exporter does not take "
                            f"{', '.join(flags[x] for x in sorted(extra))}")
    if len(inspect.signature(exporter.export).parameters) >= 3:
        return exporter.export(workspace, out, options)  # type: ignore[call-arg]
    if options != ExportOptions():
        raise BadInputError(f"the {exporter.name} exporter takes no options "
                            "(--persona, --country, --extended, --table, --all)")
    return exporter.export(workspace, out)


def ftm_subgraph(workspace: object, personas: tuple[str, ...], out: Path) -> dict[str, int]:
    """The stock FtM entities of the subgraph of ``personas`` written to ``out`` (the
    per-country packages' machine-readable bundle); counts per schema."""
    from darkmap.export.ftm import FtmExporter  # noqa: PLC0415 - loaded when a package asks

    if not personas:
        raise BadInputError("an FtM subgraph needs at least one persona")
    return run_export(FtmExporter(), workspace, out, ExportOptions(personas=personas))
