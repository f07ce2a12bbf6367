"""`darkmap ingest`, `darkmap verify` and `darkmap export`.

File names and reasons come from the folders under investigation: everything printed
about them goes through :func:`~darkmap.model.display.for_display` (control and bidi
characters shown as escapes) and the JSON summary is pure ASCII.

Each command imports what it uses when it runs (#21: every call is a process of its own):
``darkmap ingest --help`` loads neither DuckDB nor numpy nor pyarrow, rich is imported only
when a progress bar is shown (not with ``--quiet`` or ``--json``), the dataset mappings
only for ``--mapping`` and ``darkmap importers``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.cli.common import (
    CapturedAt,
    main,
    nothing_left_at_exit,
    open_ws,
    open_ws_to_write,
    say_page_time_doubts,
    say_stale_chain,
    workspace_option,
)
from darkmap.collect.fs_policy import walk
from darkmap.deferred_imports import import_numpy_without_blas_threads
from darkmap.model.display import for_display, shell_arg

if TYPE_CHECKING:
    from darkmap.collect.ingest import FileResult, IngestSummary
    from darkmap.collect.verify import VerifyReport
    from darkmap.store.chain import StaleChain
    from darkmap.store.workspace import Workspace

_NAME_CHARS = 40  # of a file name in the progress line
_LINE_CHARS = 300  # of an error or reason line
_UNRECOGNISED_SHOWN = 20  # files listed by name in the summary
UNRECOGNISED_EXIT = 3
"""Exit status of ``darkmap ingest`` when files were recognised by no importer (1 is an
error, 2 a usage error)."""


def _ascii_json(data: Any) -> None:
    """Print JSON with every non-ASCII and control character escaped."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=True))


def _workspace_for_ingest(path: Path | None, create: bool) -> Workspace:
    """The workspace ingest writes to: it must exist, unless ``--init`` asks for it.

    A mistyped ``-w`` would otherwise start a new, empty workspace and put the evidence
    there.
    """
    return open_ws_to_write(path, create)


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@workspace_option
@click.option("--init", "create", is_flag=True,
              help="Create the workspace if it does not exist yet (else it must exist).")
@click.option("--importer", default=None, help="Force one importer (see `darkmap importers`).")
@click.option("--mapping", "mapping_files", multiple=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="A dataset mapping file (YAML, docs/data-formats.md) to use besides the "
                   "built-in ones; may be given several times.")
@click.option("--allow-unrecognised", is_flag=True,
              help="Exit 0 even when some files were recognised by no importer (they are "
                   "listed and counted as skipped either way).")
@click.option("--jobs", "-j", type=click.IntRange(min=0, max=64), default=0,
              show_default=True,
              help="Worker processes that extract saved pages ahead of the pipeline (0: "
                   "one per core this process may use, at most 8; 1: none). What is "
                   "stored is the same for any number.")
