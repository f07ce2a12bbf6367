"""Per-country packages: what one country's agency needs to act, as it may see it.

``build_package(ws, by, country, out)`` writes ``package.json`` (machine-readable) and
``package.html`` (for reading) into ``out``: the personas the assess stage attributes to
the country (with the jurisdiction evidence), their accounts and listings with the drug
assessment (each with the capture it came from), the operational records the acting
user may read that concern those personas, accounts or listings or that sit in that
country, the fentanyl marks, and the task force's deconfliction contacts. For each
persona, its wallets: the clusters of the Bitcoin addresses its accounts published
(addresses, tags, why the clustering merged them) and the value traced forward from
each wallet to tagged services, the exchanges among them listed as cash-out points (to
send a legal request to) with amounts, the transaction and a confidence; the crypto
addresses named in the seizure records the user may read, traced the same way forward
and back, with the personas that published an address of their wallet; and, when the
caller hands in an FtM writer (the exporter sits above this layer), ``entities.ftm.json``:
the FollowTheMoney entities of the package's personas' subgraph (stock schemata), then
its money: the wallets' traced flows to services and the seized wallets with theirs
(:mod:`darkmap.export.ftm_package`). Every
fact carries its provenance. Wallets, flows and entities come from the shared reference
data (market evidence, chain data), as the personas and listings do; only the acting
user's grants decide what operational records go in; the package is audited.

The files are written into a partial folder beside ``out`` (:mod:`darkmap.model.outputs`),
the ``package.build`` entry is appended naming each file's sha256, and only then is the
folder renamed to ``out``: a kill before the entry leaves only the partial folder.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from darkmap.assess.fx import FxTable, load_fx
from darkmap.capture.content_store import sha256_file
from darkmap.chain.trace import TraceContext, TraceHit, trace
from darkmap.chain.wallet import wallet_summary
from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.countries import check_country
from darkmap.model.display import for_display, with_lookalike_mark
from darkmap.model.outputs import atomic_folder
from darkmap.ops.access import acting
from darkmap.ops.audit import log, private_file
from darkmap.ops.records import Record, fentanyl_marks, read_records
from darkmap.store import operations as store
from darkmap.store.operations import OpsServer, Space, UserRow
from darkmap.store.transfers import personas_of_wallet, wallets_of
from darkmap.store.workspace import Workspace, table_has_rows, utcnow

__all__ = ["TRACE_HOPS", "TRACE_METHOD", "FtmWriter", "build_package", "cashout_confidence"]

FtmWriter = Callable[[Workspace, tuple[str, ...], Path, dict[str, Any]], dict[str, int]]
"""Writes the FtM entities of the given personas' subgraph of a workspace to a file, then
those of the package's money (``{"personas": ..., "seized_wallets": ...}`` as in
``package.json``: the wallets' traced flows and the seized wallets)."""
TRACE_METHOD = "haircut"
"""Taint method of the cash-out traces: each output carries the tainted share pro rata."""
TRACE_HOPS = 10
_CLUSTER = re.compile(r"cluster:[0-9]{1,18}")
"""A seizure's crypto naming a wallet of the chain data rather than an address."""


def cashout_confidence(hit: TraceHit) -> float:
    """How sure the package is that the traced value reached the service: the trace's own
    confidence score (:mod:`darkmap.chain.confidence`: the tag's confidence, how the tag
    reaches the address, the value share, CoinJoins and hops on the path, how the source
    cluster was formed) on a 0-1 scale; its level and reasons travel with the hit
    (``confidence_level``, ``confidence_reasons``). A stated heuristic, not a probability."""
    return round(hit["confidence_score"] / 100, 2)


def _reference_ws(ws: Space) -> Workspace | None:
    """The workspace holding the reference data (on the team server: its workspace)."""
    return ws.workspace if isinstance(ws, OpsServer) else ws


def _usd(fx: FxTable, hit: TraceHit) -> dict[str, Any]:
    """The hit's amount in USD at the fx table's BTC rate of its day, and the table."""
    when = datetime.fromisoformat(hit["time"].replace("Z", "+00:00")) if hit["time"] else None
    rate, note = fx.rate("BTC", when)
    return {"amount_usd": None if rate is None else round(hit["amount_btc"] * rate, 2),
            "usd_rate": fx.source + (f" ({note})" if note else "")}


