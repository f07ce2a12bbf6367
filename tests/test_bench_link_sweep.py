"""``bench/link_sweep.py`` measures the linker that ships (#16).

Its figures (calibration by band, scores at other merge thresholds, the clustering's
objective for the personas found and for the truth) are only worth reading while the
stages it runs in process are those of ``darkmap link``: at the default threshold it must
find the personas a stored link run finds, and score them as ``darkmap eval linking``
does. Checked on a small world of the linker's own generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench_loader import load_bench

from darkmap.evaluate.linking import eval_linking
from darkmap.resolve.link import link
from darkmap.resolve.options import DEFAULT_THRESHOLD
from darkmap.store.workspace import Workspace
from darkmap.training.synthworld import WorldParams, make_world


def _bench() -> Any:
    mod = load_bench("link_sweep")
    return mod


@pytest.fixture(scope="module")
def kept_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A world kept as ``bench/link_generators.py --keep`` keeps one, linked once."""
    base = tmp_path_factory.mktemp("lg") / "synthworld-5-120"
    ws = Workspace.init(base / "ws")
    truth = make_world(ws, WorldParams(actors=120, seed=5))
    (base / "truth.json").write_text(json.dumps(truth, default=str), encoding="utf-8")
    link(ws)
    report = eval_linking(ws, truth)
    ws.close()
    return base, dict(report)


def test_the_sweep_reproduces_the_stored_link_run(kept_world: tuple[Path, Any]) -> None:
    base, report = kept_world
    out = _bench().sweep(base, [0.5, DEFAULT_THRESHOLD])
    default = next(r for r in out["thresholds"] if r["threshold"] == DEFAULT_THRESHOLD)
    for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1"):
        assert default[k] == pytest.approx(report[k], abs=1e-4), k
    # every scored pair is in one band, and the shift is a number
    cal = out["calibration"]
    assert sum(b["pairs"] for b in cal["bands"]) == out["scored_pairs"]
    assert -4.0 <= cal["calibrating_shift"] <= 4.0
    # the personas found never hold a pair kept apart by its own evidence
    obj = out["objective"]
    assert obj["found"]["kept_apart_pairs_inside"] == 0
    assert obj["truth"]["unscored_pairs_inside"] >= 0
    # a stricter threshold merges no more pairs than the default
    strict = next(r for r in out["thresholds"] if r["threshold"] == 0.5)
    assert strict["pairwise_recall"] <= default["pairwise_recall"]
