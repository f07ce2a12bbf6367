"""Arrow's compute kernels by name, without importing ``pyarrow.compute``.

``pyarrow.compute`` builds a Python wrapper, with its documentation, for each of Arrow's
~300 kernels when it is imported: about 0.035 s of CPU, the largest single import of
``darkmap ingest`` of one CSV after DuckDB, numpy and pyarrow themselves. Arrow's
methods that run a kernel (``Array.take``, ``Array.cast``, ``Table.filter``,
``Array.unique``...) import it too. The ingest path (the CSV reader and its mappings,
the unit tally, the record writer) calls the few kernels it needs here instead: each
function below is ``pyarrow.compute``'s function of the same name, called the way that
function calls it (:func:`pyarrow.compute.call_function` with the same options and
defaults), so results are the same; ``tests/test_arrow_compute.py`` compares them.

``call_function`` and the option classes live in ``pyarrow._compute`` (Arrow's compiled
module, which ``pyarrow.compute`` re-exports); where that module is missing,
``pyarrow.compute``'s own exports are used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pyarrow as pa

try:  # the compiled module pyarrow.compute re-exports these from
    import pyarrow._compute as _kernels
except ImportError:  # pragma: no cover - a pyarrow that moved them
    import pyarrow.compute as _kernels  # type: ignore[no-redef]

__all__ = ["all_finite", "all_true", "and_", "cast", "coalesce_with", "count_distinct",
           "dictionary_encode", "equal", "extract_regex", "filter_by", "from_numpy", "if_else",
           "invert", "is_finite", "is_in", "is_null", "is_valid", "match_substring_regex",
           "not_equal", "starts_with", "string_is_ascii", "take", "unique", "utf8_rpad",
           "utf8_slice_codeunits"]

# Arrow's stubs type arrays by value type; these helpers take and give arrays of any type
_Data = Any
_call: Callable[..., Any] = _kernels.call_function


def take(data: _Data, indices: _Data) -> _Data:
    """``data.take(indices)`` (an array, chunked array, record batch or table)."""
    return _call("take", [data, indices])


def filter_by(data: _Data, mask: _Data) -> _Data:
    """``data.filter(mask)``: the rows where ``mask`` is true (nulls dropped)."""
    return _call("filter", [data, mask])


def cast(arr: _Data, target_type: pa.DataType) -> _Data:
    """``arr.cast(target_type)``: a safe cast (an overflow or a bad number raises)."""
    return _call("cast", [arr], _kernels.CastOptions.safe(target_type))


def coalesce_with(values: _Data, fill_value: Any) -> _Data:
    """``pyarrow.compute.fill_null(values, fill_value)`` of a value or a scalar: nulls
    replaced by it, made a scalar of ``values``' type first, as there."""
    fill = fill_value
    if isinstance(fill_value, pa.Scalar):
        if fill_value.type != values.type:
            fill = pa.scalar(fill_value.as_py(), type=values.type)
    elif not isinstance(fill_value, (pa.Array, pa.ChunkedArray)):
        fill = pa.scalar(fill_value, type=values.type)
    return _call("coalesce", [values, fill])


def if_else(cond: _Data, left: Any, right: Any) -> _Data:
    """Where ``cond`` is true ``left``, else ``right`` (null where ``cond`` is null)."""
    return _call("if_else", [cond, left, right])


def is_in(values: _Data, value_set: _Data) -> _Data:
    """Whether each value is in ``value_set`` (nulls match a null in it)."""
    return _call("is_in", [values], _kernels.SetLookupOptions(value_set, skip_nulls=False))


def is_finite(values: _Data) -> _Data:
    """Element-wise: the number is neither infinite nor NaN (null where null)."""
    return _call("is_finite", [values])


def is_null(values: _Data) -> _Data:
    """Whether each value is null (NaN is not)."""
    return _call("is_null", [values])


def is_valid(values: _Data) -> _Data:
    """Whether each value is not null."""
    return _call("is_valid", [values])


def and_(x: _Data, y: _Data) -> _Data:
    """Element-wise ``x and y`` (null where either is null)."""
    return _call("and", [x, y])


def invert(x: _Data) -> _Data:
    """Element-wise ``not x``."""
    return _call("invert", [x])


def equal(x: _Data, y: Any) -> _Data:
    """Element-wise ``x == y``."""
    return _call("equal", [x, y])


def not_equal(x: _Data, y: Any) -> _Data:
    """Element-wise ``x != y``."""
    return _call("not_equal", [x, y])


