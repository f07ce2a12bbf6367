"""``distinct`` is ``numpy.unique`` of a 1-D array, by sorting (see darkmap.model.arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from darkmap.model.arrays import distinct


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64, np.int8, np.bool_])
def test_distinct_is_numpy_unique_for_integers(dtype: type) -> None:
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 17, 5_000):
        for hi in (2, 50, 10**6):
            a = rng.integers(-hi if np.issubdtype(dtype, np.signedinteger) else 0, hi,
                             n).astype(dtype)
            got, want = distinct(a), np.unique(a)
            assert got.dtype == want.dtype
            assert np.array_equal(got, want)
    extremes = np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0, -1, 0],
                        dtype=np.int64)
    assert distinct(extremes).tolist() == sorted(set(extremes.tolist()))


def test_distinct_leaves_its_input_alone_and_other_dtypes_to_numpy() -> None:
    a = np.array([3, 1, 3, 2])
    assert distinct(a).tolist() == [1, 2, 3] and a.tolist() == [3, 1, 3, 2]
    one = np.array([5])
    out = distinct(one)
    out[0] = 9
    assert one.tolist() == [5]  # a copy, as numpy.unique gives
    nan = np.array([1.0, np.nan, 1.0, np.nan])
    assert np.array_equal(distinct(nan), np.unique(nan), equal_nan=True)
    assert distinct(np.array(["b", "a", "b"])).tolist() == ["a", "b"]
