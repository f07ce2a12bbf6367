"""Bulk reads of the chain tables for other engines and formats (no writes).

- :func:`etl_blocks` / :func:`etl_transactions`: the stored blocks and transactions in
  the blockchain-etl shape (``crypto_bitcoin.blocks`` / ``.transactions``: one row per
  transaction with its inputs and outputs as nested lists), as Arrow record batches,
  for :mod:`darkmap.chain.etl_parquet`.
- :func:`write_graph_parquet`: the transaction graph as three flat Parquet files
  (``tx``, ``txin``, ``txout`` with integer ids and script-type codes), what the Spark
  engine (:mod:`darkmap.chain.spark`) reads.
- :func:`clustering_rows`: the stored clustering (clusters, merges, CoinJoins) as Arrow
  tables, to compare two runs.

Written tables are owned by :mod:`darkmap.store.chain` (``write_batch``,
``replace_clusters``); this module only reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from darkmap.store.chain import LEFT_OUT

__all__ = ["clustering_rows", "etl_blocks", "etl_transactions", "write_graph_parquet"]


def _case(col: str, names: Mapping[str, str]) -> tuple[str, list[str]]:
    """``CASE col WHEN ? THEN ? ... ELSE col END`` and its parameters."""
    if not names:
        return col, []
    parts, params = [], []
    for k, v in names.items():
        parts.append("WHEN ? THEN ?")
        params += [k, v]
    return f"CASE {col} {' '.join(parts)} ELSE {col} END", params


def etl_blocks(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Blocks in the blockchain-etl ``blocks`` shape, plus ``darkmap_*`` check columns."""
    return con.execute(
        "SELECT block_hash AS hash, CAST(NULL AS BIGINT) AS size, "
        "CAST(NULL AS BIGINT) AS stripped_size, CAST(NULL AS BIGINT) AS weight, "
        "CAST(height AS BIGINT) AS number, CAST(version AS BIGINT) AS version, merkle_root, "
        "timezone('UTC', time) AS timestamp, lpad(printf('%x', nonce), 8, '0') AS nonce, "
        "lpad(printf('%x', bits), 8, '0') AS bits, CAST(NULL AS VARCHAR) AS coinbase_param, "
        "CAST(n_tx AS BIGINT) AS transaction_count, prev_hash AS darkmap_prev_hash, "
        "merkle_ok AS darkmap_merkle_ok, witness_ok AS darkmap_witness_ok, "
        "pow_ok AS darkmap_pow_ok, network AS darkmap_network FROM btc_blocks "
        "ORDER BY height NULLS LAST, block_hash").fetch_arrow_table()


