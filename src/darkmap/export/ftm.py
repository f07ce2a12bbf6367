"""Export the evidence store as FollowTheMoney entities (JSON lines).

By default only the schemata of the pinned followthemoney release are used, so Aleph, the
``ftm`` tools and anything else that reads FtM load the file as it is (the mapping table is
in docs/exports.md): captures become ``Document`` (``contentHash`` = SHA-1 of the bytes, as
Aleph's archive uses; the SHA-256 is a ``keywords`` value), markets ``Organization``,
accounts ``UserAccount``, personas ``Person`` (owner of their accounts, with ``Similar``
entities for the scored account pairs), listings ``Asset`` (linked to the vendor by
``UnknownLink``), PGP keys ``Document`` (the armored key, linked to the accounts that
published it by ``Documentation``), crypto addresses ``CryptoWallet`` and contact handles
and onions ``UserAccount`` (each linked to the accounts that advertised it by
``UnknownLink``); e-mail addresses are the accounts' ``email``. Facts that a stock schema
has no property for are written as ``key: value`` lines in ``summary``.

``extended`` keeps darkmap's own schemata (``Capture``, ``Listing``, ``PgpKey``; the model
is ``darkmap/model/schema``, loaded by :func:`darkmap.model.ftm_schema.load_model`) for
captures, listings and keys. Every derived entity names the captures it came from in
``proof`` (a persona: its accounts'; a wallet cluster: its exported addresses' and
transfers'; at most :data:`PROOF_MAX`), except ``Similar``, which FtM gives no ``proof``
(its two accounts carry theirs). A value longer than its FtM type allows is cut to that
length; when the type is a short one (a listing title or handle in ``name``), the whole
value is also written in ``summary`` (``name in full: ...``, counted as
``values_whole_in_summary``); only text past FtM's 65,000 characters is lost (counted as
``values_cut``; the whole text stays in the capture).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from darkmap.errors import BadInputError
from darkmap.export import dataset
from darkmap.export.options import ExportOptions
from darkmap.model.countries import country_code
from darkmap.model.display import exact_display
from darkmap.model.outputs import atomic_file
from darkmap.model.records import finite
from darkmap.store.workspace import Workspace

if TYPE_CHECKING:  # followthemoney loads slowly: import it only when exporting
    from followthemoney.model import Model
    from followthemoney.proxy import EntityProxy

__all__ = ["DRUG_TOPIC", "PROOF_MAX", "FtmExporter", "entity_id", "iter_entities", "load_model",
           "read_ids", "stock_model"]

DRUG_TOPIC = "crime.traffick.drug"
"""FtM topic put on markets, vendor accounts, personas and drug listings."""
_CONTACT_SERVICES = {"onion": "Tor onion service", "jabber": "Jabber/XMPP", "wickr": "Wickr",
                     "telegram": "Telegram", "session": "Session", "signal": "Signal"}
_DERIVED = frozenset({"emailMentioned", "country", "shipsFrom", "mimeType"})
_ESCAPED_TYPES = frozenset({"name", "string", "text", "identifier"})
"""The FtM types of free text: a value of one holding a control, bidi or zero-width
character or a backslash is written escaped (:func:`exact_display`), one to one. FtM's
cleaning strips the controls, so a handle holding a BEL and a NUL and a real vendor's
without them shared username, name, keywords and account id (exports audit, finding 3);
a handle spelling the escapes (a backslash) has its backslash doubled, so it never
equals the escaped form of another."""
_SLUG = re.compile(r"[^0-9a-z]+")


def entity_id(kind: str, key: str) -> str:
    """A stable FtM entity id for ``kind`` / ``key``: ``dm-<kind>-<readable>-<hash>``.

    Valid for FtM whatever ``key`` holds (market handles hold any character): a readable
    ASCII slug of the key plus 12 hex digits of its SHA-1 (unique in practice)."""
    slug = _SLUG.sub("-", key.casefold()).strip("-")[:40].strip("-")
    digest = hashlib.sha1(f"{kind}\x00{key}".encode(), usedforsecurity=False).hexdigest()[:12]
    return "-".join(p for p in ("dm", kind, slug, digest) if p)


def load_model() -> Model:
    """The FtM model with darkmap's extension schemata (imported lazily)."""
    # Imported here, measured: followthemoney takes ~0.9 s to import, and every ingest
    # loads every exporter (plugins.load_builtin).
    from darkmap.model.ftm_schema import load_model as _load  # noqa: PLC0415 - see above

    return _load()


