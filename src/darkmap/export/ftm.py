"""Export the evidence store as FollowTheMoney entities (JSON lines).

Markets become Organization, accounts UserAccount, personas Person (owner of their
accounts), listings Listing, PGP keys PgpKey, crypto addresses CryptoWallet, account
links Similar, and every raw capture a Capture (a Document carrying the SHA-256). Each
derived entity names its Capture in ``proof`` and its source in ``sourceUrl``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkmap.errors import BadInputError
from darkmap.store import entities as store
from darkmap.store.workspace import Workspace

if TYPE_CHECKING:  # followthemoney loads slowly: import it only when exporting
    from followthemoney.model import Model
    from followthemoney.proxy import EntityProxy

__all__ = ["FtmExporter", "iter_entities", "load_model"]

_NS = "dm"


def _id(*parts: object) -> str:
    return "-".join([_NS, *(str(p).replace(":", "-").replace(" ", "_") for p in parts)])[:200]


def _source_url(source: str) -> str:
    return source if "://" in source else Path(source).resolve().as_uri()


def _date(ts: datetime | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") if ts else None


def load_model() -> Model:
    """The FtM model with darkmap's schemata (imported lazily)."""
    # Imported here, measured: followthemoney takes ~0.9 s to import, and every ingest
    # loads every exporter (plugins.load_builtin).
    from darkmap.model.ftm_schema import load_model as _load  # noqa: PLC0415 - see above

    return _load()


def _make(schema: str, ent_id: str, **props: Any) -> EntityProxy:
    model = load_model()
    ent = model.make_entity(schema)
    ent.id = ent_id
    for prop, value in props.items():
        if value is None or value == "" or value == []:
            continue
        for v in value if isinstance(value, list) else [value]:
            ent.add(prop, v, quiet=True)
    return ent


def iter_entities(ws: Workspace) -> Iterator[EntityProxy]:
    """Every exportable fact in the workspace as an FtM entity proxy."""
    load_model()
    yield from _captures(ws)
    yield from _markets(ws)
    yield from _personas(ws)
    yield from _accounts(ws)
    yield from _listings(ws)
    yield from _pgp_keys(ws)
    yield from _wallets(ws)
    yield from _links(ws)


def _captures(ws: Workspace) -> Iterator[EntityProxy]:
    for c in store.captures(ws.con):
        yield _make("Capture", _id("capture", c.sha256), fileName=Path(c.source).name or c.sha256,
                    sha256=c.sha256, fileSize=c.size, sourceUrl=_source_url(c.source),
                    retrievedAt=_date(c.captured_at))


def _markets(ws: Workspace) -> Iterator[EntityProxy]:
    for m in store.markets(ws.con):
        yield _make("Organization", _id("market", m.market_id), name=m.name, website=m.onion,
                    topics="crime", proof=_id("capture", m.capture_sha256),
                    notes="darknet market")


def _personas(ws: Workspace) -> Iterator[EntityProxy]:
    for p in store.multi_account_personas(ws.con):
        yield _make("Person", _id("persona", p.persona_id), name=p.handles[0],
                    alias=p.handles[1:],
                    notes="darkmap persona: accounts linked by evidence; a hypothesis, "
                          "not an identified person")


def _accounts(ws: Workspace) -> Iterator[EntityProxy]:
    for a in store.accounts(ws.con):
        yield _make("UserAccount", _id("account", a.account_id), username=a.handle,
                    name=a.handle, service=a.market_name or a.account_id.split(":")[0],
                    summary=a.role, owner=_id("persona", a.owner) if a.owner else None,
                    sourceUrl=_source_url(a.source), retrievedAt=_date(a.observed_at),
                    proof=_id("capture", a.capture_sha256))


def _listings(ws: Workspace) -> Iterator[EntityProxy]:
    for x in store.latest_listings(ws.con):
        yield _make("Listing", _id("listing", x.listing_id), name=x.title or x.listing_ref,
                    listingId=x.listing_ref,
                    vendor=_id("account", x.account_id) if x.account_id else None,
                    market=_id("market", x.market_id), price=x.price, currency=x.currency,
                    shipsFrom=x.ships_from, shipsTo=list(x.ships_to or []),
                    category=" > ".join(x.category_path or []) or None,
                    observedAt=_date(x.observed_at), sourceUrl=_source_url(x.source),
                    proof=_id("capture", x.capture_sha256))


def _pgp_keys(ws: Workspace) -> Iterator[EntityProxy]:
    for k in store.pgp_keys(ws.con):
        yield _make("PgpKey", _id("pgp", k.fingerprint), name=k.fingerprint,
                    fingerprint=k.fingerprint, keyId=k.key_id, algorithm=k.algorithm,
                    userId=list(k.user_ids or []), creationDate=_date(k.created_at),
                    publishedBy=[_id("account", a) for a in k.accounts or []],
                    proof=_id("capture", k.capture_sha256))


def _wallets(ws: Workspace) -> Iterator[EntityProxy]:
    for w in store.advertised_wallets(ws.con):
        symbol = "BTC" if w.kind == "btc_address" else "XMR"
        wallet = _id("wallet", w.address)
        proof = _id("capture", w.capture_sha256)
        yield _make("CryptoWallet", wallet, publicKey=w.address, currencySymbol=symbol,
                    name=w.address, proof=proof)
        for aid in w.accounts or []:
            yield _make("UnknownLink", _id("advertised", aid, w.address),
                        subject=_id("account", aid), object=wallet,
                        role="address advertised by the account", proof=proof)


def _links(ws: Workspace) -> Iterator[EntityProxy]:
    for link in store.account_links(ws.con):
        crit = link.signals if isinstance(link.signals, str) else json.dumps(link.signals)
        yield _make("Similar", _id("similar", link.a, link.b), candidate=_id("account", link.a),
                    match=_id("account", link.b), confidenceScore=link.score,
                    criteria=crit[:4000], matcher="darkmap link")


class FtmExporter:
    """FollowTheMoney entity JSON lines (darkmap extension schemata included)."""

    name = "ftm"

    def export(self, workspace: object, out: Path) -> dict[str, int]:
        """Write one entity per line to ``out``; return counts per schema.

        ``workspace`` must be a :class:`Workspace` (else :class:`BadInputError`).
        """
        if not isinstance(workspace, Workspace):
            raise BadInputError(f"the FtM exporter needs a Workspace, not "
                                f"{type(workspace).__name__}")
        counts: dict[str, int] = {}
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            for ent in iter_entities(workspace):
                fh.write(json.dumps(ent.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
                counts[ent.schema.name] = counts.get(ent.schema.name, 0) + 1
        return counts