def etl_transactions(con: duckdb.DuckDBPyConnection, type_names: Mapping[str, str],
                     batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
    """Transactions in the blockchain-etl ``transactions`` shape, by ``tx_id``.

    ``type_names`` maps darkmap's script types to blockchain-etl's (Bitcoin Core's)
    names. A coinbase input has a null ``spent_transaction_hash``; ``input_value`` and
    ``fee`` are null while an input's value is unknown. ``darkmap_*`` columns carry what
    the public shape has no field for (wtxid, weight, segwit, BIP69 order, whether an
    input's address was read from its unlocking data).
    """
    in_type, p_in = _case("i.script_type", type_names)
    out_type, p_out = _case("o.script_type", type_names)
    sql = (
        "WITH ins AS (SELECT i.tx_id, list(struct_pack("
        "  \"index\" := CAST(i.n AS BIGINT),"
        "  spent_transaction_hash := CASE WHEN i.prev_vout = 4294967295 AND i.prev_txid = "
        "    repeat('0', 64) THEN NULL ELSE i.prev_txid END,"
        "  spent_output_index := CASE WHEN i.prev_vout = 4294967295 AND i.prev_txid = "
        "    repeat('0', 64) THEN NULL ELSE i.prev_vout END,"
        "  script_asm := CAST(NULL AS VARCHAR), script_hex := CAST(NULL AS VARCHAR),"
        "  sequence := i.sequence, required_signatures := CAST(NULL AS BIGINT),"
        f"  type := {in_type},"
        "  addresses := CASE WHEN a.address IS NULL THEN []::VARCHAR[] ELSE [a.address] END,"
        "  value := i.value, darkmap_addr_inferred := i.addr_inferred) ORDER BY i.n) AS inputs,"
        "  sum(i.value) AS input_value, count(*) - count(i.value) AS unknown_values,"
        "  bool_or(i.prev_vout = 4294967295 AND i.prev_txid = repeat('0', 64)) AS cb_in "
        "  FROM btc_txin i LEFT JOIN btc_address a ON a.address_id = i.address_id "
        "  GROUP BY i.tx_id), "
        "outs AS (SELECT o.tx_id, list(struct_pack("
        "  \"index\" := CAST(o.n AS BIGINT), script_asm := CAST(NULL AS VARCHAR),"
        "  script_hex := o.script_hex, required_signatures := CAST(NULL AS BIGINT),"
        f"  type := {out_type},"
        "  addresses := CASE WHEN a.address IS NULL THEN []::VARCHAR[] ELSE [a.address] END,"
        "  value := o.value) ORDER BY o.n) AS outputs, sum(o.value) AS output_value "
        "  FROM btc_txout o LEFT JOIN btc_address a ON a.address_id = o.address_id "
        "  GROUP BY o.tx_id) "
        "SELECT t.txid AS hash, CAST(t.size AS BIGINT) AS size, "
        "CAST((t.weight + 3) // 4 AS BIGINT) AS virtual_size, CAST(t.version AS BIGINT) "
        "AS version, t.locktime AS lock_time, t.block_hash, CAST(t.height AS BIGINT) "
        "AS block_number, timezone('UTC', t.block_time) AS block_timestamp, "
        "CAST(t.position AS BIGINT) AS \"index\", "
        "CAST(t.n_in AS BIGINT) AS input_count, CAST(t.n_out AS BIGINT) AS output_count, "
        "CASE WHEN t.is_coinbase OR coalesce(ins.unknown_values, 0) > 0 THEN NULL "
        "  ELSE CAST(coalesce(ins.input_value, 0) AS BIGINT) END AS input_value, "
        "CAST(coalesce(outs.output_value, 0) AS BIGINT) AS output_value, t.is_coinbase, "
        "CASE WHEN t.is_coinbase OR coalesce(ins.unknown_values, 0) > 0 THEN NULL "
        "  ELSE CAST(coalesce(ins.input_value, 0) - coalesce(outs.output_value, 0) AS BIGINT) "
        "  END AS fee, "
        "coalesce(ins.inputs, []) AS inputs, coalesce(outs.outputs, []) AS outputs, "
        "t.wtxid AS darkmap_wtxid, CAST(t.weight AS BIGINT) AS darkmap_weight, "
        "t.segwit AS darkmap_segwit, t.bip69 AS darkmap_bip69 "
        "FROM btc_tx t LEFT JOIN ins USING (tx_id) LEFT JOIN outs USING (tx_id) "
        "ORDER BY t.tx_id")
    reader: pa.RecordBatchReader = con.execute(sql, p_in + p_out).fetch_record_batch(
        batch_rows)
    yield from reader


def _type_code_sql(col: str, script_types: Sequence[str]) -> str:
    names = ", ".join(f"'{t}'" for t in script_types)
    return f"coalesce(list_position([{names}], {col}), 0)::TINYINT"


def write_graph_parquet(con: duckdb.DuckDBPyConnection, out_dir: Path,
                        script_types: Sequence[str]) -> dict[str, int]:
    """Write ``tx``, ``txin``, ``txout`` Parquet files of the graph to ``out_dir``.

    Transactions found only in stale blocks, or set aside (a coin spent twice), are left
    out. ``tx``: ``tx_id``, ``is_coinbase``, ``o`` (chain order, as
    :func:`darkmap.store.chain.graph_columns` gives it); ``txin``: ``tx_id``, ``n``,
    ``address_id`` (null if unknown), ``st`` (1 + index into ``script_types``, 0
    unknown); ``txout``: ``tx_id``, ``n``, ``address_id``, ``value``, ``st``. Returns
    ``n_tx`` and ``n_addr`` (one past the largest id).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    live = f"WHERE tx_id NOT IN (SELECT tx_id FROM btc_tx WHERE {LEFT_OUT})"  # best chain
    for name, sql in (
        ("tx", ("SELECT tx_id, is_coinbase, (row_number() OVER (ORDER BY height NULLS LAST, "
                "position NULLS LAST, txid) - 1)::BIGINT AS o "
                f"FROM btc_tx WHERE NOT {LEFT_OUT}")),
        ("txin", ("SELECT tx_id, n, address_id, "
                 f"{_type_code_sql('script_type', script_types)} AS st FROM btc_txin {live}")),
        ("txout", ("SELECT tx_id, n, address_id, value, "
                  f"{_type_code_sql('script_type', script_types)} AS st FROM btc_txout {live}")),
    ):
        path = str(out_dir / f"{name}.parquet").replace("'", "''")
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    row = con.execute("SELECT (SELECT coalesce(max(tx_id) + 1, 0) FROM btc_tx), "
                      "(SELECT coalesce(max(address_id) + 1, 0) FROM btc_address)").fetchone()
    return {"n_tx": int(row[0]) if row else 0, "n_addr": int(row[1]) if row else 0}


def clustering_rows(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """The stored clustering, sorted: ``clusters``, ``merges`` (distinct), ``coinjoins``."""
    return {
        "clusters": con.execute("SELECT address_id, cluster_id FROM btc_clusters "
                                "ORDER BY address_id").fetch_arrow_table(),
        "merges": con.execute("SELECT DISTINCT tx_id, heuristic, address_a, address_b "
                              "FROM btc_cluster_merges ORDER BY ALL").fetch_arrow_table(),
        "coinjoins": con.execute("SELECT tx_id, kind, n_equal, denomination "
                                 "FROM btc_coinjoins ORDER BY tx_id").fetch_arrow_table(),
    }