def _wallet(ref: Workspace, wid: int, addresses: list[str], ctx: dict[str, TraceContext],
            fx: FxTable, backward: bool = False) -> dict[str, Any]:
    """One wallet (cluster ``wid``, holding ``addresses``): its tags, merge reasons and the
    value traced forward from it to tagged services, the exchanges among them as cash-out
    points; with ``backward``, also the tagged services whose value reached it
    (``sources``: a market, an exchange it was bought at)."""
    if "ctx" not in ctx:  # loaded once per package, when first needed
        ctx["ctx"] = TraceContext.load(ref)
    try:
        summary: dict[str, Any] = dict(wallet_summary(ref, f"cluster:{wid}"))
        target = f"cluster:{wid}"
    except NotFoundError:  # clustering has not run: the address alone
        summary, target = {"cluster_id": None, "n_addresses": 1}, addresses[0]
    flows = trace(ref, target, "forward", TRACE_HOPS, TRACE_METHOD, ctx["ctx"])
    hits = [{**h, **_usd(fx, h), "confidence": cashout_confidence(h)} for h in flows["hits"]]
    out: dict[str, Any] = {
        "wallet": wid, "n_addresses": summary.get("n_addresses"),
        "addresses": summary.get("addresses", []), "tags": summary.get("tags", []),
        "merge_reasons": summary.get("merge_reasons", {}),
        "merges": summary.get("merges", []),
        "received_sat": summary.get("received_sat"), "sent_sat": summary.get("sent_sat"),
        "sent_unknown_inputs": summary.get("sent_unknown_inputs", 0),
        "trace": {"method": TRACE_METHOD, "hops": TRACE_HOPS,
                  "source_received_sat": flows["source_received_sat"],
                  "transactions_visited": flows["transactions_visited"]},
        "flows": hits,
        "cashouts": [h for h in hits if h["category"] == "exchange"]}
    if backward:
        back = trace(ref, target, "backward", TRACE_HOPS, TRACE_METHOD, ctx["ctx"])
        out["sources"] = [{**h, **_usd(fx, h), "confidence": cashout_confidence(h)}
                          for h in back["hits"]]
        out["trace"]["backward_transactions_visited"] = back["transactions_visited"]
    return out


def _wallets(ref: Workspace, persona: str,
             ctx: dict[str, TraceContext]) -> list[dict[str, Any]]:
    """The wallets (clusters) of the Bitcoin addresses the persona's accounts published,
    each with its tags, merge reasons and the flows traced from it to tagged services."""
    published = store.persona_addresses(ref.con, persona, 10_000)
    if not published:
        return []
    in_chain = wallets_of(ref.con, published)
    by_wallet: dict[int, list[str]] = defaultdict(list)
    for address in published:
        if address in in_chain:
            by_wallet[in_chain[address]].append(address)
    out: list[dict[str, Any]] = [
        {"wallet": None, "published_addresses": [a], "note": "not in the loaded chain data"}
        for a in published if a not in in_chain]
    fx = load_fx(workspace=ref.path)
    for wid, addresses in sorted(by_wallet.items()):
        out.append({
            "published_addresses": addresses, **_wallet(ref, wid, addresses, ctx, fx),
            "provenance": {"method": "darkmap chain cluster + trace "
                                     f"({TRACE_METHOD}, {TRACE_HOPS} hops)",
                           "addresses_from": "identifiers (btc_address) of the persona's "
                                             "accounts, each with its capture"}})
    return out


