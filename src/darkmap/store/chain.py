"""Bulk-load a :class:`~darkmap.chain.tables.ChainBatch` into the workspace.

All work is set-based SQL over Arrow tables: new txids get the next dense ``tx_id``s,
new address strings the next ``address_id``s, inputs are joined to the outputs they
spend (in this batch, already stored, or known from a UTXO set), and inputs stored
earlier whose spent output arrives now are filled in. A txid already stored is skipped,
so loading a file twice, or two files that overlap, is harmless.
"""

from __future__ import annotations

from typing import Any

import duckdb

from darkmap.chain.parse import GENESIS_HASH
from darkmap.chain.tables import ChainBatch
from darkmap.store.writer import Provenance

__all__ = ["fill_heights", "write_batch"]


def _next_id(con: duckdb.DuckDBPyConnection, table: str, col: str) -> int:
    row = con.execute(f"SELECT coalesce(max({col}) + 1, 0) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def write_batch(con: duckdb.DuckDBPyConnection, batch: ChainBatch,
                prov: Provenance) -> dict[str, int]:
    """Insert the batch; return counts of new blocks, txs, addresses, prevouts."""
    tabs = batch.arrow()
    b_blocks, b_tx, b_in, b_out, b_pre = (tabs["blocks"], tabs["tx"], tabs["txin"],
                                         tabs["txout"], tabs["prevouts"])
    for name, tbl in (("_b_blocks", b_blocks), ("_b_tx", b_tx), ("_b_in", b_in),
                      ("_b_out", b_out), ("_b_pre", b_pre)):
        con.register(name, tbl)
    prov_args = [prov.capture_sha256, prov.source, prov.method]
    counts: dict[str, Any] = {}
    try:
        n0 = con.execute("SELECT count(*) FROM btc_blocks").fetchone()[0]
        con.execute(
            "INSERT INTO btc_blocks SELECT b.*, ?, ?, ? FROM (SELECT * FROM _b_blocks "
            "QUALIFY row_number() OVER (PARTITION BY block_hash) = 1) b "
            "WHERE NOT EXISTS (SELECT 1 FROM btc_blocks x WHERE x.block_hash = b.block_hash)",
            prov_args)
        counts["blocks"] = con.execute("SELECT count(*) FROM btc_blocks").fetchone()[0] - n0
        # a header stored alone earlier (headers file) gains its transactions now
        counts["headers_completed"] = con.execute(
            "UPDATE btc_blocks AS x SET n_tx = b.n_tx, merkle_ok = b.merkle_ok, "
            "witness_ok = b.witness_ok, height = coalesce(x.height, b.height) "
            "FROM _b_blocks b WHERE x.block_hash = b.block_hash AND x.n_tx IS NULL "
            "AND b.n_tx IS NOT NULL").fetchone()[0]

        base = _next_id(con, "btc_tx", "tx_id")
        con.execute("DROP TABLE IF EXISTS _new_tx")
        con.execute(
            "CREATE TEMP TABLE _new_tx AS SELECT seq, txid, "
            f"{base} + row_number() OVER (ORDER BY seq) - 1 AS tx_id FROM ("
            "  SELECT seq, txid FROM _b_tx t"
            "  WHERE NOT EXISTS (SELECT 1 FROM btc_tx x WHERE x.txid = t.txid)"
            "  QUALIFY row_number() OVER (PARTITION BY txid ORDER BY seq) = 1)")
        counts["txs"] = con.execute("SELECT count(*) FROM _new_tx").fetchone()[0]
        counts["txs_already_stored"] = len(b_tx) - counts["txs"]

        abase = _next_id(con, "btc_address", "address_id")
        n0 = con.execute("SELECT count(*) FROM btc_address").fetchone()[0]
        con.execute(
            "INSERT INTO btc_address "
            f"SELECT {abase} + row_number() OVER (ORDER BY first, address) - 1, address, st FROM ("
            "  SELECT address, any_value(script_type) AS st, min(seq) AS first FROM ("
            "    SELECT address, script_type, seq FROM _b_out"
            "    UNION ALL SELECT address, script_type, seq FROM _b_in"
            "    UNION ALL SELECT address, script_type, -1 FROM _b_pre)"
            "  WHERE address IS NOT NULL GROUP BY address) a "
            "WHERE NOT EXISTS (SELECT 1 FROM btc_address x WHERE x.address = a.address)")
        counts["addresses"] = con.execute("SELECT count(*) FROM btc_address").fetchone()[0] - n0

        con.execute(
            "INSERT INTO btc_tx SELECT n.tx_id, t.txid, t.wtxid, t.block_hash, t.height, "
            "t.block_time, t.position, t.version, t.locktime, t.size, t.weight, t.n_in, "
            "t.n_out, t.is_coinbase, t.segwit, t.bip69, t.locator, ?, ?, ? "
            "FROM _b_tx t JOIN _new_tx n ON n.seq = t.seq ORDER BY n.tx_id", prov_args)
        con.execute(
            "INSERT INTO btc_txout SELECT n.tx_id, o.n, o.value, o.script_type, a.address_id, "
            "o.script_hex FROM _b_out o JOIN _new_tx n ON n.seq = o.seq "
            "LEFT JOIN btc_address a ON a.address = o.address ORDER BY n.tx_id, o.n")

        n0 = con.execute("SELECT count(*) FROM btc_prevouts").fetchone()[0]
        con.execute(
            "INSERT INTO btc_prevouts SELECT p.prev_txid, p.vout, p.value, p.script_type, "
            "a.address_id, p.height, p.coinbase, ?, ? FROM _b_pre p "
            "LEFT JOIN btc_address a ON a.address = p.address "
            "WHERE NOT EXISTS (SELECT 1 FROM btc_prevouts x "
            "  WHERE x.prev_txid = p.prev_txid AND x.vout = p.vout)", prov_args[:2])
        counts["prevouts"] = con.execute("SELECT count(*) FROM btc_prevouts").fetchone()[0] - n0

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
        counts["inputs_resolved_later"] = _resolve_pending(con)
        fill_heights(con)
    finally:
        for name in ("_b_blocks", "_b_tx", "_b_in", "_b_out", "_b_pre"):
            con.unregister(name)
        con.execute("DROP TABLE IF EXISTS _new_tx")
    counts["script_types"] = dict(sorted(batch.script_types.items()))
    return counts


