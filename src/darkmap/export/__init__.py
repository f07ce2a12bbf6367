"""Exporters: FollowTheMoney, GEXF/GraphML, STIX 2.1, MISP, CSV/Parquet.

Each format is one module with an exporter class (declared in pyproject.toml under the
entry point group ``darkmap.exporters``); :func:`run_export` hands it the workspace and
the :class:`ExportOptions` (subgraph selection and format options).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError
from darkmap.export.options import ExportOptions
from darkmap.model.outputs import atomic_file
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
    ``tables``) is a :class:`BadInputError`, and so is ``out`` naming a folder for an
    exporter that writes one file (every one without ``tables``), or the workspace
    folder, or its database, captures or anything else it keeps
    (:func:`~darkmap.store.workspace.refuse_output`). An exporter whose
    ``export`` takes no options (a plug-in written for the two-argument protocol) runs
    without them; asking it for any is a :class:`BadInputError`.
    """
    options = options or ExportOptions()
    takes = set(getattr(exporter, "format_options", ()))
    extra = _format_options(options) - takes
    if extra:
        flags = {"extended": "--extended", "tables": "--table/--all"}
        raise BadInputError(f"the {exporter.name} exporter does not take "
                            f"{', '.join(flags[x] for x in sorted(extra))}")
    # `darkmap export --help` imports this module: DuckDB's import waits for an export
    from darkmap.store.workspace import refuse_output  # noqa: PLC0415

    where = getattr(workspace, "path", None)
    if isinstance(where, Path):  # never over the workspace being read (audit finding 1)
        refuse_output(out, where)
    if "tables" not in takes and out.is_dir():
        # refused before any work, naming what was given (else the error named the
        # hidden partial file that could not be renamed onto the folder)
        raise BadInputError(f"{out} is a folder; give a file name")
    if len(inspect.signature(exporter.export).parameters) >= 3:
        return exporter.export(workspace, out, options)  # type: ignore[call-arg]
    if options != ExportOptions():
        raise BadInputError(f"the {exporter.name} exporter takes no options "
                            "(--persona, --country, --extended, --table, --all)")
    return exporter.export(workspace, out)


def _unseen(entities: Iterable[Any], seen: set[str]) -> Iterator[Any]:
    """``entities`` whose id is not in ``seen`` yet, each id once."""
    for e in entities:
        if e.id not in seen:
            seen.add(e.id)
            yield e


def ftm_subgraph(workspace: object, personas: tuple[str, ...], out: Path,
                 money: Mapping[str, Any] | None = None) -> dict[str, int]:
    """The stock FtM entities of the subgraph of ``personas`` written to ``out`` (the
    per-country packages' machine-readable bundle), then those of the package's
    ``money`` (its wallets' traced flows and its seized wallets:
    :mod:`darkmap.export.ftm_package`) that the subgraph does not hold; counts per
    schema. Without personas, the money alone."""
    from darkmap.export.ftm import FtmExporter, read_ids, write_lines  # noqa: PLC0415
    from darkmap.export.ftm_package import money_entities  # noqa: PLC0415 - slow import

    if not personas and not money:
        raise BadInputError("an FtM subgraph needs at least one persona")
    counts: dict[str, int] = {}
    # written in full under a partial name, then renamed: a kill leaves no file that holds
    # the subgraph without the money
    with atomic_file(out) as part:
        if personas:
            counts = run_export(FtmExporter(), workspace, part,
                                ExportOptions(personas=personas))
        if money:
            have = read_ids(part) if personas else set()
            fresh = _unseen(money_entities(money, set(have)), have)
            for k, v in write_lines(fresh, part, append=True).items():
                counts[k] = counts.get(k, 0) + v
    return dict(sorted(counts.items()))