def _seized(ws: Space, actor: UserRow, records: list[Record],
            ctx: dict[str, TraceContext]) -> list[dict[str, Any]]:
    """The crypto addresses named in the seizure records the user may read among
    ``records``: for a Bitcoin address in the loaded chain, its wallet, the personas whose
    accounts published an address of that wallet, the value traced forward to cash-out
    points and back to the services it came from; otherwise why it is not traced."""
    seizures = {r.row.record_id for r in records if r.row.kind == "seizure"}
    items = sorted((i for i in store.seizure_items(ws.con, actor.user_id, actor.agency_id)
                    if i[0] in seizures and i[1] == "crypto" and i[8]),
                   key=lambda i: (i[0], str(i[5]), str(i[8]), i[6] or 0))
    ref = _reference_ws(ws)
    chain = ref is not None and table_has_rows(ref.con, "btc_tx")
    btc = [i[8] for i in items if str(i[5]).upper() == "BTC"]
    in_chain = wallets_of(ref.con, btc) if chain and ref is not None else {}
    for address in btc:  # a seizure may name the wallet itself: cluster:ID
        if chain and _CLUSTER.fullmatch(address):
            in_chain[address] = int(address[8:])
    fx = load_fx(workspace=ref.path) if ref is not None else None
    out = []
    for rid, _, _, _, _, asset, amount, usd, address in items:
        entry: dict[str, Any] = {
            "record": rid, "asset": asset, "amount": amount, "usd": usd, "address": address,
            "provenance": {"record": rid, "method": "seizure record; darkmap chain cluster "
                                                    f"+ trace ({TRACE_METHOD}, {TRACE_HOPS} "
                                                    "hops, both directions)"}}
        if str(asset).upper() != "BTC":
            entry["note"] = f"not traced: only Bitcoin chain data is loaded, not {asset}"
        elif address not in in_chain or ref is None or fx is None:
            entry["note"] = "not in the loaded chain data"
        else:
            wid = in_chain[address]
            try:
                entry.update(_wallet(ref, wid, [address], ctx, fx, backward=True))
            except NotFoundError as exc:  # cluster:ID of no cluster in this workspace
                entry["note"] = f"not in the loaded chain data ({exc})"
                out.append(entry)
                continue
            entry["personas"] = [{"persona": p, "published_address": a}
                                 for p, a in personas_of_wallet(ref.con, wid)]
        out.append(entry)
    return out


def _money(ws: Space, personas: list[dict[str, Any]], ctx: dict[str, TraceContext]) -> None:
    """Put each persona's wallets (and their traced flows) on it (``ctx``: the chain's
    trace context, loaded once per package when first needed)."""
    ref = _reference_ws(ws)
    chain = ref is not None and table_has_rows(ref.con, "btc_tx")
    for p in personas:
        p["wallets"] = _wallets(ref, p["persona"], ctx) if chain and ref is not None else []


def _personas(ws: Space, country: str) -> list[dict[str, Any]]:
    """The personas attributed to ``country`` with accounts and listings."""
    found = store.country_personas(ws.con, country)
    listings = store.persona_listings(ws.con, [r[0] for r in found])
    by: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for pid, acc, lid, substance, cls, fent, capture, source in listings:
        entry = by[pid][acc]
        if lid is not None:
            entry.append({"listing": lid, "substance": substance, "drug_class": cls,
                          "fentanyl_risk": fent,
                          "provenance": {"capture_sha256": capture, "source": source}})
    out = []
    for pid, label, conf, evidence, method in found:
        out.append({
            "persona": pid, "label": label,
            "jurisdiction": {"country": country, "confidence": conf,
                             "evidence": json.loads(evidence) if evidence else [],
                             "provenance": {"method": method}},
            "accounts": [{"account": a, "listings": ls} for a, ls in sorted(by[pid].items())]})
    return out


def build_package(ws: Space, by: str, country: str, out: Path,
                  ftm: FtmWriter | None = None) -> dict[str, int]:
    """Write the package of ``country`` as ``by`` sees it into the folder ``out``
    (with ``ftm``: ``entities.ftm.json``, the personas' subgraph as FtM entities)."""
    country = check_country(country)
    actor = acting(ws.con, by)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInputError(f"{out}: give a new or empty folder for the package")
    personas = _personas(ws, country)
    ctx: dict[str, TraceContext] = {}
    _money(ws, personas, ctx)
    refs = {("persona", p["persona"]) for p in personas}
    refs |= {("account", a["account"]) for p in personas for a in p["accounts"]}
    refs |= {("listing", x["listing"]) for p in personas for a in p["accounts"]
             for x in a["listings"]}
    recs = [r for r in read_records(ws, by)
            if r.row.country == country or refs & set(r.links)]
    seized = _seized(ws, actor, recs, ctx)
    marks = [m for m in fentanyl_marks(ws, by)
             if (m["ref_kind"], m["ref_id"]) in refs
             or m["buy"] in {r.row.record_id for r in recs}]
    bundle: dict[str, Any] = {
        "country": country, "built_by": by, "agency": actor.agency_id,
        "built_at": utcnow().isoformat(), "personas": personas,
        "records": [r.as_dict() for r in recs], "seized_wallets": seized,
        "fentanyl_marks": marks,
        "contacts": [a._asdict() for a in store.agencies(ws.con)],
        "entities": None, "not_included": [],
    }
    # built in a partial folder (its owner's only) next to ``out``, audited with what it
    # holds, then renamed to ``out``: a kill before the audit entry leaves only the
    # partial folder, never operational records outside the trail
    # clean=False: a killed build's partial may be an audited package (docs/operations.md)
    with atomic_folder(out, mode=0o700, clean=False) as part:
        _write_files(ws, part, bundle, personas, seized, ftm)
        files = {f.name: sha256_file(f) for f in sorted(part.iterdir())}
        log(ws.con, by, "package.build", country=country,
            records=[r.row.record_id for r in recs], files=files)
    wallets = [w for p in personas for w in p["wallets"]]
    return {"personas": len(personas), "records": len(recs), "fentanyl_marks": len(marks),
            "wallets": len(wallets),
            "cashouts": sum(len(w.get("cashouts", [])) for w in wallets),
            "seized_wallets": sum(1 for w in seized if w.get("wallet") is not None),
            "entities": sum(v for k, v in (bundle["entities"] or {}).get("counts", {}).items()
                            if not k.startswith("values_"))}



