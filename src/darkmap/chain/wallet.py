"""Summarise a cluster ("wallet"): addresses, flows over time, counterparties, tags,
linked market accounts and personas, why its addresses were merged and how sure that
is (:func:`darkmap.chain.confidence.evidence_from_counts`).

A read: it answers from the stored clusters and tags and never changes the workspace
(the evidence tags are kept current by the writes that change them: the money stage,
``darkmap chain cluster`` and ``darkmap tags import``).
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from darkmap.chain.cluster import explain, last_heuristics, no_cluster
from darkmap.chain.confidence import ClusterEvidence, evidence_from_counts
from darkmap.chain.graph import group_roots
from darkmap.errors import NotFoundError
from darkmap.model.values import btc_address_key
from darkmap.store import chain as store
from darkmap.store.chain import (
    ChainCoverage,
    LinkedPersona,
    MergeCount,
    MergeEdge,
    MonthFlow,
    PaidBy,
    PaidTo,
    TxStanding,
    WalletAddress,
    WalletTag,
)
from darkmap.store.workspace import Workspace

__all__ = ["COUNTERPARTIES_RULE", "WalletSummary", "resolve_cluster", "wallet_summary"]


class WalletSummary(TypedDict):
    """Everything known about one cluster (``darkmap wallet show --json`` prints it)."""

    cluster_id: int
    n_addresses: int
    received_sat: int
    sent_sat: int  # of the inputs whose value is known
    sent_unknown_inputs: int  # inputs whose spent output is not loaded: sent is unknown
    # spends of coins of known value (UTXO file, prevouts) whose paying transaction is not
    # loaded: received_sat misses them
    spends_received_unloaded: int
    spends_received_unloaded_sat: int
    unspendable_sat: int  # received in outputs no one can spend (the genesis coinbase)
    balance_sat: int | None  # None unless received is complete for every coin spent
    balance_unknown_reason: str | None
    covers: dict[str, str]  # what received_sat, sent_sat and balance_sat cover
    coverage: ChainCoverage  # the loaded blocks
    transactions: int
    stale_transactions: int
    # its transactions set aside (a coin spent twice), kept over a conflicting spender,
    # in blocks whose proof of work fails, in no loaded block
    standing: TxStanding
    addresses: list[WalletAddress]
    by_month: list[MonthFlow]
    paid_to: list[PaidTo]
    paid_by: list[PaidBy]
    counterparties_rule: str  # how paid_to and paid_by share a transaction out
    counterparties_left_out: dict[str, int]  # transactions left out, by reason
    tags: list[WalletTag]
    linked_accounts: list[str]
    linked_personas: list[LinkedPersona]
    merge_reasons: dict[str, MergeCount]
    merges: list[MergeEdge]
    n_merges: int
    evidence: ClusterEvidence
    trace_command: str


COUNTERPARTIES_RULE = (
    "each counterparty is credited the wallet's share of a transaction, never the whole: "
    "paid to, an output to another wallet times the wallet's part of the input value; "
    "paid by, another wallet's input times the wallet's part of the output value; "
    "CoinJoins and transactions with an input of unknown value are left out")
"""How ``paid_to`` and ``paid_by`` count (:func:`darkmap.store.chain.wallet_facts`)."""

_MAX_ID_DIGITS = 18
"""Digits a cluster id may have (a BIGINT holds 18 of any value)."""


def resolve_cluster(ws: Workspace, ident: str) -> int:
    """The cluster id ``ident`` names: a cluster id, ``cluster:N`` or a clustered address.

    Raises :class:`~darkmap.errors.NotFoundError` when there is no such cluster.
    """
    t = ident.strip()
    shown = ident if len(ident) <= 80 else f"{ident[:60]}... ({len(ident)} characters)"
    if t.lower().startswith("cluster:"):
        t = t.split(":", 1)[1]
    if t.isdigit():  # any digits: a number written otherwise (², ٣, 5,000 digits) is none
        if not (t.isascii() and len(t) <= _MAX_ID_DIGITS):
            raise NotFoundError(f"{shown}: not a clustered address or cluster id")
        cid = int(t)
        if not store.cluster_exists(ws.con, cid):
            raise no_cluster(ws, cid)
        return cid
    key = btc_address_key(t)
    found = store.cluster_of_address(ws.con, key)
    if found is None and store.address_id(ws.con, key) is not None:
        # loaded after the last clustering (or none ran): say what to run (found by an
        # audit: the refusal read as "no such address")
        raise NotFoundError(f"{shown}: in the loaded chain data but in no wallet yet (loaded "
                            "after the last clustering): run `darkmap chain cluster`; "
                            "`darkmap trace` follows it already")
    if found is None:
        raise NotFoundError(f"{shown}: not a clustered address or cluster id")
    return found


def _evidence(ws: Workspace, cid: int, n_addresses: int,
              coinjoins_spent_in: dict[str, int]) -> ClusterEvidence:
    """How cluster ``cid`` was formed: its merges counted by the database and its
    multi-input groups from those merges alone, as a trace reads them (an exchange's
    cluster may hold millions of merges)."""
    by_heur, merged = store.cluster_merge_counts(ws.con, [cid])
    _, roots = group_roots(*store.cluster_multi_input_edges(ws.con, [cid]))
    sizes = np.unique(roots, return_counts=True)[1].tolist()
    return evidence_from_counts(n_addresses, by_heur, merged, sizes, last_heuristics(ws),
                                coinjoins_spent_in)


def _balance(f: store.WalletFacts) -> tuple[int | None, str | None]:
    """(balance, None) when it is known: every coin the wallet spent was received in a
    loaded transaction and every input's value is known; else (None, why). Outputs no
    one can spend (the genesis coinbase) are not a balance."""
    why = []
    if f.unknown_inputs:
        why.append(f"sent is unknown for {f.unknown_inputs} input(s) whose earlier outputs "
                   "are not loaded")
    if f.unloaded_spends:
        why.append(f"it spends {f.unloaded_spends} coin(s) ({f.unloaded_spends_sat:,} sat) "
                   "received in blocks not loaded (values from a UTXO file or prevouts): "
                   "received is incomplete")
    balance = f.received_sat - f.sent_sat - f.unspendable_sat
    if not why and balance < 0:  # never expected: say so rather than print it
        why.append("the loaded figures disagree (sent exceeds received)")
    return (None, "; ".join(why)) if why else (balance, None)


def _covers(coverage: ChainCoverage) -> dict[str, str]:
    """What a wallet's figures cover, for the reader."""
    blocks = (f"the {coverage['blocks']} loaded blocks (heights {coverage['heights'] or '-'})"
              + (f" and {coverage['transactions_without_block']} transaction(s) without a "
                 "block" if coverage["transactions_without_block"] else ""))
    return {
        "received": f"outputs paying the wallet in {blocks}",
        "sent": f"the wallet's spends in {blocks}, valued where the spent output is loaded "
                "or given by a UTXO file or prevouts",
        "balance": f"received minus sent within {blocks}, when every coin spent was "
                   "received there; spends in blocks not loaded are not seen, so it is no "
                   "balance today",
    }


