"""The chain tables (every ``btc_*`` table): the one module that holds their SQL.

Writes: :func:`write_batch` bulk-loads parsed blocks and transactions (set-based SQL over
Arrow tables: new txids get the next dense ``tx_id``s, new address strings the next
``address_id``s, inputs are joined to the outputs they spend, in this batch, already
stored, or known from a UTXO set, and inputs stored earlier whose spent output arrives now
are filled in; a txid already stored is skipped, so loading a file twice, or two files that
overlap, is harmless). :func:`replace_clusters` stores a clustering run,
:func:`insert_tags` attribution tags and :func:`sync_evidence_tags` the tags derived from
addresses the evidence published.

Reads answer the chain stage's questions with typed results: the transaction graph as
numpy columns (:func:`graph_columns`), clusters and their merges, tags, and the facts of
one wallet (:func:`wallet_facts`). None of them writes. The logic (union-find,
heuristics, tracing) is in :mod:`darkmap.chain`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import duckdb
import numpy as np
import pyarrow as pa

from darkmap.model.best_chain import stale_blocks
from darkmap.model.bitcoin import GENESIS_HASH
from darkmap.model.values import clean_btc_address
from darkmap.store.workspace import table_exists, table_has_rows, utcnow
from darkmap.store.writer import (
    ARROW_ROWS,
    Provenance,
    arrow_views,
    insert_arrow,
    query_arrow,
    row_id,
    transaction,
)

__all__ = [
    "TAG_COLUMNS",
    "AddressTag",
    "TxBody",
    "ChainRows",
    "ClusterRun",
    "GraphColumns",
    "LEFT_OUT",
    "ChainDoubts",
    "Conflict",
    "LinkedPersona",
    "MergeCount",
    "MergeEdge",
    "MonthFlow",
    "StaleBlock",
    "TxStanding",
    "StaleChain",
    "PaidBy",
    "PaidTo",
    "WalletAddress",
    "WalletFacts",
    "WalletTag",
    "ChainCoverage",
    "address_id",
    "addresses_by_id",
    "chain_coverage",
    "chain_doubts",
    "cluster_address_ids",
    "cluster_count",
    "cluster_exists",
    "cluster_labels",
    "cluster_merges",
    "cluster_merge_counts",
    "cluster_multi_input_edges",
    "cluster_of_address",
    "cluster_of_address_id",
    "fill_heights",
    "graph_columns",
    "insert_tags",
    "last_cluster_heuristics",
    "mark_conflicts",
    "mark_stale",
    "repeated_txids",
    "replace_clusters",
    "set_aside_txs_of",
    "stale_chain",
    "stale_txs_of",
    "stored_coinjoins",
    "stored_tx_bodies",
    "stored_units",
    "sync_evidence_tags",
    "tag_count",
    "tags_by_address_id",
    "tags_for_export",
    "trace_tags",
    "tx_standing",
    "txids_by_id",
    "wallet_facts",
    "write_batch",
]


# -- loading parsed chain data --------------------------------------------------------


class ChainRows(Protocol):
    """Parsed chain data ready for :func:`write_batch` (a ``ChainBatch`` of
    :mod:`darkmap.importers.bitcoin_batch`)."""

    script_types: dict[str, int]

    def arrow(self) -> dict[str, pa.Table]:
        """One Arrow table per chain table: blocks, tx, txin, txout, prevouts."""
        ...


_BATCH_VIEWS = ("_b_blocks", "_b_tx", "_b_in", "_b_out", "_b_pre")


def _next_id(con: duckdb.DuckDBPyConnection, table: str, col: str) -> int:
    row = con.execute(f"SELECT coalesce(max({col}) + 1, 0) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> int:
    row = con.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


def write_batch(con: duckdb.DuckDBPyConnection, batch: ChainRows,
                prov: Provenance) -> dict[str, Any]:
    """Insert the batch; return counts of new blocks, txs, addresses, prevouts.

    Runs in the caller's transaction (the ingest pipeline's, with the file's
    ``processed`` row).
    """
    tabs = batch.arrow()
    views = dict(zip(_BATCH_VIEWS, (tabs["blocks"], tabs["tx"], tabs["txin"], tabs["txout"],
                                    tabs["prevouts"]), strict=True))
    prov_args = [prov.capture_sha256, prov.source, prov.method]
    counts: dict[str, Any] = {}
    try:
        with arrow_views(con, views):
            counts["blocks"] = _insert_blocks(con, prov_args)
            # a header stored alone earlier (headers file) gains its transactions now
            counts["headers_completed"] = _count(con, (
                "UPDATE btc_blocks AS x SET n_tx = b.n_tx, merkle_ok = b.merkle_ok, "
                "witness_ok = b.witness_ok, height = coalesce(x.height, b.height) "
                "FROM _b_blocks b WHERE x.block_hash = b.block_hash AND x.n_tx IS NULL "
                "AND b.n_tx IS NOT NULL"))
            counts["txs"] = _number_new_txs(con)
            counts["txs_already_stored"] = len(tabs["tx"]) - counts["txs"]
            counts["addresses"] = _insert_addresses(con)
            _insert_txs_and_outputs(con, prov_args)
            counts["prevouts"] = _insert_prevouts(con, prov_args[:2])
            _insert_inputs(con)
            counts["inputs_resolved_later"] = _resolve_pending(con)
            counts["placed_later"] = _adopt_blocks(con)
            _record_other_blocks(con)
            fill_heights(con)
            counts.update(mark_stale(con))
            counts.update(mark_conflicts(con, after_batch=True))
    finally:
        con.execute("DROP TABLE IF EXISTS _new_tx")
    counts["script_types"] = dict(sorted(batch.script_types.items()))
    return counts


TxBody = tuple[int, int, dict[int, tuple[int, str | None]], dict[int, tuple[str, int]]]
"""A transaction as its txid commits to it, as far as the store keeps it: (inputs,
outputs, {output n: (value, address)}, {input n: (spent txid, spent output n)})."""


def stored_units(con: duckdb.DuckDBPyConnection, block_hashes: list[str],
                 txids: list[str]) -> tuple[set[str], set[str], set[str]]:
    """Of ``block_hashes`` and ``txids``: the blocks stored whole, the blocks stored as a
    header alone, and the transactions stored (what a file's units find already there)."""
    views = {"_u_blocks": pa.table({"h": pa.array(block_hashes, pa.string())}),
             "_u_txs": pa.table({"h": pa.array(txids, pa.string())})}
    with arrow_views(con, views):
        rows = con.execute("SELECT b.block_hash, b.n_tx IS NOT NULL FROM btc_blocks b "
                           "JOIN _u_blocks u ON u.h = b.block_hash").fetchall()
        txs = {str(t) for (t,) in con.execute(
            "SELECT x.txid FROM btc_tx x JOIN _u_txs u ON u.h = x.txid").fetchall()}
    return ({str(h) for h, whole in rows if whole}, {str(h) for h, whole in rows if not whole},
            txs)


def repeated_txids(con: duckdb.DuckDBPyConnection, tx: pa.Table) -> list[tuple[int, str]]:
    """(seq, txid) of the rows of ``tx`` (a batch's ``seq``, ``txid``) whose txid repeats
    in ``tx`` or is stored already, in ``seq`` order."""
    with arrow_views(con, {"_r_tx": tx.select(["seq", "txid"])}):
        rows = con.execute(
            "SELECT t.seq, t.txid FROM _r_tx t WHERE t.txid IN (SELECT txid FROM _r_tx "
            "GROUP BY txid HAVING count(*) > 1) OR t.txid IN (SELECT txid FROM btc_tx) "
            "ORDER BY t.seq").fetchall()
    return [(int(s), str(t)) for s, t in rows]


def stored_tx_bodies(con: duckdb.DuckDBPyConnection, txids: list[str]) -> dict[str, TxBody]:
    """The stored transactions of ``txids`` (those stored) as :data:`TxBody`."""
    with arrow_views(con, {"_r_ids": pa.table({"txid": pa.array(txids, pa.string())})}):
        out: dict[str, TxBody] = {t: (int(i), int(o), {}, {}) for t, i, o in con.execute(
            "SELECT x.txid, x.n_in, x.n_out FROM btc_tx x JOIN _r_ids USING (txid)"
        ).fetchall()}
        for t, n, v, a in con.execute(
                "SELECT x.txid, o.n, o.value, a.address FROM btc_tx x JOIN _r_ids USING "
                "(txid) JOIN btc_txout o ON o.tx_id = x.tx_id "
                "LEFT JOIN btc_address a ON a.address_id = o.address_id").fetchall():
            out[t][2][int(n)] = (int(v), a)
        for t, n, p, v in con.execute(
                "SELECT x.txid, i.n, i.prev_txid, i.prev_vout FROM btc_tx x JOIN _r_ids "
                "USING (txid) JOIN btc_txin i ON i.tx_id = x.tx_id").fetchall():
            out[t][3][int(n)] = (p, int(v))
    return out


def _insert_blocks(con: duckdb.DuckDBPyConnection, prov_args: list[str]) -> int:
    n0 = _count(con, "SELECT count(*) FROM btc_blocks")
    con.execute(
        "INSERT INTO btc_blocks SELECT b.*, ?, ?, ?, false FROM (SELECT * FROM _b_blocks "
        "QUALIFY row_number() OVER (PARTITION BY block_hash) = 1) b "
        "WHERE NOT EXISTS (SELECT 1 FROM btc_blocks x WHERE x.block_hash = b.block_hash)",
        prov_args)
    return _count(con, "SELECT count(*) FROM btc_blocks") - n0


def _number_new_txs(con: duckdb.DuckDBPyConnection) -> int:
    """Give the batch's txids not stored yet the next dense ids (temp table ``_new_tx``)."""
    base = _next_id(con, "btc_tx", "tx_id")
    con.execute("DROP TABLE IF EXISTS _new_tx")
    con.execute(
        "CREATE TEMP TABLE _new_tx AS SELECT seq, txid, "
        f"{base} + row_number() OVER (ORDER BY seq) - 1 AS tx_id FROM ("
        "  SELECT seq, txid FROM _b_tx t"
        "  WHERE NOT EXISTS (SELECT 1 FROM btc_tx x WHERE x.txid = t.txid)"
        "  QUALIFY row_number() OVER (PARTITION BY txid ORDER BY seq) = 1)")
    return _count(con, "SELECT count(*) FROM _new_tx")


def _insert_addresses(con: duckdb.DuckDBPyConnection) -> int:
    abase = _next_id(con, "btc_address", "address_id")
    n0 = _count(con, "SELECT count(*) FROM btc_address")
    con.execute(
        "INSERT INTO btc_address "
        f"SELECT {abase} + row_number() OVER (ORDER BY first, address) - 1, address, st FROM ("
        "  SELECT address, min(script_type) AS st, min(seq) AS first FROM ("
        "    SELECT address, script_type, seq FROM _b_out"
        "    UNION ALL SELECT address, script_type, seq FROM _b_in"
        "    UNION ALL SELECT address, script_type, -1 FROM _b_pre)"
        "  WHERE address IS NOT NULL GROUP BY address) a "
        "WHERE NOT EXISTS (SELECT 1 FROM btc_address x WHERE x.address = a.address)")
    return _count(con, "SELECT count(*) FROM btc_address") - n0


def _insert_txs_and_outputs(con: duckdb.DuckDBPyConnection, prov_args: list[str]) -> None:
    con.execute(
        "INSERT INTO btc_tx SELECT n.tx_id, t.txid, t.wtxid, t.block_hash, t.height, "
        "t.block_time, t.position, t.version, t.locktime, t.size, t.weight, t.n_in, "
        "t.n_out, t.is_coinbase, t.segwit, t.bip69, t.locator, ?, ?, ?, false, NULL, "
        "t.claimed_block_hash, t.claimed_height, t.claimed_time, "
        "CASE WHEN t.block_hash IS NULL THEN NULL ELSE coalesce(t.block_checked, false) END "
        "FROM _b_tx t JOIN _new_tx n ON n.seq = t.seq ORDER BY n.tx_id", prov_args)
    con.execute(
        "INSERT INTO btc_txout SELECT n.tx_id, o.n, o.value, o.script_type, a.address_id, "
        "o.script_hex FROM _b_out o JOIN _new_tx n ON n.seq = o.seq "
        "LEFT JOIN btc_address a ON a.address = o.address ORDER BY n.tx_id, o.n")


def _insert_prevouts(con: duckdb.DuckDBPyConnection, prov_args: list[str]) -> int:
    n0 = _count(con, "SELECT count(*) FROM btc_prevouts")
    con.execute(
        "INSERT INTO btc_prevouts SELECT p.prev_txid, p.vout, p.value, p.script_type, "
        "a.address_id, p.height, p.coinbase, ?, ? FROM _b_pre p "
        "LEFT JOIN btc_address a ON a.address = p.address "
        "WHERE NOT EXISTS (SELECT 1 FROM btc_prevouts x "
        "  WHERE x.prev_txid = p.prev_txid AND x.vout = p.vout)", prov_args)
    return _count(con, "SELECT count(*) FROM btc_prevouts") - n0


def _insert_inputs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "INSERT INTO btc_txin SELECT n.tx_id, i.n, i.prev_txid, i.prev_vout, p.tx_id, "
        "coalesce(i.value, o.value, x.value), "
        "coalesce(CASE WHEN i.addr_inferred THEN NULL ELSE a.address_id END, "
        "         o.address_id, x.address_id, a.address_id), "
        "coalesce(CASE WHEN i.addr_inferred THEN NULL ELSE i.script_type END, "
        "         o.script_type, x.script_type, i.script_type), "
        "CASE WHEN i.value IS NOT NULL OR o.tx_id IS NOT NULL OR x.prev_txid IS NOT NULL "
        "     THEN false ELSE i.addr_inferred END, i.sequence "
        "FROM _b_in i JOIN _new_tx n ON n.seq = i.seq "
        "LEFT JOIN btc_tx p ON p.txid = i.prev_txid "
        "LEFT JOIN btc_txout o ON o.tx_id = p.tx_id AND o.n = i.prev_vout "
        "LEFT JOIN btc_prevouts x ON x.prev_txid = i.prev_txid AND x.vout = i.prev_vout "
        "LEFT JOIN btc_address a ON a.address = i.address "
        "ORDER BY n.tx_id, i.n")