def _write_files(ws: Space, out: Path, bundle: dict[str, Any], personas: list[dict[str, Any]],
                 seized: list[dict[str, Any]], ftm: FtmWriter | None) -> None:
    """Write ``entities.ftm.json`` (when there are entities), ``package.json`` and
    ``package.html`` into the folder ``out``, each its owner's only."""
    private_file(out / "entities.ftm.json").close()   # the FtM writer fills it
    ref = _reference_ws(ws)
    if ref is not None and not table_has_rows(ref.con, "jurisdictions"):
        bundle["not_included"].append("personas (no jurisdiction estimates yet: run "
                                      "`darkmap link`, then `darkmap assess`)")
    traced = [w for w in seized if w.get("wallet") is not None]
    if ftm is None or ref is None:
        bundle["not_included"].append("FollowTheMoney entities (no exporter handed in)")
    elif personas and not table_has_rows(ref.con, "persona_members"):
        # assessed before any link run: each account stands for itself
        bundle["not_included"].append("FollowTheMoney entities (the workspace has no "
                                      "personas yet: run `darkmap link`, then `darkmap "
                                      "assess`)")
    elif personas or traced:
        try:
            ents = ftm(ref, tuple(p["persona"] for p in personas), out / "entities.ftm.json",
                       {"personas": personas, "seized_wallets": traced})
        except NotFoundError as exc:  # a jurisdiction of a persona a later link run dropped
            (out / "entities.ftm.json").unlink(missing_ok=True)  # no partial file
            bundle["not_included"].append(f"FollowTheMoney entities ({exc}: run assess)")
        else:
            bundle["entities"] = {"file": "entities.ftm.json", "format": "FollowTheMoney "
                                  "JSON lines, stock schemata", "counts": ents}
    if bundle["entities"] is None:
        (out / "entities.ftm.json").unlink(missing_ok=True)   # nothing written: no file
    with private_file(out / "package.json") as f:
        f.write(json.dumps(bundle, indent=2, default=str, ensure_ascii=False))
    with private_file(out / "package.html") as f:
        f.write(_html(bundle))


def _text(value: object) -> str:
    """A value as HTML text: control and bidi characters of market text (handles in
    account ids, persona labels) shown as escapes, then markup escaped."""
    return html.escape(for_display(value))


