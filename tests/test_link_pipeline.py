"""`darkmap link` end to end on a small generated world: accuracy floor, explanations,
judgements, search. The world comes from the linker's own generator (through the real
store writer); tests on `darkmap simulate` worlds live in test_link_sim.py."""

from __future__ import annotations

import json
import math

import pytest

from darkmap.evaluate.linking import eval_linking
from darkmap.resolve.judgements import judge, withdraw
from darkmap.resolve.link import LinkOptions, link
from darkmap.resolve.lookup import search_personas, show_persona
from darkmap.store.workspace import Workspace
from darkmap.training.synthworld import WorldParams, make_world


@pytest.fixture
def world(ws: Workspace) -> tuple[Workspace, dict]:
    truth = make_world(ws, WorldParams(actors=120, seed=5))
    return ws, truth


def _persona(ws: Workspace, aid: str) -> str:
    return ws.con.execute("SELECT persona_id FROM persona_members WHERE account_id = ?",
                          [aid]).fetchone()[0]


def test_links_small_world_above_floor_and_every_account_in_one_persona(world) -> None:
    ws, truth = world
    res = link(ws)
    ev = eval_linking(ws, truth)
    # floor for this small, noisy own-generator world (measured ~0.95-0.98)
    assert ev["pairwise_f1"] >= 0.85 and ev["bcubed_f1"] >= 0.9, ev
    n_acc = ws.con.execute("SELECT count(*) FROM accounts").fetchone()[0]
    rows = ws.con.execute("SELECT account_id, count(*) FROM persona_members GROUP BY 1"
                          ).fetchall()
    assert len(rows) == n_acc and all(c == 1 for _, c in rows)
    assert res.summary["personas"] == ws.con.execute("SELECT count(*) FROM personas"
                                                     ).fetchone()[0]


def test_text_and_behaviour_alone_still_link(world) -> None:
    ws, truth = world
    res = link(ws, LinkOptions(without=("identifiers",)))
    assert "pgp" not in res.summary["signals"]
    ev = eval_linking(ws, truth)
    assert ev["bcubed_f1"] >= 0.85, ev
    sig = json.loads(ws.con.execute("SELECT signals FROM account_links LIMIT 1").fetchone()[0])
    assert "pgp" not in sig and "style" in sig


def test_every_link_explains_its_score(world) -> None:
    ws, _ = world
    link(ws)
    rows = ws.con.execute("SELECT score, signals FROM account_links WHERE merged"
                          " ORDER BY score LIMIT 50").fetchall()
    assert rows
    for score, sig in rows:
        sig = json.loads(sig)
        total = sum(v["contribution"] for v in sig.values())
        assert set(sig) >= {"_base", "handle", "style", "pgp", "timing"}
        assert all("level" in v and "value" in v for k, v in sig.items() if k != "_base")
        # the shipped logistic model is uncalibrated-free: p = sigmoid(sum of contributions)
        assert abs(1 / (1 + math.exp(-total)) - score) < 1e-3


def _surest_pairs(ws: Workspace) -> tuple[tuple[str, str], tuple[str, str]]:
    """The merged pair scored highest and the apart pair scored lowest."""
    merged = ws.con.execute(
        "SELECT a, b FROM account_links WHERE merged ORDER BY score DESC, a, b LIMIT 1"
    ).fetchone()
    apart = ws.con.execute(
        "SELECT a, b FROM account_links WHERE NOT merged ORDER BY score, a, b LIMIT 1"
    ).fetchone()
    assert merged and apart
    return (merged[0], merged[1]), (apart[0], apart[1])


def test_judgements_hold_on_relink_and_withdraw_restores(world) -> None:
    ws, truth = world
    link(ws)
    (a, b), (x, y) = _surest_pairs(ws)
    assert _persona(ws, a) == _persona(ws, b) and _persona(ws, x) != _persona(ws, y)
    judge(ws, a, b, "different", author="tester", note="distinct shipping habits")
    judge(ws, x, y, "same", author="tester")
    judge(ws, a, x, "unsure")
    link(ws)
    assert _persona(ws, a) != _persona(ws, b)
    assert _persona(ws, x) == _persona(ws, y)
    row = ws.con.execute("SELECT author, note, created_at FROM judgements WHERE verdict ="
                         " 'different'").fetchone()
    assert row[0] == "tester" and row[1] == "distinct shipping habits" and row[2]
    assert withdraw(ws, a, b) == 1 and withdraw(ws, x, y) == 1
    link(ws)
    assert _persona(ws, a) == _persona(ws, b) and _persona(ws, x) != _persona(ws, y)
    assert ws.con.execute("SELECT count(*) FROM judgements WHERE withdrawn_at IS NOT NULL"
                          ).fetchone()[0] == 2


