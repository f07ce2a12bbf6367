"""Shingle profiles behind the linker's writing-style signals."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from darkmap.resolve.profiles import strip_blobs
from darkmap.resolve.vectors import (
    evidence_profile,
    hashed_shingles,
    language_groups,
    market_dialects,
    product_vocabulary,
    row_cosines,
    symbol_runs,
    tfidf,
    token_vocabulary,
    word_document_counts,
    word_shapes,
)


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


def test_masked_product_words_leave_the_writing() -> None:
    titles = ["MDMA crystal 5g", "mdma pills 100x", "Ketamine 10g", "ketamine needles",
              "MDMA 84%", "ketamine shards"]
    vocab = token_vocabulary(titles, min_docs=3)
    # "mdma" and "ketamine" are in three titles each; "crystal", "pills", "g" are not
    assert len(vocab) == 2
    texts = ["Selling MDMA at the best prices, vacuum sealed!",
             "Selling ketamine at the best prices, vacuum sealed!"]
    masked = hashed_shingles(texts, (1, 2, 3), mask=vocab)
    plain = hashed_shingles(texts, (1, 2, 3))
    assert _shared(masked, 0, 1) == masked[0].nnz
    assert _shared(plain, 0, 1) < plain[0].nnz
    # punctuation and numbers are never product words, however common in titles
    assert len(token_vocabulary(["a - 5", "b - 5", "c - 5"], min_docs=3)) == 0


def test_product_words_are_what_is_sold_not_how_it_is_praised() -> None:
    titles = ["Pure MDMA crystal", "pure mdma pills", "PURE cocaine", "MDMA 84%",
              "cocaine fishscale", "Cocaine 90%"] + [""] * 6
    # "pure" is in three titles, but twelve vendors write it in their own words too;
    # "mdma" and "cocaine" are written where they are sold
    prose = ([f"Only pure product, vendor {k}" for k in range(12)]
             + ["we sell mdma", "our cocaine is the best"])
    vocab = product_vocabulary(titles, prose, min_docs=3, max_prose_ratio=2.0)
    masked = hashed_shingles(["pure mdma", "pure cocaine"], (1,), mask=vocab)
    plain = hashed_shingles(["pure mdma", "pure cocaine"], (1,))
    # both product words become one placeholder; "pure" stays a word of its own
    assert masked[0].nnz == 2 and _shared(masked, 0, 1) == 2
    assert _shared(plain, 0, 1) == 1
    assert len(vocab) == 2
    # with no free text at all the rule is the title count alone
    assert np.array_equal(product_vocabulary(titles, [""] * len(titles), 3),
                          token_vocabulary(titles, 3))


def test_rare_share_keeps_the_phrases_strangers_do_not_share() -> None:
    common = [f"fast shipping, vacuum sealed, account {k}" for k in range(60)]
    texts = ["fast shipping, vacuum sealed, stealth is our middle name",
             "fast shipping, vacuum sealed, stealth is our middle name",
             "fast shipping, vacuum sealed"] + common
    shingles = hashed_shingles(texts, (1, 2, 3))
    full, ev_full = evidence_profile(shingles)
    rare, ev_rare = evidence_profile(shingles, max_share=0.1)
    # the rare profile holds the pet phrase only: what 60 accounts write is gone
    assert 0 < rare[0].nnz < full[0].nnz and rare[2].nnz == 0 and rare[3].nnz == 0
    i, j = np.array([0, 0]), np.array([1, 2])
    r_full, r_rare = ev_full.ratio(full, i, j), ev_rare.ratio(rare, i, j)
    assert r_rare[0] > r_full[0] > 1.0, (r_rare, r_full)
    # boilerplate every account writes is no evidence at all (it weighs log 1 = 0)
    assert r_rare[1] == r_full[1] == 1.0


def test_markets_that_write_alike_share_one_dialect() -> None:
    # markets 0 and 1: one community's boilerplate; market 2 writes otherwise
    a = [f"vacuum sealed stealth, reship policy, order {k} ships today" for k in range(12)]
    b = [f"vacuum sealed stealth, reship policy, parcel {k} ships today" for k in range(12)]
    c = [f"wir versenden diskret aus deutschland, paket {k} kommt morgen" for k in range(12)]
    m = hashed_shingles(a + b + c, (1, 2), digits="split")
    market = np.repeat([0, 1, 2], 12)
    d = market_dialects(m, market)
    assert d[0] == d[12] != d[24] and len(set(d[:24])) == 1 and len(set(d[24:])) == 1
    # one market, or markets that all write alike: one group, nothing changes
    assert set(market_dialects(m[:24], market[:24])) == {0}
    assert set(market_dialects(m, np.zeros(36, np.int64))) == {0}
    # per-dialect frequencies: the boilerplate of two markets weighs less there
    _, ev_all = evidence_profile(m)
    _, ev_dia = evidence_profile(m, groups=d)
    assert ev_dia.total[0] < ev_all.total[0]


def test_features_of_one_row_only_are_dropped() -> None:
    m = hashed_shingles(["stealth fire", "stealth", "zzqx"], (1,))
    kept = tfidf(m, min_df=2)
    assert np.diff(kept.indptr).tolist() == [1, 1, 0]
    # both rows now consist of what they share alone
    assert row_cosines(kept, np.array([0]), np.array([1]))[0] > 0.99
    assert row_cosines(tfidf(m), np.array([0]), np.array([1]))[0] < 0.8


def test_word_shapes_read_capitalisation() -> None:
    s = word_shapes(["WELCOME TO THE SHOP", "welcome to the shop", "Welcome To The Shop",
                     "McDonald iPhone", "", "5g :) !!"])
    assert s[:4].argmax(axis=1).tolist() == [0, 1, 2, 3]
    assert np.allclose(s[:4].sum(axis=1), 1.0)
    assert s[4].sum() == 0 and s[5].sum() == 0  # no words of two letters or more
    mixed = word_shapes(["WELCOME!! We are the BEST shop, eBay style"])[0]
    assert np.allclose(mixed, [2 / 8, 4 / 8, 1 / 8, 1 / 8])


def test_symbol_runs_read_punctuation_and_emoji_habits() -> None:
    m = symbol_runs(["Best shop!!! 🔥🔥 :)", "Best shop!!!!! 🔥 :)", "Best shop. ok.",
                     "no symbols at all"])
    # "!!!" and "!!!!!" are one habit, "🔥🔥" differs from "🔥"; ":)" is ":", ")" and
    # the pair ":)"
    assert np.diff(m.indptr).tolist() == [5, 5, 1, 0]
    assert _shared(m, 0, 1) == 4
    assert _shared(m, 0, 2) == 0


def test_shared_evidence_grows_with_rare_common_text() -> None:
    filler = [f"generic listing text number {k} with words" for k in range(40)]
    texts = ["vacuum sealed stealth, reship policy, ships from holland",
             "vacuum sealed stealth, reship policy, ships from holland",
             "ships from holland"] + filler
    m, ev = evidence_profile(hashed_shingles(texts, (1, 2), digits="split"))
    r = ev.ratio(m, np.array([0, 0, 0]), np.array([1, 2, 3]))
    # two identical rare texts share many times what chance gives; sharing only
    # "ships from holland" is less; a stranger shares nothing
    assert r[0] > r[1] > 1.0 >= r[2], r
    # without a partner a feature weighs nothing: rows 3.. keep only "generic ..." words
    assert m[3].nnz < hashed_shingles([texts[3]], (1, 2), digits="split").nnz


def test_language_groups_and_per_language_weights() -> None:
    de = ["Hallo, ich bin der Krautling und bitte lest euch mein Profil durch",
          "Wir sind ein Team und ich versende mit DHL, bitte nicht auf Rechnung"]
    en = [f"we ship {k} orders with tracking and you will get your order" for k in range(30)]
    nl = ["Wij zijn een team en wij verzenden naar heel Europa met de post van het land"]
    groups = language_groups(hashed_shingles(de + en + nl + ["ok"], (1, 2), digits="split"))
    assert groups.tolist() == [1, 1] + [0] * 30 + [2, 0]
    shingles = hashed_shingles(de + en, (1,))
    m1, ev1 = evidence_profile(shingles)
    m2, ev2 = evidence_profile(shingles, groups=groups[:32])
    one = (np.array([0]), np.array([1]))
    # "ich", "und", "bitte" are rare in the workspace but common among German texts:
    # weighed within the language, two German writers share far less evidence
    assert ev2.ratio(m2, *one)[0] < ev1.ratio(m1, *one)[0]
    # English pairs are weighed as before (their group is nearly the whole workspace)
    en_pair = (np.array([2]), np.array([3]))
    assert abs(ev2.ratio(m2, *en_pair)[0] / ev1.ratio(m1, *en_pair)[0] - 1) < 0.2


def test_pgp_blocks_and_base64_runs_are_not_writing() -> None:
    key = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: GnuPG v2\n\nmQENBFeYI6oBCAC5BLxBt"
           "XvI2KHLqfgSLq10gwjZLRFrd9GQ\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----")
    assert strip_blobs(f"Hello friends. {key} Ship fast.").split() == [
        "Hello", "friends.", "Ship", "fast."]
    assert "BEGIN" not in strip_blobs("About me\n-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz")
    assert strip_blobs("pay bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh now").split() == [
        "pay", "now"]
    assert strip_blobs("plain text stays") == "plain text stays"


def test_shipped_models_count_text_disagreement_once() -> None:
    from darkmap.resolve.match_model import load_model

    for variant in ("all", "no_identifiers"):
        w = load_model(variant).weights
        # phrasing reads the same text as style: it may add agreement only
        assert min(w["phrasing"]) >= 0.0 and max(w["phrasing"]) > 1.0, w["phrasing"]
        assert min(w["rare_phrases"]) >= 0.0 and max(w["rare_phrases"]) > 0.5, w
        assert all(a <= b for a, b in pairwise(w["rare_phrases"]))
        assert w["style"][1] < 0 < w["style"][-1], w["style"]
        assert all(a <= b for a, b in pairwise(w["style"][1:]))


def _texts_world(ws, texts: dict[tuple[str, str], str]) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    from datetime import datetime

    from darkmap.model.records import AccountRecord, MarketRecord
    from darkmap.store.writer import Provenance, RecordWriter

    prov = Provenance(hashlib.sha256(b"phrasing-block").hexdigest(), "test", "test@1",
                      datetime(2020, 1, 1))
    w = RecordWriter(ws.con)
    for mid in sorted({m for m, _ in texts}):
        w.add(MarketRecord(mid, mid), prov)
    for (mid, handle), text in texts.items():
        w.add(AccountRecord(mid, handle, profile_text=text, locator=f"acct {handle}"), prov)
    w.flush()


def test_phrasing_block_pairs_writers_of_a_rare_phrase(ws) -> None:  # type: ignore[no-untyped-def]
    """Two accounts with unrelated handles on different markets and one odd sentence in
    common become a candidate pair, among 80 accounts that share another sentence."""
    import random

    from darkmap.resolve.candidates import candidate_pairs, knn_sparse
    from darkmap.resolve.profiles import load_profiles

    rng = random.Random(5)
    words = ("quality", "stealth", "fast", "shipping", "vacuum", "sealed", "product", "best",
             "market", "reship", "tracking", "order", "weekend", "discount", "bulk")
    common = "Welcome to our shop, please read the terms before you order."
    texts = {}
    for k in range(80):
        body = " ".join(rng.choice(words) for _ in range(40))
        texts[(f"m{k % 3}", f"vendor{k:03d}")] = f"{common} {body}."
    odd = "Parcels leave the lighthouse every second Tuesday wrapped in 3 layers of kelp."
    texts[("m0", "northernsun")] = (f"{common} {odd} "
                                    + " ".join(rng.choice(words) for _ in range(40)))
    texts[("m2", "quietriver")] = (f"{odd} {common} "
                                   + " ".join(rng.choice(words) for _ in range(40)))
    _texts_world(ws, texts)
    prof = load_profiles(ws.con)
    a, b = prof.index["m0:northernsun"], prof.index["m2:quietriver"]
    # each is the other's single nearest account by shingles held by at most 5 accounts
    found = {tuple(p) for p in knn_sparse(prof.phrasing, 1, 0.05, max_df=5).tolist()}
    assert (a, b) in found and (b, a) in found
    assert (min(a, b), max(a, b)) in {tuple(p) for p in candidate_pairs(prof).tolist()}


def test_distinct_pairs_come_in_the_order_of_the_record_sort() -> None:
    # candidate pairs are scored and clustered in this order (ties follow it), so the
    # one-key sort must give exactly what numpy's sort of (i, j) records gives
    from darkmap.resolve.candidates import unique_pairs

    rng = np.random.default_rng(3)
    blocks = [rng.integers(0, 500, (4000, 2)), rng.integers(0, 5, (50, 2)),
              np.array([[7, 7], [3, 9], [9, 3]])]
    got = unique_pairs(blocks)
    ref = np.sort(np.concatenate(blocks), axis=1)
    ref = np.unique(ref[ref[:, 0] != ref[:, 1]], axis=0)
    assert got.dtype == np.int64 and np.array_equal(got, ref)
    assert len(got) > 3000 and not len(unique_pairs([np.array([[4, 4]])]))


def test_word_document_counts_count_each_text_once() -> None:
    texts = ["Pure MDMA pure mdma", "mdma crystals", "crystals and more crystals", "x 24h"]
    vals, counts = word_document_counts(texts, chunk=2)
    by_word = dict(zip(vals.tolist(), counts.tolist(), strict=True))
    # the same hash as a one-word text gives
    one = {w: word_document_counts([w])[0][0] for w in ("mdma", "crystals", "pure", "and")}
    assert [by_word[one[w]] for w in ("mdma", "crystals", "pure", "and")] == [2, 2, 1, 1]
    assert list(vals) == sorted(vals.tolist())


_PRICE_DIGEST = """
import hashlib, sys
from pathlib import Path
from darkmap.resolve.profiles import load_profiles
from darkmap.store.workspace import Workspace
ws = Workspace.open(Path(sys.argv[1]), read_only=True)
m = load_profiles(ws.con).price_keys
h = hashlib.sha256()
for a in (m.data, m.indices, m.indptr):
    h.update(a.tobytes())
