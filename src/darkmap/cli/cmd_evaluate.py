"""`darkmap eval linking|drugs|chain|sales`: score results against ground truth or labels.

Each command imports its scorer when it runs (#21: ``--help`` loads no DuckDB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from darkmap.cli.common import emit_json, main, open_ws, say, workspace_option

__all__ = ["eval_group", "eval_linking_cmd", "eval_sales_cmd"]


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    say(title)
    for key, value in metrics.items():
        if isinstance(value, float):
            say(f"  {key:32s} {value:.4f}")
        elif isinstance(value, (int, str)) or value is None:
            say(f"  {key:32s} {value}")
        else:
            say(f"  {key:32s} {json.dumps(value, default=str)[:200]}")


@main.group("eval")
def eval_group() -> None:
    """Score results against a simulated world's truth or a label file.

    Example: darkmap eval linking --truth world/truth.json
    """


@eval_group.command("linking")
@click.option("--truth", type=click.Path(path_type=Path, exists=True), required=True)
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def eval_linking_cmd(truth: Path, workspace: Path | None, as_json: bool) -> None:
    """Pairwise and B-cubed precision/recall/F1 of personas against truth.json.

    The truth is a JSON object whose "accounts" maps each account id of the
    workspace (MARKET:HANDLE, as `darkmap persona show` lists them) to who holds it:

    \b
      {"accounts": {
         "dream:tramapro": {"actor": "a17", "market": "dream", "role": "vendor"},
         "hansa:tramapro": {"actor": "a17", "market": "hansa"}}}

    Accounts with the same "actor" are one person. Only vendors count ("role", by
    default "vendor"); "market" serves only to count the cross-market true pairs.
    Other keys are ignored: `darkmap simulate` writes such a file as truth.json
    beside its world. A named account the workspace never saw counts as a persona
    of its own (it costs recall); accounts the truth does not name are left out. A
    truth of which no account is in a persona here is refused: a score over no
    accounts would mean nothing.

    Example: darkmap eval linking --truth world/truth.json --json
    """
    from darkmap.evaluate.linking import eval_linking, load_truth  # noqa: PLC0415

    data = load_truth(truth)
    ws = open_ws(workspace, read_only=True)
    try:
        metrics = eval_linking(ws, data)
    finally:
        ws.close()
    if as_json:
        emit_json(metrics)
    else:
        _print_metrics("linking", dict(metrics))


def _pct(v: float | None) -> str:
    return "   -" if v is None else f"{100 * v:4.0f}%"


@eval_group.command("sales")
@click.option("--truth", type=click.Path(path_type=Path, exists=True), required=True,
              help="truth.json of the simulated world the workspace ingested.")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def eval_sales_cmd(truth: Path, workspace: Path | None, as_json: bool) -> None:
    """Median relative error, interval coverage and bias of orders, units and customers.

    Per account and per persona (against the truth of its member accounts); orders also
    by the basis of the estimate (a displayed counter, or feedback).

    Example: darkmap eval sales --truth world/truth.json -w case-42 --json
    """
    from darkmap.evaluate.linking import load_truth  # noqa: PLC0415
    from darkmap.evaluate.sales import eval_sales  # noqa: PLC0415

    data = load_truth(truth)
    ws = open_ws(workspace, read_only=True)
    try:
        report = eval_sales(ws, data)
    finally:
        ws.close()
    if as_json:
        emit_json(report)
        return
    stated = report["coverage_stated"]
    say(f"stated coverage of the intervals: {_pct(stated)}; scored "
        f"{report['accounts_scored']} accounts, {report['personas_scored']} personas")
    say(f"{'entity':9s} {'measure':22s} {'n':>5s} {'med.err':>7s} {'cover':>6s} {'bias':>6s}")
    for kind in ("accounts", "personas"):
        rows = dict(report[kind])  # type: ignore[literal-required,unused-ignore]
        by_basis = report[f"{kind}_orders_by_basis"]  # type: ignore[literal-required]
        rows.update({f"orders ({b})": s for b, s in by_basis.items()})
        for m, s in rows.items():
            if not s["n"]:
                continue
            say(f"{kind:9s} {m:22s} {s['n']:5d} {_pct(s['median_rel_error']):>7s} "
                f"{_pct(s['coverage']):>6s} {_pct(s['bias']):>6s}")