def test_judging_unknown_accounts_is_refused(world) -> None:
    ws, _ = world
    with pytest.raises(KeyError):
        judge(ws, "mk0:nobody", "mk1:nobody", "same")
    with pytest.raises(ValueError):
        judge(ws, "a", "a", "same")


def test_show_and_search_a_persona(world) -> None:
    ws, truth = world
    link(ws)
    pid, n = ws.con.execute("SELECT persona_id, n_accounts FROM personas"
                            " ORDER BY n_accounts DESC, persona_id LIMIT 1").fetchone()
    d = show_persona(ws, pid)
    assert d["n_accounts"] == n == len(d["accounts"]) and n >= 2
    assert d["links"] and d["links"][0]["signals"][0]["contribution"] is not None
    member = d["accounts"][0]
    assert show_persona(ws, member["account_id"])["persona_id"] == pid
    frag = member["handle"][1:5]
    assert any(h["persona_id"] == pid for h in search_personas(ws, frag))
    fp = ws.con.execute("SELECT value FROM identifiers WHERE kind = 'pgp_fingerprint'"
                        " AND account_id = ?", [member["account_id"]]).fetchone()[0]
    hits = search_personas(ws, fp[-16:])
    assert [h["persona_id"] for h in hits] == [pid]
    assert search_personas(ws, "zzzz-no-such-vendor") == []


def test_personas_do_not_depend_on_duckdb_threads(world) -> None:
    """Texts are cut at a length cap after aggregation: with unordered aggregates the
    cut (and so the personas) changed with DuckDB's parallel scans."""
    ws, _ = world
    runs = []
    for threads in (1, 4, 1, 4):
        ws.con.execute(f"SET threads = {threads}")
        link(ws)
        runs.append((
            ws.con.execute("SELECT list(account_id ORDER BY account_id) FROM persona_members"
                           " GROUP BY persona_id ORDER BY 1").fetchall(),
            ws.con.execute("SELECT a, b, score FROM account_links ORDER BY a, b").fetchall()))
    assert all(r == runs[0] for r in runs[1:])


def test_link_on_an_empty_workspace_makes_no_personas(ws: Workspace) -> None:
    # the first thing an analyst may run on a fresh workspace (crashed before: the
    # "has text" flags of zero accounts were float arrays)
    res = link(ws)
    assert res.summary["accounts"] == 0 and res.summary["personas"] == 0
    assert ws.con.execute("SELECT count(*) FROM personas").fetchone()[0] == 0


def test_the_evidence_is_let_go_before_clustering_and_storing(world, monkeypatch) -> None:
    # the profiles' text matrices are most of a link run's memory (1.5 GB at 100,000
    # accounts); once the pairs are scored only the roster of accounts is kept
    import gc

    from darkmap.resolve import link as link_mod
    from darkmap.resolve.profiles import Profiles

    ws, truth = world
    alive: dict[str, int] = {}
    real_cluster, real_store = link_mod.correlation_clustering, link_mod._store

    def count(stage: str) -> None:
        gc.collect()
        alive[stage] = sum(isinstance(o, Profiles) for o in gc.get_objects())

    def cluster(*a, **kw):
        count("clustering")
        return real_cluster(*a, **kw)

    def store(*a, **kw):
        count("store")
        return real_store(*a, **kw)

    monkeypatch.setattr(link_mod, "correlation_clustering", cluster)
    monkeypatch.setattr(link_mod, "_store", store)
    res = link(ws)
    assert alive == {"clustering": 0, "store": 0}
    assert len(res.ids) == len(truth["accounts"]) > 100
    assert eval_linking(ws, truth)["pairwise_f1"] >= 0.85


