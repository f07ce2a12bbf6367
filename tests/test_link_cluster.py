"""Clustering: correlation clustering resists chaining; judgements are hard constraints."""

from typing import Any

import numpy as np

from darkmap.resolve.partition import (
    MISSING,
    correlation_clustering,
    floored_probabilities,
    pair_weights,
)


def _clique(members: list[int], p: float) -> list[tuple[int, int, float]]:
    return [(a, b, p) for k, a in enumerate(members) for b in members[k + 1:]]


def _arrays(edges: list[tuple[int, int, float]]) -> tuple[np.ndarray, ...]:
    e = np.array(edges, dtype=float)
    return e[:, 0].astype(int), e[:, 1].astype(int), e[:, 2]


def test_one_strong_link_does_not_join_two_big_personas() -> None:
    a, b = list(range(10)), list(range(10, 20))
    edges = _clique(a, 0.9) + _clique(b, 0.9) + [(3, 14, 0.99)]
    i, j, p = _arrays(edges)
    labels = correlation_clustering(20, i, j, p, 0.5).labels
    assert len(set(labels[a])) == 1 and len(set(labels[b])) == 1
    assert labels[0] != labels[10]


def test_connected_components_would_chain_but_correlation_clustering_splits_a_path() -> None:
    # a path of probable links: every neighbour pair 0.8, nothing else scored
    edges = [(k, k + 1, 0.8) for k in range(7)]
    i, j, p = _arrays(edges)
    labels = correlation_clustering(8, i, j, p, 0.5).labels
    assert len(set(labels)) > 1
    assert max(np.bincount(labels)) <= 2


def test_cannot_link_is_never_merged_and_must_link_always_is() -> None:
    edges = _clique([0, 1, 2], 0.95) + [(3, 4, 0.01)]
    i, j, p = _arrays(edges)
    res = correlation_clustering(5, i, j, p, 0.5, must=[(3, 4)], cannot=[(0, 2)])
    labels = res.labels
    assert labels[0] != labels[2]
    assert labels[3] == labels[4]
    assert not res.conflicts


def test_conflicting_judgements_are_reported_not_merged() -> None:
    i, j, p = _arrays([(0, 1, 0.9)])
    res = correlation_clustering(3, i, j, p, 0.5, must=[(0, 1), (1, 2)], cannot=[(0, 2)])
    assert res.labels[0] == res.labels[1]
    assert res.labels[2] != res.labels[0]
    assert res.conflicts == [(1, 2)]


def test_a_pair_whose_own_evidence_is_against_is_never_joined_through_a_chain() -> None:
    # 0-1 and 1-2 near certain, 0-2 scored low: without the guard the strong links
    # outweigh it (sum 2 * logit(0.999) against one pair at 0.05) and all three merge
    edges = [(0, 1, 0.999), (1, 2, 0.999), (0, 2, 0.05)]
    i, j, p = _arrays(edges)
    assert len(set(correlation_clustering(3, i, j, p, 0.3).labels)) == 1
    apart = np.array([False, False, True])
    labels = correlation_clustering(3, i, j, p, 0.3, apart=apart).labels
    assert labels[0] != labels[2]
    assert labels[1] in (labels[0], labels[2])
    # single-account moves respect it too: a fourth account tied to all of them
    edges4 = [*edges, (0, 3, 0.99), (1, 3, 0.99), (2, 3, 0.99)]
    i, j, p = _arrays(edges4)
    labels = correlation_clustering(4, i, j, p, 0.3,
                                    apart=np.array([False, False, True, False, False,
                                                    False])).labels
    assert labels[0] != labels[2]


def test_an_analyst_same_judgement_overrides_evidence_against() -> None:
    i, j, p = _arrays([(0, 1, 0.999), (1, 2, 0.999), (0, 2, 0.05)])
    res = correlation_clustering(3, i, j, p, 0.3, must=[(0, 2)],
                                 apart=np.array([False, False, True]))
    assert res.labels[0] == res.labels[2]
    assert not res.conflicts


def test_neighbours_keep_the_order_of_the_pairs_and_the_last_weight_of_a_repeat() -> None:
    # the order of an item's neighbours breaks ties between equally good moves, so the
    # array-built neighbour lists must be those the pairs give one by one
    from darkmap.resolve.partition import _neighbours

    rng = np.random.default_rng(7)
    for repeats in (False, True):
        i = rng.integers(0, 60, 800)
        j = rng.integers(0, 60, 800)
        if not repeats:
            key = np.unique(np.minimum(i, j) * 100 + np.maximum(i, j), return_index=True)[1]
            i, j = i[np.sort(key)], j[np.sort(key)]
        w = rng.normal(size=len(i))
        want: dict[int, dict[int, float]] = {}
        for a, b, x in zip(i.tolist(), j.tolist(), w.tolist(), strict=True):
            if a != b:
                want.setdefault(a, {})[b] = x
                want.setdefault(b, {})[a] = x
        got = _neighbours(i, j, w)
        assert sorted(got) == sorted(want)
        assert all(list(got[v].items()) == list(want[v].items()) for v in want)
        assert any(len(d) > 5 for d in got.values())


