"""The ``tagpack`` importer: GraphSense TagPack YAML into ``btc_tags``, with provenance.

A TagPack is attribution an investigator receives (exchange deposit addresses, market
hot wallets...). Each tag is a unit: stored in ``btc_tags`` pointing at the capture, or
quarantined with the field that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from darkmap.chain.tags import tagpack_rows
from darkmap.model.records import QuarantineRecord, Record, UnitRecord
from darkmap.plugins import SourceFile
from darkmap.store.chain import insert_tags
from darkmap.store.writer import Provenance

__all__ = ["TagPackImporter"]

_TAGS_KEY = re.compile(rb"^tags\s*:", re.M)
_HEADER_KEY = re.compile(rb"^(title|creator|description|is_public)\s*:", re.M)


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
