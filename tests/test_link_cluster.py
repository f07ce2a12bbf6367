"""Clustering: correlation clustering resists chaining; judgements are hard constraints."""

import numpy as np

from darkmap.resolve.partition import correlation_clustering


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