@cache
def stock_model() -> Model:
    """The model of the installed followthemoney release alone (its own schema folder,
    whatever ``FTM_MODEL_PATH`` says), built once."""
    import followthemoney  # noqa: PLC0415 - slow import, see load_model
    from followthemoney.model import Model  # noqa: PLC0415 - slow import, see load_model

    return Model(os.path.join(os.path.dirname(followthemoney.__file__), "schema"))


def _date(ts: datetime | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") if ts else None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _lines(**facts: Any) -> str | None:
    """``key: value`` lines for the facts that are set (the stock schemata's summary)."""
    out = []
    for key, value in facts.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, datetime):
            value = _date(value)
        out.append(f"{key.replace('_', ' ')}: {value}")
    return "\n".join(out) or None


class _Mapper:
    """Makes entities on one model and counts what it had to cut or drop.

    A value longer than its property's type holds is cut there. When that type is a
    short one (a ``name`` holds 384 characters, a ``string`` 1,024), the whole value is
    also written as a ``summary`` value of its own, ``<property> in full: <value>``
    (text holds 65,000 characters), so a 10,000-character listing title or market
    handle leaves the store whole (counted in :attr:`whole_in_summary`). Only a value
    longer than a text holds is lost past its end (counted in :attr:`cut`; the whole
    text stays in the capture)."""

    def __init__(self, model: Model, extended: bool) -> None:
        self.model = model
        self.extended = extended
        self.cut = 0
        self.whole_in_summary = 0
        self.invalid = 0
        self.escaped = 0
        self._dates: dict[str, str | None] = {}  # the same times recur on many entities

    def make(self, schema: str, ent_id: str, **props: Any) -> EntityProxy:
        """An entity of ``schema`` with id ``ent_id`` and the given property values
        (None, empty strings and lists skipped; lists give several values)."""
        ent = self.model.make_entity(schema)
        ent.id = ent_id
        whole: dict[str, list[str]] = {}  # value cut to a short type -> its properties
        for name, value in props.items():
            if value is None or value == "" or value == []:
                continue
            prop = ent.schema.get(name)
            if prop is None:
                raise KeyError(f"{schema} has no property {name!r}")
            for v in value if isinstance(value, list) else [value]:
                self._add(ent, prop, v, whole)
        self._keep_whole(ent, whole)
        return ent

    def _add(self, ent: EntityProxy, prop: Any, value: Any,
             whole: dict[str, list[str]], escaped: bool = False) -> None:
        """Add ``value`` to ``prop`` of ``ent``: free text shown one to one (unless it is
        ``escaped`` already), cleaned by FtM, cut to its type's length (the whole kept in
        ``whole`` for the summary)."""
        if isinstance(value, float) and finite(value) is None:
            return  # inf/nan: no amount FtM (or anyone) can read; left out, as unknown
        if isinstance(value, datetime):
            value = _date(value)
        text = value if isinstance(value, str) else str(value)
        if prop.type.name in _ESCAPED_TYPES and isinstance(value, str) and not escaped:
            shown = exact_display(text, newlines=prop.type.name == "text")
            if shown != text:  # FtM would strip its controls: escaped, one to one
                self.escaped += 1
                text = shown
        if prop.type.name == "date":
            if text not in self._dates:
                self._dates[text] = prop.type.clean(text)
            cleaned = self._dates[text]
        else:
            cleaned = prop.type.clean(text, proxy=ent)
        if cleaned is None:
            # a derived value (an e-mail read out of a PGP user id, a country read out
            # of "ships from", a capture's media type FtM reads as unknown, such as
            # application/octet-stream) whose raw text is kept elsewhere is not counted
            self.invalid += prop.name not in _DERIVED
            return
        limit = prop.max_length or prop.type.max_length
        if len(cleaned) > limit:
            summary = ent.schema.properties.get("summary")
            if summary is not None and limit < summary.type.max_length:
                whole.setdefault(cleaned, []).append(prop.name)
            else:
                self.cut += 1
            cleaned = cleaned[:limit]
        if ent.unsafe_add(prop, cleaned, cleaned=True) is None:
            self.cut += 1  # over the entity's total size for this type

    def _keep_whole(self, ent: EntityProxy, whole: dict[str, list[str]]) -> None:
        """Each value cut to a short type, whole, as a ``summary`` value of its own
        (unless a ``key: value`` line of the summary already holds it whole)."""
        if not whole:
            return
        lines = "".join(f"{s}\n" for s in ent.get("summary"))
        for value, names in whole.items():
            if f": {value}\n" in lines:
                continue
            self.whole_in_summary += 1
            self._add(ent, ent.schema.properties["summary"],
                      f"{', '.join(names)} in full: {value}", {}, escaped=True)


