"""Bitcoin transfers between wallets, read from the chain tables for the exporters.

A *wallet* here is a cluster of the latest clustering run (``btc_clusters``), or a lone
address (its own id: cluster ids are the smallest address id of the cluster, so the two
never collide). A *transfer* is one transaction paying from one wallet to another: for
each pair (wallet that funded inputs, other wallet that received outputs) of one
transaction, the value of the outputs to the receiving wallet. When the inputs came from
several wallets (a CoinJoin, a payjoin) each funding wallet is given the outputs'
value pro rata to its share of the input value (``payer_share`` < 1). Change back to
the paying wallet is not a transfer. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import duckdb

from darkmap.store.workspace import table_has_rows

__all__ = ["ChainWallet", "Transfer", "chain_wallets", "personas_of_wallet", "transfers_touching",
           "wallets_of"]


class Transfer(NamedTuple):
    """Value one wallet paid another in one transaction (satoshis), with provenance."""

    txid: str
    block_time: datetime | None
    height: int | None
    block_hash: str | None
    payer: int
    beneficiary: int
    amount_sat: int
    output_sat: int
    payer_share: float | None
    coinjoin: str | None
    capture_sha256: str
    source: str
    method: str


class ChainWallet(NamedTuple):
    """A wallet (cluster or lone address) a transfer touches: its size, some addresses,
    its tags (``label (category)``, with the tagpack or evidence origin) and why its
    addresses were merged (heuristic -> merge edges)."""

    wallet_id: int
    n_addresses: int
    addresses: list[str]
    tags: list[str]
    categories: list[str]
    tag_accounts: list[str]
    merged_by: dict[str, int]


def _has_chain(con: duckdb.DuckDBPyConnection) -> bool:
    return table_has_rows(con, "btc_tx")


def wallets_of(con: duckdb.DuckDBPyConnection, addresses: Sequence[str]) -> dict[str, int]:
    """The wallet (cluster id, else address id) of each of ``addresses`` the chain holds."""
    if not addresses or not _has_chain(con):
        return {}
    rows = con.execute(
        "SELECT a.address, coalesce(c.cluster_id, a.address_id) FROM btc_address a "
        "LEFT JOIN btc_clusters c USING (address_id) "
        "WHERE a.address IN (SELECT unnest(?))", [sorted(set(addresses))]).fetchall()
    return {str(a): int(w) for a, w in rows}


def personas_of_wallet(con: duckdb.DuckDBPyConnection, wallet: int) -> list[tuple[str, str]]:
    """(persona, address) of the personas whose accounts published an address of the
    wallet (``wallet``: a cluster id, or a lone address's id), each address its accounts
    published there; none when the workspace holds no personas or chain."""
    if not _has_chain(con) or not table_has_rows(con, "persona_members"):
        return []
    return [(str(p), str(a)) for p, a in con.execute(
        "SELECT DISTINCT pm.persona_id, i.value FROM identifiers i "
        "JOIN persona_members pm USING (account_id) "
        "JOIN btc_address a ON a.address = i.value "
        "LEFT JOIN btc_clusters c USING (address_id) "
        "WHERE i.kind = 'btc_address' AND coalesce(c.cluster_id, a.address_id) = ? "
        "ORDER BY 1, 2", [wallet]).fetchall()]


_TRANSFERS = """
WITH sel AS (SELECT unnest(?) AS w),
sel_addr AS (
    SELECT address_id FROM btc_clusters WHERE cluster_id IN (SELECT w FROM sel)
    UNION SELECT w FROM sel),
txs AS (
    SELECT DISTINCT tx_id FROM btc_txin WHERE address_id IN (SELECT address_id FROM sel_addr)
    UNION SELECT DISTINCT tx_id FROM btc_txout
    WHERE address_id IN (SELECT address_id FROM sel_addr)),
ins AS (
    SELECT i.tx_id, coalesce(c.cluster_id, i.address_id) AS w, sum(i.value) AS v,
           count(*) FILTER (WHERE i.value IS NULL) AS unknown
    FROM btc_txin i JOIN txs USING (tx_id) LEFT JOIN btc_clusters c USING (address_id)
    WHERE i.address_id IS NOT NULL GROUP BY 1, 2),
tin AS (SELECT tx_id, sum(v) AS v, sum(unknown) AS unknown, count(*) AS n FROM ins GROUP BY 1),
outs AS (
    SELECT o.tx_id, coalesce(c.cluster_id, o.address_id) AS w, sum(o.value) AS v
    FROM btc_txout o JOIN txs USING (tx_id) LEFT JOIN btc_clusters c USING (address_id)
    WHERE o.address_id IS NOT NULL GROUP BY 1, 2)
SELECT t.txid, t.block_time, t.height, t.block_hash, i.w, o.w, o.v,
       CASE WHEN tin.n = 1 THEN 1.0
            WHEN tin.unknown > 0 OR coalesce(tin.v, 0) = 0 THEN NULL
            ELSE i.v / tin.v END AS share,
       cj.kind, t.capture_sha256, t.source, t.method
FROM ins i JOIN outs o USING (tx_id) JOIN tin USING (tx_id) JOIN btc_tx t USING (tx_id)
LEFT JOIN btc_coinjoins cj USING (tx_id)
WHERE t.stale IS NOT TRUE AND t.set_aside IS NULL
  AND i.w <> o.w AND (i.w IN (SELECT w FROM sel) OR o.w IN (SELECT w FROM sel))
ORDER BY t.tx_id, i.w, o.w
"""


def transfers_touching(con: duckdb.DuckDBPyConnection,
                       wallet_ids: Sequence[int]) -> list[Transfer]:
    """Every transfer paid by or to one of ``wallet_ids``, in chain order.

    ``amount_sat`` is the output value times ``payer_share`` (the whole output value
    when one wallet funded the transaction; the output value, with ``payer_share``
    None, when several did and an input value is unknown)."""
    if not wallet_ids or not _has_chain(con):
        return []
    rows = con.execute(_TRANSFERS, [sorted(set(wallet_ids))]).fetchall()
    out = []
    for txid, bt, height, bh, payer, ben, value, share, cj, cap, src, method in rows:
        amount = int(value) if share is None else int(round(int(value) * float(share)))
        out.append(Transfer(str(txid), bt, height, bh, int(payer), int(ben), amount,
                            int(value), None if share is None else float(share), cj,
                            cap, src, method))
    return out


_WALLET_MEMBERS = (
    "WITH sel AS (SELECT unnest(?) AS w), m AS ("
    " SELECT c.cluster_id AS w, c.address_id FROM btc_clusters c "
    " WHERE c.cluster_id IN (SELECT w FROM sel) "
    " UNION SELECT w, w FROM sel WHERE w NOT IN (SELECT address_id FROM btc_clusters))")
"""Each asked wallet's addresses (``m``: wallet, address id); a wallet id that is no
cluster is the lone address of that id."""


def chain_wallets(con: duckdb.DuckDBPyConnection, wallet_ids: Sequence[int],
                  max_addresses: int = 20) -> dict[int, ChainWallet]:
    """Size, first addresses, tags and merge reasons of each of ``wallet_ids``."""
    if not wallet_ids or not _has_chain(con):
        return {}
    ids = sorted(set(wallet_ids))
    members = (_WALLET_MEMBERS + " SELECT m.w, count(*), list(a.address ORDER BY "
               "a.address_id)[1:?] FROM m JOIN btc_address a USING (address_id) GROUP BY 1")
    sizes = {int(w): (int(n), list(addrs)) for w, n, addrs in
             con.execute(members, [ids, max_addresses]).fetchall()}
    # the tags apart from the sizes: an address with several tags counted once per tag
    # in one join (a one-address wallet was exported as one of 6 or 21, "merged by the
    # clustering heuristics", its address listed six times: found by an exports audit)
    tagged = {int(w): (tags, cats, accts) for w, tags, cats, accts in con.execute(
        _WALLET_MEMBERS + " SELECT m.w, "
        " list(DISTINCT t.label || coalesce(' (' || t.category || ')', '') || ', ' || t.origin)"
        "  FILTER (WHERE t.label IS NOT NULL), "
        " list(DISTINCT lower(t.category)) FILTER (WHERE t.category IS NOT NULL), "
        " list(DISTINCT t.account_id) FILTER (WHERE t.account_id IS NOT NULL) "
        "FROM m JOIN btc_address a USING (address_id) "
        "JOIN btc_tags t ON t.address = a.address GROUP BY 1", [ids]).fetchall()}
    merges = con.execute(
        "SELECT c.cluster_id, m.heuristic, count(*) FROM btc_cluster_merges m "
        "JOIN btc_clusters c ON c.address_id = m.address_a "
        "WHERE c.cluster_id IN (SELECT unnest(?)) GROUP BY 1, 2 ORDER BY 1, 2",
        [ids]).fetchall()
    why: dict[int, dict[str, int]] = {}
    for w, h, n in merges:
        why.setdefault(int(w), {})[str(h)] = int(n)
    out: dict[int, ChainWallet] = {}
    for w, (n, addrs) in sizes.items():
        tags, cats, accts = tagged.get(w, (None, None, None))
        out[w] = ChainWallet(w, n, addrs, sorted(tags or []), sorted(cats or []),
                             sorted(accts or []), why.get(w, {}))
    return out
