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
