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
from typing import Any, TypedDict

import yaml

from darkmap.model.values import clean_btc_address
from darkmap.store import chain as store
from darkmap.store.chain import AddressTag
from darkmap.store.workspace import Workspace, utcnow
from darkmap.store.writer import row_id

# libyaml's safe loader when present (same documents, about 6x faster)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "SERVICE_CATEGORIES",
    "Tag",
    "TagProblem",
    "export_tagpack",
    "read_tagpack",
    "sync_evidence_tags",
    "tagpack_rows",
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


class Tag(TypedDict):
    """A valid TagPack tag (GraphSense fields)."""

    address: str
    label: str
    category: str | None
    confidence: str | None
    source: str | None
    actor: str | None
    currency: str


def read_tagpack(text: str, name: str = "tagpack") -> tuple[dict[str, Any], list[Tag],
                                                               list[TagProblem]]:
    """(header, valid tags, problems) of a TagPack YAML text; hostile input tolerated."""
    try:
        doc = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        return {}, [], [TagProblem(name, "yaml", f"not YAML: {exc}"[:300])]
    if not isinstance(doc, dict) or not isinstance(doc.get("tags"), list):
        return {}, [], [TagProblem(name, "tags", "no `tags` list: not a TagPack")]
    header = {k: v for k, v in doc.items() if k != "tags"}
    defaults = {k: header[k] for k in _TAG_FIELDS if k in header}
    tags: list[Tag] = []
    problems = []
    for i, raw in enumerate(doc["tags"]):
        loc = f"{name}#tag {i}"
        if not isinstance(raw, dict):
            problems.append(TagProblem(loc, "tag", "not a mapping"))
            continue
        tag = {**defaults, **raw}
        addr = clean_btc_address(tag.get("address"))
        if addr is None:
            shown = str(tag.get("address"))[:80]
            problems.append(TagProblem(loc, "address", f"not a valid Bitcoin address: {shown!r}"))
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
    """(header, btc_tags rows, problems) of a TagPack text captured as ``sha``.

    Rows are in :data:`darkmap.store.chain.TAG_COLUMNS` order, for
    :func:`darkmap.store.chain.insert_tags`.
    """
    header, tags, problems = read_tagpack(text, name)
    now = utcnow()
    rows = [(row_id("tag", sha, t["address"], t["label"], t["category"], t["actor"]),
             t["address"], t["label"], t["category"], t["confidence"], t["source"], t["actor"],
             t["currency"], _s(header.get("title")), _s(header.get("creator")), "tagpack",
             None, None, sha, now) for t in tags]
    return header, rows, problems


def sync_evidence_tags(ws: Workspace) -> int:
    """Rebuild the ``evidence`` tags from the addresses the evidence published; return how
    many exist now (see :func:`darkmap.store.chain.sync_evidence_tags`).

    A write: run by the money stage, ``darkmap chain cluster`` and ``darkmap tags import``;
    the reads (wallets, traces) use the tags stored.
    """
    return store.sync_evidence_tags(ws.con)


def export_tagpack(ws: Workspace, path: Path, title: str = "darkmap attribution tags",
                   creator: str = "darkmap", origin: str | None = None) -> dict[str, int]:
    """Write the workspace's tags (optionally of one ``origin``) as a TagPack YAML."""
    tags = store.tags_for_export(ws.con, origin)
    doc = {"title": title, "creator": creator,
           "description": f"Exported by darkmap from workspace {ws.path.name}",
           "is_public": False, "tags": tags}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return {"tags": len(tags)}


def tags_by_address_id(ws: Workspace) -> dict[int, list[AddressTag]]:
    """Tags keyed by address id (only addresses present in the chain tables)."""
    return store.tags_by_address_id(ws.con)
