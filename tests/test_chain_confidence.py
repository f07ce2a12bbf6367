"""The cash-out confidence measured on a simulated world's chain truth.

A ``darkmap simulate`` world (chain on, no pages) is loaded, tagged with its TagPacks
and clustered with every heuristic, so that change heuristics glue some vendors to a
market's wallet and poison traces from those clusters reach other vendors' deposits:
incorrect cash-out points beside the correct ones. The confidence must rank the
correct ones above them, and its upper levels must hold correct ones only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from darkmap.chain.cluster import HEURISTICS, run_clustering
from darkmap.chain.coinjoin import detect_coinjoins
from darkmap.chain.confidence import ClusterEvidence, evidence_from_counts
from darkmap.chain.graph import group_roots, load_arrays
from darkmap.chain.trace import _coinjoin_kinds
from darkmap.chain.wallet import wallet_summary
from darkmap.collect.ingest import import_tagpack, load_files
from darkmap.evaluate.clustering import confidence_scores, eval_chain
from darkmap.simulate import SimParams, simulate
from darkmap.store import chain as store
from darkmap.store.workspace import Workspace

# -- a reference: the evidence from every merge, grouped by a plain union-find -----------


def _merge_pairs(ws: Workspace, clusters: list[int]) -> list[tuple[str, int, int]]:
    """(heuristic, a, b) of every stored merge inside ``clusters``."""
    return [(h, int(a), int(b)) for h, a, b in ws.con.execute(
        "SELECT m.heuristic, m.address_a, m.address_b FROM btc_cluster_merges m "
        "JOIN btc_clusters c ON c.address_id = m.address_a "
        "WHERE c.cluster_id IN (SELECT unnest(?))", [clusters]).fetchall()]


def _groups(edges: list[tuple[str, int, int]]) -> dict[int, int]:
    """Each address of ``edges`` -> the smallest address multi-input merges join it to."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for heuristic, a, b in edges:
        ra, rb = find(a), find(b)
        if heuristic == "multi_input" and ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def _evidence(n: int, edges: list[tuple[str, int, int]], run: list[str] | tuple[()] = (),
              coinjoins: dict[str, int] | None = None) -> ClusterEvidence:
    """:func:`evidence_from_counts` of counts taken from every merge."""
    by_heur: dict[str, int] = {}
    for h, _, _ in edges:
        by_heur[h] = by_heur.get(h, 0) + 1
    groups = _groups(edges)
    sizes = np.unique(list(groups.values()), return_counts=True)[1].tolist() if groups else []
    return evidence_from_counts(n, by_heur, len(groups), sizes, run, coinjoins or {})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("confidence")
    simulate(d / "world", 2, SimParams(vendors=60, pages=False))
    ws = Workspace.init(d / "ws")
    load_files(ws, sorted((d / "world" / "chain").glob("blk*.dat")))
    for pack in sorted((d / "world" / "tags").glob("*.yaml")):
        import_tagpack(ws, pack)
    run_clustering(ws, HEURISTICS)
    truth = json.loads((d / "world" / "truth.json").read_text(encoding="utf-8"))
    yield ws, truth
    ws.close()


def test_confidence_ranks_correct_cashouts_above_incorrect_ones(world) -> None:
    ws, truth = world
    co = eval_chain(ws, truth)["cashouts"]
    assert co["traced_to_deposit"] == co["total"] > 100
    cf = co["confidence"]
    assert 0 < cf["correct"] < cf["hits"]  # both kinds exist in this world
    assert cf["auc"] is not None and cf["auc"] >= 0.75  # measured: 0.81
    hi, mid, low = (cf["by_level"][k] for k in ("high", "medium", "low"))
    assert hi["hits"] and hi["precision"] == 1.0 and mid["hits"] and mid["precision"] == 1.0
    assert low["precision"] is not None and low["precision"] < 0.5


def test_a_trace_reads_the_coinjoins_the_clustering_stored(world) -> None:
    """A trace takes each transaction's CoinJoin kind from the clustering run (testing
    10 million transactions again takes seconds): the same flags the rules give now."""
    ws, _ = world
    arr = load_arrays(ws.con)
    stored = _coinjoin_kinds(ws, arr)
    assert store.stored_coinjoins(ws.con) is not None
    detected = detect_coinjoins(arr.n_tx, arr.in_ptr, arr.out_ptr, None, arr.out_value).kind
    assert (stored > 0).sum() > 0
    assert np.array_equal(stored, detected)


def test_confidence_scores_by_hand() -> None:
    got = confidence_scores([(True, 80, "high"), (True, 40, "medium"), (False, 40, "medium"),
                             (False, 10, "low")])
    # pairs (correct, incorrect): 80>40, 80>10, 40=40 (half), 40>10 -> 3.5 / 4
    assert got["auc"] == 0.875 and got["hits"] == 4 and got["correct"] == 2
    assert got["by_level"]["medium"] == {"hits": 2, "correct": 1, "precision": 0.5}
    assert confidence_scores([(True, 5, "low")])["auc"] is None