def _resolve_pending(con: duckdb.DuckDBPyConnection) -> int:
    """Fill inputs stored before the output they spend (or its UTXO entry) arrived."""
    pending_sql = ("SELECT count(*) FROM btc_txin WHERE value IS NULL "
                   "AND prev_vout <> 4294967295")
    pending = _count(con, pending_sql)
    if not pending:
        return 0
    con.execute(
        "UPDATE btc_txin AS i SET prev_tx_id = t.tx_id FROM _new_tx t "
        "WHERE i.prev_tx_id IS NULL AND i.prev_txid = t.txid")
    con.execute(
        "UPDATE btc_txin AS i SET value = o.value, address_id = o.address_id, "
        "script_type = o.script_type, addr_inferred = false FROM btc_txout o "
        "WHERE i.value IS NULL AND i.prev_tx_id = o.tx_id AND i.prev_vout = o.n")
    con.execute(
        "UPDATE btc_txin AS i SET value = x.value, address_id = x.address_id, "
        "script_type = x.script_type, addr_inferred = false FROM btc_prevouts x "
        "WHERE i.value IS NULL AND i.prev_txid = x.prev_txid AND i.prev_vout = x.vout")
    return pending - _count(con, pending_sql)


def _adopt_blocks(con: duckdb.DuckDBPyConnection) -> int:
    """Place transactions stored without a block (raw, hex, Esplora JSON: whatever their
    file claimed) in the block of the batch that holds them; how many. A placement stored
    unchecked (an ETL row naming the block) becomes checked when the block arrives whole
    with a matching merkle root holding the transaction."""
    n0 = _count(con, "SELECT count(*) FROM btc_tx WHERE block_hash IS NULL")
    con.execute(
        "UPDATE btc_tx AS x SET block_hash = b.block_hash, height = b.height, "
        "block_time = b.block_time, position = b.position, "
        "block_checked = coalesce(b.block_checked, false) FROM (SELECT * FROM _b_tx "
        "WHERE block_hash IS NOT NULL QUALIFY row_number() OVER (PARTITION BY txid "
        "ORDER BY block_checked DESC NULLS LAST, seq) = 1) b "
        "WHERE x.txid = b.txid AND x.block_hash IS NULL")
    con.execute(
        "UPDATE btc_tx AS x SET block_checked = true, position = coalesce(x.position, "
        "b.position) FROM _b_tx b WHERE x.txid = b.txid AND x.block_hash = b.block_hash "
        "AND b.block_checked AND x.block_checked IS NOT TRUE")
    return n0 - _count(con, "SELECT count(*) FROM btc_tx WHERE block_hash IS NULL")


def _record_other_blocks(con: duckdb.DuckDBPyConnection) -> None:
    """Record the blocks of the batch that hold a transaction stored with another block
    (``btc_tx_blocks``): a transaction confirmed in two competing branches is stored once
    and is stale only when every block holding it is."""
    con.execute(
        "INSERT INTO btc_tx_blocks SELECT x.tx_id, b.block_hash, "
        "bool_or(coalesce(b.block_checked, false)) FROM _b_tx b "
        "JOIN btc_tx x ON x.txid = b.txid WHERE b.block_hash IS NOT NULL "
        "AND b.block_hash IS DISTINCT FROM x.block_hash AND NOT EXISTS (SELECT 1 FROM "
        "btc_tx_blocks o WHERE o.tx_id = x.tx_id AND o.block_hash = b.block_hash) "
        "GROUP BY 1, 2")
    con.execute(
        "UPDATE btc_tx_blocks AS o SET checked = true FROM _b_tx b JOIN btc_tx x "
        "ON x.txid = b.txid WHERE o.tx_id = x.tx_id AND o.block_hash = b.block_hash "
        "AND b.block_checked AND o.checked IS NOT TRUE")


