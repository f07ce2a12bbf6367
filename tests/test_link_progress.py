"""A link run says what it is doing: each stage, in order, with its counts, to a
``progress`` callable (the API) and on a status line (``darkmap link``), which never
mixes into the command's output. Run on the real Dream seller dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import darkmap
from darkmap.cli import main
from darkmap.collect.ingest import ingest
from darkmap.resolve.link import STAGES
from darkmap.store.workspace import Workspace


@pytest.fixture(scope="module")
def dream(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("progress") / "ws"
    with Workspace.init(path) as ws:
        ingest(ws, [data_dir / "seized"])
    return path


def test_progress_is_told_every_stage_in_order_with_its_counts(dream: Path) -> None:
    told: list[str] = []
    with Workspace.open(dream) as ws:
        res = darkmap.link(ws, progress=told.append)
    assert len(told) == len(STAGES)
    for line, stage in zip(told, STAGES, strict=True):
        assert line.startswith(stage), (line, stage)
    accounts = res.summary["accounts"]
    assert accounts > 600  # the real dump's sellers
    assert f"among {accounts:,} accounts" in told[1]
    assert told[2].endswith(f": {res.summary['candidate_pairs']:,}")


def test_the_command_output_holds_no_status_text(dream: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["link", "-w", str(dream), "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["accounts"] > 600
    # without --json, on no terminal: the summary alone, no stage lines
    out = runner.invoke(main, ["link", "-w", str(dream)])
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("run ")
    assert not any(stage in out.output for stage in STAGES)
