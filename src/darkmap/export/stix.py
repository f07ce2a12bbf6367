"""A STIX 2.1 bundle (JSON) for threat-intelligence platforms (OpenCTI, MISP, TAXII feeds).

Each actor (a persona, or an account no link joined to another) becomes a
``threat-actor`` (criminal, personal gain; aliases, first and last seen, harm score and
substances in its description) ``attributed-to`` an ``identity`` (an individual: the
hypothesis that one person is behind the accounts), ``located-at`` a ``location`` when
the jurisdiction estimate names a country (confidence from the estimate). Observables:
``user-account`` per market account and contact handle, ``email-addr`` (an address of a
form the OASIS validator rejects, such as ``=x@example.com``, becomes a ``user-account``),
``url`` for onions and ``cryptocurrency-wallet`` for BTC/XMR addresses (a new SCO type
declared by an ``extension-definition``, as OpenCTI names it). The money trail: each
Bitcoin transfer touching an exported address's wallet is a ``paid`` relationship from
the paying to the paid wallet (``start_time`` the block time, the txid and the chain
capture as external references, amount in BTC and USD in the description); a wallet is
the ``cryptocurrency-wallet`` of its address when it is one address, else an
``infrastructure`` (the wallet cluster) that ``consists-of`` the exported addresses.
Relationships carry ``confidence`` (0-100): the linker's score between accounts, the
persona's cohesion between an actor and its accounts, 100 for a selector the evidence
shows an account advertising. Every wallet, e-mail address and onion an actor
advertised gets an ``indicator`` (a STIX pattern to watch for) that ``indicates`` the
actor. Threat actors, indicators and every relationship cite the captures behind them as
``external_references`` (SHA-256, source): a ``located-at`` the captures of the listings
and accounts shipping from the estimated country (else of the actor's accounts, whose
texts the estimate read), a ``related-to`` between scored accounts the two accounts'
captures, a ``consists-of`` the captures that showed the address; those three cite at
most :data:`CITED` (the lowest hashes), a vendor's hundreds of listings being no more
proof than twenty.

Ids are stable across exports: observables use the UUIDv5 of their id-contributing
properties (STIX 2.1 section 2.9), other objects a UUID (version 4 layout) derived from a
hash of what they stand for; ``created``/``modified`` are the time of the newest capture
exported. The JSON is written by :mod:`json` from dicts, never by string concatenation.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError
from darkmap.export import dataset
from darkmap.export.options import ExportOptions
from darkmap.model.countries import country_code
from darkmap.model.outputs import atomic_file
from darkmap.model.records import finite
from darkmap.store import exports as store
from darkmap.store.workspace import Workspace

__all__ = ["CITED", "StixExporter", "build_bundle", "pattern_literal", "sco_id", "sdo_id"]

CITED = 20
"""The most captures a ``located-at``, scored ``related-to`` or ``consists-of`` cites."""

STIX_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
"""The namespace STIX 2.1 fixes for the UUIDv5 ids of cyber-observable objects."""
_CONTACTS = {"jabber": "Jabber/XMPP", "wickr": "Wickr", "telegram": "Telegram",
             "session": "Session", "signal": "Signal"}
_PLAIN_EMAIL = re.compile(r"[a-z0-9_.+\-]{1,64}@[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63}){1,8}")
"""The e-mail addresses the OASIS validator accepts as ``email-addr`` (a narrower form
than RFC 5322: ``=x@y.z`` is valid mail but not there); others become user accounts."""
_WATCHED = ("btc_address", "xmr_address", "email", "onion")
_WALLET_EXTENSION = {"name": "cryptocurrency-wallet", "version": "1.0",
                     "description": "A cryptocurrency address (wallet) as an observable: "
                                    "value, currency symbol.",
                     "schema": "https://docs.opencti.io/latest/usage/exploring-observations/"}


def sdo_id(kind: str, key: str) -> str:
    """A stable id for a STIX domain or relationship object: ``kind--`` + a UUID in the
    version 4 layout taken from SHA-256(kind, key)."""
    raw = bytearray(hashlib.sha256(f"darkmap\x00{kind}\x00{key}".encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return f"{kind}--{uuid.UUID(bytes=bytes(raw))}"


def sco_id(kind: str, contributing: dict[str, str]) -> str:
    """The UUIDv5 id STIX 2.1 gives an observable from its id-contributing properties."""
    canonical = json.dumps(contributing, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return f"{kind}--{uuid.uuid5(STIX_NAMESPACE, canonical)}"


def pattern_literal(value: str) -> str:
    """``value`` as a STIX pattern string literal (quotes and backslashes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ts(ts: datetime | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z") if ts else None


class _Bundle:
    """Collects the objects of one bundle (each id once) with shared created/modified."""

    def __init__(self, created: str, scope: str = "") -> None:
        self.created = created
        self.scope = scope
        self.objects: dict[str, dict[str, Any]] = {}
        self.producer = sdo_id("identity", "darkmap")
        self.add({"type": "identity", "id": self.producer, "name": "darkmap",
                  "identity_class": "system",
                  "description": "darkmap investigation workbench: facts read from market "
                                 "captures; personas and scores are hypotheses"})
        self.sources: dict[str, str] = {}

    def sid(self, kind: str, key: str) -> str:
        """The id of this bundle's object ``kind`` for ``key``, within the workspace
        (:attr:`scope`): a persona, an account's identity, a wallet cluster, an
        indicator or a relationship is this workspace's reading, so two workspaces'
        objects never share an id (STIX takes objects of one id for versions of one
        object; cluster ids are numbers local to a workspace)."""
        return sdo_id(kind, f"{self.scope}\x00{key}" if self.scope else key)

    def add(self, obj: dict[str, Any], sdo: bool = True) -> str:
        """Add ``obj`` (None and empty values dropped) and return its id."""
        obj = {k: v for k, v in obj.items() if v is not None and v != [] and v != ""}
        obj["spec_version"] = "2.1"
        if sdo:
            obj.setdefault("created", self.created)
            obj.setdefault("modified", self.created)
            if obj["id"] != self.producer:
                obj["created_by_ref"] = self.producer
        self.objects.setdefault(obj["id"], obj)
        return str(obj["id"])

    def evidence(self, shas: Iterable[str | None],
                 limit: int | None = None) -> list[dict[str, Any]]:
        """External references to the captures ``shas`` (each once, by hash; the
        ``limit`` lowest hashes when given, so the same ones on every export)."""
        refs = []
        for sha in sorted({s for s in shas if s})[:limit]:
            source = self.sources.get(sha, "")
            ref: dict[str, Any] = {"source_name": "darkmap capture", "external_id": sha,
                                   "hashes": {"SHA-256": sha}}
            if source.startswith(("http://", "https://")):
                ref["url"] = source
            elif source:
                ref["description"] = f"captured from {source}"
            refs.append(ref)
        return refs

    def relate(self, source: str, rel: str, target: str, confidence: int | None = None,
               description: str | None = None, evidence: Iterable[str | None] = (),
               limit: int | None = None) -> str:
        """A relationship ``source`` -``rel``-> ``target`` citing the captures
        ``evidence`` (the ``limit`` lowest hashes when given)."""
        return self.add({"type": "relationship", "id": self.sid("relationship",
                                                                f"{source}|{rel}|{target}"),
                         "relationship_type": rel, "source_ref": source, "target_ref": target,
                         "confidence": confidence, "description": description,
                         "external_references": self.evidence(evidence, limit)})


def _confidence(x: float | None) -> int | None:
    x = finite(x)
    return None if x is None else max(0, min(100, round(x * 100)))


def _actors(data: dataset.ExportData) -> dict[str, list[store.AccountFacts]]:
    """Actor key (persona id, or account id of an unlinked account) -> its accounts."""
    out: dict[str, list[store.AccountFacts]] = defaultdict(list)
    for a in data.accounts:
        out[a.persona_id or a.account_id].append(a)
    return dict(out)


def build_bundle(data: dataset.ExportData, scope: str = "",
                 created: datetime | None = None) -> dict[str, Any]:
    """The STIX 2.1 bundle of ``data`` as a dict (objects ordered by id); ``scope``
    names the workspace (:meth:`Workspace.identity`) in the ids of its own readings.
    Objects are dated by the newest capture, else ``created`` (when the workspace was
    created: an empty one's objects were dated 1970-01-01), never the export's clock,
    so a re-export is the same bytes."""
    newest = max((c.captured_at for c in data.captures if c.captured_at), default=None)
    b = _Bundle(_ts(newest or created) or "1970-01-01T00:00:00.000Z", scope)
    b.sources = {c.sha256: c.source for c in data.captures}
    accounts = _account_objects(b, data)
    actor_of = _actor_objects(b, data, accounts)
    _link_objects(b, data, accounts)
    _selector_objects(b, data, accounts, actor_of)
    _flow_objects(b, data)
    objects = [b.objects[k] for k in sorted(b.objects)]
    return {"type": "bundle", "id": sdo_id("bundle", "|".join(sorted(b.objects))),
            "objects": objects}


def _account_objects(b: _Bundle, data: dataset.ExportData) -> dict[str, str]:
    """user-account observables for the market accounts; account id -> STIX id."""
    out = {}
    for a in data.accounts:
        contributing = {"user_id": a.account_id, "account_login": a.handle}
        out[a.account_id] = b.add({
            "type": "user-account", "id": sco_id("user-account", contributing),
            **contributing, "display_name": f"{a.handle} ({a.market_name or a.market_id})",
            "account_created": _ts(a.joined_at), "account_last_login": _ts(a.last_seen_at)},
            sdo=False)
    return out


def _actor_description(accounts: list[store.AccountFacts], harm: dataset.Harm | None,
                       persona: store.PersonaFacts | None) -> str:
    lines = [f"darkmap actor of {len(accounts)} market account(s): "
             + ", ".join(a.account_id for a in accounts)]
    if persona is not None:
        lines.append("A persona: accounts linked by evidence (a hypothesis, not an identified "
                     f"person); cohesion {persona.cohesion or 0:.2f}.")
    if harm is not None:
        subs = ", ".join(f"{k} ({v})" for k, v in harm.top_substances.items())
        lines.append(f"Harm score {harm.score:g}/100 ({harm.from_listings:g} from listings, "
                     f"{harm.from_activity:g} from activity; rests on {harm.rests_on}); "
                     f"drug listings {harm.drug_listings}, "
                     f"fentanyl risk {harm.fentanyl_listings}, counterfeit pills "
                     f"{harm.counterfeit_listings}" + (f"; substances: {subs}" if subs else ""))
    return "\n".join(lines)


HARM_EXTENSION = sdo_id("extension-definition", "darkmap harm score 1")
"""The id of darkmap's property extension for an actor's harm score (the same in every
bundle, so that a reader recognises it)."""

_HARM_SCHEMA = (
    "A property extension of threat-actor. harm_score: darkmap's harm score, 0-100 "
    "(docs/sales.md); sales_evidence: true when it rests on estimated sales, false when "
    "only on what the actor lists; rests_on: what it rests on, in words; from_listings, "
    "from_activity: the points of the score from the listings and from the estimated "
    "activity. A score is a ranking for review, not a finding.")


def _harm_properties(b: _Bundle, harm: dataset.Harm | None) -> dict[str, Any]:
    """An actor's harm score and what it rests on, in darkmap's property extension
    (STIX 2.1 section 7.3, declared once in the bundle by an ``extension-definition``);
    none without a score."""
    if harm is None:
        return {}
    ext = b.add({"type": "extension-definition", "id": HARM_EXTENSION,
                 "name": "darkmap harm score", "description": "what darkmap's harm score of "
                 "an actor is and what it rests on", "schema": _HARM_SCHEMA,
                 "version": "1.0.0", "extension_types": ["property-extension"]})
    return {"extensions": {ext: {"extension_type": "property-extension",
                                 "harm_score": harm.score,
                                 "sales_evidence": harm.sales_evidence,
                                 "rests_on": harm.rests_on,
                                 "from_listings": harm.from_listings,
                                 "from_activity": harm.from_activity}}}


def _place_evidence(members: list[store.AccountFacts],
                    listings: list[store.ListingFacts], country: str) -> tuple[list[str], str]:
    """The captures a jurisdiction estimate of ``country`` rests on and what they are:
    those of the actor's listings and accounts whose ships-from names the country (the
    evidence that weighs most), else of its accounts (whose listings, profiles and
    feedback the estimate read: shipping phrases, language, currency). The estimate
    stores no capture of its own (``jurisdictions.evidence`` counts and examples)."""
    shipping = [x.capture_sha256 for x in listings if country_code(x.ships_from) == country]
    shipping += [a.capture_sha256 for a in members if country_code(a.ships_from) == country]
    if shipping:
        return shipping, f"{len(shipping)} listing(s) and profile(s) ship from {country}"
    return [a.capture_sha256 for a in members], "the actor's account captures"


def _actor_objects(b: _Bundle, data: dataset.ExportData,
                   accounts: dict[str, str]) -> dict[str, str]:
    """threat-actor, identity, location per actor; account id -> threat-actor id."""
    personas = {p.persona_id: p for p in data.personas}
    listings_of: dict[str, list[store.ListingFacts]] = defaultdict(list)
    for x in data.listings:
        if x.account_id:
            listings_of[x.account_id].append(x)
    actor_of: dict[str, str] = {}
    for key, members in sorted(_actors(data).items()):
        persona = personas.get(key)
        handles = sorted({a.handle for a in members})
        name = persona.label if persona and persona.label else handles[0]
        first = min((a.first_seen for a in members if a.first_seen), default=None)
        last = max((a.last_seen for a in members if a.last_seen), default=None)
        evidence = [a.capture_sha256 for a in members]
        harm = data.harm.get(key)
        ta = b.add({"type": "threat-actor", "id": b.sid("threat-actor", key), "name": name,
                    "aliases": [h for h in handles if h != name],
                    "threat_actor_types": ["criminal"], "primary_motivation": "personal-gain",
                    "first_seen": _ts(first), "last_seen": _ts(last),
                    "description": _actor_description(members, harm, persona),
                    "labels": ["darknet-vendor"] + (["fentanyl-risk"] if harm and
                                                    harm.fentanyl_listings else []),
                    "external_references": b.evidence(evidence), **_harm_properties(b, harm)})
        ident = b.add({"type": "identity", "id": b.sid("identity", key), "name": name,
                       "identity_class": "individual",
                       "description": "the person or group behind the actor's accounts "
                                      "(unidentified)"})
        cohesion = _confidence(persona.cohesion) if persona else 100
        b.relate(ta, "attributed-to", ident, cohesion, evidence=evidence)
        country = persona.country if persona else members[0].country
        confidence = persona.country_confidence if persona else members[0].country_confidence
        if country:
            loc = b.add({"type": "location", "id": sdo_id("location", country),
                         "name": country, "country": country})
            cited, what = _place_evidence(
                members, [x for a in members for x in listings_of[a.account_id]], country)
            b.relate(ta, "located-at", loc, _confidence(confidence),
                     "jurisdiction estimate (ships-from, shipping phrases, language, "
                     f"currency, parcel evidence); {what}", cited, CITED)
        for a in members:
            actor_of[a.account_id] = ta
            b.relate(ta, "related-to", accounts[a.account_id], cohesion,
                     f"the actor operates the {a.market_name or a.market_id} account "
                     f"{a.handle}", [a.capture_sha256])
    return actor_of


def _link_objects(b: _Bundle, data: dataset.ExportData, accounts: dict[str, str]) -> None:
    """A ``related-to`` per scored account pair, citing the two accounts' captures (the
    evidence the linker compared; the link run stores no capture of its own)."""
    seen_in = {a.account_id: a.capture_sha256 for a in data.accounts}
    for link in data.links:
        if link.a in accounts and link.b in accounts:
            b.relate(accounts[link.a], "related-to", accounts[link.b],
                     _confidence(link.score),
                     f"darkmap link score {link.score:.3f}"
                     + (" (merged into one persona)" if link.merged else "")
                     + f": {dataset.link_criteria(link.signals)}",
                     [seen_in[link.a], seen_in[link.b]], CITED)


def _selector_object(b: _Bundle, s: store.IdentifierFacts) -> tuple[str, str | None]:
    """The observable for a selector and the STIX pattern that watches for it (if any)."""
    if s.kind in dataset.WALLET_KINDS:
        ext = sdo_id("extension-definition", "cryptocurrency-wallet")
        b.add({"type": "extension-definition", "id": ext, **_WALLET_EXTENSION,
               "extension_types": ["new-sco"]})
        oid = b.add({"type": "cryptocurrency-wallet",
                     "id": sco_id("cryptocurrency-wallet", {"value": s.value}),
                     "value": s.value, "currency": dataset.WALLET_KINDS[s.kind][0],
                     "extensions": {ext: {"extension_type": "new-sco"}}}, sdo=False)
        return oid, f"[cryptocurrency-wallet:value = {pattern_literal(s.value)}]"
    if s.kind == "email" and _PLAIN_EMAIL.fullmatch(s.value):
        oid = b.add({"type": "email-addr", "id": sco_id("email-addr", {"value": s.value}),
                     "value": s.value}, sdo=False)
        return oid, f"[email-addr:value = {pattern_literal(s.value)}]"
    if s.kind == "onion":
        url = f"http://{s.value}/"
        oid = b.add({"type": "url", "id": sco_id("url", {"value": url}), "value": url},
                    sdo=False)
        return oid, f"[url:value = {pattern_literal(url)}]"
    service = _CONTACTS.get(s.kind, "e-mail address" if s.kind == "email" else s.kind)
    contributing = {"user_id": f"{s.kind}:{s.value}", "account_login": s.value}
    oid = b.add({"type": "user-account", "id": sco_id("user-account", contributing),
                 **contributing, "display_name": f"{s.value} ({service})"}, sdo=False)
    return oid, None


def _selector_objects(b: _Bundle, data: dataset.ExportData, accounts: dict[str, str],
                      actor_of: dict[str, str]) -> None:
    uses = {(u.kind, u.value, u.account_id): u for u in data.uses}
    for s in data.selectors:
        oid, pattern = _selector_object(b, s)
        not_own = data.not_own_reason(s)
        whose = f"; {not_own}, not the account's own" if not_own else ""
        for aid in s.accounts:
            if aid not in accounts:
                continue
            u = uses.get((s.kind, s.value, aid))
            seen = f" ({u.n_evidence} time(s))" if u else ""
            b.relate(accounts[aid], "related-to", oid, 100,
                     f"{s.kind} advertised by the account{seen}{whose}", s.captures)
        actors = sorted({actor_of[a] for a in s.accounts if a in actor_of})
        # a market's or a service's onion, or a value many accounts name, indicates no
        # vendor: an indicator would alert on every visit to the market as "indicates"
        # dozens of actors (exports audit, finding 2)
        if pattern is None or s.kind not in _WATCHED or not actors or not_own:
            continue
        ind = b.add({"type": "indicator", "id": b.sid("indicator", f"{s.kind}:{s.value}"),
                     "name": f"{s.kind} {s.value}", "pattern": pattern, "pattern_type": "stix",
                     "indicator_types": ["attribution"],
                     "description": f"{s.kind} advertised on darknet markets by "
                                    f"{len(s.accounts)} account(s); seen {s.n_evidence} "
                                    "time(s). Watch for it in payments, mail or traffic.",
                     "valid_from": _ts(s.first_seen) or b.created,
                     "external_references": b.evidence(s.captures)})
        for ta in actors:
            b.relate(ind, "indicates", ta, 100, evidence=s.captures)


def _wallet_sco(b: _Bundle, address: str) -> str:
    ext = sdo_id("extension-definition", "cryptocurrency-wallet")
    b.add({"type": "extension-definition", "id": ext, **_WALLET_EXTENSION,
           "extension_types": ["new-sco"]})
    return b.add({"type": "cryptocurrency-wallet",
                  "id": sco_id("cryptocurrency-wallet", {"value": address}),
                  "value": address, "currency": "BTC",
                  "extensions": {ext: {"extension_type": "new-sco"}}}, sdo=False)


def _chain_wallet(b: _Bundle, data: dataset.ExportData, wallet_id: int) -> str:
    """The object standing for chain wallet ``wallet_id``: a ``cryptocurrency-wallet``
    for a lone address, an ``infrastructure`` (a wallet cluster) that ``consists-of`` the
    addresses of it the export holds."""
    w = data.chain_wallets.get(wallet_id)
    if w is not None and w.n_addresses == 1:
        return _wallet_sco(b, w.addresses[0])
    label = w.tags[0].rsplit(", ", 1)[0] if w and w.tags else None
    merged = ", ".join(f"{h} ({n} merges)" for h, n in sorted(w.merged_by.items())) \
        if w else ""
    desc = (f"Bitcoin wallet cluster {wallet_id}: {w.n_addresses} addresses merged by the "
            f"clustering heuristics ({merged or 'no merge recorded'}); a hypothesis. "
            f"Tags: {'; '.join(w.tags) or 'none'}. First addresses: "
            f"{', '.join(w.addresses)}") if w else f"Bitcoin wallet cluster {wallet_id}"
    return b.add({"type": "infrastructure", "id": b.sid("infrastructure", f"btc:{wallet_id}"),
                  "name": f"{label}: wallet cluster {wallet_id}" if label
                  else f"wallet cluster {wallet_id}",
                  "infrastructure_types": ["unknown"], "description": desc})


def _flow_objects(b: _Bundle, data: dataset.ExportData) -> None:
    """Each transfer as a ``paid`` relationship between the wallets (start_time: the
    block's time; the txid and the chain capture as external references)."""
    shown_in = {s.value: s.captures for s in data.selectors if s.kind == "btc_address"}
    for address, wid in sorted(data.address_wallets.items()):
        cluster = _chain_wallet(b, data, wid)
        if cluster.startswith("infrastructure--"):
            b.relate(cluster, "consists-of", _wallet_sco(b, address), 100,
                     f"address of wallet cluster {wid}", shown_in.get(address, []), CITED)
    for f in data.flows:
        t = f.transfer
        usd = (f" (about {f.usd:.2f} USD at {f.usd_source})" if finite(f.usd) is not None
               else "")
        src, dst = _chain_wallet(b, data, t.payer), _chain_wallet(b, data, t.beneficiary)
        b.add({"type": "relationship",
               "id": b.sid("relationship", f"paid|{t.txid}|{t.payer}|{t.beneficiary}"),
               "relationship_type": "paid", "source_ref": src, "target_ref": dst,
               "confidence": 100 if t.payer_share == 1.0 else None,
               "start_time": _ts(t.block_time),
               "description": f"paid {f.btc:.8f} BTC{usd} in Bitcoin transaction {t.txid} "
                              f"(block {t.height})",
               "external_references": [
                   {"source_name": "bitcoin-transaction", "external_id": t.txid},
                   *b.evidence([t.capture_sha256])]})


class StixExporter:
    """A STIX 2.1 bundle: threat actors and identities for personas, observables for
    accounts, wallets, e-mail addresses and onions, indicators, relationships."""

    name = "stix"

    def export(self, workspace: object, out: Path,
               options: ExportOptions | None = None) -> dict[str, int]:
        """Write the bundle to ``out``; return object counts by STIX type."""
        if not isinstance(workspace, Workspace):
            raise BadInputError(f"the STIX exporter needs a Workspace, not "
                                f"{type(workspace).__name__}")
        bundle = build_bundle(dataset.load(workspace, options), workspace.identity(),
                              workspace.created_at())
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as part, open(part, "w", encoding="utf-8") as fh:
            json.dump(bundle, fh, ensure_ascii=False, indent=1, sort_keys=True)
            fh.write("\n")
        counts: dict[str, int] = defaultdict(int)
        for obj in bundle["objects"]:
            counts[obj["type"]] += 1
        return dict(sorted(counts.items()))
