"""`darkmap eval linking|drugs|chain`: score results against ground truth or labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from darkmap.cli.common import emit_json, main, open_ws, say, workspace_option
from darkmap.evaluate.linking import eval_linking, load_truth

__all__ = ["eval_group", "eval_linking_cmd"]


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

    Example: darkmap eval linking --truth world/truth.json --json
    """
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