def wallet_summary(ws: Workspace, ident: str, limit: int = 50) -> WalletSummary:
    """Everything known about the cluster ``ident`` (cluster id, ``cluster:N`` or address)."""
    cid = resolve_cluster(ws, ident)
    f = store.wallet_facts(ws.con, cid, limit)
    merges = explain(ws, cid, None, limit)
    evidence = _evidence(ws, cid, f.n_addresses, f.coinjoins_spent_in)
    coverage = store.chain_coverage(ws.con)
    balance, why = _balance(f)
    return {
        "cluster_id": cid, "n_addresses": f.n_addresses,
        "received_sat": f.received_sat, "sent_sat": f.sent_sat,
        "sent_unknown_inputs": f.unknown_inputs,
        "spends_received_unloaded": f.unloaded_spends,
        "spends_received_unloaded_sat": f.unloaded_spends_sat,
        "unspendable_sat": f.unspendable_sat,
        "balance_sat": balance, "balance_unknown_reason": why,
        "covers": _covers(coverage),
        "coverage": coverage,
        "transactions": f.transactions,
        "stale_transactions": f.stale_transactions,
        "standing": f.standing or store.tx_standing(ws.con, []),
        "addresses": f.addresses, "by_month": f.by_month,
        "paid_to": f.paid_to, "paid_by": f.paid_by,
        "counterparties_rule": COUNTERPARTIES_RULE,
        "counterparties_left_out": f.counterparty_txs_left_out, "tags": f.tags,
        "linked_accounts": f.linked_accounts, "linked_personas": f.linked_personas,
        "merge_reasons": f.merge_reasons,
        "merges": merges.get("merges", []), "n_merges": merges.get("n_merges", 0),
        "evidence": evidence, "trace_command": f"darkmap trace cluster:{cid} --forward",
    }
