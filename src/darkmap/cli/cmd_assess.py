"""`darkmap assess`, `darkmap targets` and `darkmap eval drugs`.

Each command imports the library it uses when it runs (#21): the assessor and the store
load numpy, pyarrow and DuckDB, which ``--help`` does not need.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.cli.cmd_evaluate import eval_group
from darkmap.cli.common import (
    FiniteFloat,
    checked,
    columns,
    country_value,
    emit_json,
    line_width,
    main,
    open_ws,
    pad,
    say,
    say_parts,
    short,
    status_line,
    workspace_option,
)
from darkmap.model.display import csv_cell, lookalike_mark, shell_arg

if TYPE_CHECKING:
    from darkmap.assess.harm import TargetRow

__all__ = ["assess_cmd", "eval_drugs_cmd", "targets_cmd"]

_RATE = FiniteFloat(0.0, 1.0, min_open=True)


@main.command("assess")
@workspace_option
@click.option("--feedback-rate", type=_RATE, default=None,
              help="Fixed share of orders that leave feedback, for markets that show no "
                   "counters (default: borrowed from the markets that do).")
@click.option("--feedback-rate-range", type=(_RATE, _RATE), default=None,
              help="Low and high of that fixed rate (its 90% range).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No status line while assessing.")
def assess_cmd(workspace: Path | None, feedback_rate: float | None,
               feedback_rate_range: tuple[float, float] | None, as_json: bool,
               quiet: bool) -> None:
    """Classify and normalise every listing; estimate sales and jurisdictions.

    Idempotent: a rerun rebuilds the same assessments.

    Example: darkmap assess -w case-42
    """
    rng = feedback_rate_range or (None, None)
    from darkmap.assess.sales import SalesParams  # noqa: PLC0415
    from darkmap.assess.stage import assess_workspace  # noqa: PLC0415
    from darkmap.store.overview import workspace_stage  # noqa: PLC0415

    params = SalesParams(feedback_rate, rng[0], rng[1])
    ws = open_ws(workspace)
    try:
        if quiet or as_json:
            summary = assess_workspace(ws, params)
        else:
            with status_line("assess") as stage:
                summary = assess_workspace(ws, params, stage)
        after = workspace_stage(ws.con)
    finally:
        ws.close()
    if as_json:
        emit_json(summary)
        return
    say(f"assessed {summary['listings_assessed']:,} listings "
        f"({summary['listings_per_second'] or 0:,.0f}/s); "
        f"fentanyl risk {summary['fentanyl_risk']}, "
        f"counterfeit pills {summary['counterfeit_pill']}")
    for cls, n in sorted(summary["by_class"].items(), key=lambda kv: -kv[1]):
        say(f"  {cls:16s} {n:>8,d}")
    if after["next"] == "darkmap link":  # the personas are missing or out of date
        say_parts(f"next: darkmap link ({after['why']})", "then darkmap targets")
    else:
        say("next: darkmap targets (the personas ranked by harm, with their ids for "
            "`darkmap persona show`)")


_CSV_FIELDS = ("rank", "persona_id", "label", "harm_score", "country", "country_confidence",
               "listings", "drug_listings", "fentanyl_listings", "counterfeit_listings",
               "orders_est", "orders_low", "orders_high", "revenue_usd", "revenue_usd_low",
               "revenue_usd_high", "buyers_distinct_min", "active_from", "active_to",
               "top_substances", "accounts", "evidence", "pills_est", "pills_low",
               "pills_high", "counterfeit_pills_est", "fentanyl_risk_pills_est",
               "customers_est", "customers_low", "customers_high", "sales_basis",
               "sales_evidence", "harm_from_listings", "harm_from_activity", "harm_rests_on",
               "markets", "markets_account_only")


def _check_limit(limit: int) -> None:
    """:func:`darkmap.assess.harm.check_limit`, imported when an option is given."""
    from darkmap.assess.harm import check_limit  # noqa: PLC0415

    check_limit(limit)


@main.command("targets")
@workspace_option
@click.option("--country", default=None, callback=country_value,
              help="Only personas operating from this ISO country.")
@click.option("--limit", type=int, default=20, show_default=True, callback=checked(_check_limit),
              help="How many rows (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print CSV (safe to open in a spreadsheet: see the user guide).")
def targets_cmd(workspace: Path | None, country: str | None, limit: int, as_json: bool,
                as_csv: bool) -> None:
    """Rank personas by harm score (fentanyl and counterfeit pills weigh most).

    Runs `darkmap assess` first if the workspace has no assessments yet.

    Example: darkmap targets -w case-42 --country US --limit 10
    """
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    rows = _ranked(workspace, country, limit or None)
    if as_json:
        emit_json(rows)
    elif as_csv:
        click.echo(targets_csv(rows), nl=False)
    elif not rows:
        say(f"no persona the jurisdiction estimate places in {country}" if country else
            "no persona to rank: the workspace has no listing (ingest pages first: "
            "`darkmap ingest`)")
    else:
        _print_targets(rows)


def _ranked(workspace: Path | None, country: str | None, limit: int | None) -> list[TargetRow]:
    """The ranking, read from a read-only workspace; assessed first (read-write) when the
    workspace has no assessments yet. An assessment out of date (evidence ingested or
    personas re-linked since) is still ranked, with one line on stderr saying so."""
    from darkmap.assess.harm import rank_targets  # noqa: PLC0415
    from darkmap.assess.stage import assess_workspace  # noqa: PLC0415
    from darkmap.store.assessment import count_assessments  # noqa: PLC0415
    from darkmap.store.overview import assessment_age, assessment_note  # noqa: PLC0415

    ws = open_ws(workspace, read_only=True)
    try:
        if count_assessments(ws.con):
            note = assessment_note(assessment_age(ws.con))
            if note:
                say(f"note: {note}", err=True)
            return rank_targets(ws, country, limit)
    finally:
        ws.close()
    ws = open_ws(workspace)
    try:
        assess_workspace(ws)
        return rank_targets(ws, country, limit)
    finally:
        ws.close()


def targets_csv(rows: list[TargetRow]) -> str:
    """The target list as CSV text; every text cell through
    :func:`~darkmap.model.display.csv_cell` (a handle starting with ``=``, ``+``, ``-`` or
    ``@`` is text to a spreadsheet, not a formula; control and bidi characters escaped;
    no cell over 32,000 characters)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(_CSV_FIELDS)
    for i, r in enumerate(rows, 1):
        # no sales captured: empty cells, as the table's "-", not orders of 0 (found by a
        # documentation audit: unknown and none looked the same in a spreadsheet)
        orders = ["", "", ""] if r["sales_basis"] == "not captured" else [
            r["orders_est"], *r["orders_range"]]
        cells = [i, r["persona_id"], r["label"], r["harm_score"], r["country"] or "",
                 r["country_confidence"], r["listings"], r["drug_listings"],
                 r["fentanyl_listings"], r["counterfeit_listings"], *orders,
                 r["revenue_usd"] or "",
                 r["revenue_usd_range"][0] or "", r["revenue_usd_range"][1] or "",
                 r["buyers_distinct_min"], r["active_from"] or "", r["active_to"] or "",
                 json.dumps(r["top_substances"]), ";".join(r["accounts"]),
                 json.dumps(r["evidence"], default=str, ensure_ascii=False),
                 *_triple(r["pills"]), _first(r["counterfeit_pills"]),
                 _first(r["fentanyl_risk_pills"]), *_triple(r["customers"]),
                 r["sales_basis"] or "", "yes" if r["sales_evidence"] else "no",
                 r["harm_parts"]["listings"], r["harm_parts"]["activity"],
                 r["harm_rests_on"], ";".join(r["markets"]),
                 ";".join(r["markets_account_only"])]
        w.writerow([csv_cell(c) for c in cells])
    return buf.getvalue()


