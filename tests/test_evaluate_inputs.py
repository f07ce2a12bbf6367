"""Evaluation inputs: truth files that are missing or not truth, scored on a real
(empty) workspace; stored evaluations round-trip through the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.errors import BadInputError, NotFoundError
from darkmap.evaluate.clustering import eval_chain
from darkmap.evaluate.linking import eval_linking, load_truth
from darkmap.store.evaluations import save_evaluation, stored_evaluations
from darkmap.store.workspace import Workspace


def test_truth_files_that_cannot_be_used(tmp_path: Path, ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="truth file not found"):
        eval_linking(ws, tmp_path / "truth.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInputError, match="cannot read truth file"):
        load_truth(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BadInputError, match="not a JSON object"):
        load_truth(listed)
    with pytest.raises(BadInputError, match=r"truth\.json document"):
        eval_chain(ws, [1, 2])  # type: ignore[arg-type]


def test_scores_on_an_empty_workspace(ws: Workspace) -> None:
    truth = {"accounts": {"m:a": {"actor": "x", "market": "m"},
                          "n:a": {"actor": "x", "market": "n"}}}
    # a truth that matches no account would score perfectly over nothing: refused
    with pytest.raises(BadInputError, match="none of them is in a persona"):
        eval_linking(ws, truth)
    chain = eval_chain(ws, {"chain": {}})
    assert chain["clustering"] == {"addresses": 0} and chain["cashouts"] == {"total": 0}


def test_stored_evaluations_round_trip(ws: Workspace) -> None:
    save_evaluation(ws.con, "linking", {"f1": 0.5}, "world/truth.json")
    save_evaluation(ws.con, "linking", {"f1": 0.75}, "world/truth.json")   # replaces
    save_evaluation(ws.con, "chain", {"purity": 1.0}, None)
    rows = stored_evaluations(ws.con)
    assert [(r.key, r.result, r.truth_source) for r in rows] == [
        ("chain", {"purity": 1.0}, None), ("linking", {"f1": 0.75}, "world/truth.json")]


def test_cli_prints_a_broken_truth_file_as_one_line(tmp_path: Path, ws: Workspace) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    path = ws.path
    ws.close()
    res = CliRunner().invoke(main, ["eval", "linking", "--truth", str(broken), "-w", str(path)])
    assert res.exit_code == 1 and "cannot read truth file" in res.output
    assert "Traceback" not in res.output
    Workspace.open(path).close()


def test_cli_refuses_a_truth_that_matches_no_account(tmp_path: Path, ws: Workspace) -> None:
    truth = tmp_path / "truth.json"
    truth.write_text('{"accounts": {"m:a": {"actor": "x"}, "n:b": {"actor": "x"}}}',
                     encoding="utf-8")
    path = ws.path
    ws.close()
    res = CliRunner().invoke(main, ["eval", "linking", "--truth", str(truth), "-w", str(path)])
    assert res.exit_code == 1 and "none of them is in a persona" in res.output
    assert "pairwise_f1" not in res.output and len(res.output.strip().splitlines()) == 1


def test_the_truth_format_is_in_the_help_and_a_wrong_shape_is_named(ws: Workspace) -> None:
    res = CliRunner().invoke(main, ["eval", "linking", "--help"])
    assert res.exit_code == 0
    for words in ('"accounts"', '"actor"', '"role"', "MARKET:HANDLE", "refused"):
        assert words in res.output
    # the example in the help is a truth the scorer reads
    example = res.output[res.output.index("{"):res.output.rindex("}") + 1]
    truth = json.loads(example)
    assert set(truth["accounts"]) == {"dream:tramapro", "hansa:tramapro"}
    with pytest.raises(BadInputError, match=r'"accounts" is a JSON list'):
        eval_linking(ws, {"accounts": [{"actor": "x"}]})
