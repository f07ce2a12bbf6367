"""Fingerprint sets and distinct counts agree with Python sets (#21: the readers counted
distinct listing ids in a Counter of every id, about 100 MB per million rows)."""

from __future__ import annotations

import csv

import numpy as np
from conftest import DATA

from darkmap.model.fingerprints import DistinctCount, Fingerprints, text_fingerprints


def _hansa_refs() -> list[str]:
    with open(DATA / "listings" / "hansa-2016-12.csv", encoding="utf-8", newline="") as fh:
        return [row[1].strip() for row in csv.reader(fh, skipinitialspace=True)
                if len(row) > 1]


def test_distinct_count_of_real_listing_ids() -> None:
    refs = _hansa_refs()
    assert len(refs) - len(set(refs)) > 0  # the real file repeats listings
    for flush in (7, 1000, 50_000):  # folded in pieces of several sizes
        c = DistinctCount(fold_every=flush)
        for i, r in enumerate(refs):
            c.add(r) if i % 2 else c.update([r])
        assert c.rows == len(refs)
        assert c.distinct == len(set(refs))
        c.update(refs[:100])  # counting again after a read of distinct
        assert (c.rows, c.distinct) == (len(refs) + 100, len(set(refs)))


def test_fingerprint_set_membership() -> None:
    words = [f"listing-{i}" for i in range(20_000)] + ["", "\ud800 lone surrogate", "é"]
    fp = Fingerprints()
    for k in range(0, len(words), 3000):  # many runs, merged as they grow
        hi, lo = text_fingerprints(words[k:k + 3000])
        fp.add(hi, lo)
    assert len(fp) == len(words)
    hi, lo = text_fingerprints(words + ["listing-20000", "x"])
    found = fp.contains(hi, lo)
    assert found[:len(words)].all() and not found[len(words):].any()
    assert np.unique(np.stack([hi, lo]), axis=1).shape[1] == len(words) + 2


def test_equal_upper_halves_across_merged_runs() -> None:
    rng = np.random.default_rng(7)
    members: set[tuple[int, int]] = set()
    fp = Fingerprints()
    for size in (500, 300, 300, 2000, 40, 40, 5000, 1):  # runs merge at several sizes
        hi = rng.integers(0, 50, size, dtype=np.uint64)  # many members share an upper half
        lo = rng.integers(0, 2**63, size, dtype=np.uint64)
        pairs = {(int(h), int(x)) for h, x in zip(hi, lo, strict=True)} - members
        if not pairs:
            continue
        h_new = np.array([p[0] for p in pairs], dtype=np.uint64)
        l_new = np.array([p[1] for p in pairs], dtype=np.uint64)
        fp.add(h_new, l_new)
        members |= pairs
        for h_run, _ in fp._runs:
            assert (np.diff(h_run.astype(np.int64)) >= 0).all()  # sorted by upper half
    assert len(fp) == len(members)
    probe_hi = np.array([m[0] for m in members] + [3, 60], dtype=np.uint64)
    probe_lo = np.array([m[1] for m in members] + [1, 1], dtype=np.uint64)
    found = fp.contains(probe_hi, probe_lo)
    assert found[:len(members)].all()
    assert found[len(members):].tolist() == [(3, 1) in members, False]


def test_contains_matches_a_set_in_any_query_order() -> None:
    """The queries are searched sorted and answered in the order given: members,
    strangers sharing a member's upper half, repeats, the extremes of the range, and
    upper halves that many members share, over runs of several sizes."""
    rng = np.random.default_rng(11)
    top = np.uint64(2**64 - 1)
    members: set[tuple[int, int]] = set()
    fp = Fingerprints()
    for size in (4000, 900, 300, 60, 1):
        hi = rng.integers(0, 2**64, size, dtype=np.uint64)
        hi[: size // 4] = rng.integers(0, 8, size // 4, dtype=np.uint64)  # shared halves
        hi[-1:] = top
        lo = rng.integers(0, 2**64, size, dtype=np.uint64)
        fresh = [(int(h), int(x)) for h, x in zip(hi, lo, strict=True)
                 if (int(h), int(x)) not in members]
        fresh = list(dict.fromkeys(fresh))
        fp.add(np.array([p[0] for p in fresh], np.uint64),
               np.array([p[1] for p in fresh], np.uint64))
        members.update(fresh)
    listed = sorted(members)
    pick = rng.integers(0, len(listed), 3000)
    q_hi = np.array([listed[i][0] for i in pick], np.uint64)
    q_lo = np.array([listed[i][1] for i in pick], np.uint64)
    q_lo[1::3] ^= np.uint64(1)  # a stranger with a member's upper half
    q_hi = np.concatenate([q_hi, rng.integers(0, 2**64, 500, dtype=np.uint64),
                           np.array([0, top, top], np.uint64)])
    q_lo = np.concatenate([q_lo, rng.integers(0, 2**64, 500, dtype=np.uint64),
                           np.array([0, 0, listed[-1][1]], np.uint64)])
    order = rng.permutation(len(q_hi))
    q_hi, q_lo = q_hi[order], q_lo[order]
    want = [(int(h), int(x)) in members for h, x in zip(q_hi, q_lo, strict=True)]
    assert 500 < sum(want) < len(want) - 500
    assert fp.contains(q_hi, q_lo).tolist() == want
    assert fp.contains(q_hi[:0], q_lo[:0]).tolist() == []
    assert Fingerprints().contains(q_hi, q_lo).tolist() == [False] * len(q_hi)
