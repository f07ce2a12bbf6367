"""The transaction graph as flat numpy arrays (CSR by transaction).

Inputs and outputs are stored sorted by ``tx_id``; ``in_ptr[t]:in_ptr[t+1]`` are the
inputs of transaction ``t`` and likewise for outputs, so an output's global index is
``out_ptr[t] + n``. Unknown addresses and values are ``-1``. Clustering and tracing
run on these arrays; strings (txids, addresses) are looked up only to report. The
columns are read by :func:`darkmap.store.chain.graph_columns`.

Address ids are int32 while there are fewer than 2^31 - 1 addresses (:func:`id_dtype`),
int64 beyond: half the memory of the widest columns. Values and times stay int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from darkmap.model.bitcoin import SCRIPT_TYPES
from darkmap.store.chain import graph_columns

__all__ = ["TxArrays", "group_roots", "id_dtype", "load_arrays"]


def group_roots(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(every address of the edges ``a``-``b``, ascending; the smallest address of the
    group the edges join it to): the multi-input groups of a cluster, for its evidence
    (``wallet show``) and a trace's confidence."""
    if not len(a):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    graph = coo_matrix((np.ones(len(a), np.int8), (inv[:len(a)], inv[len(a):])),
                       shape=(len(nodes), len(nodes)))
    _, lab = connected_components(graph, directed=True, connection="weak")
    first = np.unique(lab, return_index=True)[1]  # nodes ascend: the smallest of each
    return nodes, nodes[first][lab]


def id_dtype(n: int) -> type[np.signedinteger]:
    """The narrowest signed integer holding ids ``0..n`` and the ``-1`` of an unknown one:
    int32 below 2^31 - 1, else int64."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def _unknown(n: int, dtype: type[np.generic]) -> np.ndarray:
    """``n`` times -1 (or 0 for bool/int8 columns) as a read-only view of one value:
    no memory for a column a synthetic chain does not know."""
    return np.broadcast_to(np.asarray(-1 if dtype is np.int64 else 0, dtype=dtype), (n,))


@dataclass
class TxArrays:
    """Transactions, inputs and outputs as arrays; see the module docstring."""

    n_tx: int
    n_addr: int
    tx_coinbase: np.ndarray
    tx_time: np.ndarray
    in_ptr: np.ndarray
    in_addr: np.ndarray
    in_value: np.ndarray
    in_type: np.ndarray
    in_prev: np.ndarray
    out_ptr: np.ndarray
    out_addr: np.ndarray
    out_value: np.ndarray
    out_type: np.ndarray
    tx_order: np.ndarray | None = None  # chain order rank per tx (graph_columns ``o``)

    @property
    def in_tx(self) -> np.ndarray:
        """The transaction of each input."""
        return np.repeat(np.arange(self.n_tx, dtype=id_dtype(self.n_tx)), np.diff(self.in_ptr))

    @property
    def out_tx(self) -> np.ndarray:
        """The transaction of each output."""
        return np.repeat(np.arange(self.n_tx, dtype=id_dtype(self.n_tx)),
                         np.diff(self.out_ptr))

    def spent_by(self) -> np.ndarray:
        """For each output, the global index of the input spending it, or -1."""
        spent = np.full(len(self.out_value), -1, dtype=np.int64)
        ok = self.in_prev >= 0
        spent[self.in_prev[ok]] = np.nonzero(ok)[0]
        return spent

    @classmethod
    def from_edges(cls, n_tx: int, n_addr: int, in_tx: np.ndarray, in_addr: np.ndarray,
                   out_tx: np.ndarray, out_addr: np.ndarray, out_value: np.ndarray,
                   in_value: np.ndarray | None = None) -> TxArrays:
        """Build from per-row arrays already sorted by transaction (benchmarks, tests).

        Columns the rows do not give (times, input values, script types, spent outputs)
        are read-only views of one value (-1, or 0 for types), taking no memory.
        """
        in_ptr = np.zeros(n_tx + 1, dtype=np.int64)
        np.cumsum(np.bincount(in_tx, minlength=n_tx), out=in_ptr[1:])
        out_ptr = np.zeros(n_tx + 1, dtype=np.int64)
        np.cumsum(np.bincount(out_tx, minlength=n_tx), out=out_ptr[1:])
        return cls.from_ptrs(n_addr, in_ptr, in_addr, out_ptr, out_addr, out_value, in_value)

    @classmethod
    def from_ptrs(cls, n_addr: int, in_ptr: np.ndarray, in_addr: np.ndarray,
                  out_ptr: np.ndarray, out_addr: np.ndarray, out_value: np.ndarray,
                  in_value: np.ndarray | None = None) -> TxArrays:
        """Build from the row pointers and the input and output columns (no coinbase);
        what they do not give is a read-only view of one value, as in :meth:`from_edges`."""
        n_tx, n_in, n_out = len(in_ptr) - 1, len(in_addr), len(out_addr)
        ids = id_dtype(n_addr)
        return cls(n_tx, n_addr, np.zeros(n_tx, bool), _unknown(n_tx, np.int64),
                   in_ptr, in_addr.astype(ids, copy=False),
                   in_value if in_value is not None else _unknown(n_in, np.int64),
                   _unknown(n_in, np.int8), _unknown(n_in, np.int64), out_ptr,
                   out_addr.astype(ids, copy=False), out_value.astype(np.int64, copy=False),
                   _unknown(n_out, np.int8))


def load_arrays(con: duckdb.DuckDBPyConnection) -> TxArrays:
    """Read the stored chain into :class:`TxArrays` (script types coded 1.. as SCRIPT_TYPES)."""
    cols = graph_columns(con, SCRIPT_TYPES)
    n_tx, tx, outs, ins = cols.n_tx, cols.tx, cols.outputs, cols.inputs
    coinbase = np.zeros(n_tx, dtype=bool)
    coinbase[tx["tx_id"]] = tx["is_coinbase"]
    times = np.full(n_tx, -1, dtype=np.int64)
    times[tx["tx_id"]] = tx["t"]
    order = np.arange(n_tx, 2 * n_tx, dtype=np.int64)  # a tx left out: after all others
    order[tx["tx_id"]] = tx["o"]
    out_ptr = np.zeros(n_tx + 1, dtype=np.int64)
    np.cumsum(np.bincount(outs["tx_id"], minlength=n_tx), out=out_ptr[1:])
    in_ptr = np.zeros(n_tx + 1, dtype=np.int64)
    np.cumsum(np.bincount(ins["tx_id"], minlength=n_tx), out=in_ptr[1:])
    pt = np.asarray(ins["pt"], dtype=np.int64)
    vout = np.asarray(ins["prev_vout"], dtype=np.int64)
    prev = np.full(len(pt), -1, dtype=np.int64)
    ok = pt >= 0
    if ok.any():
        n_out_of = np.diff(out_ptr)[pt[ok]]
        valid = vout[ok] < n_out_of
        idx = np.nonzero(ok)[0][valid]
        prev[idx] = out_ptr[pt[idx]] + vout[idx]
    ids = id_dtype(cols.n_addr)
    return TxArrays(
        n_tx, cols.n_addr, coinbase, times, in_ptr, np.asarray(ins["a"], ids),
        np.asarray(ins["v"], np.int64), np.asarray(ins["st"], np.int8), prev, out_ptr,
        np.asarray(outs["a"], ids), np.asarray(outs["value"], np.int64),
        np.asarray(outs["st"], np.int8), order)
