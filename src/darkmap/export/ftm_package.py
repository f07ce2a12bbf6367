"""The money of a per-country package as FollowTheMoney entities (stock schemata).

A package (:mod:`darkmap.ops.package`) traces value forward from each persona's wallets
to tagged services, and forward and back from the crypto addresses named in the seizure
records its reader may see. :func:`money_entities` turns those traces into entities that
the package's ``entities.ftm.json`` carries after the personas' subgraph:

- a persona's wallet of several addresses: a ``CryptoWallet`` (``holder``: the persona's
  ``Person``), with an ``UnknownLink`` from each address the persona published to it; a
  wallet of one address is that address's own ``CryptoWallet`` of the subgraph;
- a tagged service the value reached (or came from): an ``Organization``, holder of the
  ``CryptoWallet`` of the address the trace reached (the tag's own address, or another
  address of the service's cluster, said in ``summary``);
- a traced flow: an ``UnknownLink`` from the wallet to the service's wallet (or from the
  service to a seized wallet, traced back), with the amount, hops, transaction and the
  trace's confidence (level, score, reasons) in ``role``, ``description`` and
  ``summary``. Not a ``Payment``: the value is traced over several transactions by the
  haircut rule, a reading of the chain, not one transfer between the two;
- a seized wallet: a ``CryptoWallet`` of its own (``amount``, ``currencySymbol``,
  ``amountUsd`` as seized; the seizure record's id in ``summary``, nothing else of the
  record), with an ``UnknownLink`` from each address of its cluster that a persona of the
  package published (that address's ``CryptoWallet`` of the subgraph, which leads to the
  account and the persona).

Entity ids follow :func:`darkmap.export.ftm.entity_id`, so the entities join the
subgraph's: the same wallet, persona or address is one entity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from darkmap.export.ftm import _lines, _Mapper, entity_id, stock_model

if TYPE_CHECKING:
    from followthemoney.proxy import EntityProxy

__all__ = ["money_entities"]


def money_entities(money: Mapping[str, Any], known: set[str]) -> Iterator[EntityProxy]:
    """The entities of a package's money (``money``: its ``personas``, each with its
    ``wallets``, and its ``seized_wallets``, as :func:`darkmap.ops.package.build_package`
    puts them in ``package.json``). ``known``: the ids of the entities already written
    (the subgraph's), which links may point to."""
    m = _Mapper(stock_model(), extended=False)
    for p in money.get("personas", []):
        for w in p.get("wallets", []):
            if w.get("wallet") is None:
                continue  # an address outside the loaded chain data: nothing traced
            src = _wallet_ref(w)
            yield from _persona_wallet(m, w, src, p["persona"])
            for h in w.get("flows", []):
                yield from _flow(m, src, h, f"wallet cluster {w['wallet']}", forward=True)
    for s in money.get("seized_wallets", []):
        if s.get("wallet") is None:
            continue
        sid = entity_id("seized", f"{s['record']}\x00{s['address']}")
        yield _seized_wallet(m, s, sid)
        for link in s.get("personas", []):
            published = entity_id("wallet", link["published_address"])
            if published in known:  # the package's persona published it
                yield m.make(
                    "UnknownLink", entity_id("published-seized", f"{published}\x00{sid}"),
                    subject=published, object=sid,
                    role=f"an address of the seized wallet's cluster {s['wallet']}, "
                         f"published by persona {link['persona']}",
                    publisher="darkmap chain clustering")
        origin = f"the seized wallet {s['address']}"
        for h in s.get("flows", []):
            yield from _flow(m, sid, h, origin, forward=True)
        for h in s.get("sources", []):
            yield from _flow(m, sid, h, origin, forward=False)


def _wallet_ref(w: Mapping[str, Any]) -> str:
    """The entity standing for a persona's wallet: the one published address's own
    ``CryptoWallet`` when the wallet is that address, else the cluster's."""
    if w.get("n_addresses") == 1 and len(w["published_addresses"]) == 1:
        return entity_id("wallet", w["published_addresses"][0])
    return entity_id("btc-wallet", str(w["wallet"]))


def _persona_wallet(m: _Mapper, w: Mapping[str, Any], ref: str,
                    persona: str) -> Iterator[EntityProxy]:
    if ref != entity_id("btc-wallet", str(w["wallet"])):
        return
    reasons = ", ".join(f"{h} ({v.get('edges')} merges)"
                        for h, v in sorted(w.get("merge_reasons", {}).items()))
    yield m.make("CryptoWallet", ref, name=f"wallet cluster {w['wallet']}",
                 currencySymbol="BTC", blockchain="Bitcoin",
                 holder=entity_id("persona", persona), publisher="darkmap chain clustering",
                 description=(f"darkmap wallet: {w.get('n_addresses')} Bitcoin addresses the "
                              "clustering heuristics put in one wallet (a hypothesis)"),
                 summary=_lines(wallet_cluster=w["wallet"], addresses=w.get("n_addresses"),
                                tags=[_tag(t) for t in w.get("tags", [])],
                                merged_by=reasons or None,
                                received_sat=w.get("received_sat"),
                                sent_sat=w.get("sent_sat")))
    for a in w["published_addresses"]:
        yield m.make("UnknownLink", entity_id("in-wallet", f"{a}\x00{w['wallet']}"),
                     subject=entity_id("wallet", a), object=ref,
                     role=f"address of wallet cluster {w['wallet']}")


def _tag(t: Any) -> str:
    if isinstance(t, Mapping):
        return ", ".join(str(t[k]) for k in ("label", "category") if t.get(k))
    return str(t)


def _seized_wallet(m: _Mapper, s: Mapping[str, Any], sid: str) -> EntityProxy:
    return m.make("CryptoWallet", sid, name=f"seized: {s['address']}",
                  publicKey=None if str(s["address"]).startswith("cluster:") else s["address"],
                  currencySymbol=str(s.get("asset") or "BTC").upper(), blockchain="Bitcoin",
                  amount=s.get("amount"), amountUsd=s.get("usd"),
                  publisher="darkmap operations (seizure record)",
                  summary=_lines(seized_in_record=s["record"], wallet_cluster=s["wallet"],
                                 addresses=s.get("n_addresses"),
                                 tags=[_tag(t) for t in s.get("tags", [])]))


def _flow(m: _Mapper, wallet: str, h: Mapping[str, Any], origin: str,
          forward: bool) -> Iterator[EntityProxy]:
    """The service, its wallet and the traced flow between it and ``wallet``."""
    org = entity_id("service", str(h["service"]))
    yield m.make("Organization", org, name=h["service"], keywords=h.get("category"),
                 summary=_lines(actor=h.get("actor")))
    reached = h.get("address") or h["tagged_address"]
    svc = entity_id("wallet", reached)
    yield m.make("CryptoWallet", svc, name=f"{h['service']}: {reached}", publicKey=reached,
                 currencySymbol="BTC", blockchain="Bitcoin", holder=org,
                 summary=_lines(tagged_address=h["tagged_address"],
                                tag_via_cluster=h.get("tag_via_cluster") or None,
                                tag_source=h.get("tag_source"),
                                tag_confidence=h.get("tag_confidence")))
    btc = f"{h['amount_btc']:.8f} BTC"
    usd = f" (USD {h['amount_usd']:,.2f})" if h.get("amount_usd") is not None else ""
    hops = f"{h['hop']} hop{'s' if h['hop'] != 1 else ''}"
    role = (f"traced value: {btc} reached {h['service']} ({h.get('category')}) in {hops}"
            if forward else f"traced value: {btc} came from {h['service']} "
                            f"({h.get('category')}), {hops} back")
    yield m.make(
        "UnknownLink",
        entity_id("traced", f"{int(forward)}\x00{wallet}\x00{h.get('txid')}\x00{h['vout']}"
                            f"\x00{h['tagged_address']}"),
        subject=wallet if forward else svc, object=svc if forward else wallet, role=role,
        startDate=h.get("time"), publisher="darkmap chain trace (haircut)",
        description=(f"{btc}{usd} traced {'forward' if forward else 'back'} from {origin} "
                     f"over {hops} by the haircut rule, to output {h['vout']} of "
                     f"transaction {h.get('txid')}; confidence {h.get('confidence_level')} "
                     f"(score {h.get('confidence_score')} of 100, an ordinal heuristic, "
                     f"not a probability): {'; '.join(h.get('confidence_reasons') or [])}"),
        summary=_lines(txid=h.get("txid"), vout=h["vout"], hop=h["hop"],
                       amount_sat=h["amount_sat"], amount_usd=h.get("amount_usd"),
                       value_share=h.get("value_share"),
                       coinjoins_on_path=h.get("coinjoins_on_path"),
                       path_txids=[t for t in h.get("path_txids") or [] if t],
                       confidence_level=h.get("confidence_level"),
                       confidence_score=h.get("confidence_score")))