def _triple(v: list[float] | None) -> list[float | str]:
    """[estimate, low, high], or three empty cells."""
    return list(v) if v else ["", "", ""]


def _first(v: list[float] | None) -> float | str:
    return v[0] if v else ""


_WHO = (21, 30)
"""Narrowest and widest the persona column of `targets` gets (terminal columns)."""


def _who(r: TargetRow, width: int) -> str:
    """The persona id and its label in ``width`` characters: the id whole where it fits
    (a persona id always does; before `darkmap link` an account id stands for the
    persona, and holds its handle, so no label follows it)."""
    pid = r["persona_id"]
    if not pid.startswith("p-"):
        return short(pid, width)
    return f"{pid} {short(r['label'] or '', max(width - columns(pid) - 1, 1))}".rstrip()


def _who_mark(r: TargetRow) -> str:
    """The mark after the persona's label (or the account id standing for it) when it
    may print like a name it is not (:func:`~darkmap.model.display.lookalike_mark`;
    that row's columns move), else ""."""
    pid = r["persona_id"]
    mark = (lookalike_mark(r["label"] or "", account_id=False) if pid.startswith("p-")
            else lookalike_mark(pid))
    return f" {mark}" if mark else ""


_SUBSTANCES = 15
"""Columns the top substances keep at least in the `targets` table (15: the harm's `*`
took one from them, not from the label)."""


