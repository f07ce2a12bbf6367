"""`darkmap ingest` and `darkmap export`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from darkmap.cli.common import emit_json, main, open_ws, workspace_option
from darkmap.collect.ingest import FileResult, IngestSummary, ingest, iter_files
from darkmap.plugins import importers


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@workspace_option
@click.option("--importer", default=None, help="Force one importer (see `darkmap importers`).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest_cmd(paths: tuple[Path, ...], workspace: Path | None, importer: str | None,
               as_json: bool, quiet: bool) -> None:
    """Read saved pages, datasets, seized dumps and chain data into the workspace.

    Formats are detected per file; re-running is a no-op for files already read.

    Example: darkmap ingest -w case-42 ../shared/data/pages ../shared/data/listings
    """
    ws = open_ws(workspace, create=True)
    if importer and importer not in importers():
        raise click.BadParameter(f"unknown importer {importer!r}; see `darkmap importers`")
    total = sum(1 for _ in iter_files(list(paths)))
    with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"),
                  disable=quiet or as_json, transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(res: FileResult) -> None:
            bar.update(task, advance=1, description=Path(res.source).name[:40])

        summary = ingest(ws, list(paths), importer_name=importer, progress=tick)
    ws.close()
    if as_json:
        emit_json(summary.as_dict())
    else:
        _print_summary(summary)


def _print_summary(summary: IngestSummary) -> None:
    t = summary.totals()
    click.echo(f"run {summary.run_id}: {t.get('files', 0)} files "
               f"({t.get('files_already_ingested', 0)} already ingested, "
               f"{t.get('files_failed', 0)} failed)")
    click.echo(f"{'market':14s} {'files':>6s} {'read':>8s} {'stored':>8s} "
               f"{'quarant.':>8s} {'skipped':>8s}")
    for market, c in summary.by_market().items():
        click.echo(f"{market:14s} {c.get('files', 0):6d} {c.get('read', 0):8d} "
                   f"{c.get('stored', 0):8d} {c.get('quarantined', 0):8d} "
                   f"{c.get('skipped', 0):8d}")
    skipped = summary.skipped_by_page_type()
    if skipped:
        click.echo("skipped, by page type:")
        for reason, n in skipped.items():
            click.echo(f"  {n:6d}  {reason}")
    recs = summary.records()
    if recs:
        click.echo("records stored: " + ", ".join(f"{k} {v}" for k, v in recs.items()))
    for f in summary.files:
        if f.error:
            click.echo(f"error: {f.error}", err=True)


@main.command("importers")
def importers_cmd() -> None:
    """List the registered importers (market templates, datasets, dumps, chain data).

    Example: darkmap importers
    """
    for name, imp in sorted(importers().items()):
        click.echo(f"{name:24s} {imp.version:8s} {(imp.__doc__ or '').strip().splitlines()[0]}")