def test_cluster_evidence_tells_glued_wallets_from_a_peel_chain() -> None:
    peel = [("multi_input", 1, 2), ("multi_input", 1, 3), ("change_one_time", 1, 4),
            ("change_address_type", 4, 5)]
    ev = _evidence(5, peel, ["multi_input", "change_one_time"])
    assert ev["level"] == "medium" and ev["multi_input_groups"] == 3
    assert ev["largest_multi_input_group"] == 3 and ev["change_merges"] == 2
    glued = [("multi_input", 1, 2), ("multi_input", 3, 4), ("change_address_type", 2, 3)]
    assert _evidence(4, glued)["level"] == "low"
    assert _evidence(1, [], [], {"whirlpool": 1})["level"] == "high"
    assert _groups(glued) == {1: 1, 2: 1, 3: 3, 4: 3}
    nodes, roots = group_roots(np.array([1, 3]), np.array([2, 4]))
    assert dict(zip(nodes.tolist(), roots.tolist(), strict=True)) == _groups(glued)


def test_a_trace_from_a_glued_cluster_is_weaker(world) -> None:
    ws, truth = world
    from darkmap.chain.trace import trace
    from darkmap.store.evaluations import address_clusters

    cluster_of = address_clusters(ws.con)
    sizes: dict[int, int] = {}
    for c in cluster_of.values():
        sizes[c] = sizes.get(c, 0) + 1
    owner = truth["chain"]["address_owner"]
    vendors = {cluster_of[a] for a, o in owner.items() if o.startswith("vendor:")
               and a in cluster_of}
    glued = max(vendors, key=lambda c: (sizes[c], -c))
    out = trace(ws, f"cluster:{glued}", "forward", 10)
    assert out["cashouts"]
    for c in out["cashouts"]:
        assert any("change-heuristic merges (low)" in r for r in c["confidence_reasons"])
        assert c["confidence_level"] == "low"


def test_evidence_from_counts_is_the_evidence_from_every_merge(world) -> None:
    """A trace counts a source cluster's merges in the database and reads only its
    multi-input merges (an exchange's cluster may have millions): the same evidence as
    from every merge, on every cluster of the world that has a change merge."""
    ws, _ = world
    from darkmap.chain.trace import TraceContext

    ctx = TraceContext.load(ws)
    clusters = [r[0] for r in ws.con.execute(
        "SELECT c.cluster_id FROM btc_cluster_merges m JOIN btc_clusters c "
        "ON c.address_id = m.address_a WHERE m.heuristic <> 'multi_input' "
        "GROUP BY 1 ORDER BY 1").fetchall()]
    assert len(clusters) > 20
    levels = set()
    for c in clusters:
        n = len(store.cluster_address_ids(ws.con, c))
        want = _evidence(n, _merge_pairs(ws, [c]))
        by_heur, merged = store.cluster_merge_counts(ws.con, [c])
        roots = ctx.multi_input_roots(ws, {c}).get(c, (np.zeros(0), np.zeros(0)))[1]
        sizes = np.unique(roots, return_counts=True)[1].tolist()
        assert evidence_from_counts(n, by_heur, merged, sizes, (), {}) == want
        shown = wallet_summary(ws, f"cluster:{c}")["evidence"]  # wallet show counts alike
        for key in ("level", "merges_by_heuristic", "change_merges", "multi_input_groups",
                    "largest_multi_input_group"):
            assert shown[key] == want[key], (c, key)
        levels.add(want["level"])
    assert levels == {"medium", "low"}


def test_a_trace_groups_and_tags_as_from_every_merge(world) -> None:
    """The multi-input groups a trace reads (scipy on the multi-input merges, kept per
    cluster in the context) join the same addresses as those of every merge, and an
    address borrows its cluster's tag as when each member held a copy."""
    ws, _ = world
    from darkmap.chain.trace import TraceContext, _is_service, trace

    ctx = TraceContext.load(ws)
    clusters = sorted(int(c) for c in np.unique(ctx.cluster) if (ctx.cluster == c).sum() > 1)
    roots = ctx.multi_input_roots(ws, set(clusters))
    pairs = _merge_pairs(ws, clusters)
    of = _groups(pairs)
    for nodes, root in roots.values():
        for x, r in zip(nodes.tolist(), root.tolist(), strict=True):
            assert of[x] == r
    in_multi = {x for h, a, b in pairs if h == "multi_input" for x in (a, b)}
    assert {x for n, _ in roots.values() for x in n.tolist()} == in_multi
    # tags: the address's own, else its cluster's best (a service first), via_cluster
    best: dict[int, dict] = {}
    for aid, tag in ctx.tag_of.items():
        c = int(ctx.cluster[aid])
        if c not in best or (_is_service(tag) and not _is_service(best[c])):
            best[c] = tag
    borrowed = 0
    for a in range(ctx.arr.n_addr):
        got = ctx.tag(a)
        if a in ctx.tag_of:
            assert got is ctx.tag_of[a]
        elif int(ctx.cluster[a]) in best:
            assert got == {**best[int(ctx.cluster[a])], "via_cluster": True}
            borrowed += 1
        else:
            assert got is None
    assert borrowed > 100
    # a second trace with the same context (groups kept) gives the same result
    target = f"cluster:{clusters[0]}"
    assert trace(ws, target, ctx=ctx) == trace(ws, target, ctx=ctx) == trace(ws, target)