def test_a_link_run_says_what_changed_since_the_previous_one(world) -> None:
    """`darkmap link` printed totals only: after a judgement the analyst could not tell
    which personas it had split or merged. The run now compares its personas with the
    previous run's by their accounts (ids follow the smallest account, so a piece split
    off gets a new id), stores the changes with the run, and `persona show` says what the
    last run changed in a persona."""
    from click.testing import CliRunner

    from darkmap.cli import main

    ws, _ = world
    first = link(ws)
    assert first.summary["changes"]["previous_run"] is None
    (a, b), (x, y) = _surest_pairs(ws)
    was_ab, was_x, was_y = _persona(ws, a), _persona(ws, x), _persona(ws, y)
    # the same input again: nothing changed
    again = link(ws).summary["changes"]
    assert again["previous_run"] == first.run_id and again["changes"] == []
    judge(ws, a, b, "different", author="tester")
    judge(ws, x, y, "same", author="tester")
    res = link(ws)
    c = res.summary["changes"]
    assert c["previous_run"] != first.run_id and c["splits"] >= 1 and c["merges"] >= 1
    split = next(ch for ch in c["changes"] if a in {m for mv in ch["moves"]
                                                       for m in mv["accounts"]})
    assert split["kind"] in ("split", "move") and was_ab in {p["persona_id"]
                                                             for p in split["before"]}
    assert {p["persona_id"] for p in split["after"]} >= {_persona(ws, a), _persona(ws, b)}
    assert [(e["verdict"], e["effect"]) for e in split["judgements"]] == [
        ("different", "took effect")]
    merge = next(ch for ch in c["changes"] if ch["after"][0]["persona_id"] == _persona(ws, x)
                 and ch["kind"] == "merge")
    assert {p["persona_id"] for p in merge["before"]} == {was_x, was_y}
    effects = {(e["a"], e["b"]): e["effect"] for e in c["judgements"]}
    assert effects == {(a, b): "took effect", (x, y): "took effect"}
    # stored with the run: the summary, and the change under each persona id it touches
    stored = json.loads(ws.con.execute("SELECT summary FROM link_runs WHERE run_id = ?",
                                       [res.run_id]).fetchone()[0])
    assert stored["changes"] == json.loads(json.dumps(c))
    d = show_persona(ws, y)
    assert [ch["kind"] for ch in d["changed_in_last_run"]] == ["merge"]
    assert show_persona(ws, a)["changed_in_last_run"] == [split]
    gone = {was_x, was_y} - {_persona(ws, x)}
    path = str(ws.path)
    ws.close()
    runner = CliRunner()
    out = runner.invoke(main, ["persona", "show", y, "-w", path]).output
    assert f"changed in the last run ({res.run_id}): merge: " in out
    assert f"judgement took effect: same {x} ~ {y}" in out
    # the persona that merged into the other no longer exists: say where it went
    assert len(gone) == 1
    err = runner.invoke(main, ["persona", "show", gone.pop(), "-w", path])
    assert err.exit_code == 1 and f"made it part of {_pid(path, x)} (merge)" in err.output
    # withdrawn: the next run undoes both, and says so
    ws2 = Workspace.open(ws.path)
    try:
        withdraw(ws2, a, b)
        withdraw(ws2, x, y)
    finally:
        ws2.close()
    out = runner.invoke(main, ["link", "-w", path, "-q"]).output
    assert f"changes since run {res.run_id}: " in out and "split: " in out and "merge: " in out
    assert f"  different {a} ~ {b}: withdrawn, now together in " in out
    data = json.loads(runner.invoke(main, ["link", "-w", path, "--json"]).output)
    assert data["changes"]["changes"] == [] and data["changes"]["judgements"] == []


def _pid(path: str, account: str) -> str:
    from pathlib import Path

    w = Workspace.open(Path(path), read_only=True)
    try:
        return _persona(w, account)
    finally:
        w.close()


def test_changes_name_moves_and_personas_grown_by_new_accounts() -> None:
    """Accounts that change persona without a split or a merge on either side are a
    move; a persona that only gained accounts new to the workspace grew (and its id
    follows a new smallest account). Judgements made since the previous run that the
    previous run already satisfied are said to hold already."""
    from datetime import datetime

    from darkmap.resolve.changes import compare_runs

    before = {"m:a": "p-1", "m:b": "p-1", "m:c": "p-2", "m:d": "p-2", "m:e": "p-3"}
    after = {"m:a": "p-1", "m:b": "p-2", "m:c": "p-2", "m:d": "p-4", "m:e": "p-0",
             "m:0": "p-0"}
    c = compare_runs("r0", before, after, {("m:a", "m:c"): "different"},
                     [("m:a", "m:c", "different", None),
                      ("m:c", "m:d", "same", datetime(2026, 1, 1))])
    assert [(ch["kind"], [p["persona_id"] for p in ch["before"]],
             [p["persona_id"] for p in ch["after"]]) for ch in c["changes"]] == [
        ("grew", ["p-3"], ["p-0"]), ("move", ["p-1", "p-2"], ["p-1", "p-2", "p-4"])]
    move = c["changes"][1]["moves"]
    assert {"before": "p-1", "after": "p-2", "accounts": ["m:b"]} in move
    assert c["accounts_new"] == 1 and c["accounts_moved"] == 2 and c["moves"] == 1
    assert [(e["a"], e["b"], e["effect"]) for e in c["judgements"]] == [
        ("m:a", "m:c", "already held"), ("m:c", "m:d", "withdrawn")]