def mark_stale(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Recompute which blocks are off the best chain (:mod:`darkmap.model.best_chain`) and
    which transactions were found only in such blocks; return how many of each.

    A transaction is stale when it has a block and every block holding it is stored and
    stale (one also in a block not loaded, or in none, is kept). Runs after every load
    (blocks may come in any order, in several files and runs) and before clustering (a
    workspace loaded before the flags existed gets them there).
    """
    before = _count(con, "SELECT count(*) FROM btc_blocks WHERE stale")
    forked = _count(con, "SELECT count(*) FROM (SELECT prev_hash FROM btc_blocks WHERE "
                         "prev_hash IS NOT NULL GROUP BY prev_hash HAVING count(*) > 1)")
    if not forked and not before:
        # no two blocks share a parent: none competes (one aggregate, not the blocks read
        # into Python after every batch of a long load)
        return {"stale_blocks": 0, "stale_txs": 0}
    links = con.execute("SELECT block_hash, prev_hash, bits, pow_ok FROM btc_blocks").fetchall()
    stale = sorted(stale_blocks(links))
    if stale or before:
        query_arrow(con, "UPDATE btc_blocks AS b SET stale = (b.block_hash IN (SELECT h FROM "
                         f"{ARROW_ROWS})) WHERE b.stale IS DISTINCT FROM (b.block_hash IN "
                         f"(SELECT h FROM {ARROW_ROWS}))",
                    pa.table({"h": pa.array(stale, pa.string())}))
    if stale or _count(con, "SELECT count(*) FROM btc_tx WHERE stale"):
        con.execute(
            "UPDATE btc_tx AS t SET stale = s.stale FROM (SELECT m.tx_id, "
            " bool_and(coalesce(b.stale, false)) AS stale FROM ("
            "  SELECT tx_id, block_hash FROM btc_tx WHERE block_hash IS NOT NULL"
            "  UNION ALL SELECT tx_id, block_hash FROM btc_tx_blocks) m"
            " LEFT JOIN btc_blocks b USING (block_hash) GROUP BY m.tx_id) s "
            "WHERE t.tx_id = s.tx_id AND t.stale IS DISTINCT FROM s.stale")
    return {"stale_blocks": len(stale),
            "stale_txs": _count(con, "SELECT count(*) FROM btc_tx WHERE stale")}


LEFT_OUT = "(stale IS TRUE OR set_aside IS NOT NULL)"
"""SQL: a ``btc_tx`` row left out of clustering, tracing and wallet figures (found only
in stale blocks, or set aside by :func:`mark_conflicts`)."""

_STANDING = ("in a block on the best chain with valid proof of work",
             "in a block on the best chain whose proof of work fails",
             "in no loaded block")
"""How far a transaction's placement is supported, best first (its rank in a conflict). A
block counts only where it is loaded whole and its merkle root was checked over its
transactions, this one among them (``btc_tx.block_checked``); a row that merely names a
block (ETL Parquet's ``block_hash``, review H1) is in no loaded block here."""
_MAX_CONFLICT_ROWS = 100_000
"""Spenders of coins spent twice read at most (a hostile file may forge many: the rest
are still set aside as a group, by SQL)."""


def _nothing_to_mark(con: duckdb.DuckDBPyConnection) -> bool:
    """After a batch (its new transactions in ``_new_tx``): whether no conflict can have
    arisen or changed. The chain was checked whole before, nothing is in conflict, set
    aside or stale (a reorganisation may bring a spender back), and no input of the batch
    spends an outpoint another stored input spends."""
    row = con.execute(
        "SELECT EXISTS (SELECT 1 FROM btc_conflict_checks) "
        "AND NOT EXISTS (SELECT 1 FROM btc_conflicts) "
        "AND NOT EXISTS (SELECT 1 FROM btc_tx WHERE set_aside IS NOT NULL OR stale) "
        "AND NOT EXISTS (SELECT 1 FROM btc_blocks WHERE stale) "
        "AND NOT EXISTS (SELECT 1 FROM btc_txin i JOIN _new_tx n USING (tx_id) "
        " JOIN btc_txin j ON j.prev_txid = i.prev_txid AND j.prev_vout = i.prev_vout "
        " WHERE i.prev_vout <> 4294967295 AND (j.tx_id <> i.tx_id OR j.n <> i.n))"
    ).fetchone()
    return bool(row and row[0])


def mark_conflicts(con: duckdb.DuckDBPyConnection,
                   after_batch: bool = False) -> dict[str, int]:
    """Recompute the coins spent twice (``btc_conflicts``) and the transactions set aside
    (``btc_tx.set_aside``); return how many of each (``conflicts``: coins,
    ``set_aside_txs``).

    Two transactions that spend the same outpoint cannot both have happened (found by
    the money audit, H1: a forged, unsigned transaction replaced the real spender of a
    coin and the real trail vanished from ``trace`` without a word). Among the spenders
    not stale, the one whose placement stands highest (:data:`_STANDING`: a block on the
    best chain with valid proof of work, then one whose proof of work fails, then no
    block; a transaction in several blocks counts its best; only a block checked to hold
    it counts) is kept; the others are set
    aside, and so are all of them when two or more share the highest standing (nothing
    tells which happened). A transaction spending one outpoint twice in its own inputs
    is set aside too. Every transaction spending an output of a set-aside one is set
    aside after it. Runs after every load and before clustering, like
    :func:`mark_stale`; after a load (``after_batch``: the batch's new transactions in
    ``_new_tx``) it returns at once when nothing can have changed
    (:func:`_nothing_to_mark`; review M3: every file and ETL batch of a long load
    recomputed the whole chain).
    """
    if after_batch and _nothing_to_mark(con):
        return {"conflicts": 0, "set_aside_txs": 0}
    con.execute("DELETE FROM btc_conflicts")
    con.execute("UPDATE btc_tx SET set_aside = NULL WHERE set_aside IS NOT NULL")
    con.execute(
        "INSERT INTO btc_conflicts WITH tb AS (SELECT tx_id, block_hash FROM btc_tx "
        " WHERE block_hash IS NOT NULL AND block_checked UNION ALL SELECT tx_id, block_hash"
        " FROM btc_tx_blocks WHERE checked),"
        "r AS (SELECT t.tx_id, min(CASE WHEN b.block_hash IS NULL OR b.n_tx IS NULL THEN 2"
        " WHEN b.pow_ok THEN 0 ELSE 1 END) AS rank FROM btc_tx t LEFT JOIN tb USING (tx_id)"
        " LEFT JOIN btc_blocks b ON b.block_hash = tb.block_hash AND b.stale IS NOT TRUE"
        " WHERE t.stale IS NOT TRUE GROUP BY t.tx_id),"
        "sp AS (SELECT i.prev_txid, i.prev_vout, i.tx_id, r.rank FROM btc_txin i"
        " JOIN r USING (tx_id) WHERE i.prev_vout <> 4294967295),"
        "g AS (SELECT prev_txid, prev_vout, tx_id, min(rank) AS rank, count(*) AS n FROM sp"
        " WHERE (prev_txid, prev_vout) IN (SELECT prev_txid, prev_vout FROM sp"
        "  GROUP BY 1, 2 HAVING count(*) > 1) GROUP BY 1, 2, 3),"
        "w AS (SELECT *, min(rank) OVER o AS best, count(*) OVER o AS spenders FROM g"
        " WINDOW o AS (PARTITION BY prev_txid, prev_vout)),"
        "k AS (SELECT *, sum(CASE WHEN rank = best THEN 1 ELSE 0 END) OVER "
        " (PARTITION BY prev_txid, prev_vout) AS at_best FROM w) "
        "SELECT prev_txid, prev_vout, tx_id, spenders > 1 AND n = 1 AND rank = best "
        "AND at_best = 1, CASE rank WHEN 0 THEN ? WHEN 1 THEN ? ELSE ? END FROM k",
        list(_STANDING))
    # a transaction spending one outpoint twice in its own inputs: never kept
    con.execute(
        "UPDATE btc_tx AS t SET set_aside = 'spends ' || c.prev_txid || ':' || c.prev_vout "
        "|| ' twice in its own inputs' FROM btc_conflicts c WHERE c.tx_id = t.tx_id "
        "AND t.set_aside IS NULL AND (SELECT count(*) FROM btc_txin i WHERE i.tx_id = c.tx_id "
        " AND i.prev_txid = c.prev_txid AND i.prev_vout = c.prev_vout) > 1")
    # the others: why each is set aside
    con.execute(
        "UPDATE btc_tx AS t SET set_aside = r.why FROM (SELECT c.tx_id, min("
        " CASE WHEN k.txid IS NULL THEN 'spends ' || c.prev_txid || ':' || c.prev_vout "
        "  || ', which another transaction of the same standing spends too (' || c.standing "
        "  || '): which one happened cannot be told'"
        " ELSE 'spends ' || c.prev_txid || ':' || c.prev_vout || ', which ' || k.txid "
        "  || ' spends too and stands higher (' || k.standing || '; this one: ' "
        "  || c.standing || ')' END) AS why FROM btc_conflicts c "
        " LEFT JOIN (SELECT x.prev_txid, x.prev_vout, x.standing, t2.txid FROM btc_conflicts x"
        "  JOIN btc_tx t2 USING (tx_id) WHERE x.kept) k "
        "  ON k.prev_txid = c.prev_txid AND k.prev_vout = c.prev_vout "
        " WHERE NOT c.kept GROUP BY 1) r WHERE t.tx_id = r.tx_id AND t.set_aside IS NULL")
    if _count(con, "SELECT count(*) FROM btc_tx WHERE set_aside IS NOT NULL"):
        # what spends an output of a set-aside transaction rests on it: set aside too
        con.execute(
            "UPDATE btc_tx AS t SET set_aside = 'spends an output of ' || d.via || ', which "
            "is set aside (a coin spent twice before it)' FROM (WITH RECURSIVE down(tx_id) AS ("
            " SELECT tx_id FROM btc_tx WHERE set_aside IS NOT NULL"
            " UNION SELECT i.tx_id FROM btc_txin i JOIN down ON i.prev_tx_id = down.tx_id)"
            " SELECT down.tx_id, min(p.txid) AS via FROM down JOIN btc_txin i USING (tx_id)"
            " JOIN btc_tx p ON p.tx_id = i.prev_tx_id WHERE p.tx_id IN (SELECT tx_id FROM down)"
            " GROUP BY 1) d WHERE t.tx_id = d.tx_id AND t.set_aside IS NULL")
    con.execute("DELETE FROM btc_conflict_checks")
    con.execute("INSERT INTO btc_conflict_checks VALUES (now()::TIMESTAMP)")
    return {"conflicts": _count(con, "SELECT count(*) FROM (SELECT DISTINCT prev_txid, "
                                     "prev_vout FROM btc_conflicts)"),
            "set_aside_txs": _count(con, "SELECT count(*) FROM btc_tx "
                                         "WHERE set_aside IS NOT NULL")}


@dataclass(frozen=True)
class Conflict:
    """A coin spent by two or more stored transactions: each spender with its standing,
    whether it is kept, and why it is set aside (None when kept)."""

    outpoint: str
    spenders: list[tuple[str, str, bool, str | None]]  # (txid, standing, kept, set_aside)


@dataclass(frozen=True)
class ChainDoubts:
    """What the loaded chain data do not prove: coins spent twice (the first ``limit``),
    the transactions set aside, blocks on the best chain whose proof of work fails, and
    transactions in no loaded block."""

    conflicts: list[Conflict]
    n_conflicts: int
    n_set_aside: int
    pow_failed_blocks: int
    transactions_without_block: int


def chain_doubts(con: duckdb.DuckDBPyConnection, limit: int = 20) -> ChainDoubts:
    """The conflicts (by outpoint, spenders kept first) and the unproven placements."""
    if not table_has_rows(con, "btc_tx"):
        return ChainDoubts([], 0, 0, 0, 0)
    rows = con.execute(
        "WITH o AS (SELECT DISTINCT prev_txid, prev_vout FROM btc_conflicts "
        " ORDER BY 1, 2 LIMIT ?) SELECT c.prev_txid, c.prev_vout, t.txid, c.standing, c.kept, "
        "t.set_aside FROM btc_conflicts c JOIN o USING (prev_txid, prev_vout) "
        "JOIN btc_tx t USING (tx_id) ORDER BY 1, 2, c.kept DESC, t.txid", [limit]).fetchall()
    conflicts: dict[str, list[tuple[str, str, bool, str | None]]] = {}
    for p, v, txid, standing, kept, why in rows:
        conflicts.setdefault(f"{p}:{v}", []).append((str(txid), str(standing), bool(kept), why))
    return ChainDoubts(
        [Conflict(k, v) for k, v in conflicts.items()],
        _count(con, "SELECT count(*) FROM (SELECT DISTINCT prev_txid, prev_vout "
                    "FROM btc_conflicts)"),
        _count(con, "SELECT count(*) FROM btc_tx WHERE set_aside IS NOT NULL"),
        _count(con, "SELECT count(*) FROM btc_blocks WHERE n_tx IS NOT NULL AND "
                    "stale IS NOT TRUE AND pow_ok IS NOT TRUE"),
        _count(con, "SELECT count(*) FROM btc_tx WHERE block_checked IS NOT TRUE "
                    f"AND NOT {LEFT_OUT}"))


class TxStanding(TypedDict):
    """How the placement of some transactions (a wallet's, a trail's) is supported."""

    set_aside: int        # left out: a coin spent twice (btc_tx.set_aside)
    kept_in_conflict: int  # kept over another spender of the same coin
    pow_failed: int       # in a block whose proof of work fails (and no valid one)
    without_block: int    # in no block checked to hold it (raw, JSON, ETL rows)


def _standing_sql(ids: str) -> str:
    """The :class:`TxStanding` counts of the transactions whose ids ``ids`` (a query of
    one column ``id``) gives; stale ones are not counted."""
    return (
        "SELECT count(*) FILTER (WHERE t.set_aside IS NOT NULL), "
        "count(*) FILTER (WHERE t.tx_id IN (SELECT tx_id FROM btc_conflicts WHERE kept)), "
        "count(*) FILTER (WHERE t.set_aside IS NULL AND t.block_checked AND EXISTS (SELECT 1 "
        " FROM btc_blocks b WHERE b.block_hash = t.block_hash AND b.n_tx IS NOT NULL) AND "
        " NOT EXISTS (SELECT 1 FROM btc_blocks b WHERE b.pow_ok AND b.stale IS NOT TRUE AND "
        " (b.block_hash = t.block_hash OR b.block_hash IN (SELECT x.block_hash FROM "
        " btc_tx_blocks x WHERE x.tx_id = t.tx_id AND x.checked)))), "
        "count(*) FILTER (WHERE t.set_aside IS NULL AND (t.block_checked IS NOT TRUE OR NOT "
        " EXISTS (SELECT 1 FROM btc_blocks b WHERE b.block_hash = t.block_hash AND b.n_tx "
        " IS NOT NULL))) "
        f"FROM btc_tx t WHERE t.stale IS NOT TRUE AND t.tx_id IN ({ids})")


def _standing(row: Sequence[Any] | None) -> TxStanding:
    a, b, c, d = row if row else (0, 0, 0, 0)
    return {"set_aside": int(a), "kept_in_conflict": int(b), "pow_failed": int(c),
            "without_block": int(d)}


def tx_standing(con: duckdb.DuckDBPyConnection, tx_ids: Iterable[int]) -> TxStanding:
    """:class:`TxStanding` of the transactions ``tx_ids`` (stale ones are not counted)."""
    ids = sorted({int(t) for t in tx_ids})
    if not ids:
        return _standing(None)
    rows = query_arrow(con, _standing_sql(f"SELECT id FROM {ARROW_ROWS}"),
                       pa.table({"id": pa.array(ids, pa.int64())}))
    return _standing(rows[0] if rows else None)


def set_aside_txs_of(con: duckdb.DuckDBPyConnection, address_ids: Iterable[int]) -> list[int]:
    """Transactions set aside (:func:`mark_conflicts`) that pay or spend ``address_ids``."""
    ids = sorted({int(a) for a in address_ids})
    if not ids:
        return []
    return [int(t) for (t,) in con.execute(
        "SELECT tx_id FROM btc_tx WHERE set_aside IS NOT NULL AND tx_id IN ("
        " SELECT tx_id FROM btc_txout WHERE address_id IN (SELECT unnest(?)) "
        " UNION ALL SELECT tx_id FROM btc_txin WHERE address_id IN (SELECT unnest(?))) "
        "ORDER BY tx_id", [ids, ids]).fetchall()]


@dataclass(frozen=True)
class StaleBlock:
    """A stored block off the best chain."""

    block_hash: str
    height: int | None
    n_tx: int | None
    source: str


@dataclass(frozen=True)
class StaleChain:
    """The stale blocks and the transactions left out because they are found only in
    them (``txids``: the first ``limit``, by height and position)."""

    blocks: list[StaleBlock]
    n_transactions: int
    txids: list[str]


def stale_chain(con: duckdb.DuckDBPyConnection, limit: int = 20) -> StaleChain:
    """The stored stale blocks (by height, hash) and the transactions left out."""
    if not table_has_rows(con, "btc_blocks"):
        return StaleChain([], 0, [])
    blocks = [StaleBlock(str(h), ht, n, str(src)) for h, ht, n, src in con.execute(
        "SELECT block_hash, height, n_tx, source FROM btc_blocks WHERE stale "
        "ORDER BY height NULLS LAST, block_hash").fetchall()]
    n = _count(con, "SELECT count(*) FROM btc_tx WHERE stale")
    txids = [str(t) for (t,) in con.execute(
        "SELECT txid FROM btc_tx WHERE stale ORDER BY height NULLS LAST, block_hash, "
        "position, txid LIMIT ?", [limit]).fetchall()]
    return StaleChain(blocks, n, txids)


def stale_txs_of(con: duckdb.DuckDBPyConnection, address_ids: Iterable[int]) -> int:
    """Stale transactions (found only in stale blocks) that pay or spend ``address_ids``."""
    ids = sorted({int(a) for a in address_ids})
    if not ids:
        return 0
    return _count(con, (
        "SELECT count(DISTINCT t.tx_id) FROM btc_tx t WHERE t.stale AND t.tx_id IN ("
        " SELECT tx_id FROM btc_txout WHERE address_id IN (SELECT unnest(?)) "
        " UNION ALL SELECT tx_id FROM btc_txin WHERE address_id IN (SELECT unnest(?)))"),
        [ids, ids])


def fill_heights(con: duckdb.DuckDBPyConnection) -> int:
    """Give heights to blocks that link (by prev_hash) to a block of known height.

    Mainnet genesis is height 0; so is any block whose prev_hash is all zeros (the
    first block of a private or simulated chain). Returns the number of blocks filled.
    """
    rows = con.execute("SELECT block_hash, prev_hash, height FROM btc_blocks").fetchall()
    if not rows or all(r[2] is not None for r in rows):
        return 0
    updates = _heights_from_links(rows)
    if updates:
        upd = pa.table({"block_hash": [u[0] for u in updates],
                        "height": pa.array([u[1] for u in updates], pa.int32())})
        query_arrow(con, f"UPDATE btc_blocks AS b SET height = u.height FROM {ARROW_ROWS} u "
                         "WHERE b.block_hash = u.block_hash", upd)
        con.execute("UPDATE btc_tx AS t SET height = b.height FROM btc_blocks b "
                    "WHERE t.block_hash = b.block_hash AND t.height IS NULL "
                    "AND b.height IS NOT NULL")
    return len(updates)


def _heights_from_links(rows: list[tuple[str, str, int | None]]) -> list[tuple[str, int]]:
    """(block hash, height) for blocks without a height that link to one with a height."""
    height = {h: ht for h, _, ht in rows if ht is not None}
    height.setdefault(GENESIS_HASH, 0)
    children: dict[str, list[str]] = {}
    for h, prev, ht in rows:
        if ht is None and prev == "00" * 32:
            height[h] = 0
        children.setdefault(prev, []).append(h)
    stack = list(height)
    while stack:
        h = stack.pop()
        for c in children.get(h, ()):
            if c not in height:
                height[c] = height[h] + 1
                stack.append(c)
    missing = {h for h, _, ht in rows if ht is None}
    return [(h, ht) for h, ht in height.items() if h in missing]


# -- the transaction graph ------------------------------------------------------------


@dataclass(frozen=True)
class GraphColumns:
    """The stored chain as numpy columns, ordered by ``tx_id`` (inputs/outputs by ``n``).

    ``tx``: ``tx_id``, ``is_coinbase``, ``t`` (block time, epoch seconds, -1 unknown),
    ``o`` (chain order: the rank by height, position in the block, then txid; transactions
    in no block or of unknown height last, by txid: never the order they were loaded in);
    ``outputs``: ``tx_id``, ``a`` (address id, -1 none), ``value``, ``st`` (script type
    code); ``inputs``: ``tx_id``, ``a``, ``v`` (value, -1 unknown), ``st``, ``pt``
    (spent tx id, -1 unknown), ``prev_vout``. Script type codes are 1-based positions in
    the ``script_types`` given to :func:`graph_columns` (0: not among them).
    """

    n_tx: int
    n_addr: int
    tx: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]


def _type_code_sql(col: str, script_types: Sequence[str]) -> str:
    names = ", ".join(f"'{t}'" for t in script_types)
    return f"coalesce(list_position([{names}], {col}), 0)::TINYINT"


def graph_columns(con: duckdb.DuckDBPyConnection,
                  script_types: Sequence[str]) -> GraphColumns:
    """Read transactions, outputs and inputs as columns; see :class:`GraphColumns`."""
    n_tx = _count(con, "SELECT coalesce(max(tx_id) + 1, 0) FROM btc_tx")
    n_addr = _count(con, "SELECT coalesce(max(address_id) + 1, 0) FROM btc_address")
    # a stale transaction (found only in blocks off the best chain) keeps its id but
    # has no inputs or outputs here: clustering and tracing never see it
    # (and so has one set aside: a coin spent twice, see mark_conflicts)
    live = f"tx_id NOT IN (SELECT tx_id FROM btc_tx WHERE {LEFT_OUT})"
    tx = con.execute(
        "SELECT tx_id, is_coinbase, coalesce(epoch(block_time), -1)::BIGINT AS t, "
        "(row_number() OVER (ORDER BY height NULLS LAST, position NULLS LAST, txid) - 1)"
        f"::BIGINT AS o FROM btc_tx WHERE NOT {LEFT_OUT} ORDER BY tx_id").fetchnumpy()
    outs = con.execute(
        "SELECT tx_id, coalesce(address_id, -1) AS a, value, "
        f"{_type_code_sql('script_type', script_types)} AS st FROM btc_txout "
        f"WHERE {live} ORDER BY tx_id, n").fetchnumpy()
    ins = con.execute(
        "SELECT tx_id, coalesce(address_id, -1) AS a, coalesce(value, -1) AS v, "
        f"{_type_code_sql('script_type', script_types)} AS st, "
        f"coalesce(prev_tx_id, -1) AS pt, prev_vout FROM btc_txin WHERE {live} "
        "ORDER BY tx_id, n").fetchnumpy()
    return GraphColumns(n_tx, n_addr, tx, outs, ins)


def txids_by_id(con: duckdb.DuckDBPyConnection, ids: Iterable[int]) -> dict[int, str]:
    """Txid (display hex) of each ``tx_id`` in ``ids``."""
    return _lookup(con, "btc_tx", "tx_id", "txid", ids)


def addresses_by_id(con: duckdb.DuckDBPyConnection, ids: Iterable[int]) -> dict[int, str]:
    """Address string of each ``address_id`` in ``ids``."""
    return _lookup(con, "btc_address", "address_id", "address", ids)


def _lookup(con: duckdb.DuckDBPyConnection, table: str, key: str, val: str,
            ids: Iterable[int]) -> dict[int, str]:
    want = sorted(set(ids))
    if not want:
        return {}
    rows = query_arrow(con, f"SELECT t.{key}, t.{val} FROM {table} t JOIN "
                            f"{ARROW_ROWS} want ON want.id = t.{key}",
                       pa.table({"id": pa.array(want, pa.int64())}))
    return {int(k): v for k, v in rows}


def address_id(con: duckdb.DuckDBPyConnection, address: str) -> int | None:
    """The ``address_id`` of ``address`` as stored, or None when the chain lacks it."""
    row = con.execute("SELECT address_id FROM btc_address WHERE address = ?",
                      [address]).fetchone()
    return int(row[0]) if row else None


# -- clusters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRun:
    """One clustering run, as ``btc_cluster_runs`` keeps it."""

    run_id: str
    heuristics: tuple[str, ...]
    n_addresses: int
    n_clusters: int
    n_edges: int
    n_coinjoins: int
    seconds: float


def replace_clusters(con: duckdb.DuckDBPyConnection, clusters: pa.Table, merges: pa.Table,
                     coinjoins: pa.Table, run: ClusterRun) -> dict[str, int]:
    """Replace the stored clustering in one transaction; the merges stored, by heuristic.

    ``clusters``: ``address_id``, ``cluster_id``; ``merges``: ``tx_id``, ``heuristic``,
    ``address_a``, ``address_b`` (repeats stored once: the run's ``n_edges`` is what is
    stored, not ``run.n_edges`` when that counted repeats; found by an audit: 10,514
    edges reported, 7,585 stored and counted by `wallet show`); ``coinjoins``: the
    ``btc_coinjoins`` columns.
    """
    with transaction(con):
        con.execute("DELETE FROM btc_clusters")
        con.execute("DELETE FROM btc_cluster_merges")
        con.execute("DELETE FROM btc_coinjoins")
        query_arrow(con, "INSERT INTO btc_clusters SELECT address_id, cluster_id "
                         f"FROM {ARROW_ROWS}", clusters)
        query_arrow(con, "INSERT INTO btc_cluster_merges SELECT DISTINCT tx_id, heuristic, "
                         f"address_a, address_b, ? FROM {ARROW_ROWS}", merges, [run.run_id])
        query_arrow(con, f"INSERT INTO btc_coinjoins SELECT * FROM {ARROW_ROWS}", coinjoins)
        stored = {h: int(n) for h, n in con.execute(
            "SELECT heuristic, count(*) FROM btc_cluster_merges GROUP BY heuristic").fetchall()}
        con.execute("INSERT INTO btc_cluster_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run.run_id, utcnow(), list(run.heuristics), run.n_addresses,
                     run.n_clusters, sum(stored.values()), run.n_coinjoins, run.seconds])
    return stored


