"""A MISP event (JSON, MISP core format) for MISP instances and the tools that read them.

One event holds the export, as MISP objects built on the standard object templates:
``person`` per persona of two or more accounts (handles as aliases, contacts, the
hypothesis stated), ``user-account`` per market account (and per contact handle),
``coin-address`` per BTC/XMR address, ``pgp-meta`` per OpenPGP key, ``tor-hiddenservice``
per onion and ``annotation`` per listing (title, price, ships from/to, the drug
assessment; MISP has no template for a market listing). Object references say how they
hang together: an account is ``attributed-to`` its persona, ``publishes`` its keys, is
``seller-of`` its listings and ``uses`` the addresses and onions it advertised; scored
account pairs are ``similar`` (the score in the comment). Tags in the ``darkmap``
namespace carry drug class and harm: ``darkmap:drug-class="opioid"`` on listings and on
the accounts and personas that sell that class, ``darkmap:harm="fentanyl-risk"`` /
``"counterfeit-pill"``, ``darkmap:harm-score="40-59"``.

The event's ``distribution`` is 0 (your organisation only) and it is not published: the
analyst decides what to share. The event's uuid is the UUIDv5 of the workspace's identity
(when it was created: :meth:`Workspace.created_at`, not its folder name, which two
workspaces may share) and of the selection asked for; every object, attribute and
reference uuid is a UUIDv5 of what the thing is *within that event*. So a re-export of
the same workspace and selection updates the same event and objects, while another
workspace, or a subset of this one, is another event whose objects MISP will not take
for this one's (MISP holds a uuid once across all events). The event's date is that of
the newest capture exported, else the day the workspace was created (never the export
day: the same workspace gives the same bytes). The JSON is written by :mod:`json` from
dicts.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError
from darkmap.export import dataset
from darkmap.export.options import ExportOptions
from darkmap.model.outputs import atomic_file
from darkmap.model.records import finite
from darkmap.store import exports as store
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["TEMPLATES", "MispExporter", "build_event", "event_uuid"]

_NS = uuid.UUID("6b1d7c5e-2f0a-5c1e-9d0b-64617266d6d1")
TEMPLATES: dict[str, tuple[str, int, str]] = {
    "person": ("a15b0477-e9d1-4b9c-9546-abe78a4f4248", 21, "misc"),
    "user-account": ("49606b06-22f0-4ac8-8eee-2f12ad46f3d3", 6, "misc"),
    "coin-address": ("d0e6997e-78da-4815-a6a1-cfc1c1cb8a46", 7, "financial"),
    "pgp-meta": ("4c9134c4-b3e8-4d9f-b3c0-c683e70ec1dd", 1, "misc"),
    "tor-hiddenservice": ("cbac07d6-fbe9-43b8-8d91-d515812ce330", 2, "misc"),
    "annotation": ("5d8dc046-15a1-4ca3-a09f-ed4ede7c4487", 3, "misc"),
    "btc-wallet": ("22910C83-DD0E-4ED2-9823-45F8CAD562A4", 3, "financial"),
    "cryptocurrency-transaction": ("a4aab70f-e43a-48cb-bf82-505de8228dd6", 3, "financial"),
}
"""MISP object templates used: name -> (template uuid, version, meta-category), as in
the misp-objects release pymisp ships (checked by the tests)."""
_CATEGORY = {"text": "Other", "btc": "Financial fraud", "xmr": "Financial fraud",
             "email": "Social network", "datetime": "Other", "onion-address":
             "Network activity", "float": "Other"}
"""MISP's default category of each attribute type used (describeTypes sane_defaults)."""
_TAGGED = {"person": "text", "user-account": "username", "annotation": "text"}
"""The attribute of an object that carries its tags (MISP tags attributes, not objects)."""


def _uuid(namespace: uuid.UUID, *parts: str) -> str:
    return str(uuid.uuid5(namespace, "\x00".join(parts)))


def event_uuid(identity: str, request: Sequence[str] = ()) -> str:
    """The uuid of the event exported from the workspace of ``identity``
    (:meth:`Workspace.identity`: when it was created, else its folder's name) with the
    selection ``request`` (``persona:P``, ``country:CC`` as asked, in any order).

    The folder name alone made two workspaces called ``full`` (or ``case-42`` at two
    agencies) one event, so importing one replaced the other. A selection is part of
    it so that a subset imported into MISP is its own event and never replaces the whole
    export's; the selection as asked (not the accounts it resolved to) keeps the same
    subset's event when a new link run changes its members."""
    return _uuid(_NS, "event", identity, *sorted(set(request)))


