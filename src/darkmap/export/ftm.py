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

from darkmap.store.workspace import Workspace, table_exists

if TYPE_CHECKING:  # followthemoney loads slowly: import it only when exporting
    from followthemoney.proxy import EntityProxy

__all__ = ["FtmExporter", "iter_entities"]

_NS = "dm"


def _id(*parts: object) -> str:
    return "-".join([_NS, *(str(p).replace(":", "-").replace(" ", "_") for p in parts)])[:200]


def _source_url(source: str) -> str:
    return source if "://" in source else Path(source).resolve().as_uri()


def _date(ts: datetime | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") if ts else None


def load_model() -> Any:
    """The FtM model with darkmap's schemata (imported lazily)."""
    from darkmap.model.ftm import load_model as _load

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
    for sha, size, source, captured_at in ws.con.execute(
            "SELECT sha256, size, source, captured_at FROM captures ORDER BY sha256").fetchall():
        yield _make("Capture", _id("capture", sha), fileName=Path(source).name or sha,
                    sha256=sha, fileSize=size, sourceUrl=_source_url(source),
                    retrievedAt=_date(captured_at))


def _markets(ws: Workspace) -> Iterator[EntityProxy]:
    for mid, name, onion, sha in ws.con.execute(
            "SELECT market_id, name, onion, capture_sha256 FROM markets ORDER BY 1").fetchall():
        yield _make("Organization", _id("market", mid), name=name, website=onion,
                    topics="crime", proof=_id("capture", sha),
                    notes="darknet market")


def _personas(ws: Workspace) -> Iterator[EntityProxy]:
    if not table_exists(ws.con, "personas"):
        return
    rows = ws.con.execute(
        "SELECT p.persona_id, list(a.handle ORDER BY a.handle) FROM personas p "
        "JOIN persona_members m USING (persona_id) JOIN accounts a USING (account_id) "
        "GROUP BY 1 HAVING count(*) > 1 ORDER BY 1").fetchall()
    for pid, handles in rows:
        yield _make("Person", _id("persona", pid), name=handles[0], alias=handles[1:],
                    notes="darkmap persona: accounts linked by evidence; a hypothesis, "
                          "not an identified person")


def _accounts(ws: Workspace) -> Iterator[EntityProxy]:
    owner_sql = ("(SELECT persona_id FROM persona_members m WHERE m.account_id = a.account_id"
                 " AND (SELECT count(*) FROM persona_members m2 WHERE m2.persona_id ="
                 " m.persona_id) > 1 LIMIT 1)" if table_exists(ws.con, "persona_members")
                 else "NULL")
    sql = (f"SELECT a.account_id, a.handle, a.role, m.name, a.source, a.capture_sha256, "
           f"a.observed_at, {owner_sql} FROM accounts a LEFT JOIN markets m USING (market_id) "
           f"ORDER BY 1")
    for aid, handle, role, market, source, sha, obs, owner in ws.con.execute(sql).fetchall():
        yield _make("UserAccount", _id("account", aid), username=handle, name=handle,
                    service=market or aid.split(":")[0], summary=role,
                    owner=_id("persona", owner) if owner else None,
                    sourceUrl=_source_url(source), retrievedAt=_date(obs),
                    proof=_id("capture", sha))


def _listings(ws: Workspace) -> Iterator[EntityProxy]:
    rows = ws.con.execute(
        "SELECT l.listing_id, l.listing_ref, l.market_id, l.account_id, o.title, o.price, "
        "o.currency, o.ships_from, o.ships_to, o.category_path, o.observed_at, o.source, "
        "o.capture_sha256 FROM listings l JOIN (SELECT * FROM listing_observations "
        "QUALIFY row_number() OVER (PARTITION BY listing_id ORDER BY observed_at DESC "
        "NULLS LAST, obs_id) = 1) o USING (listing_id) ORDER BY 1").fetchall()
    for (lid, ref, mid, aid, title, price, cur, sfrom, sto, cat, obs, source, sha) in rows:
        yield _make("Listing", _id("listing", lid), name=title or ref, listingId=ref,
                    vendor=_id("account", aid) if aid else None,
                    market=_id("market", mid), price=price, currency=cur,
                    shipsFrom=sfrom, shipsTo=list(sto or []),
                    category=" > ".join(cat or []) or None, observedAt=_date(obs),
                    sourceUrl=_source_url(source), proof=_id("capture", sha))


def _pgp_keys(ws: Workspace) -> Iterator[EntityProxy]:
    rows = ws.con.execute(
        "SELECT k.fingerprint, k.key_id, k.algorithm, k.user_ids, k.created_at, "
        "k.capture_sha256, list(DISTINCT i.account_id) FILTER (WHERE i.account_id IS NOT NULL)"
        " FROM pgp_keys k LEFT JOIN identifiers i ON i.kind = 'pgp_fingerprint' AND "
        "i.value = k.fingerprint GROUP BY ALL ORDER BY 1").fetchall()
    for fpr, kid, algo, uids, created, sha, accounts in rows:
        yield _make("PgpKey", _id("pgp", fpr), name=fpr, fingerprint=fpr, keyId=kid,
                    algorithm=algo, userId=list(uids or []), creationDate=_date(created),
                    publishedBy=[_id("account", a) for a in accounts or []],
                    proof=_id("capture", sha))


def _wallets(ws: Workspace) -> Iterator[EntityProxy]:
    rows = ws.con.execute(
        "SELECT kind, value, min(capture_sha256), list(DISTINCT account_id) FILTER "
        "(WHERE account_id IS NOT NULL) FROM identifiers WHERE kind IN ('btc_address', "
        "'xmr_address') GROUP BY 1, 2 ORDER BY 2").fetchall()
    for kind, addr, sha, accounts in rows:
        symbol = "BTC" if kind == "btc_address" else "XMR"
        wallet = _id("wallet", addr)
        yield _make("CryptoWallet", wallet, publicKey=addr, currencySymbol=symbol,
                    name=addr, proof=_id("capture", sha))
        for aid in accounts or []:
            yield _make("UnknownLink", _id("advertised", aid, addr),
                        subject=_id("account", aid), object=wallet,
                        role="address advertised by the account", proof=_id("capture", sha))


def _links(ws: Workspace) -> Iterator[EntityProxy]:
    if not table_exists(ws.con, "account_links"):
        return
    for a, b, score, signals in ws.con.execute(
            "SELECT a, b, score, signals FROM account_links ORDER BY 1, 2").fetchall():
        crit = signals if isinstance(signals, str) else json.dumps(signals)
        yield _make("Similar", _id("similar", a, b), candidate=_id("account", a),
                    match=_id("account", b), confidenceScore=score,
                    criteria=crit[:4000], matcher="darkmap link")


class FtmExporter:
    """FollowTheMoney entity JSON lines (darkmap extension schemata included)."""

    name = "ftm"

    def export(self, workspace: object, out: Path) -> dict[str, int]:
        """Write one entity per line to ``out``; return counts per schema."""
        assert isinstance(workspace, Workspace)
        counts: dict[str, int] = {}
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            for ent in iter_entities(workspace):
                fh.write(json.dumps(ent.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
                counts[ent.schema.name] = counts.get(ent.schema.name, 0) + 1
        return counts

