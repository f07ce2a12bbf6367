"""Shingle profiles behind the linker's writing-style signals."""

from __future__ import annotations

import numpy as np

from darkmap.resolve.vectors import hashed_shingles, row_cosines, tfidf


def _shared(m, a: int, b: int) -> float:
    return float(m[a].multiply(m[b]).sum())


def test_folded_digits_make_changing_numbers_alike() -> None:
    texts = ["Orders before 14:00 ship via DHL, x2 vacuum sealed!",
             "Orders before 16:00 ship via DHL, x3 vacuum sealed!"]
    folded = hashed_shingles(texts, (1, 2, 3), digits="fold")
    split = hashed_shingles(texts, (1, 2, 3), digits="split")
    assert _shared(folded, 0, 1) == folded[0].nnz == folded[1].nnz
    assert _shared(split, 0, 1) < split[0].nnz


def test_digits_are_tokens_of_their_own() -> None:
    # "24h" and "24 h" tokenise alike once digits split from letters
    a = hashed_shingles(["ships in 24h"], (1, 2), digits="split")
    b = hashed_shingles(["ships in 24 h"], (1, 2), digits="split")
    assert (a != b).nnz == 0


def test_presence_not_counts_and_empty_rows() -> None:
    m = hashed_shingles(["stealth stealth stealth", "", "stealth"], (1,), digits="fold")
    assert np.diff(m.indptr).tolist() == [1, 0, 1]
    assert set(m.data.tolist()) == {1.0}
    t = tfidf(m)
    cos = row_cosines(t, np.array([0, 0]), np.array([2, 1]))
    assert cos[0] > 0.99 and cos[1] == 0.0


def test_word_order_matters_beyond_unigrams() -> None:
    m = hashed_shingles(["we ship fast", "fast we ship", "ship fast we"], (1, 2, 3))
    uni = hashed_shingles(["we ship fast", "fast we ship"], (1,))
    assert _shared(uni, 0, 1) == 3
    assert _shared(m, 0, 1) < m[0].nnz


def test_shipped_models_count_text_disagreement_once() -> None:
    from darkmap.resolve.model import load_model

    for variant in ("all", "no_identifiers"):
        w = load_model(variant).weights
        # phrasing reads the same text as style: it may add agreement only
        assert min(w["phrasing"]) >= 0.0 and max(w["phrasing"]) > 1.0, w["phrasing"]
        assert w["style"][1] < 0 < w["style"][-1], w["style"]
        assert all(a <= b for a, b in zip(w["style"][1:], w["style"][2:]))