def _proof(sha: str | None) -> str | None:
    return entity_id("capture", sha) if sha else None


PROOF_MAX = 100
"""Most captures one entity's ``proof`` lists when it stands on many (a persona of many
accounts, a wallet cluster seen in many files): the first by SHA-256, the rest counted
in its summary (``captures``), so an entity stays small and the same on every run."""


def _proofs(shas: Iterable[str | None]) -> tuple[list[str], str | None]:
    """The ``proof`` of an entity that stands on the captures ``shas`` (at most
    :data:`PROOF_MAX`, by hash), and a summary note when some are left out."""
    ordered = sorted({s for s in shas if s})
    if len(ordered) <= PROOF_MAX:
        return [entity_id("capture", s) for s in ordered], None
    return ([entity_id("capture", s) for s in ordered[:PROOF_MAX]],
            f"{len(ordered)} (proof names the first {PROOF_MAX} by SHA-256)")


def iter_entities(ws: Workspace, options: ExportOptions | None = None,
                  mapper: _Mapper | None = None) -> Iterator[EntityProxy]:
    """Every exportable fact of ``ws`` (narrowed to ``options``) as an FtM entity."""
    options = options or ExportOptions()
    if mapper is None:
        mapper = _Mapper(load_model() if options.extended else stock_model(),
                         options.extended)
    data = dataset.load(ws, options)
    yield from _captures(mapper, data, ws)
    yield from _markets(mapper, data)
    yield from _personas(mapper, data)
    yield from _accounts(mapper, data)
    yield from _listings(mapper, data)
    yield from _pgp_keys(mapper, data)
    yield from _selectors(mapper, data)
    yield from _links(mapper, data)
    yield from _chain_wallets(mapper, data)
    yield from _payments(mapper, data)


def sha1_of_capture(ws: Workspace, sha256: str) -> str | None:
    """The SHA-1 of a capture's bytes (FtM's ``contentHash`` is a SHA-1, as Aleph's
    archive uses), or None when the capture store does not hold it."""
    path = ws.captures.path_for(sha256)
    if not path.is_file():
        return None
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _captures(m: _Mapper, data: dataset.ExportData, ws: Workspace) -> Iterator[EntityProxy]:
    for c in data.captures:
        url = c.source if _is_url(c.source) else None
        yield m.make("Capture" if m.extended else "Document", entity_id("capture", c.sha256),
                     fileName=c.source if url is None else Path(url).name or c.sha256,
                     title=c.source, contentHash=sha1_of_capture(ws, c.sha256),
                     keywords=f"sha256:{c.sha256}", fileSize=c.size, mimeType=c.media_type,
                     sourceUrl=url, retrievedAt=c.captured_at, crawler="darkmap",
                     summary=_lines(sha256=c.sha256, source=c.source),
                     **({"sha256": c.sha256} if m.extended else {}))


def _source_url(source: str) -> str | None:
    return source if _is_url(source) else None


