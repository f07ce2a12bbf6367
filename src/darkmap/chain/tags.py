"""Attribution tags: GraphSense TagPack YAML in and out, and tags from the evidence store.

A TagPack is a YAML document with a header (``title``, ``creator``, ``description``,
``is_public``...) and a ``tags`` list; each tag has ``address``, ``label``,
``category``, ``confidence``, ``source``, ``actor``, ``currency``. Any tag field may
also sit in the header, where it is the default for every tag (GraphSense's rule).
Tags whose address is not a valid Bitcoin mainnet address (checksum) or whose currency
is not BTC are not imported: each is reported with the file, tag index and field.

Addresses that market pages or seized dumps published (``identifiers`` rows of kind
``btc_address``) become tags with ``origin='evidence'``, carrying the account that
published them, the identifier row and its capture, and the account's persona.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from darkmap.model.encoding import b58check_decode, bech32_decode
from darkmap.store.writer import row_id
from darkmap.store.workspace import Workspace, table_exists, utcnow

# libyaml's safe loader when present (same documents, about 6x faster)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "SERVICE_CATEGORIES",
    "TagProblem",
    "export_tagpack",
    "import_tagpack",
    "tagpack_rows",
    "normalise_address",
    "read_tagpack",
    "sync_evidence_tags",
    "tags_by_address_id",
]

_TAG_FIELDS = ("address", "label", "category", "confidence", "source", "actor", "currency")
_HEADER_FIELDS = ("title", "creator", "description", "is_public")
SERVICE_CATEGORIES = frozenset({"exchange", "market", "mixing_service", "mixer", "gambling",
                                "payment_processor", "wallet_service", "darknet_market"})
"""Categories a trace stops at (value reaching them has left the owner's control)."""


@dataclass(frozen=True)
class TagProblem:
    """A tag that was not imported, and why."""

    locator: str
    field: str
    reason: str


def normalise_address(text: object) -> str | None:
    """A checksum-valid mainnet address (bech32 lower-cased), else None."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    try:
        if s[:3].lower() == "bc1":
            hrp, _, _ = bech32_decode(s)
            return s.lower() if hrp == "bc" else None
        version, payload = b58check_decode(s)
    except (ValueError, IndexError):
        return None
    return s if version in (0x00, 0x05) and len(payload) == 20 else None


def read_tagpack(text: str, name: str = "tagpack") -> tuple[dict[str, Any], list[dict[str, Any]],
                                                               list[TagProblem]]:
    """(header, valid tags, problems) of a TagPack YAML text; hostile input tolerated."""
    try:
        doc = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        return {}, [], [TagProblem(name, "yaml", f"not YAML: {exc}"[:300])]
    if not isinstance(doc, dict) or not isinstance(doc.get("tags"), list):
        return {}, [], [TagProblem(name, "tags", "no `tags` list: not a TagPack")]
    header = {k: v for k, v in doc.items() if k != "tags"}
    defaults = {k: header[k] for k in _TAG_FIELDS if k in header}
    tags, problems = [], []
    for i, raw in enumerate(doc["tags"]):
        loc = f"{name}#tag {i}"
        if not isinstance(raw, dict):
            problems.append(TagProblem(loc, "tag", "not a mapping"))
            continue
        tag = {**defaults, **raw}
        addr = normalise_address(tag.get("address"))
        if addr is None:
            problems.append(TagProblem(loc, "address",
                                       f"not a valid Bitcoin address: {str(tag.get('address'))[:80]!r}"))
            continue
        currency = str(tag.get("currency", "BTC")).upper()
        if currency != "BTC":
            problems.append(TagProblem(loc, "currency", f"currency {currency} is not BTC"))
            continue
        if not isinstance(tag.get("label"), str) or not tag["label"].strip():
            problems.append(TagProblem(loc, "label", "missing label"))
            continue
        tags.append({"address": addr, "label": tag["label"].strip()[:300],
                     "category": _s(tag.get("category")), "confidence": _s(tag.get("confidence")),
                     "source": _s(tag.get("source")), "actor": _s(tag.get("actor")),
                     "currency": "BTC"})
    return header, tags, problems


def _s(v: object) -> str | None:
    return None if v is None else str(v)[:500]


def tagpack_rows(text: str, name: str, sha: str) -> tuple[dict[str, Any],
                                                      list[tuple[Any, ...]], list[TagProblem]]:
    """(header, btc_tags rows, problems) of a TagPack text captured as ``sha``."""
    header, tags, problems = read_tagpack(text, name)
    now = utcnow()
    rows = [(row_id("tag", sha, t["address"], t["label"], t["category"], t["actor"]),
             t["address"], t["label"], t["category"], t["confidence"], t["source"], t["actor"],
             t["currency"], _s(header.get("title")), _s(header.get("creator")), "tagpack",
             None, None, sha, now) for t in tags]
    return header, rows, problems


def import_tagpack(ws: Workspace, path: Path) -> dict[str, Any]:
    """Import one TagPack file through the ingest pipeline (captured, with provenance).

    Returns the file's counts and the problems of tags that were not imported.
    """
    from darkmap.collect.ingest import ingest  # the pipeline imports the chain importers

    summary = ingest(ws, [path], importer_name="tagpack")
    sha = summary.files[0].sha256
    text = ws.captures.path_for(sha).read_bytes().decode("utf-8", "replace")
    header, rows, problems = tagpack_rows(text, path.name, sha)
    return {"file": str(path), "title": header.get("title"), "tags": len(rows),
            "already_imported": summary.files[0].already,
            "problems": [p.__dict__ for p in problems]}


_TAG_COLS = ("tag_id", "address", "label", "category", "confidence", "source", "actor",
             "currency", "tagpack_title", "tagpack_creator", "origin", "account_id",
             "ident_id", "capture_sha256", "imported_at")


def _insert_tags(ws: Workspace | Any, rows: list[tuple[Any, ...]]) -> None:
    """Insert btc_tags rows with ``ws.con`` or a bare connection."""
    if not rows:
        return
    con = ws.con if isinstance(ws, Workspace) else ws
    tbl = pa.table({c: pa.array([r[i] for r in rows],  # noqa: F841 - read by SQL
                                pa.timestamp("us") if c == "imported_at" else pa.string())
                    for i, c in enumerate(_TAG_COLS)})
    con.execute(f"INSERT OR IGNORE INTO btc_tags ({', '.join(_TAG_COLS)}) "
                f"SELECT {', '.join(_TAG_COLS)} FROM tbl")


def sync_evidence_tags(ws: Workspace) -> int:
    """Rebuild the ``evidence`` tags from ``identifiers``; return how many exist now."""
    persona = table_exists(ws.con, "persona_members")
    rows = ws.con.execute(
        "SELECT i.ident_id, i.value, i.account_id, i.market_id, i.listing_id, i.field, "
        "i.capture_sha256, i.source, "
        + ("(SELECT min(pm.persona_id) FROM persona_members pm "
           "WHERE pm.account_id = i.account_id)" if persona else "NULL")
        + " FROM identifiers i WHERE i.kind = 'btc_address' ORDER BY i.ident_id").fetchall()
    now = utcnow()
    out = []
    for ident, value, acct, market, listing, fld, cap, src, pers in rows:
        addr = normalise_address(value)
        if addr is None:
            continue
        who = acct or listing or market or "unknown"
        out.append((row_id("evtag", ident), addr, who, "user", "evidence",
                    f"{src} ({fld or 'field?'})"[:500], pers or acct, "BTC", None, None,
                    "evidence", acct, ident, cap, now))
    ws.con.execute("DELETE FROM btc_tags WHERE origin = 'evidence'")
    _insert_tags(ws, out)
    return len(out)


def export_tagpack(ws: Workspace, path: Path, title: str = "darkmap attribution tags",
                   creator: str = "darkmap", origin: str | None = None) -> dict[str, int]:
    """Write the workspace's tags (optionally of one ``origin``) as a TagPack YAML."""
    sql = ("SELECT address, label, category, confidence, source, actor, currency FROM btc_tags"
           + (" WHERE origin = ?" if origin else "") + " ORDER BY address, label")
    rows = ws.con.execute(sql, [origin] if origin else []).fetchall()
    tags = []
    for r in rows:
        tag = {k: v for k, v in zip(_TAG_FIELDS, r) if v is not None}
        tags.append(tag)
    doc = {"title": title, "creator": creator,
           "description": f"Exported by darkmap from workspace {ws.path.name}",
           "is_public": False, "tags": tags}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return {"tags": len(tags)}


def tags_by_address_id(ws: Workspace) -> dict[int, list[dict[str, Any]]]:
    """Tags keyed by address id (only addresses present in the chain tables)."""
    rows = ws.con.execute(
        "SELECT a.address_id, t.label, t.category, t.actor, t.origin, t.account_id, t.address "
        "FROM btc_tags t JOIN btc_address a ON a.address = t.address").fetchall()
    out: dict[int, list[dict[str, Any]]] = {}
    for aid, label, cat, actor, origin, acct, addr in rows:
        out.setdefault(aid, []).append({"label": label, "category": cat, "actor": actor,
                                        "origin": origin, "account_id": acct, "address": addr})
    return out