@click.option("--captured-at", "captured_at", type=CapturedAt(), default=None,
              metavar="DATE",
              help="When the given files were captured (ISO date or datetime, UTC; e.g. "
                   "2019-11-18): the observation time of saved pages that state none "
                   "themselves, instead of the files' modification times. Recorded in the "
                   "facts' method and the run. A file already ingested stays as it was.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest_cmd(paths: tuple[Path, ...], workspace: Path | None, create: bool,
               importer: str | None, mapping_files: tuple[Path, ...],
               allow_unrecognised: bool, jobs: int, captured_at: datetime | None,
               as_json: bool, quiet: bool) -> None:
    """Read saved pages, datasets, seized dumps and chain data into the workspace.

    Formats are detected per file; re-running is a no-op for files already read. Only
    regular files inside the folders given are read: links leaving them, FIFOs, devices,
    hidden and licence files are counted as skipped, with the reason. A file no importer
    recognises is listed and the exit status is 3, unless --allow-unrecognised; a
    file whose stored capture changed on disk since it was stored is not read, and the
    exit status is 1 (see `darkmap verify`).

    A saved page's observation time is the time the page states, else --captured-at,
    else the file's modification time; a copied file's time is the day it was copied
    (the run warns when the pages show nothing that recent).

    Example: darkmap ingest -w case-42 --captured-at 2019-11-18 ../shared/data/pages/empire
    """
    import_numpy_without_blas_threads()  # before the pipeline imports it: no BLAS in ingest
    from darkmap.collect.ingest import ingest  # noqa: PLC0415 - see the module docstring
    from darkmap.collect.prefetch import default_jobs  # noqa: PLC0415 - see the module docstring
    from darkmap.plugins import importers  # noqa: PLC0415 - see the module docstring
    from darkmap.store.page_times import (  # noqa: PLC0415 - see the module docstring
        page_time_doubts,
    )

    jobs = jobs or default_jobs()
    if importer and importer not in importers():
        raise click.BadParameter(f"unknown importer {importer!r}; see `darkmap importers`")
    if mapping_files:  # a bad mapping stops the run before anything is read
        from darkmap.importers.mappings import (  # noqa: PLC0415 - see the module docstring
            add_mapping_file,
        )

        for mf in mapping_files:
            add_mapping_file(mf)
    ws = _workspace_for_ingest(workspace, create)
    try:
        # the walk counts for the bar, and a missing path stops the run before any file
        total = sum(1 for _ in walk(list(paths)))
        if quiet or as_json:
            summary = ingest(ws, list(paths), importer_name=importer, jobs=jobs,
                             checkpoint=True, captured_at=captured_at)
        else:
            summary = _ingest_with_bar(ws, list(paths), importer, total, jobs, captured_at)
        stale = _stale_chain(ws, summary)
        doubts = page_time_doubts(ws.con, summary.run_id)
    finally:
        ws.close()
    nothing_left_at_exit(True)  # the store closed, its captures synced: see darkmap.cli.run
    if as_json:
        out: dict[str, Any] = dict(summary.as_dict())
        if stale is not None:  # this run stored chain data: the stale blocks, whatever run
            out["stale_chain"] = dataclasses.asdict(stale)
        _ascii_json(out)
    else:
        _print_summary(summary)
        if stale is not None:
            say_stale_chain(stale)
    # on stderr, in both modes: the JSON summary stays what it was
    say_page_time_doubts(doubts, err=True)
    changed = summary.changed_captures()
    if changed:
        # evidence the workspace holds was edited: a script must notice (exit 1, as
        # `darkmap verify` does), not take the run for a clean one (found by an audit)
        click.echo(f"Error: {len(changed)} file(s) not read: the workspace's capture of "
                   "each changed on disk since it was stored (not trusted); see `darkmap "
                   "verify`", err=True)
        raise click.exceptions.Exit(1)
    missed = summary.unrecognised()
    if missed and not allow_unrecognised:
        elsewhere = summary.read_elsewhere()
        commands = sorted({c.split(" FILE", 1)[0] for c in elsewhere.values()})
        others = (f"; {len(elsewhere)} of them for another command, not ingest: "
                  f"{', '.join(commands)}" if elsewhere else "")
        click.echo(f"Error: {len(missed)} file(s) recognised by no importer (see `darkmap "
                   "importers`, give a mapping with --mapping, or add --allow-unrecognised)"
                   f"{others}", err=True)
        raise click.exceptions.Exit(UNRECOGNISED_EXIT)


