"""Attribution tags as the chain stage uses them: service categories, the tags derived
from the evidence, and TagPack export.

Addresses that market pages or seized dumps published (``identifiers`` rows of kind
``btc_address``) become tags with ``origin='evidence'``, carrying the account that
published them, the identifier row and its capture, and the account's persona. TagPacks
(GraphSense YAML) are read by :mod:`darkmap.importers.tagpack`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from darkmap.store import chain as store
from darkmap.store.chain import AddressTag
from darkmap.store.workspace import Workspace

__all__ = [
    "SERVICE_CATEGORIES",
    "export_tagpack",
    "sync_evidence_tags",
    "tags_by_address_id",
]

SERVICE_CATEGORIES = frozenset({"exchange", "market", "mixing_service", "mixer", "gambling",
                                "payment_processor", "wallet_service", "darknet_market"})
"""Categories a trace stops at (value reaching them has left the owner's control)."""


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
