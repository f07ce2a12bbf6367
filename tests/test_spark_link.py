"""Linking on Spark (local[2]) equals the embedded path on a simulated world: the same
candidate pairs from every block (exact and inverted-file text search), the same
personas, the same stored links with the same probabilities, signal values, levels and
contributions, with and without identifiers, under analyst judgements."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import simulated_workspace

from darkmap.resolve.candidates import blocking_plan, candidate_pairs, group_pairs
from darkmap.resolve.judgements import judge
from darkmap.resolve.link import STAGES, LinkOptions, link
from darkmap.resolve.profiles import load_profiles
from darkmap.resolve.spark import candidate_pairs_spark, link_spark
from darkmap.store.workspace import Workspace

_LINKS = "SELECT a, b, score, signals, method, merged FROM account_links ORDER BY a, b"
_MEMBERS = "SELECT persona_id, account_id FROM persona_members ORDER BY ALL"
_PERSONAS = ("SELECT persona_id, label, n_accounts, n_markets, first_seen, last_seen, cohesion "
             "FROM personas ORDER BY persona_id")
_KEYS = ("personas", "multi_account_personas", "cross_market_personas", "links_stored",
         "model", "accounts", "candidate_pairs", "completion_pairs", "signals",
         "judgement_conflicts")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws, _ = simulated_workspace(tmp_path_factory.mktemp("sparklink"), 43, 120)
    yield ws
    ws.close()


@pytest.mark.parametrize("exact_max", [None, 0], ids=["exact", "inverted_file"])
def test_spark_blocking_equals_embedded(world, spark, exact_max):
    prof = load_profiles(world.con)
    plan = blocking_plan(prof, exact_max=exact_max)
    # every kind of block has work here, so each is compared
    assert all(len(group_pairs(g)) for _, g in plan.groups)
    names = {s.name for s in plan.searches if s.units}
    assert {"handle n-grams", "style", "products", "feedback", "phrasing"} <= names
    if exact_max == 0:   # the text spaces are searched by k-means cells, not exactly
        assert all(len(s.state) == 7 for s in plan.searches
                   if s.name in ("style", "products", "feedback"))
    for ids in (True, False):
        want = candidate_pairs(prof, use_identifiers=ids, exact_max=exact_max)
        got = candidate_pairs_spark(spark, prof, use_identifiers=ids, exact_max=exact_max)
        assert len(want) > 10 * len(prof) // 4
        assert np.array_equal(got, want)


def _stored(ws: Workspace) -> tuple[list, list, list]:
    return tuple(ws.con.execute(q).fetchall() for q in (_LINKS, _MEMBERS, _PERSONAS))


@pytest.mark.parametrize("opts", [LinkOptions(), LinkOptions(without=("identifiers",)),
                                  LinkOptions(method="fellegi-sunter")],
                         ids=["all", "no_identifiers", "fellegi_sunter"])
def test_spark_link_equals_embedded(world, spark, opts):
    emb = link(world, opts)
    want = _stored(world)
    got = link_spark(world, opts, spark=spark)
    assert {k: got.summary[k] for k in _KEYS} == {k: emb.summary[k] for k in _KEYS}
    links, members, personas = _stored(world)
    assert links == want[0]
    assert members == want[1]
    assert personas == want[2]
    assert emb.summary["multi_account_personas"] > 5     # there was something to get right
    # both report the blocking's split: the plan on the driver and running it
    for res in (emb, got):
        t = res.summary["timings"]
        assert t["candidates_plan_s"] > 0 and t["candidates_search_s"] > 0
        assert t["candidates_s"] >= t["candidates_plan_s"]


def test_spark_link_keeps_judgements(world, spark):
    pair = world.con.execute("SELECT a, b FROM account_links WHERE merged "
                             "ORDER BY score DESC, a, b LIMIT 1").fetchone()
    lone = world.con.execute("SELECT account_id FROM accounts ORDER BY account_id "
                             "LIMIT 2").fetchall()
    judge(world, pair[0], pair[1], "different", author="test")
    judge(world, lone[0][0], lone[1][0], "same", author="test")
    emb = link(world)
    want = _stored(world)
    told: list[str] = []
    got = link_spark(world, spark=spark, progress=told.append)
    assert _stored(world) == want
    # the stages as the embedded run tells them, the Spark ones marked (the session
    # was given: none is started)
    assert [t.split(":")[0].split(" among")[0].removesuffix(", on Spark")
            for t in told] == list(STAGES)
    assert sum(t.endswith(", on Spark") for t in told) == 3
    assert got.summary["judgement_conflicts"] == emb.summary["judgement_conflicts"]
    members = {a: p for p, a in want[1]}
    assert members[pair[0]] != members[pair[1]]
    assert members[lone[0][0]] == members[lone[1][0]]