def _html(bundle: dict[str, Any]) -> str:
    """The package as one HTML page (every value escaped)."""
    e = _text
    cc = e(bundle["country"])
    head = (f"<!doctype html><meta charset=utf-8><title>darkmap package {cc}</title>"
            f"<h1>Package for {cc}</h1><p>Built by {e(bundle['built_by'])} "
            f"({e(bundle['agency'])}) at {e(bundle['built_at'])} UTC: only what this user "
            "may see.</p><h2>Personas</h2><ul>")
    parts = [head]
    for p in bundle["personas"]:
        j = p["jurisdiction"]
        parts.append(f"<li>{e(str(p['persona']))} {e(with_lookalike_mark(p['label']) or '')}: "
                     f"confidence {j['confidence']:.2f}, evidence "
                     f"<code>{e(json.dumps(j['evidence'])[:2000])}</code><ul>")
        for a in p["accounts"]:
            ls = ", ".join(f"{e(str(x['listing']))} ({e(str(x['substance']))}"
                           f"{', fentanyl risk' if x['fentanyl_risk'] else ''})"
                           for x in a["listings"])
            parts.append(f"<li>{e(with_lookalike_mark(str(a['account']), True))}: {ls}</li>")
        parts.append("</ul>")
        parts += _wallets_html(p["wallets"])
        parts.append("</li>")
    parts.append("</ul><h2>Operational records</h2><ul>")
    for r in bundle["records"]:
        parts.append(f"<li>{e(r['record_id'])} {e(r['kind'])} ({e(r['agency_id'])}, "
                     f"{e(str(r['created_at']))}): {e(json.dumps(r['data'], default=str))}"
                     f" <i>provenance: {e(r['provenance'])}</i></li>")
    parts.append("</ul>")
    parts += _seized_html(bundle["seized_wallets"])
    parts.append("<h2>Fentanyl marks</h2><ul>")
    parts += [f"<li>{e(m['ref_kind'])} {e(m['ref_id'])}: {e(m['substance'])} (buy "
              f"{e(m['buy'])})</li>" for m in bundle["fentanyl_marks"]]
    parts.append("</ul><h2>Deconfliction contacts</h2><ul>")
    parts += [f"<li>{e(a['agency_id'])} ({e(a['country'])}): {e(a['contact'])}</li>"
              for a in bundle["contacts"]]
    parts.append("</ul>")
    if bundle["entities"]:
        parts.append(f"<p>FollowTheMoney entities: {e(bundle['entities']['file'])} "
                     f"({e(json.dumps(bundle['entities']['counts']))})</p>")
    return "".join(parts)


def _hit_html(h: dict[str, Any], mark: str = "") -> str:
    """One traced hit (a service the value reached, or came from) as an HTML list item."""
    e = _text
    return (f"<li>{mark}{e(str(h['service']))} ({e(str(h['category']))}): "
            f"{h['amount_btc']:.8f} BTC in {e(str(h['txid']))} at {e(str(h['time']))}, hop "
            f"{h['hop']}, confidence {e(str(h['confidence_level']))} "
            f"({h['confidence']:.2f}): {e('; '.join(h['confidence_reasons']))}</li>")


def _seized_html(seized: list[dict[str, Any]]) -> list[str]:
    """The seized crypto addresses, their wallets, owners and traces (escaped)."""
    e = _text
    if not seized:
        return []
    parts = ["<h2>Seized wallets</h2><ul>"]
    for w in seized:
        head = (f"{e(str(w['amount']))} {e(str(w['asset']))} at {e(str(w['address']))} "
                f"(seizure {e(str(w['record']))})")
        if w.get("wallet") is None:
            parts.append(f"<li>{head}: {e(w['note'])}</li>")
            continue
        owners = ", ".join(f"{e(o['persona'])} (published {e(o['published_address'])})"
                           for o in w["personas"]) or "no persona published an address of it"
        tags = "; ".join(f"{e(str(t['label']))} ({e(str(t['category']))})" for t in w["tags"])
        parts.append(f"<li>{head}: wallet cluster {w['wallet']} ({w['n_addresses']} "
                     f"addresses; tags: {tags or 'none'}); personas: {owners}<ul>")
        parts += [_hit_html(h, "came from ") for h in w["sources"]]
        parts += [_hit_html(h, "<b>cash-out</b> " if h["category"] == "exchange" else "went to ")
                  for h in w["flows"]]
        parts.append("</ul></li>")
    parts.append("</ul>")
    return parts


def _wallets_html(wallets: list[dict[str, Any]]) -> list[str]:
    """A persona's wallets and cash-out points as HTML list items (escaped)."""
    e = _text
    if not wallets:
        return []
    parts = ["<p>Wallets</p><ul>"]
    for w in wallets:
        addrs = ", ".join(e(a) for a in w["published_addresses"])
        if w["wallet"] is None:
            parts.append(f"<li>{addrs}: {e(w['note'])}</li>")
            continue
        tags = "; ".join(f"{e(str(t['label']))} ({e(str(t['category']))})" for t in w["tags"])
        why = ", ".join(f"{e(h)}: {c['edges']} merges" for h, c in w["merge_reasons"].items())
        parts.append(f"<li>wallet cluster {w['wallet']} ({w['n_addresses']} addresses; "
                     f"published: {addrs}; tags: {tags or 'none'}; merged by: "
                     f"{why or 'nothing'})<ul>")
        parts += [_hit_html(h, "<b>cash-out</b> " if h["category"] == "exchange" else "")
                  for h in w["flows"]]
        parts.append("</ul></li>")
    parts.append("</ul>")
    return parts
