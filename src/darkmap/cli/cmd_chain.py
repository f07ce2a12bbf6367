"""`darkmap chain ...`, `darkmap tags ...`, `darkmap trace`, `darkmap wallet show`,
`darkmap eval chain`: Bitcoin loading, clustering, attribution and tracing.

Each command imports the library it uses when it runs (#21): the chain store, the
clustering and the tracer load numpy, scipy and DuckDB, which ``--help`` does not need.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from darkmap.cli.cmd_evaluate import eval_group
from darkmap.cli.common import (
    DarkmapError,
    cell,
    emit_json,
    init_option,
    main,
    open_ws,
    open_ws_to_write,
    outside_workspace,
    say,
    say_chain_doubts,
    say_stale_chain,
    short,
    workspace_option,
)

__all__: list[str] = []


def _btc(sat: int | float | None) -> str:
    return "-" if sat is None else f"{sat / 1e8:,.8f} BTC"


@main.group("chain")
def chain_group() -> None:
    """Bitcoin data: load blocks and transactions, cluster addresses, explain merges.

    Example: darkmap chain load -w case-42 blk00000.dat
    """


@chain_group.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@workspace_option
@init_option
@click.option("--json", "as_json", is_flag=True, help="Print per-file results as JSON.")
def chain_load(paths: tuple[Path, ...], workspace: Path | None, init: bool,
               as_json: bool) -> None:
    """Load blk*.dat files, raw blocks, tx hex, getblock/Esplora JSON, UTXO files.

    The same as `darkmap ingest --importer bitcoin`, reporting chain counts per file.
    Every txid and merkle root is recomputed and checked; bad units are quarantined. A
    file that is not chain data (or a folder without any) is refused, nothing loaded.

    Example: darkmap chain load -w case-42 ../shared/data/bitcoin
    """
    from darkmap.collect.ingest import check_chain_paths, load_files  # noqa: PLC0415
    from darkmap.store.chain import chain_doubts, stale_chain  # noqa: PLC0415

    check_chain_paths(paths)  # a file that is not chain data: refused, nothing stored
    ws = open_ws_to_write(workspace, init)
    try:
        results = load_files(ws, list(paths), checked=True)
        stale = stale_chain(ws.con)
        doubts = chain_doubts(ws.con)
    finally:
        ws.close()
    if as_json:
        emit_json({"files": [dataclasses.asdict(r) for r in results],
                   "stale_chain": dataclasses.asdict(stale),
                   "chain_doubts": dataclasses.asdict(doubts)})
        return
    for r in results:
        state = "already loaded" if r.already else (r.error or r.fmt)
        say(f"{cell(Path(r.source).name, 48)} {short(state, 200):12s} units {r.read:6d} "
            f"stored {r.stored:6d} quarantined {r.quarantined:4d} "
            f"txs {r.counts.get('txs', 0):7d}")
        for reason in r.reasons:
            say(f"    quarantined: {short(reason, 400)}")
    say_stale_chain(stale)
    say_chain_doubts(doubts)


@chain_group.command("cluster")
@workspace_option
@click.option("--heuristic", "-H", "heuristics", multiple=True,
              help="Heuristic to use (repeatable): multi_input, change_one_time, "
                   "change_address_type, change_round_payment. Default: multi_input.")
@click.option("--all-heuristics", is_flag=True, help="Use every heuristic.")
@click.option("--without", "undo", default=None,
              help="Re-cluster with the current heuristics minus this one.")
@click.option("--method", type=click.Choice(["scipy", "numpy"]), default="scipy",
              help="Union-find implementation (embedded engine).")
@click.option("--engine", type=click.Choice(["embedded", "spark"]), default="embedded",
              help="embedded (default: numpy/scipy in this process) or spark (same result).")
@click.option("--master", default="local[2]", show_default=True,
              help="Spark master URL with --engine spark (local[N], spark://..., k8s://...).")
@click.option("--json", "as_json", is_flag=True)
def chain_cluster(workspace: Path | None, heuristics: tuple[str, ...], all_heuristics: bool,
                  undo: str | None, method: str, engine: str, master: str,
                  as_json: bool) -> None:
    """Cluster addresses into wallets; every merge is recorded with its reason.

    \b
    Example: darkmap chain cluster -H multi_input -H change_one_time
    Example: darkmap chain cluster --engine spark --master spark://head:7077
    """
    from darkmap.api import cluster_addresses  # noqa: PLC0415
    from darkmap.chain.cluster import (  # noqa: PLC0415
        DEFAULT_HEURISTICS,
        HEURISTICS,
        undo_heuristic,
    )
    from darkmap.chain.tags import sync_evidence_tags  # noqa: PLC0415

    ws = open_ws(workspace)
    try:
        if undo:
            if engine != "embedded":
                raise click.UsageError("--without runs on the embedded engine only")
            summary = undo_heuristic(ws, undo, method)
            summary["evidence_tags"] = sync_evidence_tags(ws)
        else:
            chosen = HEURISTICS if all_heuristics else (heuristics or DEFAULT_HEURISTICS)
            summary = cluster_addresses(ws, tuple(chosen), method, engine, master)
    finally:
        ws.close()
    if as_json:
        emit_json(summary)
        return
    for k, v in summary.items():
        say(f"{k:26s} {v}")


@chain_group.command("export-etl")
@click.argument("out_dir", type=click.Path(path_type=Path))
@workspace_option
def chain_export_etl(out_dir: Path, workspace: Path | None) -> None:
    """Write the chain as blockchain-etl Parquet (blocks.parquet, transactions.parquet).

    Example: darkmap chain export-etl -w case-42 etl/
    """
    from darkmap.api import export_chain_etl  # noqa: PLC0415

    outside_workspace(out_dir, workspace)
    ws = open_ws(workspace, read_only=True)
    try:
        counts = export_chain_etl(ws, out_dir)
    finally:
        ws.close()
    say(f"wrote {counts['blocks']} blocks and {counts['transactions']} transactions "
        f"to {out_dir}")


@chain_group.command("import-etl")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@workspace_option
@init_option
@click.option("--json", "as_json", is_flag=True)
def chain_import_etl(path: Path, workspace: Path | None, init: bool, as_json: bool) -> None:
    """Load blockchain-etl Parquet (a file or a folder: public datasets or export-etl's).

    Example: darkmap chain import-etl -w case-42 etl/
    """
    from darkmap.api import import_chain_etl  # noqa: PLC0415

    ws = open_ws_to_write(workspace, init)
    try:
        res = import_chain_etl(ws, path)
    finally:
        ws.close()
    if as_json:
        emit_json(res)
        return
    for k, v in res.items():
        say(f"{k:20s} {v}")


@chain_group.command("explain")
@click.argument("address")
@click.argument("other", required=False)
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def chain_explain(address: str, other: str | None, workspace: Path | None,
                  as_json: bool) -> None:
    """Why ADDRESS is in its cluster (or how it is linked to OTHER): merges with reasons.

    Example: darkmap chain explain 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa
    """
    from darkmap.chain.cluster import explain_addresses  # noqa: PLC0415

    ws = open_ws(workspace, read_only=True)
    try:
        out = explain_addresses(ws, address, other)
    finally:
        ws.close()
    if as_json:
        emit_json(out)
        return
    rows = out.get("path") if other else out.get("merges")
    if other and rows is None:
        say("not in the same cluster")
        return
    if not other and not out.get("n_merges"):
        say(f"{short(address, 100)} is alone in its cluster (cluster:{out['cluster_id']}): no "
            "merge joined it to another address")
        return
    for m in rows or []:
        say(f"{m['heuristic']:22s} {m['txid']}  {m['address_a']} + {m['address_b']}")


@main.group("tags")
def tags_group() -> None:
    """Attribution tags (GraphSense TagPack YAML).

    Example: darkmap tags import -w case-42 exchanges.yaml
    """


@tags_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@workspace_option
@init_option
@click.option("--json", "as_json", is_flag=True)
def tags_import(files: tuple[Path, ...], workspace: Path | None, init: bool,
                as_json: bool) -> None:
    """Import TagPack YAML files (invalid tags are reported, not imported; a file that
    is not a TagPack refuses them all).

    Example: darkmap tags import tags/exchanges.yaml
    """
    from darkmap.chain.tags import sync_evidence_tags  # noqa: PLC0415
    from darkmap.collect.ingest import check_tagpack_paths, import_tagpacks  # noqa: PLC0415

    check_tagpack_paths(files)  # a file that is not a TagPack: refused, nothing stored
    ws = open_ws_to_write(workspace, init)
    try:
        out = import_tagpacks(ws, files, checked=True)
        evidence = sync_evidence_tags(ws)
    finally:
        ws.close()
    if as_json:
        emit_json({"files": out, "evidence_tags": evidence})
        return
    for r in out:
        say(f"{short(r['file'], 400)}: {r['tags']} tags, {len(r['problems'])} rejected")
        for p in r["problems"][:20]:
            say(f"    {short(p['locator'])} [{short(p['field'])}]: {short(p['reason'], 400)}")
    say(f"evidence tags (addresses published on markets): {evidence}")


@tags_group.command("export")
@click.argument("file", type=click.Path(path_type=Path))
@workspace_option
@click.option("--origin", type=click.Choice(["tagpack", "evidence"]), default=None)
def tags_export(file: Path, workspace: Path | None, origin: str | None) -> None:
    """Write the workspace's tags as a TagPack YAML file.

    Example: darkmap tags export case-42-tags.yaml --origin evidence
    """
    from darkmap.chain.tags import export_tagpack  # noqa: PLC0415

    outside_workspace(file, workspace)
    ws = open_ws(workspace, read_only=True)
    try:
        out = export_tagpack(ws, file, origin=origin)
    finally:
        ws.close()
    say(f"{file}: {out['tags']} tags")


@main.command("trace")
@click.argument("target")
@click.option("--forward/--backward", default=True, help="Follow value out of / into TARGET.")
@click.option("--hops", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--method", type=click.Choice(["poison", "haircut", "fifo"]), default="poison",
              show_default=True)
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def trace_cmd(target: str, forward: bool, hops: int, method: str, workspace: Path | None,
              as_json: bool) -> None:
    """Follow the money from an ADDRESS or CLUSTER (cluster:N) to tagged services.

    Example: darkmap trace cluster:1234 --forward --hops 8 --method haircut
    """
    from darkmap.chain.trace import trace  # noqa: PLC0415

    ws = open_ws(workspace, read_only=True)
    try:
        out = trace(ws, target, "forward" if forward else "backward", hops, method)
    finally:
        ws.close()
    if as_json:
        emit_json(out)
        return
    say(f"{out['direction']} trace from {out['start']} ({out['method']}, {hops} hops): "
        f"{out['transactions_visited']} transactions")
    for note in out["start_notes"]:
        say(f"  {note}")
    if out["stale_transactions_left_out"]:
        say(f"  left out: {out['stale_transactions_left_out']} transaction(s) of the start "
            "found only in stale blocks, off the best chain (`darkmap status` names the "
            "blocks)")
    _say_standing(out["standing"], "of the start and the trail")
    backward = out["direction"] == "backward"
    if out["method"] == "poison" and out["hits"] and not backward:
        say("  poison: amounts are upper bounds (a spend with any traced input counts all "
            "its outputs); the confidence reads the haircut share")
    elif out["method"] == "poison" and out["hits"]:
        say("  poison: amounts are upper bounds (every input of a transaction the money "
            "passed counts, each at most what was traced back into it), none more than the "
            f"{_btc(out['source_received_sat'])} the start received; the confidence reads "
            "the haircut share")
    if out["uncertain_transactions"]:
        say(f"  uncertain: {len(out['uncertain_transactions'])} transaction(s) of the trail "
            "spend coins of unknown value (earlier outputs not loaded); amounts are what the "
            "known values prove (never more than the truth), 'up to' the most they can be:")
        for u in out["uncertain_transactions"][:10]:
            say(f"    {short(u['reason'], 400)}")
    for svc, amount in out["by_service_sat"].items():
        most = out["by_service_max_sat"].get(svc, amount)
        upto = f" (up to {_btc(most)}: uncertain)" if most != amount else ""
        say(f"  {cell(svc, 32)} {_btc(amount)}{upto}")
    exchanges = out["funding_sources"] if backward else out["cashouts"]
    if exchanges:
        say("funding sources (exchange the money came from, address, amount, txid, time; "
            "how sure and why):" if backward else
            "cash-out points (exchange, address, amount, txid, time; how sure and why):")
        for c in exchanges:
            upto = (f" (up to {_btc(c['amount_max_sat'])}: uncertain)" if c["uncertain"]
                    else "")
            say(f"  {cell(c['service'], 20)} {c['address']}  {_btc(c['amount_sat'])}{upto}  "
                f"{c['txid']}:{c['vout']}  {c['time']}")
            say(f"      confidence {c['confidence_level']} ({c['confidence_score']}/100): "
                + "; ".join(short(r, 200) for r in c["confidence_reasons"]))
    for p in out["peel_chains"]:
        say(f"peel chain of {p['length']} steps from {p['start_txid']}, "
            f"peeled {_btc(p['peeled_sat'])}")
    if exchanges:
        say("confidence: a heuristic score (tag confidence, how the tag reaches the address, "
            "value share, CoinJoins, hops, the source cluster), not a probability: "
            "docs/chain.md")


@main.group("wallet")
def wallet_group() -> None:
    """Clusters seen as wallets.

    Example: darkmap wallet show -w case-42 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa
    """


@wallet_group.command("show")
@click.argument("ident")
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def wallet_show(ident: str, workspace: Path | None, as_json: bool) -> None:
    """Summarise a cluster: addresses, flows, counterparties, tags, accounts, merge reasons.

    Example: darkmap wallet show 1234   (or an address in it)
    """
    from darkmap.chain.wallet import wallet_summary  # noqa: PLC0415

    ws = open_ws(workspace, read_only=True)
    try:
        out = wallet_summary(ws, ident)
    finally:
        ws.close()
    if as_json:
        emit_json(out)
        return
    cid = out["cluster_id"]
    ev = out["evidence"]
    say(f"cluster:{cid}: {out['n_addresses']} addresses, "
        f"{out['transactions']} transactions, received {_btc(out['received_sat'])}, "
        f"{_sent(out['sent_sat'], out['sent_unknown_inputs'])}")
    cov = out["coverage"]
    if out["balance_sat"] is None:
        say(f"  balance: unknown: {out['balance_unknown_reason']}")
    else:
        say(f"  balance {_btc(out['balance_sat'])} within the loaded blocks only (a spend in "
            "a block not loaded is not seen)")
    if out["unspendable_sat"]:
        say(f"  not counted in the balance: {_btc(out['unspendable_sat'])} in the genesis "
            "coinbase, which no one can spend")
    say(f"  loaded: {cov['blocks']} blocks (heights {cov['heights'] or '-'})"
        + (f" and {cov['transactions_without_block']} transaction(s) without a block"
           if cov["transactions_without_block"] else "")
        + "; received and sent count only these")
    if out["stale_transactions"]:
        only = " (the only ones touching it)" if not out["transactions"] else ""
        say(f"  left out: {out['stale_transactions']} transaction(s) found only in stale "
            f"blocks{only}, off the best chain (`darkmap status` names the blocks)")
    _say_standing(out["standing"], "of the wallet")
    say(f"  how sure the cluster is: {ev['level']} (clustered with "
        f"{', '.join(ev['heuristics_run']) or '-'})")
    for r in ev["reasons"]:
        say(f"    {short(r, 300)}")
    for h, n in out["merge_reasons"].items():
        say(f"  merged by {h}: {n['edges']} edges in {n['transactions']} transactions")
    for t in out["tags"]:
        conf = f", confidence {short(t['confidence'], 40)}" if t["confidence"] else ""
        say(f"  tag: {short(t['label'])} [{short(t['category'])}] {t['address']} "
            f"({t['origin']}{conf})")
    for a in out["linked_accounts"]:
        say(f"  linked account: {short(a)}")
    for p in out["linked_personas"]:
        say(f"  linked persona: {p['persona_id']} {short(p['label'])}")
    for m in out["by_month"]:
        out_ = "unknown" if out["sent_unknown_inputs"] and not m["sent_sat"] else _btc(
            m["sent_sat"])
        say(f"  {m['month'] or 'no block time'}: in {_btc(m['received_sat'])} out {out_}")
    _counterparties(out["paid_to"], "sent_sat", "paid")
    _counterparties(out["paid_by"], "received_sat", "paid by")
    if out["paid_to"] or out["paid_by"] or out["counterparties_left_out"]:
        left = out["counterparties_left_out"]
        why = {"coinjoin": "CoinJoin(s)", "input_value_unknown": "with an input of unknown value"}
        say(f"  counterparties: {out['counterparties_rule']}"
            + (" (left out: " + ", ".join(f"{n} transaction(s) {why.get(k, k)}"
                                           for k, n in left.items()) + ")" if left else ""))
    say(f"next: {out['trace_command']}")


def _say_standing(st: Any, whose: str) -> None:
    """Notes on transactions whose figures are in doubt (:class:`TxStanding`): set aside
    for a coin spent twice, kept over a conflicting spender, in blocks whose proof of work
    fails, in no loaded block; nothing when there are none."""
    if st["set_aside"]:
        say(f"  left out: {st['set_aside']} transaction(s) {whose} set aside: they spend a "
            "coin another transaction spends, or rest on one that does (`darkmap status` "
            "names the conflicts)")
    if st["kept_in_conflict"]:
        say(f"  conflict: {st['kept_in_conflict']} transaction(s) {whose} spend a coin "
            "another loaded transaction spends too; kept as the better placed (a block with "
            "valid proof of work), the other set aside (`darkmap status`)")
    if st["pow_failed"]:
        say(f"  unproven: {st['pow_failed']} transaction(s) {whose} are only in blocks whose "
            "proof of work fails (not mined as their header claims)")
    if st["without_block"]:
        say(f"  unproven: {st['without_block']} transaction(s) {whose} are in no loaded "
            "block (raw transactions, JSON): nothing shows they were mined")


def _counterparties(rows: list[Any], amount: str, heading: str) -> None:
    """The first counterparties of one direction (``paid``, ``paid by``)."""
    if rows:
        say(f"  {heading} (counterparty cluster, the wallet's share, an address of it, "
            "its tags):")
    for c in rows[:10]:
        tags = f"  tagged {short(', '.join(c['tags']), 200)}" if c["tags"] else ""
        say(f"    cluster:{c['cluster_id']} {_btc(c[amount])}  "
            f"{c['example_address'] or '-'}{tags}")


def _sent(sent_sat: int, unknown: int) -> str:
    """What a wallet sent: unknown for inputs whose spent output is not loaded."""
    if not unknown:
        return f"sent {_btc(sent_sat)}"
    known = f" (at least {_btc(sent_sat)} from the others)" if sent_sat else ""
    return (f"sent: unknown for {unknown} input(s) whose earlier outputs are not "
            f"loaded{known}")


@eval_group.command("chain")
@click.option("--truth", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--hops", type=click.IntRange(1, 1000), default=10, show_default=True)
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def eval_chain_cmd(truth: Path, hops: int, workspace: Path | None, as_json: bool) -> None:
    """Score clustering and cash-out tracing against a simulator truth.json.

    Example: darkmap eval chain --truth world/truth.json
    """
    from darkmap.evaluate.clustering import eval_chain  # noqa: PLC0415
    from darkmap.evaluate.linking import load_truth  # noqa: PLC0415
    from darkmap.store.workspace import table_has_rows  # noqa: PLC0415

    data = load_truth(truth)
    ws = open_ws(workspace, read_only=True)
    try:
        clustered = table_has_rows(ws.con, "btc_cluster_runs")
        out = eval_chain(ws, data, hops=hops)
    finally:
        ws.close()
    if out["addresses_in_truth"] and not out["addresses_on_chain"]:
        raise DarkmapError(
            f"{truth}: none of the truth's {out['addresses_in_truth']:,} addresses is in "
            "this workspace's chain data (wrong truth file or workspace, or `darkmap chain "
            "load` not run): a score over no addresses would be meaningless")
    if not out["addresses_in_truth"]:
        raise DarkmapError(f"{truth}: the truth names no address (no \"chain\" section with "
                           "\"address_owner\"): give the truth.json of a simulated world")
    if not clustered:
        raise DarkmapError("no clustering in this workspace: run `darkmap chain cluster` "
                           "first (each address would count as a wallet of its own)")
    if as_json:
        emit_json(out)
        return
    c = out["clustering"]
    say(f"clustering: precision {c.get('pairwise_precision')} recall "
        f"{c.get('pairwise_recall')} purity {c.get('purity')}")
    co = out["cashouts"]
    say(f"cash-outs traced to deposit: {co.get('traced_to_deposit', 0)}/{co['total']}, "
        f"to the right exchange: {co.get('traced_to_exchange', 0)}/{co['total']}")
    cf = co.get("confidence")
    if cf and cf["hits"]:
        levels = ", ".join(f"{k} {v['correct']}/{v['hits']}" for k, v in cf["by_level"].items())
        say(f"cash-out confidence: {cf['correct']} of {cf['hits']} cash-out points correct; "
            f"AUC {cf['auc'] if cf['auc'] is not None else '- (all alike)'}; "
            f"correct per level: {levels}")