def _print_targets(rows: list[TargetRow]) -> None:
    """The target list as a text table within :func:`~darkmap.cli.common.line_width`
    columns: the persona id to paste into `darkmap persona show` with its label (cut,
    escapes shown); the harm score, marked ``*`` when no sales evidence lies behind it
    (the score is then no measure of volume; one column, so the label keeps its room);
    the country it ships from with how sure that is;
    fentanyl-risk and counterfeit-pill listings; orders and revenue ("estimate (90%
    range)", "-" when not captured); pills and customers when the line has room for them;
    the top substances in what is left. Then what the columns mean and what to run
    next."""
    from darkmap.assess.harm import NO_SALES_LEGEND, harm_mark  # noqa: PLC0415

    if not rows:
        return
    width = line_width()
    cells: list[dict[str, str]] = []
    for i, r in enumerate(rows, 1):
        cells.append({
            "#": str(i),
            "harm": f"{r['harm_score']:.1f}{harm_mark(r)}",
            "persona": "",
            "from": (f"{short(r['country'], 2)} {r['country_confidence']:.2f}"
                     if r["country"] else "--"),
            "fent": str(r["fentanyl_listings"]), "cfp": str(r["counterfeit_listings"]),
            "orders (90%)": "-" if r["sales_basis"] == "not captured" else _span(
                [r["orders_est"], *r["orders_range"]]),
            "revenue": f"{r['revenue_usd']:,.0f}" if r["revenue_usd"] else "-",
            "pills (90%)": _span(r["pills"]), "customers (90%)": _span(r["customers"]),
            "top substances": ", ".join(list(r["top_substances"])[:3])})
    cols = ["#", "harm", "persona", "from", "fent", "cfp", "orders (90%)", "revenue"]
    wide = {c: max(len(c), *(columns(x[c]) for x in cells)) for c in cells[0]}
    wide["persona"] = min(_WHO[1], max(columns(_who(r, _WHO[1])) for r in rows))

    def used(names: list[str]) -> int:
        return sum(wide[c] + 1 for c in names) + 1

    # the substances keep at least _SUBSTANCES columns: the label gives way first, down
    # to the narrowest persona column; pills and customers only where they fit
    over = used(cols) + _SUBSTANCES - width
    if over > 0:
        wide["persona"] = max(_WHO[0], wide["persona"] - over)
    for x, r in zip(cells, rows, strict=True):
        x["persona"] = _who(r, wide["persona"]) + _who_mark(r)
    for extra in ("pills (90%)", "customers (90%)"):
        if used([*cols, extra]) + _SUBSTANCES <= width:
            cols.append(extra)
    room = max(width - used(cols), _SUBSTANCES)

    def line(values: dict[str, str]) -> str:
        parts = [pad(values[c], wide[c], right=c not in ("persona", "from"))
                 for c in cols]
        return " ".join(parts) + "  " + short(values["top substances"], room)

    say(line({c: c for c in wide}).rstrip())
    for x in cells:
        say(line(x).rstrip())
    note = ("harm: 0-100, fentanyl and counterfeit pills weigh most (each full at 3 flagged"
            f" listings); {NO_SALES_LEGEND} (on what it"
            " rests: --json, --csv); persona: its id and"
            " label; from: the country shipped from"
            " and how sure (0-1; -- unknown); fent/cfp: fentanyl-risk and counterfeit-pill"
            " listings; revenue in USD; -: no sales captured (revenue: or no price known, as"
            " for price bins)" + ("" if "customers (90%)" in cols else
                                  "; pills, customers: --json, --csv"))
    for text in textwrap.wrap(note, max(width - 2, 40), subsequent_indent="  ",
                              break_on_hyphens=False):
        say(text)
    say_parts(f"next: darkmap persona show {shell_arg(rows[0]['persona_id'])} "
              "(accounts, keys, links and why)", "--json or --csv: each target's evidence")