def _ts(ts: datetime | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") if ts else None


def _tag(name: str) -> dict[str, str]:
    return {"name": name}


def _harm_tags(harm: dataset.Harm | None) -> list[str]:
    if harm is None:
        return []
    low = min(int(harm.score // 20) * 20, 80)
    tags = [f'darkmap:harm-score="{low}-{low + 19 if low < 80 else 100}"']
    if harm.fentanyl_listings:
        tags.append('darkmap:harm="fentanyl-risk"')
    if harm.counterfeit_listings:
        tags.append('darkmap:harm="counterfeit-pill"')
    return tags


class _Event:
    """Collects the objects of one event (each uuid once)."""

    def __init__(self, event_id: str) -> None:
        self.namespace = uuid.UUID(event_id)
        self.objects: dict[str, dict[str, Any]] = {}

    def uuid(self, *parts: str) -> str:
        """The uuid of the thing ``parts`` name, within this event: the same thing in
        another workspace's event, or in a subset's, gets another uuid, as MISP keeps
        each object and attribute uuid once across its events."""
        return _uuid(self.namespace, *parts)

    def obj(self, template: str, key: str, attrs: Iterable[tuple[str, str, Any]],
            comment: str = "", tags: Iterable[str] = ()) -> str:
        """Add an object of ``template`` for ``key`` with (relation, type, value) attributes
        (None and empty values left out); return its uuid."""
        oid = self.uuid(template, key)
        if oid in self.objects:
            return oid
        t_uuid, t_version, meta = TEMPLATES[template]
        tag_list = [_tag(t) for t in sorted(set(tags))]
        attributes: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for relation, kind, value in attrs:
            if value is None or value == "" or (relation, str(value)) in seen:
                continue
            seen.add((relation, str(value)))
            tagged = tag_list and relation == _TAGGED.get(template)
            attributes.append({
                "uuid": self.uuid(oid, relation, str(value)), "object_relation": relation,
                "type": kind, "category": _CATEGORY[kind], "value": str(value),
                "to_ids": False, "disable_correlation": kind in ("text", "datetime",
                                                               "float"),
                **({"Tag": tag_list} if tagged else {})})
            if tagged:
                tag_list = []  # once per object
        self.objects[oid] = {"uuid": oid, "name": template, "meta-category": meta,
                             "template_uuid": t_uuid, "template_version": str(t_version),
                             "description": "", "comment": comment, "distribution": "5",
                             "Attribute": attributes, "ObjectReference": []}
        return oid

    def ref(self, source: str, rel: str, target: str, comment: str = "") -> None:
        """Object ``source`` -``rel``-> object ``target``."""
        refs = self.objects[source]["ObjectReference"]
        ref = {"uuid": self.uuid(source, rel, target), "object_uuid": source,
               "referenced_uuid": target, "relationship_type": rel, "comment": comment}
        if ref not in refs:
            refs.append(ref)


def _account_tags(data: dataset.ExportData) -> dict[str, set[str]]:
    """account id -> drug-class tags of its listings."""
    out: dict[str, set[str]] = defaultdict(set)
    for x in data.listings:
        if x.account_id and x.drug_class and x.drug_class != "non_drug":
            out[x.account_id].add(f'darkmap:drug-class="{x.drug_class}"')
    return out


_PERSON_ROLE = "Suspect"
"""The ``person`` template's ``role`` takes a value of its list (Suspect, Target, Victim,
...); a persona is the hypothesis that one person sells under these accounts, a suspect.
What darkmap says of it goes into the free-text ``text`` attribute."""
_MESSENGERS = {"jabber": "Jabber", "telegram": "Telegram", "signal": "Signal",
               "wickr": "Wickr", "session": "Session"}
"""Contact kind -> the application, for the ``person`` template's
``instant-messaging-used`` ("the IM application used"; its suggested names where it has
one: Jabber, Telegram, Signal). The handles themselves go into the ``text`` attribute
(and are ``user-account`` objects the accounts ``uses``)."""


def _persona_text(p: store.PersonaFacts, harm: dataset.Harm | None,
                  contacts: list[tuple[str, str]]) -> str:
    """The person's description: a darknet vendor persona, what linked it, its harm and
    jurisdiction, the contact handles its accounts advertised."""
    return (f"darknet vendor (darkmap persona {p.persona_id}): {len(p.accounts)} accounts on "
            f"{p.n_markets} market(s) linked by evidence, cohesion "
            f"{p.cohesion or 0:.2f}; a hypothesis, not an identified person"
            + (f"; harm score {harm.score:g}/100 ({harm.from_listings:g} from listings, "
               f"{harm.from_activity:g} from activity; rests on {harm.rests_on})"
               if harm else "")
            + (f"; jurisdiction estimate {p.country} "
               f"({p.country_confidence or 0:.2f})" if p.country else "")
            + ("; contacts: " + ", ".join(f"{k} {v}" for k, v in sorted(set(contacts)))
               if contacts else ""))


def _personas(ev: _Event, data: dataset.ExportData, classes: dict[str, set[str]],
              contacts: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    handles = {a.account_id: a.handle for a in data.accounts}
    out = {}
    for p in data.personas:
        names = sorted({handles.get(a, a) for a in p.accounts})
        harm = data.harm.get(p.persona_id)
        tags = set().union(*(classes.get(a, set()) for a in p.accounts)) | set(
            _harm_tags(harm))
        attrs: list[tuple[str, str, Any]] = [("alias", "text", n) for n in names]
        attrs += [("handle", "text", a) for a in p.accounts]
        held = [(k, v) for a in p.accounts for k, v in contacts.get(a, [])]
        attrs += [("instant-messaging-used", "text", _MESSENGERS.get(k, k))
                  for k, _ in held]
        attrs.append(("role", "text", _PERSON_ROLE))
        attrs.append(("text", "text", _persona_text(p, harm, held)))
        out[p.persona_id] = ev.obj("person", p.persona_id, attrs, p.label or "", tags)
    return out


def _accounts(ev: _Event, data: dataset.ExportData, classes: dict[str, set[str]],
              persons: dict[str, str]) -> dict[str, str]:
    emails: dict[str, list[str]] = defaultdict(list)
    for s in data.selectors:
        if s.kind == "email":
            for aid in s.accounts:
                emails[aid].append(s.value)
    out = {}
    for a in data.accounts:
        harm = data.harm_of(a)
        attrs: list[tuple[str, str, Any]] = [
            ("username", "text", a.handle), ("user-id", "text", a.account_id),
            ("display-name", "text", f"{a.handle} ({a.market_name or a.market_id})"),
            ("account-type", "text", f"darknet market {a.role}"),
            ("description", "text", a.profile_text), ("created", "datetime", _ts(a.joined_at)),
            ("last_login", "datetime", _ts(a.last_seen_at))]
        attrs += [("email", "email", e) for e in emails.get(a.account_id, [])]
        oid = ev.obj("user-account", a.account_id, attrs,
                     f"{a.market_name or a.market_id}; evidence {a.capture_sha256}",
                     classes.get(a.account_id, set()) | set(_harm_tags(harm)))
        out[a.account_id] = oid
        if a.persona_id in persons:
            ev.ref(oid, "attributed-to", persons[a.persona_id])
    return out


def _selectors(ev: _Event, data: dataset.ExportData, accounts: dict[str, str]) -> None:
    for s in data.selectors:
        not_own = data.not_own_reason(s)  # a market's or a service's, not the vendor's
        if s.kind in dataset.WALLET_KINDS:
            symbol = dataset.WALLET_KINDS[s.kind][0]
            rel, kind = ("address", "btc") if symbol == "BTC" else ("address-xmr", "xmr")
            oid = ev.obj("coin-address", f"{s.kind}:{s.value}", [
                (rel, kind, s.value), ("symbol", "text", symbol),
                ("first-seen", "datetime", _ts(s.first_seen)),
                ("last-seen", "datetime", _ts(s.last_seen))], f"seen {s.n_evidence} time(s)")
        elif s.kind == "onion":
            oid = ev.obj("tor-hiddenservice", s.value, [
                ("address", "onion-address", s.value),
                ("first-seen", "datetime", _ts(s.first_seen)),
                ("last-seen", "datetime", _ts(s.last_seen)),
                ("description", "text", f"advertised by {len(s.accounts)} market account(s)"
                                        + (f"; {not_own}" if not_own else ""))])
        elif s.kind == "email":
            continue  # an attribute of the accounts
        else:  # a contact handle: an account on another service
            oid = ev.obj("user-account", f"{s.kind}:{s.value}", [
                ("username", "text", s.value), ("account-type", "text", s.kind)],
                f"{s.kind} contact handle")
        for aid in s.accounts:
            if aid in accounts:  # a market's or a service's address is not one it uses
                ev.ref(accounts[aid], "mentions" if not_own else "uses", oid,
                       f"{s.kind} advertised by the account"
                       + (f"; {not_own}, not the account's own" if not_own else ""))


def _keys(ev: _Event, data: dataset.ExportData, accounts: dict[str, str]) -> None:
    for k in data.pgp_keys:
        attrs: list[tuple[str, str, Any]] = [("key-id", "text", k.fingerprint),
                                              ("key-id", "text", k.key_id)]
        for u in k.user_ids or []:
            name, _, rest = u.partition("<")
            attrs.append(("user-id-name", "text", name.strip() or None))
            attrs.append(("user-id-email", "text", rest.rstrip(">").strip() or None))
        oid = ev.obj("pgp-meta", k.fingerprint, attrs,
                     f"{k.algorithm or ''} {k.bits or ''} created {_ts(k.created_at)}".strip())
        for aid in k.accounts:
            if aid in accounts:
                ev.ref(accounts[aid], "publishes", oid)


def _listing_text(x: store.ListingFacts) -> str:
    flags = [f for f, on in (("fentanyl risk", x.fentanyl_risk),
                             ("counterfeit pill", x.counterfeit_pill)) if on]
    parts = [f"listing {x.listing_id}: {x.title or ''}",
             f"price: {x.price_text or finite(x.price)} {x.currency or ''}".rstrip(),
             f"ships from: {x.ships_from or '?'}; to: {', '.join(x.ships_to or []) or '?'}",
             f"category: {' > '.join(x.category_path or []) or '?'}"]
    if x.drug_class:
        parts.append(f"assessed: {x.drug_class} / {x.substance}"
                     + (f" ({', '.join(flags)})" if flags else ""))
    return "\n".join(parts)


def _listings(ev: _Event, data: dataset.ExportData, accounts: dict[str, str]) -> None:
    for x in data.listings:
        tags = []
        if x.drug_class and x.drug_class != "non_drug":
            tags.append(f'darkmap:drug-class="{x.drug_class}"')
        tags += ['darkmap:harm="fentanyl-risk"'] if x.fentanyl_risk else []
        tags += ['darkmap:harm="counterfeit-pill"'] if x.counterfeit_pill else []
        oid = ev.obj("annotation", x.listing_id, [
            ("type", "text", "Other"), ("format", "text", "text"),
            ("text", "text", _listing_text(x)),
            ("creation-date", "datetime", _ts(x.first_seen)),
            ("modification-date", "datetime", _ts(x.last_seen))],
            f"market listing; evidence {x.capture_sha256}", tags)
        if x.account_id in accounts:
            ev.ref(accounts[x.account_id], "seller-of", oid)


def _chain_wallet(ev: _Event, data: dataset.ExportData, wallet_id: int) -> str:
    """The object of chain wallet ``wallet_id``: the ``coin-address`` of a lone address
    (the exported one's own object), else a ``btc-wallet`` for the cluster (its first
    address; size, tags and merge reasons in the comment)."""
    w = data.chain_wallets.get(wallet_id)
    if w is not None and w.n_addresses == 1:
        return ev.obj("coin-address", f"btc_address:{w.addresses[0]}", [
            ("address", "btc", w.addresses[0]), ("symbol", "text", "BTC")],
            "; ".join(w.tags))
    merged = ", ".join(f"{h} ({n} merges)" for h, n in sorted(w.merged_by.items())) \
        if w else ""
    return ev.obj("btc-wallet", f"cluster:{wallet_id}", [
        ("wallet-address", "btc", w.addresses[0] if w and w.addresses else None)],
        (f"wallet cluster {wallet_id}: {w.n_addresses} addresses (first shown) merged by "
         f"{merged or 'no recorded merge'}; tags: {'; '.join(w.tags) or 'none'}")
        if w else f"wallet cluster {wallet_id}")


def _flows(ev: _Event, data: dataset.ExportData) -> None:
    """Each transfer as a ``cryptocurrency-transaction`` (txid, time, BTC, USD) that
    references the paying wallet (``sent-from``) and the paid one (``sent-to``)."""
    for address, wid in sorted(data.address_wallets.items()):
        cluster = _chain_wallet(ev, data, wid)
        own = ev.uuid("coin-address", f"btc_address:{address}")
        if own != cluster and own in ev.objects:
            ev.ref(own, "member-of", cluster, f"address of wallet cluster {wid}")
    for f in data.flows:
        t = f.transfer
        oid = ev.obj("cryptocurrency-transaction", f"{t.txid}:{t.payer}:{t.beneficiary}", [
            ("transaction-number", "text", t.txid), ("time", "datetime", _ts(t.block_time)),
            ("value", "float", f"{f.btc:.8f}"), ("symbol", "text", "BTC"),
            ("value_USD", "float", None if finite(f.usd) is None else f"{f.usd:.2f}")],
            f"block {t.height}; chain capture {t.capture_sha256} ({t.source}, {t.method})"
            + (f"; USD at {f.usd_source}" if f.usd is not None else ""))
        ev.ref(oid, "sent-from", _chain_wallet(ev, data, t.payer))
        ev.ref(oid, "sent-to", _chain_wallet(ev, data, t.beneficiary))


def build_event(data: dataset.ExportData, info: str, event_id: str,
                created: datetime | None = None) -> dict[str, Any]:
    """The MISP event ``event_id`` (:func:`event_uuid`) of ``data`` as a dict
    ({"Event": ...}); ``created``: when the workspace was created, the event's date when
    no capture is exported (MISP wants a date; 1970-01-01 made an empty workspace's event
    look decades old)."""
    ev = _Event(event_id)
    classes = _account_tags(data)
    contacts: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for s in data.selectors:
        if s.kind not in dataset.WALLET_KINDS and s.kind != "email":
            for aid in s.accounts:
                contacts[aid].append((s.kind, s.value))
    persons = _personas(ev, data, classes, contacts)
    accounts = _accounts(ev, data, classes, persons)
    _selectors(ev, data, accounts)
    _keys(ev, data, accounts)
    _listings(ev, data, accounts)
    _flows(ev, data)
    for link in data.links:
        if link.a in accounts and link.b in accounts:
            ev.ref(accounts[link.a], "similar", accounts[link.b],
                   f"darkmap link score {link.score:.3f}"
                   + (", merged into one persona" if link.merged else ""))
    newest = max((c.captured_at for c in data.captures if c.captured_at), default=None)
    day = newest or created or utcnow()
    tags = sorted({t for o in ev.objects.values() for a in o["Attribute"]
                   for t in (x["name"] for x in a.get("Tag", []))})
    return {"Event": {
        "uuid": event_id, "info": info, "date": day.strftime("%Y-%m-%d"),
        "threat_level_id": "2", "analysis": "1", "distribution": "0", "published": False,
        "Tag": [_tag("darkmap:export")] + [_tag(t) for t in tags],
        "Attribute": [], "Object": [ev.objects[k] for k in sorted(ev.objects)]}}


class MispExporter:
    """A MISP event (core format JSON): persons, accounts, wallets, keys, onions and
    listings as MISP objects with references, drug class and harm as tags."""

    name = "misp"

    def export(self, workspace: object, out: Path,
               options: ExportOptions | None = None) -> dict[str, int]:
        """Write the event to ``out``; return object counts by template."""
        if not isinstance(workspace, Workspace):
            raise BadInputError(f"the MISP exporter needs a Workspace, not "
                                f"{type(workspace).__name__}")
        options = options or ExportOptions()
        info = f"darkmap export of {workspace.path.name}"
        if options.narrowed:
            info += " (" + ", ".join([*options.personas, *options.subjects,
                                      *options.countries]) + ")"
        created = workspace.created_at()
        request = [*(f"persona:{p}" for p in (*options.personas, *options.subjects)),
                   *(f"country:{c}" for c in options.countries)]
        event = build_event(dataset.load(workspace, options), info,
                            event_uuid(workspace.identity(), request), created)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as part, open(part, "w", encoding="utf-8") as fh:
            json.dump(event, fh, ensure_ascii=False, indent=1, sort_keys=True)
            fh.write("\n")
        counts: dict[str, int] = defaultdict(int)
        for obj in event["Event"]["Object"]:
            counts[obj["name"]] += 1
        counts["references"] = sum(len(o["ObjectReference"]) for o in event["Event"]["Object"])
        return dict(sorted(counts.items()))