def last_cluster_heuristics(con: duckdb.DuckDBPyConnection) -> tuple[str, ...] | None:
    """Heuristics of the latest clustering run, None when none ran."""
    row = con.execute("SELECT heuristics FROM btc_cluster_runs ORDER BY created_at DESC "
                      "LIMIT 1").fetchone()
    return tuple(row[0]) if row else None


def cluster_count(con: duckdb.DuckDBPyConnection) -> int:
    """Clusters stored (singletons included)."""
    return _count(con, "SELECT count(DISTINCT cluster_id) FROM btc_clusters")


def cluster_labels(con: duckdb.DuckDBPyConnection) -> dict[str, np.ndarray]:
    """``address_id`` and ``cluster_id`` of every clustered address, as numpy columns."""
    return con.execute("SELECT address_id, cluster_id FROM btc_clusters").fetchnumpy()


def cluster_exists(con: duckdb.DuckDBPyConnection, cluster_id: int) -> bool:
    """True when a stored cluster has id ``cluster_id``."""
    return con.execute("SELECT 1 FROM btc_clusters WHERE cluster_id = ? LIMIT 1",
                       [cluster_id]).fetchone() is not None


def cluster_of_address(con: duckdb.DuckDBPyConnection, address: str) -> int | None:
    """The cluster of the address string ``address`` (as stored), None if unclustered."""
    row = con.execute(
        "SELECT c.cluster_id FROM btc_address a JOIN btc_clusters c USING (address_id) "
        "WHERE a.address = ?", [address]).fetchone()
    return int(row[0]) if row else None