def _span(v: list[float] | None) -> str:
    """"est (low-high)" or "-"."""
    return f"{v[0]:,.0f} ({v[1]:,.0f}-{v[2]:,.0f})" if v else "-"


def _fmt3(v: float | None) -> str:
    """A score with three decimals, ``-`` when there is none."""
    return "-" if v is None else f"{v:.3f}"


@eval_group.command("drugs")
@click.option("--labels", type=click.Path(path_type=Path, exists=True), required=True,
              help="Label CSV (listing_id, drug_class, substance, counterfeit_pill, ...).")
@click.option("--listings", type=click.Path(path_type=Path, exists=True), default=None,
              help="Source listings (Hansa CSV, Agora CSV or folder, or a CSV with "
                   "listing_id,title). Without it the workspace is used.")
@workspace_option
@click.option("--split", default=None,
              help="Only label rows whose split column (see --split-column) equals this.")
@click.option("--split-column", default="split", show_default=True,
              help="The label column --split selects by.")
@click.option("--errors", "max_errors", type=click.IntRange(min=0), default=25,
              show_default=True, help="Mistakes listed in the report (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def eval_drugs_cmd(labels: Path, listings: Path | None, workspace: Path | None,
                   split: str | None, split_column: str, max_errors: int,
                   as_json: bool) -> None:
    """Score drug classes, flags and quantities against hand labels.

    Example: darkmap eval drugs --labels tests/data/labels/hansa_sample.csv
             --listings ../shared/data/listings/hansa-2016-12.csv
    """
    from darkmap.evaluate.drugs import eval_drugs  # noqa: PLC0415

    if listings is None:
        ws = open_ws(workspace, read_only=True)
        try:
            report = eval_drugs(labels, workspace=ws, split=split, errors=max_errors,
                                split_column=split_column)
        finally:
            ws.close()
    else:
        report = eval_drugs(labels, listings, split=split, errors=max_errors,
                            split_column=split_column)
    if as_json:
        emit_json(report)
        return
    fmt = _fmt3
    say(f"{report['n']} labelled listings ({len(report['missing'])} not found); scored: "
        f"{report.get('scored', 'assessor run now')}")
    say(f"drug_class  accuracy {fmt(report['drug_class']['accuracy'])}  "
        f"macro-F1 {fmt(report['drug_class']['macro_f1'])}")
    say(f"substance   accuracy {fmt(report['substance']['accuracy'])}  "
        f"macro-F1 {fmt(report['substance']['macro_f1'])}")
    for flag in ("counterfeit_pill", "fentanyl_risk"):
        f = report[flag]
        say(f"{flag:16s} precision {fmt(f['precision'])}  recall {fmt(f['recall'])}  "
            f"(positives {f['positives']})")
    say(f"units exact {fmt(report['units']['exact_match'])}  "
        f"dose exact {fmt(report['dose_mg']['exact_match'])}  "
        f"unit_kind {fmt(report['unit_kind']['accuracy'])}")
    for cls, pc in report["drug_class"].get("per_class", {}).items():
        say(f"  {cls:22s} precision {fmt(pc['precision'])}  recall {fmt(pc['recall'])}  "
            f"(n {pc['support']})")
    _say_mistakes(report["errors"], max_errors)


def _say_mistakes(mistakes: list[Any], max_errors: int) -> None:
    """The mistakes the report lists: each listing, its title and every field it got
    wrong, as predicted against the label (found by a documentation audit: ``--errors``
    listed them in ``--json`` only)."""
    if not mistakes:
        return
    more = " (--errors N lists more)" if len(mistakes) >= max_errors else ""
    say(f"mistakes, the first {len(mistakes)}{more}:")
    for m in mistakes:
        fields = "; ".join(f"{f} {_shown(m['predicted'].get(f))} (label "
                           f"{_shown(m['gold'].get(f))})" for f in m["wrong"])
        say(f"  {short(m['listing_id'], 24)}  {short(m['title'], 60)}: {fields}")


def _shown(value: object) -> str:
    """A predicted or labelled value as the report prints it (``-`` for none)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return short(value, 30)
