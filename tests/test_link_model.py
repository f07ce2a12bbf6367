"""The logistic match model's fit: weights per pair, generator balance, monotone levels."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import scipy.sparse as sp

from darkmap.resolve.features import (
    SIGNALS,
    TIED,
    PairFeatures,
    identifier_groups,
    tied_through_others,
)
from darkmap.resolve.match_model import (
    VOICE_AGAINST,
    VOICE_DISCOUNT,
    VOICE_SIGNALS,
    fit_logistic,
    load_model,
)
from darkmap.training.linker import generator_weights, with_missing_evidence


def _pairs(n: int, seed: int) -> tuple[PairFeatures, np.ndarray]:
    """Pairs whose match odds grow with the phrasing level and fall across markets."""
    rng = np.random.default_rng(seed)
    phr = rng.integers(0, len(SIGNALS["phrasing"]), n).astype(np.int8)
    mkt = rng.integers(0, 2, n).astype(np.int8)
    logit = -4.0 + 0.8 * phr - 1.0 * mkt
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    idx = np.arange(n)
    f = PairFeatures(idx, idx + n, {"phrasing": phr.astype(np.float32),
                                     "market": mkt.astype(np.float32)},
                     {"phrasing": phr, "market": mkt})
    return f, y


def _take(f: PairFeatures, k: np.ndarray) -> PairFeatures:
    return PairFeatures(f.i[k], f.j[k], {s: v[k] for s, v in f.raw.items()},
                        {s: v[k] for s, v in f.level.items()})


def test_a_weight_of_two_fits_like_the_pair_given_twice() -> None:
    f, y = _pairs(4000, 1)
    twice = np.arange(1000)
    dup = np.concatenate([np.arange(len(y)), twice])
    sw = np.ones(len(y))
    sw[twice] = 2.0
    a = fit_logistic(f, y, ("phrasing", "market"), "w", sample_weight=sw)
    b = fit_logistic(_take(f, dup), y[dup], ("phrasing", "market"), "d")
    assert abs(a.intercept - b.intercept) < 0.01
    for s in a.weights:
        assert np.allclose(a.weights[s], b.weights[s], atol=0.01), (s, a.weights, b.weights)
    plain = fit_logistic(f, y, ("phrasing", "market"), "p")
    assert not np.allclose(plain.weights["phrasing"], a.weights["phrasing"], atol=1e-3)


def test_fitted_levels_are_monotone_and_recover_the_direction() -> None:
    f, y = _pairs(6000, 2)
    m = fit_logistic(f, y, ("phrasing", "market"), "m")
    w = m.weights["phrasing"]
    assert all(b >= a - 1e-9 for a, b in pairwise(w[1:])), w
    assert w[-1] - w[1] > 4.0, w          # true slope 0.8 per level over 9 steps
    assert m.weights["market"][1] < -0.5, m.weights  # unordered: free sign


def test_generator_weights_give_each_generator_its_share_of_the_matches() -> None:
    own = np.array([1] * 30 + [0] * 970, dtype=np.int8)
    sim = np.array([1] * 10 + [0] * 4990, dtype=np.int8)
    w = generator_weights([own, sim], [0.25, 0.75])
    assert len(w) == len(own) + len(sim)
    assert abs(w.mean() - 1.0) < 1e-9
    w_own = w[:len(own)][own.astype(bool)].sum()
    w_sim = w[len(own):][sim.astype(bool)].sum()
    assert abs(w_sim / (w_own + w_sim) - 0.75) < 1e-9
    # within a generator every pair weighs the same: only the balance changes
    assert len(set(w[:len(own)].round(12))) == 1 and len(set(w[len(own):].round(12))) == 1


def test_unknown_evidence_is_fitted_as_the_average_of_what_it_hides() -> None:
    # every training pair knows its style level: "unknown" (level 0) is then never
    # seen, and its weight of 0 is an artefact of where the scale starts
    f0, y = _pairs(20000, 3)
    lev = np.maximum(f0.level["phrasing"], 1).astype(np.int8)
    f = PairFeatures(f0.i, f0.j, {"style": lev.astype(np.float32), "market": f0.raw["market"]},
                     {"style": lev, "market": f0.level["market"]})
    plain = fit_logistic(f, y, ("style", "market"), "plain")
    fa, ya, wa = with_missing_evidence(f, y, None, share=0.2)
    k = int(0.2 * len(y))
    assert len(fa) == len(ya) == len(y) + k  # only the free-text group is present
    assert wa is None and (fa.level["style"][len(y):] == 0).all()
    assert (fa.level["market"][len(y):] > 0).any()  # the other signals are kept
    fitted = fit_logistic(fa, ya, ("style", "market"), "fitted")
    hidden = _take(f, np.arange(len(y)))
    hidden.level["style"] = np.zeros(len(y), np.int8)
    rate = float(y.mean())
    # hiding the level leaves the average match probability where it was ...
    assert abs(fitted.probability(hidden).mean() / rate - 1) < 0.2
    # ... where the unfitted "unknown" lands far off it
    ratio = plain.probability(hidden).mean() / rate
    assert ratio > 1.5 or ratio < 0.67, ratio


def test_a_common_shared_handle_weighs_less_the_more_accounts_hold_it() -> None:
    """Levels 4 and 6 ("common") fall by log(k / 4) for a name k accounts hold; the
    rare levels, unlike handles and names of exactly 4 holders keep the fitted weight."""
    model = load_model("all")
    levels = np.array([4, 4, 4, 6, 6, 5, 7, 0], np.int8)
    holders = np.array([4, 8, 40, 4, 20, 3, 2, 0], np.int32)
    n = len(levels)
    f = PairFeatures(np.arange(n), np.arange(n) + n,
                     {"handle": np.ones(n, np.float32), "handle_holders": holders},
                     {"handle": levels})
    got = model.contributions(f)["handle"]
    fitted = np.asarray(model.weights["handle"])[levels]
    expected = fitted - np.where(np.isin(levels, (4, 6)), np.log(np.maximum(1, holders / 4)), 0)
    assert np.allclose(got, expected)
    assert got[0] == fitted[0] and got[2] < got[1] < got[0]
    assert got[5] == fitted[5] and got[6] == fitted[6]
    # the explanation stays exact: the logit is the intercept plus the contributions
    assert np.allclose(model.logit(f), model.intercept + got)


def test_a_shared_name_counts_half_when_the_voice_disagrees_and_no_key_is_shared() -> None:
    """Same handle, writing habits clearly unlike (style, capitals and symbols below
    VOICE_AGAINST together): without a shared key the handle's contribution is halved;
    with a shared key, with agreeing habits or without text it is not."""
    model = load_model("all")
    # pairs: 0 unlike voice, different keys; 1 the same with a shared key; 2 alike voice;
    # 3 no text on one side
    n = 4
    levels = {"handle": np.full(n, 7, np.int8), "pgp": np.array([1, 2, 1, 1], np.int8),
              "style": np.array([1, 1, 10, 0], np.int8),
              "capitals": np.array([1, 1, 6, 0], np.int8),
              "symbols": np.array([1, 1, 8, 0], np.int8)}
    f = PairFeatures(np.arange(n), np.arange(n) + n,
                     {k: v.astype(np.float32) for k, v in levels.items()}, levels)
    got = model.contributions(f)
    voice = sum(got[s][0] for s in VOICE_SIGNALS)
    assert voice < VOICE_AGAINST  # the case is what it says
    full = model.weights["handle"][7]
    assert got["handle"][0] == pytest.approx(full * VOICE_DISCOUNT)
    assert got["handle"][1] == pytest.approx(full)
    assert got["handle"][2] == pytest.approx(full) and got["handle"][3] == pytest.approx(full)
    assert np.allclose(model.logit(f), model.intercept + sum(got.values()))
    # a successor across a market closure keeps the whole name
    moved = PairFeatures(f.i, f.j, f.raw, {**levels, "migration": np.ones(n, np.int8)})
    assert model.contributions(moved)["handle"][0] == pytest.approx(full)
    model.voice_rule = False
    assert model.contributions(f)["handle"][0] == pytest.approx(full)


def test_the_logit_is_the_sum_of_the_contributions_in_their_order_bit_for_bit() -> None:
    """``logit`` adds each signal as it computes it (not every array held at once); it
    must equal the intercept plus the stored contributions added in the model's order,
    exactly, with the voice rule, frequency-adjusted handles and judged scales."""
    model = load_model("all")
    rng = np.random.default_rng(7)
    n = 20_000
    levels = {s: rng.integers(0, len(SIGNALS[s]), n).astype(np.int8) for s in model.weights}
    levels["handle"] = rng.choice(np.array([0, 4, 5, 6, 7], np.int8), n)
    levels["pgp"] = rng.integers(0, 2, n).astype(np.int8)  # mostly no shared key
    if "migration" in levels:
        levels["migration"] = (rng.random(n) < 0.05).astype(np.int8)
    raw = {k: v.astype(np.float32) for k, v in levels.items()}
    raw["handle_holders"] = rng.integers(1, 60, n).astype(np.int32)
    f = PairFeatures(np.arange(n), np.arange(n) + n, raw, levels)
    for scales in ({}, {"handle": 0.8, "style": 1.3, "phrasing": 1.1}):
        model.scales = scales
        got = model.contributions(f)
        assert list(got) == list(model.weights)
        total = np.full(n, model.intercept)
        for c in got.values():
            total += c
        assert np.array_equal(model.logit(f), total)
        full = np.asarray(model.weights["handle"], np.float64)[levels["handle"]]
        halved = ~np.isclose(got["handle"] * (scales.get("handle", 1.0) ** -1), full) & (
            levels["handle"] == 7)
        assert halved.sum() > 100  # the voice rule is exercised


def test_a_different_key_counts_nothing_between_accounts_tied_through_others() -> None:
    """A different key, address or contact counts 0 between two accounts that only a
    chain of other accounts' shared identifiers ties (raw ``identifiers_tied``); untied
    pairs, pairs that share an identifier themselves and the other levels keep the
    fitted weight, and the logit stays the sum of the contributions."""
    model = load_model("all")
    # pairs: 0 different keys, tied through others; 1 different keys, not tied; 2 a
    # shared key (so not "tied through others", whatever its group); 3 no key on one
    # side, tied through others
    n = 4
    levels = {"pgp": np.array([1, 1, 2, 0], np.int8),
              "contact": np.array([1, 1, 1, 0], np.int8),
              "crypto": np.array([1, 0, 0, 0], np.int8)}
    raw: dict[str, np.ndarray] = {k: v.astype(np.float32) for k, v in levels.items()}
    # identifier groups of accounts 0-7 (pair k is accounts k and k + 4); -1: no group
    group = np.array([0, -1, 2, 3, 0, -1, 2, 3])
    raw[TIED] = tied_through_others(group, np.arange(n), np.arange(n) + n,
                                    list(levels.values()))
    assert raw[TIED].tolist() == [1, 0, 0, 1]
    f = PairFeatures(np.arange(n), np.arange(n) + n, raw, levels)
    got = model.contributions(f)
    for s in ("pgp", "contact", "crypto"):
        fitted = np.asarray(model.weights[s])[levels[s]]
        expected = np.where((raw[TIED] > 0) & (levels[s] == 1), 0.0, fitted)
        assert np.array_equal(got[s], expected), s
    assert got["pgp"][0] == 0.0 and got["pgp"][1] == model.weights["pgp"][1] < 0
    assert got["pgp"][2] == model.weights["pgp"][2]
    assert got["contact"][2] == model.weights["contact"][1]  # shares a key itself
    assert np.allclose(model.logit(f), model.intercept + sum(got.values()))
    # without the raw value (a model fitted elsewhere, old features) nothing changes
    plain = PairFeatures(f.i, f.j, {k: v for k, v in raw.items() if k != TIED}, levels)
    assert model.contributions(plain)["pgp"][0] == model.weights["pgp"][1]


class _Idents:
    """The part of :class:`~darkmap.resolve.profiles.Profiles` that
    :func:`identifier_groups` reads."""

    def __init__(self, n: int, idents: dict[str, sp.csr_matrix]) -> None:
        self.n, self.idents = n, idents

    def __len__(self) -> int:
        return self.n


def _binary(n: int, rows: list[tuple[int, int]], cols: int) -> sp.csr_matrix:
    r, c = zip(*rows, strict=True)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (r, c)), shape=(n, cols))


def test_accounts_are_tied_by_chains_of_shared_identifiers_of_the_groups_in_use() -> None:
    # keys: 0 holds k0, 1 holds k0 and k1 (an old and a new key), 2 holds k1; 3 holds
    # k2 alone; 4 shares a contact with 3; 5 shares nothing
    n = 6
    prof = _Idents(n, {"pgp": _binary(n, [(0, 0), (1, 0), (1, 1), (2, 1), (3, 2)], 3),
                       "contact": _binary(n, [(3, 0), (4, 0), (5, 1)], 2),
                       "crypto": sp.csr_matrix((n, 1), dtype=np.float32)})
    g = identifier_groups(prof, ("pgp", "crypto", "contact"))  # type: ignore[arg-type]
    assert g[0] == g[1] == g[2] >= 0 and g[3] == g[4] >= 0 and g[0] != g[3]
    assert g[5] == -1
    # keys left out (``--without pgp``): only the contact ties
    g = identifier_groups(prof, ("crypto", "contact"))  # type: ignore[arg-type]
    assert (g[:3] == -1).all() and g[3] == g[4] >= 0 and g[5] == -1
    assert (identifier_groups(prof, ()) == -1).all()  # type: ignore[arg-type]