def cluster_of_address_id(con: duckdb.DuckDBPyConnection, address_id: int) -> int | None:
    """The cluster of address id ``address_id``, None if unclustered."""
    row = con.execute("SELECT cluster_id FROM btc_clusters WHERE address_id = ?",
                      [address_id]).fetchone()
    return int(row[0]) if row else None


def cluster_address_ids(con: duckdb.DuckDBPyConnection, cluster_id: int) -> list[int]:
    """Address ids of cluster ``cluster_id``, ascending (empty when there is none)."""
    return [r[0] for r in con.execute(
        "SELECT address_id FROM btc_clusters WHERE cluster_id = ? ORDER BY address_id",
        [cluster_id]).fetchall()]


class MergeEdge(TypedDict):
    """One merge of a cluster: the transaction and heuristic that joined two addresses."""

    tx_id: int
    txid: str
    heuristic: str
    address_a: str
    address_b: str
    address_id_a: int
    address_id_b: int


def cluster_merges(con: duckdb.DuckDBPyConnection, cluster_id: int) -> list[MergeEdge]:
    """Every stored merge inside cluster ``cluster_id``, by transaction (a transaction's
    merges by heuristic and address ids: the order decides which shortest path explains
    two addresses, so ties may not come in the order the rows were stored in)."""
    edges = con.execute(
        "SELECT m.tx_id, t.txid, m.heuristic, m.address_a, m.address_b, "
        "aa.address, ab.address FROM btc_cluster_merges m "
        "JOIN btc_clusters c ON c.address_id = m.address_a AND c.cluster_id = ? "
        "JOIN btc_tx t ON t.tx_id = m.tx_id "
        "JOIN btc_address aa ON aa.address_id = m.address_a "
        "JOIN btc_address ab ON ab.address_id = m.address_b "
        "ORDER BY m.tx_id, m.heuristic, m.address_a, m.address_b",
        [cluster_id]).fetchall()
    return [{"tx_id": e[0], "txid": e[1], "heuristic": e[2], "address_a": e[5],
             "address_b": e[6], "address_id_a": e[3], "address_id_b": e[4]} for e in edges]


