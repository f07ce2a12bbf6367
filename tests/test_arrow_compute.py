"""``darkmap.model.arrow_compute`` gives what ``pyarrow.compute`` gives (#21).

The ingest path calls Arrow's kernels through it so that ``darkmap ingest`` of a CSV
never imports ``pyarrow.compute`` (0.035 s of CPU); each function must return exactly
what its ``pyarrow.compute`` counterpart (or the Arrow method it replaces) returns,
nulls, empty inputs, chunked arrays and tables included.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from darkmap.model import arrow_compute as ac

STRINGS = [
    pa.array(["row 1", "row 20", None, "", "Row 3", "row 007", "rôw 4", " row 5"], pa.string()),
    pa.array([], pa.string()),
    pa.array([None, None], pa.string()),
    pa.chunked_array([["row 1", None], ["x", "row 2"]], pa.string()),
]
BOOLS = [pa.array([True, False, None, True]), pa.array([], pa.bool_()),
         pa.array([None], pa.bool_()), pa.array([True, True]),
         pa.chunked_array([[True], [None, False]])]


def _same(a: object, b: object) -> None:
    assert type(a) is type(b)
    assert a.equals(b) if hasattr(a, "equals") else a == b  # type: ignore[attr-defined]


@pytest.mark.parametrize("arr", STRINGS)
def test_string_kernels(arr: pa.Array) -> None:
    _same(ac.string_is_ascii(arr), pc.string_is_ascii(arr))
    for pattern, case in ((r"^row [0-9]+$", False), (r"ROW", True), (r"^$", False)):
        _same(ac.match_substring_regex(arr, pattern, ignore_case=case),
              pc.match_substring_regex(arr, pattern, ignore_case=case))
    _same(ac.starts_with(arr, "row "), pc.starts_with(arr, "row "))
    _same(ac.utf8_slice_codeunits(arr, 4), pc.utf8_slice_codeunits(arr, 4))
    _same(ac.utf8_slice_codeunits(arr, 1, 3), pc.utf8_slice_codeunits(arr, 1, 3))
    _same(ac.utf8_rpad(arr, width=6, padding="0"), pc.utf8_rpad(arr, width=6, padding="0"))
    _same(ac.extract_regex(arr, r"^(?P<w>[a-z]+) (?P<n>[0-9]+)$"),
          pc.extract_regex(arr, r"^(?P<w>[a-z]+) (?P<n>[0-9]+)$"))
    _same(ac.coalesce_with(arr, ""), pc.fill_null(arr, ""))
    _same(ac.coalesce_with(arr, pa.scalar("-", pa.string())),
          pc.fill_null(arr, pa.scalar("-", pa.string())))
    _same(ac.is_in(arr, value_set=pa.array(["", "x", None], pa.string())),
          pc.is_in(arr, value_set=pa.array(["", "x", None], pa.string())))
    _same(ac.equal(arr, pa.scalar("", pa.string())), pc.equal(arr, pa.scalar("", pa.string())))
    _same(ac.not_equal(arr, pa.scalar("", pa.string())),
          pc.not_equal(arr, pa.scalar("", pa.string())))
    _same(ac.is_valid(arr), pc.is_valid(arr))
    _same(ac.is_null(arr), pc.is_null(arr))
    _same(ac.unique(arr), pc.unique(arr))
    assert ac.count_distinct(arr) == pc.count_distinct(arr).as_py()
    _same(ac.dictionary_encode(arr, null_encoding="encode"),
          pc.dictionary_encode(arr, null_encoding="encode"))
    _same(ac.dictionary_encode(arr), pc.dictionary_encode(arr))
    keep = pa.array([i % 2 == 0 for i in range(len(arr))], pa.bool_())
    _same(ac.filter_by(arr, keep), arr.filter(keep))
    idx = pa.array(list(range(len(arr)))[::-1], pa.int64())
    _same(ac.take(arr, idx), arr.take(idx))
    _same(ac.if_else(ac.is_null(arr), pa.scalar("?", pa.string()), arr),
          pc.if_else(pc.is_null(arr), pa.scalar("?", pa.string()), arr))


@pytest.mark.parametrize("arr", BOOLS)
def test_boolean_kernels(arr: pa.Array) -> None:
    assert ac.all_true(arr) == bool(pc.all(arr).as_py())
    _same(ac.invert(arr), pc.invert(arr))
    _same(ac.and_(arr, arr), pc.and_(arr, arr))
    _same(ac.coalesce_with(arr, False), pc.fill_null(arr, False))


@pytest.mark.parametrize("values", [[1.5, None, float("inf")], [float("nan"), -2.0], [None, None],
                                    [], [0.0, 3.25]])
def test_is_finite_is_arrows(values: list[float | None]) -> None:
    arr = pa.array(values, pa.float64())
    _same(ac.is_finite(arr), pc.is_finite(arr))
    assert ac.all_finite(arr) == all(v is None or math.isfinite(v) for v in values)


def test_casts_raise_as_arrow_does() -> None:
    digits = pa.array(["1", "20", None, "007"], pa.string())
    _same(ac.cast(digits, pa.int64()), pc.cast(digits, pa.int64()))
    _same(ac.cast(digits, pa.int64()), digits.cast(pa.int64()))
    when = pa.array([0, None, 1_480_000_000_000_000], pa.int64())
    _same(ac.cast(when, pa.timestamp("us")), when.cast(pa.timestamp("us")))
    for bad in (pa.array(["1x"], pa.string()), pa.array(["99999999999999999999"], pa.string())):
        with pytest.raises(pa.ArrowInvalid):
            pc.cast(bad, pa.int64())
        with pytest.raises(pa.ArrowInvalid):
            ac.cast(bad, pa.int64())
    with pytest.raises(pa.ArrowInvalid):
        ac.cast(pa.array([300], pa.int64()), pa.int8())  # safe: no silent overflow


def test_tables_are_taken_and_filtered_as_by_their_methods() -> None:
    tbl = pa.concat_tables([pa.table({"k": ["a", "b"], "v": [1, None]}),
                            pa.table({"k": [None, "a"], "v": [3, 4]})])
    idx = pa.array([3, 0, 0, 2], pa.int64())
    _same(ac.take(tbl, idx), tbl.take(idx))
    keep = pa.array([True, None, False, True])
    _same(ac.filter_by(tbl, keep), tbl.filter(keep))
    lists = pa.array([["x"], None, []], pa.list_(pa.string()))
    empty = pa.scalar([], pa.list_(pa.string()))
    _same(ac.if_else(ac.is_null(lists), empty, lists), pc.if_else(pc.is_null(lists), empty, lists))


def test_importing_it_imports_no_pyarrow_compute() -> None:
    """Nor ``numpy.ma``, which ``pa.array`` of a numpy array imports (nor dateutil). (pandas
    deferred as the command line defers it: pyarrow imports pandas, when it
    is installed, at its first conversion of Python values, and pandas imports
    ``pyarrow.compute``.)"""
    code = ("import sys; from darkmap.deferred_imports import defer_import; "
            "defer_import('pandas'); import darkmap.model.arrow_compute as ac, pyarrow as pa; "
            "import numpy as np; ac.take(pa.array(['a', 'b'], pa.string()), "
            "ac.from_numpy(np.array([1]), mask=np.array([False]))); "
            "print(sorted({'pyarrow.compute', 'numpy.ma', 'dateutil'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


NUMPY = [np.array([3, -1, 0, 2**40], dtype=np.int64), np.array([1, 2, 3], dtype=np.int32),
         np.array([2**64 - 1, 0], dtype=np.uint64), np.array([0.5, np.nan, -1e300]),
         np.array([True, False, True, True, False, False, False, True, True]),
         np.array([], dtype=np.int64), np.arange(20, dtype=np.int64)[::3],
         np.array([True] * 17)[::2], np.array([1, 2], dtype=np.int8)]


def _same_array(a: pa.Array, b: pa.Array) -> None:
    """The same type, nulls and values (NaN equal to NaN, which ``equals`` denies)."""
    assert a.type == b.type and a.null_count == b.null_count
    assert a.is_valid().equals(b.is_valid()) if len(a) else len(b) == 0
    assert np.array_equal(a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False),
                          equal_nan=a.type == pa.float64()) or a.equals(b)


@pytest.mark.parametrize("values", NUMPY, ids=lambda a: f"{a.dtype}[{len(a)}]")
def test_numpy_arrays_become_what_pa_array_makes(values: np.ndarray) -> None:
    _same_array(ac.from_numpy(values), pa.array(values))
    mask = np.arange(len(values)) % 3 == 1
    _same_array(ac.from_numpy(values, mask=mask), pa.array(values, mask=mask))
    _same_array(ac.from_numpy(values, mask=np.zeros(len(values), bool)),
          pa.array(values, mask=np.zeros(len(values), bool)))
    if values.dtype == np.int64:
        _same_array(ac.from_numpy(values, pa.int64()), pa.array(values, pa.int64()))
        for typ in (pa.timestamp("us"), pa.duration("us"), pa.date64()):
            _same_array(ac.from_numpy(values, typ, mask=mask), pa.array(values, typ, mask=mask))
        _same_array(ac.from_numpy(values, pa.int32()) if values.max(initial=0) < 2**31
              else pa.array(values, pa.int64()),
              pa.array(values, pa.int32()) if values.max(initial=0) < 2**31
              else pa.array(values, pa.int64()))  # another width: pa.array's conversion