print(m.nnz, m.shape[1], h.hexdigest())
"""


def test_price_columns_do_not_depend_on_string_hashing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the (word, unit) columns were numbered in the order of a set of words, which
    # changes with each process's string hashing (PYTHONHASHSEED), and with it the order
    # in which a pair's price gaps are summed
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import DATA

    from darkmap.collect.ingest import ingest
    from darkmap.store.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    try:
        ingest(ws, [DATA / "listings" / "hansa-2016-12.csv"])
    finally:
        ws.close()
    src = str(Path(__file__).resolve().parents[1] / "src")
    outs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _PRICE_DIGEST, str(tmp_path / "ws")],
                              env=env, capture_output=True, text=True, timeout=300,
                              check=True)
        outs.append(done.stdout.split())
    nnz, columns = int(outs[0][0]), int(outs[0][1])
    assert nnz > 1000 and columns > 500  # real priced titles with quantities
    assert outs[1] == outs[0] and outs[2] == outs[0]


def _reference_profile(presence, top_k, groups, max_share, cap=100.0, prior=50.0):  # type: ignore[no-untyped-def]
    """evidence_profile as it was written first: every step over every entry at once
    (the (group, feature) counts by sorting keys), kept to check the lean version."""
    import scipy.sparse as sp

    m = sp.csr_matrix(presence, dtype=np.float32)
    m.sort_indices()
    n = max(1, m.shape[0])
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
    freq = (df / n)[m.indices]
    if groups is not None and len(np.unique(groups)) > 1:
        g = np.repeat(np.asarray(groups, dtype=np.int64), np.diff(m.indptr))
        n_g = np.bincount(groups).astype(np.float64)
        _, inv, cnt = np.unique(g * m.shape[1] + m.indices, return_inverse=True,
                                return_counts=True)
        freq = (cnt[inv] + prior * freq) / (n_g[g] + prior)
    w = np.minimum(-np.log(np.maximum(freq, 1.0 / n)), np.log(cap))
    ok = (df[m.indices] >= 2) & (w > 0)
    if max_share is not None:
        ok &= df[m.indices] < max_share * n
    keep = np.flatnonzero(ok)
    root = np.sqrt(w).astype(np.float32)
    if top_k:
        row = np.repeat(np.arange(n), np.diff(m.indptr))[keep]
        indptr = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=n))))
        counts = np.diff(indptr)
        if counts.max() > top_k:
            order = np.lexsort((-root[keep], row))
            rank = np.arange(len(order)) - indptr[row[order]]
            keep = keep[np.sort(order[rank < top_k])]
    freq = freq[keep]
    row = np.repeat(np.arange(n), np.diff(m.indptr))[keep]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=n))))
    m = sp.csr_matrix((root[keep], m.indices[keep], indptr), shape=m.shape)
    total = np.asarray(m.multiply(m).sum(axis=1), dtype=np.float64).ravel()
    p = sp.csr_matrix((m.data.astype(np.float64) ** 2 * freq, m.indices, m.indptr),
                      shape=m.shape)
    return m, total, np.asarray(p.sum(axis=1), dtype=np.float64).ravel()


def test_evidence_profile_is_the_first_one_bit_for_bit() -> None:
    # the lean version (arrays let go early, top-k a chunk of rows at a time, group
    # counts a group at a time) must give exactly what the plain version gave
    import scipy.sparse as sp

    from darkmap.resolve import vectors

    rng = np.random.default_rng(11)
    n, f = 1500, 400
    nnz = rng.integers(0, 60, n)  # some rows above top_k, some empty
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.zipf(1.3, len(rows)) % f  # heavy-tailed document frequencies
    presence = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, f))
    presence.data[:] = 1.0
    groups = rng.integers(0, 4, n)
    for top_k, grp, share in [(20, None, None), (20, groups, None), (None, groups, 0.05),
                              (7, groups, 0.2), (1000, None, None)]:
        ref_m, ref_total, ref_chance = _reference_profile(presence, top_k, grp, share)
        for chunk in (1, 37, 4096):
            original = vectors._top_k_positions.__defaults__
            vectors._top_k_positions.__defaults__ = (chunk,)
            try:
                m, ev = evidence_profile(presence, top_k=top_k, groups=grp, max_share=share)
            finally:
                vectors._top_k_positions.__defaults__ = original
            want = vectors.normalise_rows(ref_m)
            assert m.nnz == want.nnz > 0
            for a, b in ((m.data, want.data), (m.indices, want.indices),
                         (m.indptr, want.indptr), (ev.total, ref_total),
                         (ev.chance, ref_chance)):
                assert np.array_equal(a, b)