def unique(arr: _Data) -> _Data:
    """The distinct values of ``arr``, in order of first appearance (null once)."""
    return _call("unique", [arr])


def count_distinct(arr: _Data) -> int:
    """How many distinct non-null values ``arr`` holds."""
    n: int = _call("count_distinct", [arr], _kernels.CountOptions("only_valid")).as_py()
    return n


def all_true(arr: _Data) -> bool:
    """``pyarrow.compute.all(arr).as_py()``: every non-null value is true (nulls
    skipped; an empty or all-null array gives None, which is not True)."""
    every = _kernels.ScalarAggregateOptions(skip_nulls=True, min_count=1)
    return bool(_call("all", [arr], every).as_py())


def all_finite(arr: _Data) -> bool:
    """No value of ``arr`` is infinite or NaN (nulls skipped; an array of another type
    than floats holds none)."""
    if not pa.types.is_floating(arr.type):
        return True
    return all_true(is_finite(arr)) or arr.null_count == len(arr)


def dictionary_encode(arr: _Data, null_encoding: Literal["mask", "encode"] = "mask") -> _Data:
    """The distinct values of ``arr`` and each value's index among them."""
    return _call("dictionary_encode", [arr], _kernels.DictionaryEncodeOptions(null_encoding))


def string_is_ascii(strings: _Data) -> _Data:
    """Whether each string is all ASCII."""
    return _call("string_is_ascii", [strings])


def match_substring_regex(strings: _Data, pattern: str, ignore_case: bool = False) -> _Data:
    """Whether each string matches the RE2 ``pattern`` somewhere."""
    return _call("match_substring_regex", [strings],
                         _kernels.MatchSubstringOptions(pattern, ignore_case=ignore_case))


def starts_with(strings: _Data, pattern: str) -> _Data:
    """Whether each string starts with ``pattern``."""
    return _call("starts_with", [strings], _kernels.MatchSubstringOptions(pattern))


def extract_regex(strings: _Data, pattern: str) -> _Data:
    """A struct of the named groups of the RE2 ``pattern`` (null where it fails)."""
    return _call("extract_regex", [strings], _kernels.ExtractRegexOptions(pattern))


def utf8_slice_codeunits(strings: _Data, start: int, stop: int | None = None) -> _Data:
    """``s[start:stop]`` of each string, in code points."""
    return _call("utf8_slice_codeunits", [strings], _kernels.SliceOptions(start, stop))


def utf8_rpad(strings: _Data, width: int, padding: str = " ") -> _Data:
    """Each string padded on the right to ``width`` code points with ``padding``."""
    return _call("utf8_rpad", [strings], _kernels.PadOptions(width, padding))


_NUMPY_TYPES = {np.dtype(np.bool_): pa.bool_(), np.dtype(np.int32): pa.int32(),
                np.dtype(np.int64): pa.int64(), np.dtype(np.uint64): pa.uint64(),
                np.dtype(np.float64): pa.float64()}


def from_numpy(values: np.ndarray, typ: pa.DataType | None = None,
               mask: np.ndarray | None = None) -> _Data:
    """``pa.array(values, type=typ, mask=mask)`` of a 1-D numpy array of booleans or
    numbers, built on the array's own buffers.

    ``pa.array`` checks every numpy input against ``numpy.ma.MaskedArray``, and that
    attribute imports ``numpy.ma`` (0.01 s) in a process that has no other use for it.
    ``typ`` is the array's own type or, for ``int64`` values, a 64-bit time type
    (``timestamp``, ``date64``, ``duration``), whose raw values they are as
    ``pa.array`` takes them; ``mask`` marks the nulls. Any other input goes to
    ``pa.array``.
    """
    a = np.ascontiguousarray(values)
    natural = _NUMPY_TYPES.get(a.dtype)
    if a.ndim != 1 or natural is None or not (
            typ is None or typ == natural
            or (a.dtype == np.int64 and (pa.types.is_timestamp(typ) or pa.types.is_date64(typ)
                                         or pa.types.is_duration(typ)))):
        return pa.array(values, type=typ, mask=mask)
    data = np.packbits(a, bitorder="little") if a.dtype == np.bool_ else a
    validity, nulls = None, 0
    if mask is not None:
        absent = np.asarray(mask, dtype=bool)
        nulls = int(absent.sum())
        if nulls:
            validity = pa.py_buffer(np.packbits(~absent, bitorder="little").data)
    return pa.Array.from_buffers(typ or natural, len(a), [validity, pa.py_buffer(data.data)],
                                 null_count=nulls)