# -- tags -------------------------------------------------------------------------------

TAG_COLUMNS = ("tag_id", "address", "label", "category", "confidence", "source", "actor",
               "currency", "tagpack_title", "tagpack_creator", "origin", "account_id",
               "ident_id", "capture_sha256", "imported_at")
"""``btc_tags`` columns, in the order of the rows :func:`insert_tags` takes."""


def insert_tags(con: duckdb.DuckDBPyConnection, rows: Sequence[Sequence[Any]]) -> int:
    """Store ``btc_tags`` rows (tuples in :data:`TAG_COLUMNS` order); an id stored already
    is left out. Returns the rows given."""
    if not rows:
        return 0
    tbl = pa.table({c: pa.array([r[i] for r in rows],
                                pa.timestamp("us") if c == "imported_at" else pa.string())
                    for i, c in enumerate(TAG_COLUMNS)})
    insert_arrow(con, "btc_tags", tbl, TAG_COLUMNS, or_ignore=True)
    return len(rows)


def sync_evidence_tags(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild the ``evidence`` tags from ``identifiers``; return how many exist now.

    Every valid Bitcoin address the evidence published (``identifiers`` of kind
    ``btc_address``) becomes a tag labelled with the account (else listing, market) that
    published it; its actor is the account's persona when linking has run.
    """
    persona = table_exists(con, "persona_members")
    rows = con.execute(
        "SELECT i.ident_id, i.value, i.account_id, i.market_id, i.listing_id, i.field, "
        "i.capture_sha256, i.source, "
        + ("(SELECT min(pm.persona_id) FROM persona_members pm "
           "WHERE pm.account_id = i.account_id)" if persona else "NULL")
        + " FROM identifiers i WHERE i.kind = 'btc_address' ORDER BY i.ident_id").fetchall()
    now = utcnow()
    out = []
    for ident, value, acct, market, listing, fld, cap, src, pers in rows:
        addr = clean_btc_address(value)
        if addr is None:
            continue
        who = acct or listing or market or "unknown"
        out.append((row_id("evtag", ident), addr, who, "user", "evidence",
                    f"{src} ({fld or 'field?'})"[:500], pers or acct, "BTC", None, None,
                    "evidence", acct, ident, cap, now))
    con.execute("DELETE FROM btc_tags WHERE origin = 'evidence'")
    insert_tags(con, out)
    return len(out)


def tag_count(con: duckdb.DuckDBPyConnection, origin: str | None = None) -> int:
    """Tags stored (of one ``origin``: ``tagpack`` or ``evidence``)."""
    if origin is None:
        return _count(con, "SELECT count(*) FROM btc_tags")
    return _count(con, "SELECT count(*) FROM btc_tags WHERE origin = ?", [origin])


def tags_for_export(con: duckdb.DuckDBPyConnection,
                    origin: str | None = None) -> list[dict[str, Any]]:
    """TagPack fields of every stored tag (of one ``origin``), by address and label, then
    the other fields (tags of one address and label from two sources came in the order
    they were stored in); fields without a value are left out."""
    fields = ("address", "label", "category", "confidence", "source", "actor", "currency")
    sql = (f"SELECT {', '.join(fields)} FROM btc_tags"
           + (" WHERE origin = ?" if origin else "") + f" ORDER BY {', '.join(fields)}")
    rows = con.execute(sql, [origin] if origin else []).fetchall()
    return [{k: v for k, v in zip(fields, r, strict=True) if v is not None} for r in rows]


class AddressTag(TypedDict):
    """A tag on an address present in the chain tables."""

    label: str
    category: str | None
    actor: str | None
    origin: str
    account_id: str | None
    address: str


def tags_by_address_id(con: duckdb.DuckDBPyConnection) -> dict[int, list[AddressTag]]:
    """Tags keyed by address id (only addresses present in the chain tables)."""
    rows = con.execute(
        "SELECT a.address_id, t.label, t.category, t.actor, t.origin, t.account_id, t.address "
        "FROM btc_tags t JOIN btc_address a ON a.address = t.address").fetchall()
    out: dict[int, list[AddressTag]] = {}
    for aid, label, cat, actor, origin, acct, addr in rows:
        out.setdefault(aid, []).append({"label": label, "category": cat, "actor": actor,
                                        "origin": origin, "account_id": acct, "address": addr})
    return out


def trace_tags(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str | None, str | None,
                                                             str, str, str | None, str | None]]:
    """(address id, label, category, actor, origin, address, confidence, source) of every
    tag on a chain address, TagPack tags first, then by label, address and tag id (the
    first tag of a cluster labels all its addresses, naming its address: not the stored
    order's)."""
    return con.execute(
        "SELECT a.address_id, t.label, t.category, t.actor, t.origin, t.address, "
        "t.confidence, t.source "
        "FROM btc_tags t JOIN btc_address a ON a.address = t.address "
        "ORDER BY (t.origin = 'tagpack') DESC, t.label, a.address_id, t.tag_id").fetchall()


def stored_coinjoins(con: duckdb.DuckDBPyConnection) -> tuple[list[int], list[str]] | None:
    """(transaction ids, kinds) of the CoinJoins the last clustering run flagged
    (``btc_coinjoins``), or ``None`` when the chain was never clustered."""
    if not table_has_rows(con, "btc_cluster_runs"):
        return None
    rows = con.execute("SELECT tx_id, kind FROM btc_coinjoins ORDER BY tx_id").fetchall()
    return [int(t) for t, _ in rows], [str(k) for _, k in rows]


def cluster_merge_counts(con: duckdb.DuckDBPyConnection,
                         cluster_ids: Iterable[int]) -> tuple[dict[str, int], int]:
    """(merges per heuristic, addresses in at least one merge) inside the clusters
    ``cluster_ids``, counted by the database (an exchange's cluster may have millions)."""
    ids = sorted({int(c) for c in cluster_ids})
    if not ids:
        return {}, 0
    edges = ("WITH e AS (SELECT m.heuristic, m.address_a, m.address_b "
             "FROM btc_cluster_merges m JOIN btc_clusters c ON c.address_id = m.address_a "
             "WHERE c.cluster_id IN (SELECT unnest(?))) ")
    by_heur = {str(h): int(n) for h, n in con.execute(
        edges + "SELECT heuristic, count(*) FROM e GROUP BY 1 ORDER BY 1", [ids]).fetchall()}
    row = con.execute(edges + "SELECT count(DISTINCT a) FROM (SELECT address_a AS a FROM e "
                      "UNION ALL SELECT address_b FROM e)", [ids]).fetchone()
    return by_heur, int(row[0]) if row else 0


def cluster_multi_input_edges(con: duckdb.DuckDBPyConnection,
                              cluster_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """(address ids a, address ids b) of the ``multi_input`` merges inside the clusters
    ``cluster_ids``, as numpy columns."""
    ids = sorted({int(c) for c in cluster_ids})
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cols = con.execute(
        "SELECT m.address_a, m.address_b FROM btc_cluster_merges m "
        "JOIN btc_clusters c ON c.address_id = m.address_a "
        "WHERE m.heuristic = 'multi_input' AND c.cluster_id IN (SELECT unnest(?))",
        [ids]).fetchnumpy()
    return (np.asarray(cols["address_a"], dtype=np.int64),
            np.asarray(cols["address_b"], dtype=np.int64))


# -- one wallet (cluster) ----------------------------------------------------------------


class WalletAddress(TypedDict):
    """An address of a wallet with what it received and sent (satoshis)."""

    address: str
    script_type: str | None
    received_sat: int
    sent_sat: int


class MonthFlow(TypedDict):
    """A wallet's flows in one month (``YYYY-MM``)."""

    month: str | None
    received_sat: int
    sent_sat: int


class PaidTo(TypedDict):
    """A counterparty (cluster, else lone address id) the wallet paid."""

    cluster_id: int
    sent_sat: int
    transactions: int
    example_address: str | None
    tags: list[str]


class PaidBy(TypedDict):
    """A counterparty (cluster, else lone address id) that paid the wallet."""

    cluster_id: int
    received_sat: int
    transactions: int
    example_address: str | None
    tags: list[str]


class WalletTag(TypedDict):
    """A tag on one of the wallet's addresses."""

    address: str
    label: str
    category: str | None
    confidence: str | None
    source: str | None
    actor: str | None
    origin: str
    account_id: str | None
    tagpack: str | None


class LinkedPersona(TypedDict):
    """A persona whose accounts published addresses of the wallet."""

    persona_id: str
    label: str | None
    n_accounts: int
    via_accounts: list[str]


class MergeCount(TypedDict):
    """How many merge edges (and transactions) one heuristic contributed to a cluster."""

    edges: int
    transactions: int


@dataclass
class WalletFacts:
    """What the store knows about one cluster; :func:`darkmap.chain.wallet.wallet_summary`
    adds the merges and shapes it for the reader."""

    n_addresses: int
    received_sat: int
    sent_sat: int
    transactions: int
    addresses: list[WalletAddress]
    by_month: list[MonthFlow]
    paid_to: list[PaidTo]
    paid_by: list[PaidBy]
    tags: list[WalletTag]
    linked_accounts: list[str]
    linked_personas: list[LinkedPersona]
    merge_reasons: dict[str, MergeCount]
    coinjoins_spent_in: dict[str, int] = field(default_factory=dict)
    # transactions of the wallet its counterparties leave out, by reason (``coinjoin``,
    # ``input_value_unknown``): see :func:`_counterparties`
    counterparty_txs_left_out: dict[str, int] = field(default_factory=dict)
    # its transactions set aside, kept in a conflict, in blocks failing proof of work or
    # in no loaded block (:func:`tx_standing`)
    standing: TxStanding | None = None
    stale_transactions: int = 0
    unknown_inputs: int = 0  # inputs whose spent output is not loaded: value unknown
    # inputs of known value (UTXO file, prevouts) whose paying transaction is not loaded
    # (or only in stale blocks): what they spent is missing from received_sat
    unloaded_spends: int = 0
    unloaded_spends_sat: int = 0
    unspendable_sat: int = 0  # received in outputs no one can spend (the genesis coinbase)


def wallet_facts(con: duckdb.DuckDBPyConnection, cluster_id: int, limit: int = 50) -> WalletFacts:
    """Addresses, totals, monthly flows, counterparties, tags, linked accounts and personas
    and merge reasons of cluster ``cluster_id`` (lists cut at ``limit``).

    Counterparties come by amount, then cluster id; tags by origin and label, then in the
    order the store holds them.

    The cluster's address ids are held in a connection-local temporary table while the
    queries run (a read-only workspace allows that); the store is not changed.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _w AS SELECT address_id FROM btc_clusters "
                "WHERE cluster_id = ?", [cluster_id])
    # outputs and inputs of transactions on the best chain (or in no known block): a
    # transaction found only in stale blocks is left out and counted apart
    # (or set aside: a coin spent twice) is left out and counted apart
    con.execute("CREATE OR REPLACE TEMP VIEW _out AS SELECT * FROM btc_txout "
                f"WHERE tx_id NOT IN (SELECT tx_id FROM btc_tx WHERE {LEFT_OUT})")
    con.execute("CREATE OR REPLACE TEMP VIEW _in AS SELECT * FROM btc_txin "
                f"WHERE tx_id NOT IN (SELECT tx_id FROM btc_tx WHERE {LEFT_OUT})")
    try:
        return _wallet_facts(con, limit)
    finally:
        con.execute("DROP VIEW IF EXISTS _out")
        con.execute("DROP VIEW IF EXISTS _in")
        con.execute("DROP TABLE IF EXISTS _w")


def _wallet_facts(con: duckdb.DuckDBPyConnection, limit: int) -> WalletFacts:
    n_addr = _count(con, "SELECT count(*) FROM _w")
    addresses = con.execute(
        "SELECT a.address, a.script_type, "
        " (SELECT coalesce(sum(value), 0) FROM _out o WHERE o.address_id = a.address_id),"
        " (SELECT coalesce(sum(value), 0) FROM _in i WHERE i.address_id = a.address_id) "
        "FROM btc_address a JOIN _w USING (address_id) ORDER BY a.address_id LIMIT ?",
        [limit]).fetchall()
    totals = con.execute(
        "SELECT (SELECT coalesce(sum(o.value), 0) FROM _out o JOIN _w USING (address_id)),"
        " (SELECT coalesce(sum(i.value), 0) FROM _in i JOIN _w USING (address_id)),"
        " (SELECT count(DISTINCT tx_id) FROM ("
        "   SELECT tx_id FROM _out JOIN _w USING (address_id)"
        "   UNION ALL SELECT tx_id FROM _in JOIN _w USING (address_id)))").fetchone()
    totals = totals or (0, 0, 0)  # an aggregate query always gives its one row
    stale = _count(con, "SELECT count(DISTINCT t.tx_id) FROM btc_tx t WHERE t.stale AND "
                   "t.tx_id IN (SELECT tx_id FROM btc_txout JOIN _w USING (address_id) "
                   "UNION ALL SELECT tx_id FROM btc_txin JOIN _w USING (address_id))")
    unknown = _count(con, "SELECT count(*) FROM _in JOIN _w USING (address_id) "
                     "WHERE value IS NULL")
    unloaded = con.execute(
        "SELECT count(*), coalesce(sum(value), 0) FROM _in JOIN _w USING (address_id) "
        "WHERE value IS NOT NULL AND (prev_tx_id IS NULL OR prev_tx_id IN "
        "(SELECT tx_id FROM btc_tx WHERE stale))").fetchone() or (0, 0)
    unspendable = _count(
        con, "SELECT coalesce(sum(o.value), 0) FROM _out o JOIN _w USING (address_id) "
        "JOIN btc_tx t USING (tx_id) WHERE t.is_coinbase AND t.block_hash = ?",
        [GENESIS_HASH])
    monthly = con.execute(
        "WITH r AS (SELECT strftime(t.block_time, '%Y-%m') m, sum(o.value) v FROM _out o "
        "  JOIN _w USING (address_id) JOIN btc_tx t USING (tx_id) GROUP BY 1), "
        "s AS (SELECT strftime(t.block_time, '%Y-%m') m, sum(i.value) v FROM _in i "
        "  JOIN _w USING (address_id) JOIN btc_tx t USING (tx_id) GROUP BY 1) "
        "SELECT coalesce(r.m, s.m) m, coalesce(r.v, 0), coalesce(s.v, 0) FROM r "
        "FULL JOIN s ON r.m IS NOT DISTINCT FROM s.m ORDER BY m").fetchall()
    sent_to, recv_from, left_out = _counterparties(con, limit)
    cp_tags = _cluster_tag_labels(con, {r[0] for r in sent_to} | {r[0] for r in recv_from})
    tags = con.execute(
        "SELECT t.address, t.label, t.category, t.confidence, t.source, t.actor, t.origin, "
        "t.account_id, t.tagpack_title FROM btc_tags t JOIN btc_address a ON a.address = t.address "
        "JOIN _w USING (address_id) ORDER BY t.origin, t.label, t.rowid").fetchall()
    accounts = sorted({t[7] for t in tags if t[7]})
    by_heur = con.execute(
        "SELECT m.heuristic, count(*), count(DISTINCT m.tx_id) FROM btc_cluster_merges m "
        "JOIN _w ON _w.address_id = m.address_a GROUP BY 1 ORDER BY 1").fetchall()
    # detected CoinJoins the wallet spent in: their inputs were not merged (clustering
    # skips them), so each is a merge withheld
    standing = _standing(con.execute(_standing_sql(
        "SELECT tx_id FROM btc_txout JOIN _w USING (address_id) "
        "UNION SELECT tx_id FROM btc_txin JOIN _w USING (address_id)")).fetchone())
    coinjoins = con.execute(
        "SELECT j.kind, count(*) FROM btc_coinjoins j WHERE j.tx_id IN ("
        " SELECT i.tx_id FROM _in i JOIN _w USING (address_id)) "
        "GROUP BY 1 ORDER BY 1").fetchall()
    return WalletFacts(
        n_addresses=n_addr, received_sat=int(totals[0]), sent_sat=int(totals[1]),
        transactions=int(totals[2]),
        addresses=[{"address": a, "script_type": st, "received_sat": int(r), "sent_sat": int(s)}
                   for a, st, r, s in addresses],
        by_month=[{"month": m, "received_sat": int(r), "sent_sat": int(s)}
                  for m, r, s in monthly],
        paid_to=[{"cluster_id": int(r[0]), "sent_sat": int(r[1] or 0), "transactions": int(r[2]),
                  "example_address": r[3], "tags": cp_tags.get(int(r[0]), [])}
                 for r in sent_to],
        paid_by=[{"cluster_id": int(r[0]), "received_sat": int(r[1] or 0),
                  "transactions": int(r[2]), "example_address": r[3],
                  "tags": cp_tags.get(int(r[0]), [])} for r in recv_from],
        tags=[{"address": t[0], "label": t[1], "category": t[2], "confidence": t[3],
               "source": t[4], "actor": t[5], "origin": t[6], "account_id": t[7],
               "tagpack": t[8]} for t in tags],
        linked_accounts=accounts, linked_personas=_personas(con, accounts),
        merge_reasons={h: {"edges": int(n), "transactions": int(t)} for h, n, t in by_heur},
        coinjoins_spent_in={str(k): int(n) for k, n in coinjoins},
        counterparty_txs_left_out=left_out, standing=standing, stale_transactions=stale,
        unknown_inputs=unknown, unloaded_spends=int(unloaded[0]),
        unloaded_spends_sat=int(unloaded[1]), unspendable_sat=unspendable)


_COUNTERPARTY_TXS = (
    "WITH tw AS (SELECT tx_id FROM _in JOIN _w USING (address_id) "
    "  UNION SELECT tx_id FROM _out JOIN _w USING (address_id)), "
    "ti AS (SELECT i.tx_id, sum(i.value) AS v_all, count(*) - count(i.value) AS n_unknown, "
    "  coalesce(sum(i.value) FILTER (WHERE i.address_id IN (SELECT address_id FROM _w)), 0) "
    "  AS v_w FROM _in i JOIN tw USING (tx_id) JOIN btc_tx t USING (tx_id) "
    "  WHERE NOT t.is_coinbase GROUP BY 1), "
    "tok AS (SELECT tx_id, v_all, v_w FROM ti WHERE n_unknown = 0 AND v_all > 0 "
    "  AND tx_id NOT IN (SELECT tx_id FROM btc_coinjoins)) ")
"""The wallet's transactions (``tw``), their input values (``ti``: all, unknown, the
wallet's) and those whose counterparties can be shared out (``tok``)."""


def _counterparties(con: duckdb.DuckDBPyConnection, limit: int
                    ) -> tuple[list[Any], list[Any], dict[str, int]]:
    """(paid to, paid by, transactions left out by reason) of the wallet in ``_w``.

    A counterparty is credited only the wallet's share of a transaction, so the rows never
    add up to more than the wallet sent or received (found by the money audit, M1: an
    address that received 0.013 BTC was shown 119 BTC "paid by" the sender of a batch
    payout, and a CoinJoin participant "paid" every other participant's outputs):

    * paid to: in a transaction the wallet spends in, each output to another wallet counts
      in proportion to the wallet's part of the input value (``value * v_w / v_all``);
    * paid by: in a transaction paying the wallet, each other wallet's input counts in
      proportion to what the wallet received of it (``value * received / v_all``).

    Each share is rounded down to the satoshi. Detected CoinJoins (their inputs' owners
    are unknown) and transactions with an input of unknown value (no share can be
    computed) are left out and counted by reason (``coinjoin``, ``input_value_unknown``).
    """
    sent_to = con.execute(
        _COUNTERPARTY_TXS +
        "SELECT coalesce(c.cluster_id, o.address_id) cp, "
        " sum(o.value::HUGEINT * t.v_w // t.v_all)::BIGINT, count(DISTINCT o.tx_id), "
        " min(a.address) FROM _out o JOIN tok t USING (tx_id) "
        "LEFT JOIN btc_clusters c ON c.address_id = o.address_id "
        "LEFT JOIN btc_address a ON a.address_id = o.address_id "
        "WHERE t.v_w > 0 AND o.address_id IS NOT NULL "
        "AND o.address_id NOT IN (SELECT address_id FROM _w) "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", [limit]).fetchall()
    recv_from = con.execute(
        _COUNTERPARTY_TXS +
        ", ow AS (SELECT tx_id, sum(value) AS v FROM _out JOIN _w USING (address_id) "
        "  GROUP BY 1) "
        "SELECT coalesce(c.cluster_id, i.address_id) cp, "
        " sum(i.value::HUGEINT * ow.v // t.v_all)::BIGINT, count(DISTINCT i.tx_id), "
        " min(a.address) FROM _in i JOIN tok t USING (tx_id) JOIN ow USING (tx_id) "
        "LEFT JOIN btc_clusters c ON c.address_id = i.address_id "
        "LEFT JOIN btc_address a ON a.address_id = i.address_id "
        "WHERE i.address_id IS NOT NULL AND i.address_id NOT IN (SELECT address_id FROM _w) "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", [limit]).fetchall()
    row = con.execute(
        _COUNTERPARTY_TXS +
        "SELECT count(*) FILTER (WHERE tx_id IN (SELECT tx_id FROM btc_coinjoins)), "
        " count(*) FILTER (WHERE n_unknown > 0 AND tx_id NOT IN "
        "  (SELECT tx_id FROM btc_coinjoins)) FROM ti").fetchone() or (0, 0)
    left_out = {k: int(n) for k, n in zip(("coinjoin", "input_value_unknown"), row,
                                          strict=True) if n}
    return sent_to, recv_from, left_out


class ChainCoverage(TypedDict):
    """Which blocks are loaded (on the best chain): what every flow figure covers."""

    blocks: int                  # blocks with their transactions
    heights: str                 # their heights as runs, "0-256, 277647, 574200"
    unknown_height_blocks: int   # blocks whose height could not be inferred
    transactions_without_block: int  # raw transactions, Esplora JSON...


def chain_coverage(con: duckdb.DuckDBPyConnection) -> ChainCoverage:
    """The loaded blocks (with transactions, not stale) and their heights as runs."""
    heights = [int(h) for (h,) in con.execute(
        "SELECT DISTINCT height FROM btc_blocks WHERE n_tx IS NOT NULL AND stale IS NOT TRUE "
        "AND height IS NOT NULL ORDER BY 1").fetchall()]
    runs: list[list[int]] = []
    for h in heights:
        if runs and h == runs[-1][1] + 1:
            runs[-1][1] = h
        else:
            runs.append([h, h])
    return {
        "blocks": _count(con, "SELECT count(*) FROM btc_blocks WHERE n_tx IS NOT NULL "
                              "AND stale IS NOT TRUE"),
        "heights": ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs),
        "unknown_height_blocks": _count(con, "SELECT count(*) FROM btc_blocks WHERE n_tx IS "
                                             "NOT NULL AND stale IS NOT TRUE AND height IS NULL"),
        "transactions_without_block": _count(con, "SELECT count(*) FROM btc_tx WHERE "
                                                  "block_hash IS NULL"),
    }


def _cluster_tag_labels(con: duckdb.DuckDBPyConnection,
                        cluster_ids: set[int]) -> dict[int, list[str]]:
    if not cluster_ids:
        return {}
    rows = con.execute(
        "SELECT c.cluster_id, list(DISTINCT t.label) FROM btc_tags t "
        "JOIN btc_address a ON a.address = t.address JOIN btc_clusters c USING (address_id) "
        "WHERE c.cluster_id IN (SELECT unnest(?)) GROUP BY 1", [sorted(cluster_ids)]).fetchall()
    return {int(c): sorted(labels) for c, labels in rows}


def _personas(con: duckdb.DuckDBPyConnection, accounts: list[str]) -> list[LinkedPersona]:
    if not accounts:
        return []
    if not (table_exists(con, "personas") and table_exists(con, "persona_members")):
        return []
    rows = con.execute(
        "SELECT p.persona_id, p.label, p.n_accounts, list(DISTINCT m.account_id) "
        "FROM persona_members m JOIN personas p USING (persona_id) "
        "WHERE m.account_id IN (SELECT unnest(?)) GROUP BY 1, 2, 3", [accounts]).fetchall()
    return [{"persona_id": p, "label": lab, "n_accounts": n, "via_accounts": sorted(acc)}
            for p, lab, n, acc in rows]
