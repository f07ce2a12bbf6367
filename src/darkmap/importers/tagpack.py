"""The ``tagpack`` importer: GraphSense TagPack YAML into ``btc_tags``, with provenance.

A TagPack is attribution an investigator receives (exchange deposit addresses, market
hot wallets...): a YAML document with a header (``title``, ``creator``, ``description``,
``is_public``...) and a ``tags`` list; each tag has ``address``, ``label``, ``category``,
``confidence``, ``source``, ``actor``, ``currency``. Any tag field may also sit in the
header, where it is the default for every tag (GraphSense's rule). Each tag is a unit:
stored in ``btc_tags`` pointing at the capture, or quarantined with the field that is
wrong (an address that is not a valid Bitcoin main-net address, checksum included, a
currency other than BTC, no label).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import duckdb
import yaml

from darkmap.model.records import QuarantineRecord, Record, UnitRecord
from darkmap.model.values import clean_btc_address
from darkmap.plugins import SourceFile
from darkmap.store.chain import insert_tags
from darkmap.store.workspace import utcnow
from darkmap.store.writer import Provenance, row_id

__all__ = ["Tag", "TagPackImporter", "TagProblem", "read_tagpack", "tagpack_rows"]

_TAGS_KEY = re.compile(rb"^tags\s*:", re.M)
_HEADER_KEY = re.compile(rb"^(title|creator|description|is_public)\s*:", re.M)
# libyaml's safe loader when present (same documents, about 6x faster)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG_FIELDS = ("address", "label", "category", "confidence", "source", "actor", "currency")


class TagPackImporter:
    """GraphSense TagPack YAML (attribution tags for Bitcoin addresses)."""

    name = "tagpack"
    version = "1"

    def sniff(self, src: SourceFile) -> float:
        """Sure of YAML with a top-level ``tags:`` list and a TagPack header key."""
        if not src.source.lower().endswith((".yaml", ".yml")):
            return 0.0
        if _TAGS_KEY.search(src.head) and _HEADER_KEY.search(src.head):
            return 0.9
        return 0.0

    def read(self, src: SourceFile) -> Iterator[Record]:  # pragma: no cover - read_into is used
        """Tags live in their own table; the pipeline calls :meth:`read_into`."""
        raise NotImplementedError("tagpack files are read with read_into")

    def read_into(self, src: SourceFile, con: duckdb.DuckDBPyConnection,
                  prov: Provenance) -> Iterator[Record]:
        """Insert the file's tags with ``con``; one unit per tag."""
        text = src.path.read_bytes().decode("utf-8", "replace")
        name = Path(src.source).name
        _, rows, problems = tagpack_rows(text, name, src.sha256)
        insert_tags(con, rows)
        for i, row in enumerate(rows):
            yield UnitRecord(locator=f"tag {row[1]} {i}", kind="btc_tag")
        for p in problems:
            yield QuarantineRecord(locator=p.locator.replace(f"{name}#", "", 1) or "file",
                                   field=p.field, reason=f"{src.source}: {p.reason}")


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
