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


def test_judgements_hold_on_relink_and_withdraw_restores(world) -> None:
    ws, truth = world
    link(ws)
    a, b = ws.con.execute(
        "SELECT a, b FROM account_links WHERE merged ORDER BY score DESC, a, b LIMIT 1"
    ).fetchone()
    x, y = ws.con.execute(
        "SELECT a, b FROM account_links WHERE NOT merged ORDER BY score, a, b LIMIT 1"
    ).fetchone()
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
