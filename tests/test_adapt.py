"""Refitting the match model to analysts' judgements (`darkmap.resolve.adapt`), on a
scene world of 300 actors (seed 905, in the scene generator's tuning range)."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.resolve.adapt import MIN_JUDGED
from darkmap.resolve.judgements import judge
from darkmap.resolve.link import LinkOptions, link
from darkmap.resolve.review import judged_sample, review_queue
from darkmap.store.workspace import Workspace
from darkmap.training.sceneworld import SceneParams, make_scene_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    base = tmp_path_factory.mktemp("adapt")
    ws = Workspace.init(base / "ws")
    truth = make_scene_world(ws, SceneParams(actors=300, seed=905))
    link(ws)
    ws.close()
    yield base / "ws", truth


def _copy(world: tuple[Path, dict[str, Any]], tmp_path: Path) -> Workspace:
    shutil.copytree(world[0], tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


def _actor(truth: dict[str, Any]) -> dict[str, str]:
    return {a: str(v["actor"]) for a, v in truth["accounts"].items() if v.get("actor")}


def test_too_few_judgements_leave_the_model_as_shipped(
        world: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    actor = _actor(world[1])
    with _copy(world, tmp_path) as ws:
        for q in review_queue(ws, n=MIN_JUDGED - 5, seed=1):
            same = actor.get(q.a) == actor.get(q.b)
            judge(ws, q.a, q.b, "same" if same else "different", author="t")
        res = link(ws, LinkOptions(learn=True))
    fit = res.summary["judged_fit"]
    assert fit["fitted"] is False and fit["judged_pairs"] == MIN_JUDGED - 5
    assert "+judged" not in res.summary["model"]
    # the command says so (it said nothing, and read as refitted: found by an audit)
    out = CliRunner().invoke(main, ["link", "--learn", "-q", "-w", str(tmp_path / "ws")])
    assert out.exit_code == 0, out.output
    assert (f"warning: --learn did not refit: it needs {MIN_JUDGED} judged scored pairs"
            in out.stderr) and f"(has {MIN_JUDGED - 5}: " in out.stderr
    assert "learnt from" not in out.stdout


def test_judgements_against_the_handle_lower_its_factor_and_explanations_stay_exact(
        world: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """An analyst who says "different" to every pair the handle carries and "same" to
    the rest teaches the refit that the handle says less here: its factor falls below 1
    (were the judgements ignored, the factor would stay 1), and every stored link is
    still explained exactly by its base and contributions."""
    with _copy(world, tmp_path) as ws:
        for q in review_queue(ws, n=80, seed=2):
            top = q.evidence[0][0] if q.evidence else ""
            judge(ws, q.a, q.b, "different" if top == "handle" else "same", author="t")
        sample = judged_sample(ws)
        assert len(sample) == 80
        assert link(ws).summary["judged_fit"]["fitted"] is False   # only when asked
        res = link(ws, LinkOptions(learn=True))
        fit = res.summary["judged_fit"]
        assert fit["fitted"] is True, fit
        assert fit["group_factors"]["handle"] < 0.9, fit
        rows = ws.con.execute("SELECT score, signals FROM account_links "
                              "WHERE score BETWEEN 0.05 AND 0.95 LIMIT 50").fetchall()
    assert rows
    out = CliRunner().invoke(main, ["link", "--learn", "-q", "-w", str(tmp_path / "ws")])
    assert out.exit_code == 0 and "did not refit" not in out.stderr
    assert f"learnt from 80 judged pairs ({fit['same']} same, {fit['different']} different)" \
        in out.stdout and "handle x0." in out.stdout
    for score, signals in rows:
        sig = json.loads(signals)
        logit = sum(v["contribution"] for v in sig.values())
        assert abs(1 / (1 + math.exp(-logit)) - score) < 1e-3, sig
