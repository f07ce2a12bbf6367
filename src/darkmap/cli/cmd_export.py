"""``darkmap export``: the evidence in another tool's format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from darkmap.cli.common import (
    OPS_SERVER_ENV,
    DarkmapError,
    country_value,
    emit_json,
    main,
    open_reference,
    open_ws,
    outside_workspace,
    workspace_option,
)
from darkmap.export import ExportOptions, run_export
from darkmap.plugins import exporter_names, exporters

__all__ = ["export_cmd"]


class _Formats(click.Choice):  # type: ignore[type-arg]
    """The installed export formats, read when the command runs or shows its help (so
    the help lists exactly the formats that are installed): by name, without loading the
    exporters (:func:`~darkmap.plugins.exporter_names`)."""

    def __init__(self) -> None:
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        """The names of the installed exporters."""
        return exporter_names()

    @choices.setter
    def choices(self, _value: Any) -> None:
        """Ignored: the choices are the registry's."""


def _case_subjects(ws: Any, user: str, cases: tuple[str, ...]) -> tuple[str, ...]:
    """The personas and accounts the cases link to (none linked: refused, as an export of
    everything would be the opposite of what was asked). With ``$DARKMAP_OPS_SERVER``
    the cases are the team server's, as for every `darkmap ops` command (they were read
    from the workspace alone, where a team's cases are not)."""
    from darkmap.ops.records import case_subjects  # noqa: PLC0415 - only with --case
    from darkmap.store.team import open_ops_server  # noqa: PLC0415

    def subjects_of(space: Any) -> tuple[str, ...]:
        found: list[str] = []
        for case in cases:
            subjects = case_subjects(space, user, case)
            if not subjects:
                raise DarkmapError(f"case {case} links no persona or account: nothing to "
                                   "export")
            found += subjects
        return tuple(found)

    server = os.environ.get(OPS_SERVER_ENV)
    if server:
        with open_ops_server(server, ws) as ops:
            return subjects_of(ops)
    return subjects_of(ws)


@main.command("export")
@click.argument("fmt", type=_Formats())
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output file (csv/parquet: a folder for several tables).")
@workspace_option
@click.option("--persona", "personas", multiple=True,
              help="Only this persona (id or member account id) and what hangs off it; "
                   "repeat for more.")
@click.option("--country", "countries", multiple=True, callback=country_value,
              help="Only the personas the jurisdiction estimate places in this ISO country; "
                   "repeat for more.")
@click.option("--case", "cases", multiple=True,
              help="Only the personas and accounts this case's records link to (a linked "
                   "listing, as a buy's, brings its account and persona), as --as may see "
                   "them (the read is audited); repeat for more.")
@click.option("--as", "as_user", default=None,
              help="With --case: the operational user reading the case (`darkmap ops`).")
@click.option("--extended", is_flag=True,
              help="ftm: use darkmap's extension schemata (Capture, Listing, PgpKey).")
@click.option("--table", "tables", multiple=True,
              help="csv/parquet: the table to write; repeat for more.")
@click.option("--all", "all_tables", is_flag=True, help="csv/parquet: every analytical table.")
def export_cmd(fmt: str, out: Path, workspace: Path | None, personas: tuple[str, ...],
               countries: tuple[str, ...], cases: tuple[str, ...], as_user: str | None,
               extended: bool, tables: tuple[str, ...], all_tables: bool) -> None:
    """Export the evidence in another tool's format: one of those in braces above, the
    installed exporters (docs/exports.md: what maps to what, how to open the result).

    \b
    Example: darkmap export ftm -o entities.ftm.json --country GB
    Example: darkmap export gexf -o case.gexf --case case-1a2b3c4d --as ana
    """
    if cases and not as_user:
        raise DarkmapError("--case needs --as USER: a case is read through that user's grants")
    if as_user and not cases:
        # --as names who reads a case; alone it would export the whole workspace as if
        # the user's grants narrowed it (as `ops grant --by` goes with --revoke only)
        raise click.UsageError("--as goes with --case: it names the user reading the case "
                               "(without --case the whole workspace is exported)")
    outside_workspace(out, workspace)
    # reading a case is audited: the workspace is then opened for writing, unless the
    # cases (and the trail) are the team server's
    ws = (open_reference(workspace) if cases and os.environ.get(OPS_SERVER_ENV)
          else open_ws(workspace, read_only=not cases))
    try:
        # the case narrows as --persona and --country do: together, the accounts every
        # option selects (it was their union: a persona outside the case left with it)
        options = ExportOptions(personas=personas, countries=countries,
                                subjects=_case_subjects(ws, as_user or "", cases),
                                extended=extended, tables=tables, all_tables=all_tables)
        counts = run_export(exporters()[fmt], ws, out, options)
        from darkmap.store.exports import missing_stages  # noqa: PLC0415 - imports pyarrow

        notes = [] if tables else missing_stages(ws.con)
    finally:
        ws.close()
    emit_json({"format": fmt, "out": str(out), "written": counts})
    for note in notes:  # on stderr: the file stays what the format says, exit status 0
        click.echo(f"note: {note}", err=True)