def _resolve_pending(con: duckdb.DuckDBPyConnection) -> int:
    """Fill inputs stored before the output they spend (or its UTXO entry) arrived."""
    pending = con.execute(
        "SELECT count(*) FROM btc_txin WHERE value IS NULL AND prev_vout <> 4294967295"
    ).fetchone()[0]
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
    after = con.execute(
        "SELECT count(*) FROM btc_txin WHERE value IS NULL AND prev_vout <> 4294967295"
    ).fetchone()[0]
    return int(pending - after)


def fill_heights(con: duckdb.DuckDBPyConnection) -> int:
    """Give heights to blocks that link (by prev_hash) to a block of known height.

    Mainnet genesis is height 0; so is any block whose prev_hash is all zeros (the
    first block of a private or simulated chain). Returns the number of blocks filled.
    """
    rows = con.execute("SELECT block_hash, prev_hash, height FROM btc_blocks").fetchall()
    if not rows or all(r[2] is not None for r in rows):
        return 0
    height = {h: ht for h, _, ht in rows if ht is not None}
    height.setdefault(GENESIS_HASH, 0)
    children: dict[str, list[str]] = {}
    for h, prev, ht in rows:
        if ht is None and prev == "00" * 32:
            height[h] = 0
        children.setdefault(prev, []).append(h)
    filled: list[tuple[str, int]] = []
    stack = [h for h in height]
    while stack:
        h = stack.pop()
        for c in children.get(h, ()):
            if c not in height:
                height[c] = height[h] + 1
                filled.append((c, height[c]))
                stack.append(c)
    missing = {h for h, _, ht in rows if ht is None}
    updates = [(h, ht) for h, ht in height.items() if h in missing]
    if updates:
        import pyarrow as pa

        upd = pa.table({"block_hash": [u[0] for u in updates],  # noqa: F841 - used by SQL
                        "height": pa.array([u[1] for u in updates], pa.int32())})
        con.execute("UPDATE btc_blocks AS b SET height = u.height FROM upd u "
                    "WHERE b.block_hash = u.block_hash")
        con.execute("UPDATE btc_tx AS t SET height = b.height FROM btc_blocks b "
                    "WHERE t.block_hash = b.block_hash AND t.height IS NULL "
                    "AND b.height IS NOT NULL")
    return len(updates)
