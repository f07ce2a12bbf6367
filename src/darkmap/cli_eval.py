"""`darkmap eval linking|drugs|chain`: score the workspace against ground truth."""

from __future__ import annotations

import click

from darkmap.cli import main

__all__ = ["eval_group"]


@main.group("eval")
def eval_group() -> None:
    """Score results against a simulated world's truth or a label file.

    Example: darkmap eval linking --truth world/truth.json
    """