def test_a_lone_account_with_only_unlike_pairs_stays_alone_and_a_clique_forms() -> None:
    # the shortcuts for pairs that weigh <= 0 (not pushed, not moved) leave the result
    # of the objective: 0-4 one persona, 5 (all pairs unlike) alone, 6-7 a pair
    edges = _clique([0, 1, 2, 3, 4], 0.95) + [(5, k, 0.05) for k in range(5)]
    edges += [(6, 7, 0.9), (5, 6, 0.2), (4, 6, 0.4)]
    i, j, p = _arrays(edges)
    labels = correlation_clustering(8, i, j, p, 0.3).labels
    assert len(set(labels[:5].tolist())) == 1
    assert labels[5] not in set(labels[[0, 6]].tolist())
    assert labels[6] == labels[7] != labels[0]


def _sigmoid(w: float) -> float:
    return float(1 / (1 + np.exp(-w)))


def test_an_item_leaves_for_a_persona_of_its_own_rather_than_one_it_fits_no_better() -> None:
    # threshold 0.5: each pair weighs logit(p). 0, 3, 4 and 6 form a cluster in which 4
    # weighs -1 (+8 with 6, -7 with 0, no pair with 3); 4's only other pair, with 2,
    # weighs exactly 0. Joining 2 gains as much as leaving: 4 leaves, alone, and is
    # not put with an account its evidence says nothing about
    w = {(0, 1): -6, (0, 3): 0, (0, 4): -7, (0, 6): 7, (1, 4): -4, (1, 5): -3, (2, 4): 0,
         (2, 5): 0, (3, 6): 6, (4, 6): 8}
    i = np.array([a for a, _ in w])
    j = np.array([b for _, b in w])
    p = np.array([_sigmoid(x) for x in w.values()])
    for sweeps in (1, 4):
        labels = correlation_clustering(7, i, j, p, 0.5, sweeps=sweeps).labels.tolist()
        assert labels[0] == labels[3] == labels[6]
        assert len({labels[x] for x in (0, 1, 2, 4, 5)}) == 5


def test_clustering_only_the_attracting_components_gives_what_all_pairs_give(
        monkeypatch: Any) -> None:
    # random candidate sets, mostly unlike pairs, with judgements and pairs kept apart:
    # the personas are the same when the pairs outside attracting components are left
    # out (the default) as when every pair is clustered
    import darkmap.resolve.partition as partition

    def everything(n: int, i: np.ndarray, j: np.ndarray, w: np.ndarray,
                   must: list[tuple[int, int]]) -> np.ndarray:
        return np.ones(len(i), bool)

    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(20, 300))
        m = int(rng.integers(n, 8 * n))
        i = rng.integers(0, n, m)
        j = rng.integers(0, n, m)
        p = np.where(rng.random(m) < 0.15, rng.beta(5, 1, m), rng.beta(1, 8, m))
        apart = rng.random(m) < 0.05
        must = [(int(a), int(b)) for a, b in rng.integers(0, n, (trial % 4, 2))]
        cannot = [(int(a), int(b)) for a, b in rng.integers(0, n, (trial % 3, 2))]
        threshold = float(rng.choice([0.3, 0.5]))
        got = correlation_clustering(n, i, j, p, threshold, must, cannot, apart=apart)
        with monkeypatch.context() as mp:
            mp.setattr(partition, "attracted", everything)
            want = correlation_clustering(n, i, j, p, threshold, must, cannot, apart=apart)
        assert got.labels.tolist() == want.labels.tolist(), trial
        assert got.conflicts == want.conflicts
        assert len(set(got.labels.tolist())) < n   # something was merged


def test_completion_scores_the_unscored_pairs_of_small_strong_groups() -> None:
    from darkmap.resolve.link import _completion

    # strong pairs chain 0-1-2-3 (a group of 4) and 5-6-7 (3); 8-9 is a group of 2 (no
    # completion); 10-11-..-14 (5) is over the limit of 4
    strong = [(0, 1), (1, 2), (2, 3), (5, 6), (6, 7), (8, 9),
              (10, 11), (11, 12), (12, 13), (13, 14)]
    weak = [(0, 2), (3, 1)]       # scored already: (0, 2); (3, 1) as a judged pair comes
    pairs = np.array(strong + weak, np.int64)
    p = np.array([0.9] * len(strong) + [0.1] * len(weak))
    got = _completion(15, pairs, p, [], 4).tolist()
    # (1, 3) is not (3, 1): a pair given the other way round is scored again, as before
    assert got == [[0, 3], [1, 3], [5, 7]]
    # a `same` judgement joins two groups: 7-8 makes 5..9 a group of 5, over the limit
    assert _completion(15, pairs, p, [(7, 8)], 4).tolist() == [[0, 3], [1, 3]]
    # judgements alone, nothing scored yet: every pair of their group
    none = np.zeros((0, 2), np.int64)
    assert _completion(4, none, np.zeros(0), [(0, 1), (1, 2)], 4).tolist() == [
        [0, 1], [0, 2], [1, 2]]