def _markets(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    for x in data.markets:
        yield m.make("Organization", entity_id("market", x.market_id), name=x.name or x.market_id,
                     website=f"http://{x.onion}/" if x.onion else None, topics=DRUG_TOPIC,
                     description="darknet market", keywords=x.market_id,
                     sourceUrl=_source_url(x.source), retrievedAt=x.observed_at,
                     proof=_proof(x.capture_sha256))


def _personas(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    """A Person per persona; its proof: the captures of its accounts (a persona is a
    reading of their evidence)."""
    handles: dict[str, str] = {a.account_id: a.handle for a in data.accounts}
    shas = {a.account_id: a.capture_sha256 for a in data.accounts}
    for p in data.personas:
        names = sorted({handles.get(a, a.split(":", 1)[-1]) for a in p.accounts})
        harm = data.harm.get(p.persona_id)
        proof, more = _proofs(shas.get(a) for a in p.accounts)
        yield m.make(
            "Person", entity_id("persona", p.persona_id), name=p.label or names[0],
            alias=[n for n in names if n != p.label], country=p.country, topics=DRUG_TOPIC,
            keywords=p.persona_id,
            notes="darkmap persona: accounts linked by evidence; a hypothesis, "
                  "not an identified person",
            summary=_lines(persona_id=p.persona_id, accounts=p.accounts,
                           markets=p.n_markets, cohesion=p.cohesion,
                           country_confidence=p.country_confidence,
                           first_seen=p.first_seen, last_seen=p.last_seen,
                           **_harm_facts(harm), link_run=p.run_id, captures=more),
            proof=proof)


def _harm_facts(harm: dataset.Harm | None) -> dict[str, Any]:
    """The summary's harm lines: the score, what it rests on (sales evidence or the
    listings alone) and its points from the listings and from activity."""
    if harm is None:
        return {}
    return {"harm_score": harm.score, "harm_rests_on": harm.rests_on,
            "harm_from_listings": harm.from_listings,
            "harm_from_activity": harm.from_activity}


def _accounts(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    persona_ids = {p.persona_id for p in data.personas}
    emails: dict[str, list[str]] = {}
    for s in data.selectors:
        if s.kind == "email":
            for aid in s.accounts:
                emails.setdefault(aid, []).append(s.value)
    for a in data.accounts:
        owner = a.persona_id if a.persona_id in persona_ids else None
        harm = data.harm_of(a)
        yield m.make(
            "UserAccount", entity_id("account", a.account_id), username=a.handle,
            name=a.handle, service=a.market_name or a.market_id,
            owner=entity_id("persona", owner) if owner else None,
            email=emails.get(a.account_id, []),
            country=a.country or country_code(a.ships_from),
            createdAt=a.joined_at, modifiedAt=a.last_seen_at, description=a.profile_text,
            topics=DRUG_TOPIC if a.role == "vendor" else None, keywords=a.account_id,
            summary=_lines(role=a.role, account_id=a.account_id, level=a.level,
                           rating=a.rating, feedback_count=a.feedback_count,
                           sales_count=a.sales_count, ships_from=a.ships_from,
                           country_confidence=a.country_confidence if a.country else None,
                           first_seen=a.first_seen, last_seen=a.last_seen,
                           listings=a.n_listings, feedback_rows=a.n_feedback,
                           **_harm_facts(harm), profile_url=a.url),
            sourceUrl=_source_url(a.source), retrievedAt=a.observed_at,
            proof=_proof(a.capture_sha256))


def _listing_summary(x: Any) -> str | None:
    flags = [f for f, on in (("fentanyl risk", x.fentanyl_risk),
                             ("counterfeit pill", x.counterfeit_pill)) if on]
    return _lines(listing_id=x.listing_id, market=x.market_id, price_text=x.price_text,
                  ships_from=x.ships_from, ships_to=x.ships_to,
                  category=" > ".join(x.category_path or []) or None,
                  drug_class=x.drug_class, substance=x.substance,
                  class_confidence=x.class_confidence, harm_flags=flags,
                  unit_kind=x.unit_kind, dose_mg=x.dose_mg, unit_price_usd=x.unit_price_usd,
                  first_seen=x.first_seen, last_seen=x.last_seen,
                  observations=x.n_observations, url=x.url)


def _listings(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    for x in data.listings:
        lid, proof = entity_id("listing", x.listing_id), _proof(x.capture_sha256)
        drug = x.drug_class is not None and x.drug_class != "non_drug"
        vendor = entity_id("account", x.account_id) if x.account_id else None
        if m.extended:
            yield m.make("Listing", lid, name=x.title or x.listing_ref, listingId=x.listing_ref,
                         vendor=vendor, market=entity_id("market", x.market_id),
                         price=x.price, currency=x.currency, shipsFrom=country_code(x.ships_from),
                         shipsTo=x.ships_to or [],
                         category=" > ".join(x.category_path or []) or None,
                         drugClass=x.drug_class, substance=x.substance,
                         observedAt=x.observed_at, description=x.description,
                         summary=_listing_summary(x), sourceUrl=_source_url(x.source),
                         proof=proof)
        else:
            yield m.make("Asset", lid, name=x.title or x.listing_ref, amount=x.price,
                         currency=x.currency, country=country_code(x.ships_from),
                         description=x.description, publisher=x.market_id,
                         keywords=[k for k in (x.listing_id, x.drug_class, x.substance)
                                   if k and k != "non_drug"],
                         topics=DRUG_TOPIC if drug else None, summary=_listing_summary(x),
                         createdAt=x.first_seen, modifiedAt=x.last_seen,
                         sourceUrl=_source_url(x.source), retrievedAt=x.observed_at,
                         proof=proof)
        if vendor and not m.extended:
            yield m.make("UnknownLink", entity_id("vendor-of", x.listing_id), subject=vendor,
                         object=lid, role="vendor of the listing", proof=proof,
                         startDate=x.first_seen, endDate=x.last_seen)


def _pgp_keys(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    for k in data.pgp_keys:
        kid, proof = entity_id("pgp", k.fingerprint), _proof(k.capture_sha256)
        if m.extended:
            yield m.make("PgpKey", kid, name=k.fingerprint, fingerprint=k.fingerprint,
                         keyId=k.key_id, algorithm=k.algorithm,
                         userId=[u for u in k.user_ids or [] if u],
                         creationDate=k.created_at,
                         publishedBy=[entity_id("account", a) for a in k.accounts],
                         proof=proof)
            continue
        emails = [u[u.rfind("<") + 1:u.rfind(">")] for u in k.user_ids or []
                  if "<" in u and u.endswith(">")]
        yield m.make("Document", kid, fileName=f"{k.fingerprint}.asc",
                     title=f"OpenPGP key {k.fingerprint}", mimeType="application/pgp-keys",
                     bodyText=k.armored, keywords=[k.fingerprint, k.key_id],
                     emailMentioned=emails, createdAt=k.created_at,
                     summary=_lines(fingerprint=k.fingerprint, key_id=k.key_id,
                                    algorithm=k.algorithm, bits=k.bits,
                                    user_ids=k.user_ids or []),
                     sourceUrl=_source_url(k.source), retrievedAt=k.observed_at, proof=proof)
        for a in k.accounts:
            yield m.make("Documentation", entity_id("published", f"{a}\x00{k.fingerprint}"),
                         document=kid, entity=entity_id("account", a),
                         role="published this OpenPGP key", proof=proof)


def _holders(data: dataset.ExportData) -> dict[str, str]:
    """account id -> persona id, for personas exported as Person."""
    return {a: p.persona_id for p in data.personas for a in p.accounts}


def _selectors(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    holders = _holders(data)
    for s in data.selectors:
        proof = _proof(s.capture_sha256)
        if s.kind in dataset.WALLET_KINDS:
            symbol, chain = dataset.WALLET_KINDS[s.kind]
            sid = entity_id("wallet", s.value)
            persons = sorted({holders[a] for a in s.accounts if a in holders})
            yield m.make("CryptoWallet", sid, name=s.value, publicKey=s.value,
                         currencySymbol=symbol, blockchain=chain,
                         holder=[entity_id("persona", p) for p in persons],
                         summary=_lines(seen=s.n_evidence, first_seen=s.first_seen,
                                        last_seen=s.last_seen), proof=proof)
            role = "address advertised by the account"
        elif s.kind in _CONTACT_SERVICES:
            sid = entity_id(s.kind, s.value)
            yield m.make("UserAccount", sid, username=s.value, name=s.value,
                         service=_CONTACT_SERVICES[s.kind],
                         summary=_lines(kind=s.kind, seen=s.n_evidence,
                                        first_seen=s.first_seen, last_seen=s.last_seen),
                         proof=proof)
            role = f"{s.kind} contact advertised by the account"
        else:  # e-mail: a property of the accounts
            continue
        for a in s.accounts:
            yield m.make("UnknownLink", entity_id("advertised", f"{a}\x00{s.kind}\x00{s.value}"),
                         subject=entity_id("account", a), object=sid, role=role, proof=proof,
                         startDate=s.first_seen, endDate=s.last_seen)


def _links(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    for link in data.links:
        yield m.make("Similar", entity_id("similar", f"{link.a}\x00{link.b}"),
                     candidate=entity_id("account", link.a),
                     match=entity_id("account", link.b), confidenceScore=link.score,
                     criteria=dataset.link_criteria(link.signals),
                     matcher=f"darkmap link ({link.method})"
                             + (", merged into one persona" if link.merged else ""))


def wallet_ref(data: dataset.ExportData, wallet_id: int) -> str:
    """The id of the CryptoWallet standing for chain wallet ``wallet_id``: the exported
    address's own wallet when the wallet is that one address, else the cluster's."""
    w = data.chain_wallets.get(wallet_id)
    if w is not None and w.n_addresses == 1 and data.address_wallets.get(
            w.addresses[0]) == wallet_id:
        return entity_id("wallet", w.addresses[0])
    return entity_id("btc-wallet", str(wallet_id))


def _merged_by(w: Any) -> str | None:
    return ", ".join(f"{h} ({n} merges)" for h, n in sorted(w.merged_by.items())) or None


def _wallet_captures(data: dataset.ExportData) -> dict[int, set[str]]:
    """Per chain wallet: the captures of the exported addresses in it (the pages that
    showed them) and the chain captures its exported transfers were read from."""
    out: dict[int, set[str]] = {}
    for s in data.selectors:
        wid = data.address_wallets.get(s.value) if s.kind == "btc_address" else None
        if wid is not None:
            out.setdefault(wid, set()).update(s.captures)
    for f in data.flows:
        for wid in (f.transfer.payer, f.transfer.beneficiary):
            out.setdefault(wid, set()).add(f.transfer.capture_sha256)
    return out


def _chain_wallets(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    """A CryptoWallet per wallet cluster (or lone counterparty address) of the flows, and
    an UnknownLink from each exported address to its cluster; both cite the captures of
    the cluster's exported addresses and transfers (:func:`_wallet_captures`)."""
    holders = _holders(data)
    captures = _wallet_captures(data)
    for wid, w in sorted(data.chain_wallets.items()):
        ref = wallet_ref(data, wid)
        if ref != entity_id("btc-wallet", str(wid)):
            continue  # the exported address's own CryptoWallet stands for it
        proof, more = _proofs(captures.get(wid, ()))
        persons = sorted({holders[a] for a in w.tag_accounts if a in holders})
        label = w.tags[0].rsplit(", ", 1)[0] if w.tags else None
        own = f"wallet cluster {wid}" if w.n_addresses > 1 else w.addresses[0]
        yield m.make("CryptoWallet", ref, name=f"{label}: {own}" if label else own,
                     publicKey=w.addresses[0] if w.n_addresses == 1 else None,
                     currencySymbol="BTC", blockchain="Bitcoin",
                     holder=[entity_id("persona", p) for p in persons],
                     keywords=w.categories, publisher="darkmap chain clustering",
                     description=(f"darkmap wallet: {w.n_addresses} Bitcoin addresses the "
                                  "clustering heuristics put in one wallet (a hypothesis)"
                                  if w.n_addresses > 1 else None),
                     summary=_lines(wallet_cluster=wid, addresses=w.n_addresses,
                                    first_addresses=w.addresses, tags=w.tags,
                                    merged_by=_merged_by(w), captures=more),
                     proof=proof)
    for address, wid in sorted(data.address_wallets.items()):
        ref = wallet_ref(data, wid)
        cluster = data.chain_wallets.get(wid)
        if ref == entity_id("wallet", address) or cluster is None:
            continue
        proof, more = _proofs(captures.get(wid, ()))
        yield m.make("UnknownLink", entity_id("in-wallet", f"{address}\x00{wid}"),
                     subject=entity_id("wallet", address), object=ref,
                     role=f"address of wallet cluster {wid}",
                     summary=_lines(merged_by=_merged_by(cluster), captures=more),
                     proof=proof)


def _payments(m: _Mapper, data: dataset.ExportData) -> Iterator[EntityProxy]:
    """A Payment per transfer between two wallets (transactionNumber: the txid)."""
    for f in data.flows:
        t = f.transfer
        share = (None if t.payer_share is None or t.payer_share >= 1
                 else f"{t.payer_share:.6f} of the inputs (several payers)")
        yield m.make(
            "Payment", entity_id("payment", f"{t.txid}\x00{t.payer}\x00{t.beneficiary}"),
            payer=wallet_ref(data, t.payer), beneficiary=wallet_ref(data, t.beneficiary),
            amount=f"{f.btc:.8f}", currency="BTC", amountUsd=f.usd, date=t.block_time,
            transactionNumber=t.txid, purpose="Bitcoin transfer",
            publisher=f"darkmap chain ({t.method})", sourceUrl=_source_url(t.source),
            description=(f"Bitcoin transaction {t.txid} in block {t.height} "
                         f"({t.block_hash}), read from {t.source} (capture sha256 "
                         f"{t.capture_sha256}, {t.method})"),
            summary=_lines(txid=t.txid, block_height=t.height, block_hash=t.block_hash,
                           amount_sat=t.amount_sat, outputs_sat=t.output_sat,
                           payer_share=share, coinjoin=t.coinjoin,
                           payer_wallet=t.payer, beneficiary_wallet=t.beneficiary,
                           usd_rate=f.usd_source if f.usd is not None else None),
            proof=_proof(t.capture_sha256))


def write_lines(entities: Iterable[EntityProxy], out: Path,
                append: bool = False) -> dict[str, int]:
    """Write one entity per line to ``out``; counts per schema. The file appears only
    complete (:func:`atomic_file`: a kill or an error leaves ``out`` as it was; a
    selection refused, no persona or no such country, leaves no file). ``append``: after
    what ``out`` holds, in place (for a file that is itself still partial)."""
    if append:
        with open(out, "a", encoding="utf-8") as fh:
            return _write_entities(entities, fh)
    with atomic_file(out) as part, open(part, "w", encoding="utf-8") as fh:
        return _write_entities(entities, fh)


def _write_entities(entities: Iterable[EntityProxy], fh: TextIO) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for ent in entities:
        fh.write(json.dumps(ent.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        counts[ent.schema.name] += 1
    return dict(sorted(counts.items()))


def read_ids(path: Path) -> set[str]:
    """The entity ids of an FtM JSON-lines file this module wrote."""
    with open(path, encoding="utf-8") as fh:
        return {json.loads(line)["id"] for line in fh if line.strip()}


class FtmExporter:
    """FollowTheMoney entities, one JSON object a line (stock schemata; ``--extended``:
    darkmap's extension schemata for captures, listings and keys)."""

    name = "ftm"
    format_options = frozenset({"extended"})

    def export(self, workspace: object, out: Path,
               options: ExportOptions | None = None) -> dict[str, int]:
        """Write the entities to ``out``; return counts per schema, and when it happened
        ``values_whole_in_summary`` (values cut to a short FtM type, written whole in
        ``summary``), ``values_cut`` (text longer than FtM's 65,000 characters, cut) and
        ``values_invalid`` (values FtM could not hold), ``values_escaped`` (text values
        holding a control, bidi or zero-width character or a backslash, written as
        :func:`~darkmap.model.display.exact_display` shows them).

        ``workspace`` must be a :class:`Workspace` (else :class:`BadInputError`).
        """
        if not isinstance(workspace, Workspace):
            raise BadInputError(f"the FtM exporter needs a Workspace, not "
                                f"{type(workspace).__name__}")
        options = options or ExportOptions()
        mapper = _Mapper(load_model() if options.extended else stock_model(),
                         options.extended)
        out.parent.mkdir(parents=True, exist_ok=True)
        counts = write_lines(iter_entities(workspace, options, mapper), out)
        if mapper.whole_in_summary:
            counts["values_whole_in_summary"] = mapper.whole_in_summary
        if mapper.cut:
            counts["values_cut"] = mapper.cut
        if mapper.invalid:
            counts["values_invalid"] = mapper.invalid
        if mapper.escaped:
            counts["values_escaped"] = mapper.escaped
        return counts