def _ingest_with_bar(ws: Workspace, paths: list[Path], importer: str | None,
                     total: int, jobs: int, captured_at: datetime | None) -> IngestSummary:
    """:func:`~darkmap.collect.ingest.ingest` under a progress bar: files done of the
    ``total`` the walk found, and the name of the last one; while a big file is read,
    its name and the records read from it so far."""
    from rich.markup import escape  # noqa: PLC0415 - see the module docstring
    from rich.progress import (  # noqa: PLC0415 - see the module docstring
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from darkmap.collect.ingest import ingest  # noqa: PLC0415 - see the module docstring

    with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"),
                  transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(res: FileResult) -> None:
            name = res.source.rsplit("/", 1)[-1]
            bar.update(task, advance=1,
                       description=escape(for_display(name, max_chars=_NAME_CHARS)))

        def reading(source: str, records: int) -> None:
            name = escape(for_display(source.rsplit("/", 1)[-1], max_chars=_NAME_CHARS))
            bar.update(task, description=f"{name}: {records:,} records read")

        return ingest(ws, paths, importer_name=importer, progress=tick, jobs=jobs,
                      reading=reading, checkpoint=True, captured_at=captured_at)


def _stale_chain(ws: Workspace, summary: IngestSummary) -> StaleChain | None:
    """The stale blocks and transactions left out, when this run stored chain data."""
    if not any("stale_blocks" in f.details for f in summary.files if not f.already):
        return None
    from darkmap.store.chain import stale_chain  # noqa: PLC0415 - see the module docstring

    return stale_chain(ws.con)


def _print_summary(summary: IngestSummary) -> None:
    t = summary.totals()
    click.echo(f"run {summary.run_id}: {t.get('files', 0)} files "
               f"({t.get('files_already_ingested', 0)} already ingested, "
               f"{t.get('files_failed', 0)} failed)")
    click.echo(f"{'market':14s} {'files':>6s} {'read':>8s} {'stored':>8s} "
               f"{'quarant.':>8s} {'skipped':>8s}")
    for market, c in summary.by_market().items():
        click.echo(f"{for_display(market, max_chars=40):14s} {c.get('files', 0):6d} "
                   f"{c.get('read', 0):8d} {c.get('stored', 0):8d} "
                   f"{c.get('quarantined', 0):8d} {c.get('skipped', 0):8d}")
    click.echo(f"units stored: {t.get('stored_new', 0)} new, {t.get('already_stored', 0)} "
               f"already stored")
    skipped = summary.skipped_by_page_type()
    if skipped:
        click.echo("skipped, by page type:")
        for reason, n in skipped.items():
            click.echo(f"  {n:6d}  {for_display(reason, max_chars=_LINE_CHARS)}")
    limits = summary.limits()
    if limits or t.get("fields_cut") or t.get("skipped_bytes"):
        parts = [f"{name} {n}" for name, n in limits.items()]
        click.echo(f"limits: {', '.join(parts) or 'none'}; fields cut {t.get('fields_cut', 0)}"
                   f", bytes skipped {t.get('skipped_bytes', 0)}")
    recs = summary.records()
    if recs:
        click.echo("records stored: " + ", ".join(f"{k} {v}" for k, v in recs.items()))
    notes = summary.notes()
    if notes:
        click.echo("notes:")
        for source, said in list(notes.items())[:_UNRECOGNISED_SHOWN]:
            click.echo(f"  {for_display(source, max_chars=_LINE_CHARS)}")
            for note in said:
                click.echo(f"    {for_display(note, max_chars=_LINE_CHARS)}")
    removed = summary.partial_captures_removed
    if removed:
        click.echo(f"removed {len(removed)} partial capture file(s) that killed runs left "
                   "in captures/")
    missed = summary.unrecognised()
    if missed:
        click.echo(f"not recognised by any importer: {len(missed)} file(s)")
        elsewhere = summary.read_elsewhere()
        why = summary.why_unrecognised()
        for source in missed[:_UNRECOGNISED_SHOWN]:
            click.echo(f"  {for_display(source, max_chars=_LINE_CHARS)}")
            if source in elsewhere:
                command = for_display(elsewhere[source], max_chars=_LINE_CHARS).replace(
                    "FILE", shell_arg(source), 1)
                click.echo(f"    not for ingest: {command}")
            elif source in why:
                click.echo(f"    nearly: {for_display(why[source], max_chars=_LINE_CHARS)}")
        if len(missed) > _UNRECOGNISED_SHOWN:
            click.echo(f"  ... and {len(missed) - _UNRECOGNISED_SHOWN} more (--json lists all)")
    for f in summary.files:
        if f.error:
            click.echo(f"error: {for_display(f.error, max_chars=_LINE_CHARS)}", err=True)


@main.command("verify")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify_cmd(workspace: Path | None, as_json: bool, quiet: bool) -> None:
    """Re-hash every capture: report those changed on disk or missing (exit 1 if any).

    Example: darkmap verify -w case-42
    """
    from darkmap.collect.verify import verify_captures  # noqa: PLC0415 - see the module docstring

    ws = open_ws(workspace, read_only=True)
    try:
        report = verify_captures(ws) if quiet or as_json else _verify_with_bar(ws)
    finally:
        ws.close()
    if as_json:
        _ascii_json(report.as_dict())
    else:
        _print_verify(report)
    if not report.intact:
        raise click.exceptions.Exit(1)


def _verify_with_bar(ws: Workspace) -> VerifyReport:
    """:func:`~darkmap.collect.verify.verify_captures` under a progress bar (bytes hashed)."""
    from rich.progress import (  # noqa: PLC0415 - see the module docstring
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from darkmap.collect.verify import verify_captures  # noqa: PLC0415 - see the module docstring

    with Progress(TextColumn("[bold]verify"), BarColumn(), DownloadColumn(),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return verify_captures(ws, progress=tick)


def _print_verify(report: VerifyReport) -> None:
    from darkmap.collect.verify import (  # noqa: PLC0415 - see the module docstring
        TEMPORARY_HINT,
        UNREFERENCED_HINT,
    )

    stray = ""
    if report.unreferenced or report.temporary:
        stray = (f"; in the capture store, {len(report.unreferenced)} unreferenced file(s), "
                 f"{len(report.temporary)} temporary file(s)")
    click.echo(f"{report.checked} captures checked ({report.bytes:,} bytes): {report.ok} "
               f"intact, {len(report.changed)} changed, {len(report.missing)} missing"
               + (f", {report.not_read} paths not read" if report.not_read else "") + stray)
    for p in report.problems:
        click.echo(f"{p.problem}: {p.sha256}  {for_display(p.source, max_chars=_LINE_CHARS)}",
                   err=True)
    # not tampering (the exit status stays 0) but bytes the workspace holds without saying
    # where they came from (found by an audit of kills: a killed big file's capture)
    for f in report.unreferenced:
        click.echo(f"unreferenced: {for_display(f.path, max_chars=_LINE_CHARS)} "
                   f"({f.size:,} bytes)")
    if report.unreferenced:
        click.echo(f"  ({UNREFERENCED_HINT})")
    for f in report.temporary:
        who = "still running" if f.writer_running else "gone"
        click.echo(f"temporary: {for_display(f.path, max_chars=_LINE_CHARS)} "
                   f"({f.size:,} bytes; writer pid {f.pid} {who})")
    if report.temporary:
        click.echo(f"  ({TEMPORARY_HINT})")


@main.command("importers")
@click.option("--mapping", "mapping_files", multiple=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="Also load this mapping file (checked, then listed with the others).")
def importers_cmd(mapping_files: tuple[Path, ...]) -> None:
    """List the registered importers (market templates, datasets, dumps, chain data) and the
    dataset mappings loaded.

    Mappings come from the built-in folder, the folders in $DARKMAP_MAPPINGS and --mapping.

    Example: darkmap importers --mapping my-dataset.yaml
    """
    from darkmap.importers.mappings import (  # noqa: PLC0415 - see the module docstring
        add_mapping_file,
        mappings,
    )
    from darkmap.plugins import (  # noqa: PLC0415 - see the module docstring
        importers,
        readers_elsewhere,
    )

    for mf in mapping_files:
        add_mapping_file(mf)
    for name, imp in sorted(importers().items()):
        click.echo(f"{name:24s} {imp.version:8s} {(imp.__doc__ or '').strip().splitlines()[0]}")
    click.echo("")
    click.echo("files another command reads (never ingested; named when ingest meets one):")
    for name, other in sorted(readers_elsewhere().items()):
        click.echo(f"  {for_display(name, max_chars=40):28s} "
                   f"{for_display(other.what, max_chars=60)}: "
                   f"{for_display(other.command, max_chars=_LINE_CHARS)}")
    click.echo("")
    click.echo("dataset mappings (importer csv or sqldump):")
    for m in sorted(mappings(), key=lambda m: (m.format, m.name)):
        where = for_display(m.path if m.path is not None else "?", max_chars=_LINE_CHARS)
        click.echo(f"  {m.format:4s} {for_display(m.name, max_chars=40):28s} market "
                   f"{for_display(m.market_text(), max_chars=40):20s} {where}")