def test_a_pair_without_evidence_weighs_no_more_than_an_unscored_one() -> None:
    p = np.array([0.007, 0.001, 0.001, 0.999, 0.2])
    evidence = np.array([3.0, 0.0, -1.5, 12.0, 5.0])
    q = floored_probabilities(p, evidence, 0.3)
    w = pair_weights(q, 0.3)
    assert np.allclose(w[:3], [MISSING, MISSING, MISSING - 1.5])
    # at or above the floor: the pair's own probability, unchanged
    assert q[3] == p[3] and q[4] == p[4]


def test_an_account_tied_by_one_key_joins_the_persona_whose_others_it_is_unlike() -> None:
    # accounts 0-2: one vendor under one name; 3: the same vendor's new name and new
    # writing, whose key matches account 1's. Its pairs with 0 and 2 are scored, with
    # little evidence either way: near the base rate (the situation of simulator seed
    # 302's crystalpanda / thesugarshop)
    i = np.array([0, 0, 1, 1, 0, 2])
    j = np.array([1, 2, 2, 3, 3, 3])
    p = np.array([0.999, 0.997, 0.989, 0.999, 0.007, 0.001])
    evidence = np.array([9.0, 8.0, 7.0, 12.0, 3.0, 0.0])
    raw = correlation_clustering(4, i, j, p, 0.3).labels
    assert len(set(raw.tolist())) == 2  # the base rate's weight outweighs the key
    q = floored_probabilities(p, evidence, 0.3)
    assert len(set(correlation_clustering(4, i, j, q, 0.3).labels.tolist())) == 1
    # evidence against a pair still counts in full, on top of the floor
    evidence[5] = -6.0
    q = floored_probabilities(p, evidence, 0.3)
    assert len(set(correlation_clustering(4, i, j, q, 0.3).labels.tolist())) == 2
    # and a pair kept apart stays apart even where the sum would join it
    evidence[5] = -1.0
    q = floored_probabilities(p, evidence, 0.3)
    assert len(set(correlation_clustering(4, i, j, q, 0.3).labels.tolist())) == 1
    apart = np.array([False] * 5 + [True])
    labels = correlation_clustering(4, i, j, q, 0.3, apart=apart).labels
    assert labels[3] != labels[2]


def test_a_twin_and_its_market_sibling_are_the_pair_without_an_unscored_floor() -> None:
    # accounts 0, 1 on market "dream", 2 on "hansa", 3 on "cryptonia", 4 on "hansa":
    # hansa:2 is dream:0's twin (0.6), dream:1 its sibling on Dream (0.8); cryptonia:3
    # is tied to dream:0 too, but from a third market; hansa:4 to hansa:2 only
    from darkmap.resolve.partition import twin_sibling_pairs
    market = np.array(["dream", "dream", "hansa", "cryptonia", "hansa"], dtype=object)
    i = np.array([0, 0, 1, 0, 2, 3, 2, 1])
    j = np.array([2, 1, 2, 3, 3, 1, 4, 4])
    p = np.array([0.6, 0.8, 0.001, 0.6, 0.001, 0.001, 0.6, 0.001])
    got = twin_sibling_pairs(i, j, p, market, 0.3)
    # (1, 2) and (3, 1): a twin of dream:0 and dream:0's sibling; (2, 3): the account
    # between them is on a third market; (1, 4): hansa:4 is tied to hansa:2 only
    assert got.tolist() == [False, False, True, False, False, True, False, False]
    assert not twin_sibling_pairs(i, j, p, market, 0.7).any()


def test_a_same_handle_twin_joins_a_persona_of_two_accounts_on_one_market() -> None:
    # dream:0 and dream:1 are one persona (0.82); hansa:2 has dream:0's handle (0.55)
    # and nothing with dream:1. Counted as an unscored pair (-2) that pair outweighed
    # the twin (+1.05); with no evidence against it counts 0 and the three are one.
    from darkmap.resolve.partition import twin_sibling_pairs
    market = np.array(["dream", "dream", "hansa"], dtype=object)
    i, j, p = np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.82, 0.55, 0.001])
    sibling = twin_sibling_pairs(i, j, p, market, 0.3)
    plain = correlation_clustering(3, i, j, floored_probabilities(p, np.zeros(3), 0.3),
                                   0.3).labels
    assert plain[0] == plain[1] != plain[2]
    missing = np.where(sibling, 0.0, MISSING)
    labels = correlation_clustering(
        3, i, j, floored_probabilities(p, np.zeros(3), 0.3, missing), 0.3).labels
    assert len(set(labels.tolist())) == 1
    # evidence against the sibling pair (here -1.2, more than the twin's +1.05) still
    # counts in full: the twin stays out
    against = np.array([0.0, 0.0, -1.2])
    labels = correlation_clustering(
        3, i, j, floored_probabilities(p, against, 0.3, missing), 0.3).labels
    assert labels[0] == labels[1] != labels[2]
