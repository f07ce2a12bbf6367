"""The ``tagpack`` importer: GraphSense TagPack YAML into ``btc_tags``, with provenance.

A TagPack is attribution an investigator receives (exchange deposit addresses, market
hot wallets...): a YAML document with a header (``title``, ``creator``, ``description``,
``is_public``...) and a ``tags`` list; each tag has ``address``, ``label``, ``category``,
``confidence``, ``source``, ``actor``, ``currency``. Any tag field may also sit in the
header, where it is the default for every tag (GraphSense's rule). Each tag is a unit:
stored in ``btc_tags`` pointing at the capture, or quarantined with the field that is
wrong (an address that is not a valid Bitcoin main-net address, checksum included, a
currency other than BTC, no label).

TagPacks are hostile input too (issue 18): only YAML's safe types are built; a file over
:data:`MAX_TAGPACK_BYTES` or :data:`MAX_TAGPACK_NODES`, nested deeper than
:data:`~darkmap.model.limits.MAX_NESTING` or whose aliases expand it manyfold (an alias
bomb) is one quarantined unit with the limit named; a label is cut at 300 characters and
other fields at 500, each cut recorded (a ``CutRecord``).

The chain store is imported when tags are stored, not with this module: choosing the
importer of any file loads every importer (:mod:`darkmap.plugins`).
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypedDict

import duckdb
import yaml

from darkmap.errors import LimitExceeded
from darkmap.model.limits import (
    FILE_BYTES,
    MAX_NESTING,
    NESTING_DEPTH,
    YAML_ALIASES,
    cap_text,
    check_nesting,
)
from darkmap.model.records import CutRecord, QuarantineRecord, Record, UnitRecord
from darkmap.model.values import clean_btc_address
from darkmap.plugins import SourceFile
from darkmap.store.workspace import utcnow
from darkmap.store.writer import Provenance, row_id

__all__ = ["EXPECTED", "MAX_TAGPACK_BYTES", "MAX_TAGPACK_NODES", "Tag", "TagPackImporter",
           "TagProblem", "looks_like_tagpack", "read_tagpack", "tagpack_rows"]

_TAGS_KEY = re.compile(rb"^tags\s*:", re.M)
_HEADER_KEY = re.compile(rb"^(title|creator|description|is_public)\s*:", re.M)
# libyaml's safe loader when present (same documents, about 6x faster)
_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YAML_LOADER(_YAML_BASE):  # type: ignore[valid-type,misc]  # noqa: N801 - the old name
    """The safe loader, whose typed scalars (``!!timestamp``, ``!!int``...) that do not
    construct (``2022-02-30``, an int of 5,000 digits, ``!!bool maybe``) stay the text
    they are, for the field checks to judge: the safe loader raises on them, and one
    such value lost the whole TagPack (found by fuzzing)."""


def _lenient(kind: str) -> Any:
    typed = yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{kind}"]

    def construct(loader: Any, node: yaml.Node) -> Any:
        try:
            return typed(loader, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            return loader.construct_scalar(node)
    return construct


for _kind in ("timestamp", "int", "float", "bool"):
    _YAML_LOADER.add_constructor(f"tag:yaml.org,2002:{_kind}", _lenient(_kind))
_TAG_FIELDS = ("address", "label", "category", "confidence", "source", "actor", "currency")

MAX_TAGPACK_BYTES = 32 * 1024 * 1024
"""Largest TagPack read, in bytes."""
MAX_TAGPACK_NODES = 150_000
"""Most lines plus commas (a bound on the YAML nodes) in a TagPack read: 30,000 to 75,000
tags, read in a few seconds and under 300 MB (the composed YAML costs about 1 KB and
20 µs per node). A larger file is quarantined with the ``file_bytes`` limit: split it."""
_LABEL_CHARS = 300
_TEXT_CHARS = 500
_ALIAS_FACTOR, _ALIAS_SLACK = 10, 100_000
"""A document whose aliases expand it to more than 10 x its own nodes + 100,000 is an
alias bomb (a few hundred bytes that expand to billions of nodes) and is refused."""
_MAYBE_ANCHOR = re.compile(r"(?:^|[\s\[{,:?\-\ufeff])&[^\s\[\]{},]")
"""Where an anchor may be defined (a ``&`` starting a node); a text without one has no
aliases to expand ("A & B" in a label does not match)."""
_INDENT = re.compile(r"^[ \t]*(?:[-?:][ \t]+)*", re.M)
_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 4, 500, 200, 200
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 50


EXPECTED = ("GraphSense TagPack YAML: a header (title, creator...) and a top-level "
            "`tags:` list of addresses with their labels")
"""What a TagPack is, for messages refusing a file that is not one."""


def looks_like_tagpack(src: SourceFile) -> bool:
    """True when ``src`` is text with a top-level ``tags:`` key (whatever its name ends
    with): what ``darkmap tags import`` takes on to read, reporting each bad tag. The
    whole file is searched up to :data:`MAX_TAGPACK_BYTES` (a larger one is read and
    quarantined with its limit); a NUL byte in its head is binary, not YAML."""
    if b"\x00" in src.head:
        return False
    try:
        size = src.path.stat().st_size
        data = src.path.read_bytes() if len(src.head) < size <= MAX_TAGPACK_BYTES else src.head
    except OSError:
        return False
    return _TAGS_KEY.search(data) is not None


class TagPackImporter:
    """GraphSense TagPack YAML (attribution tags for Bitcoin addresses)."""

    name = "tagpack"
    version = "1"

    def media_type(self, src: SourceFile) -> str:
        """A TagPack is YAML (the capture's ``media_type``)."""
        return "application/yaml"

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
        """Insert the file's tags with ``con``; one unit per tag.

        A tag field cut at its cap is reported as a ``CutRecord`` after its tag; a file
        over :data:`MAX_TAGPACK_BYTES`, nested too deep or an alias bomb is one
        quarantined unit with the limit named.
        """
        size = src.path.stat().st_size
        data = b"" if size > MAX_TAGPACK_BYTES else src.path.read_bytes()
        too_big = _too_big(size, data)
        if too_big:
            yield QuarantineRecord(locator="file", limit=FILE_BYTES,
                                   reason=f"{src.source}: {too_big}")
            return
        text = data.decode("utf-8", "replace")
        name = Path(src.source).name
        pack = _read(text, name)
        rows = _rows(pack, src.sha256)
        from darkmap.store.chain import insert_tags  # noqa: PLC0415 - see the docstring

        insert_tags(con, rows)
        cuts = pack.cuts
        for i, row in enumerate(rows):
            yield UnitRecord(locator=_unit(row[1], i), kind="btc_tag")
            yield from cuts.get(i, ())
        yield from cuts.get(-1, ())
        for p in pack.problems:
            yield QuarantineRecord(locator=p.locator.replace(f"{name}#", "", 1) or "file",
                                   field=p.field, reason=f"{src.source}: {p.reason}",
                                   limit=p.limit)


@dataclass(frozen=True)
class TagProblem:
    """A tag (or the whole file) that was not imported, and why; ``limit`` names the
    limit on hostile input it broke, if any."""

    locator: str
    field: str
    reason: str
    limit: str | None = None


class Tag(TypedDict):
    """A valid TagPack tag (GraphSense fields)."""

    address: str
    label: str
    category: str | None
    confidence: str | None
    source: str | None
    actor: str | None
    currency: str


@dataclass
class _Pack:
    """A TagPack read: header, valid tags, problems, and the cuts by tag index (-1: the
    header's)."""

    header: dict[str, Any] = field(default_factory=dict)
    tags: list[Tag] = field(default_factory=list)
    problems: list[TagProblem] = field(default_factory=list)
    cuts: dict[int, list[CutRecord]] = field(default_factory=dict)


def read_tagpack(text: str, name: str = "tagpack") -> tuple[dict[str, Any], list[Tag],
                                                               list[TagProblem]]:
    """(header, valid tags, problems) of a TagPack YAML text; hostile input tolerated.

    A text longer than :data:`MAX_TAGPACK_BYTES` or :data:`MAX_TAGPACK_NODES`, nested deeper than
    :data:`~darkmap.model.limits.MAX_NESTING`, or whose aliases expand it manyfold (an
    alias bomb) is one problem with the limit named, never parsed in full; tags of
    unexpected types are problems; labels are cut at 300 characters, other fields at 500.
    """
    pack = _read(text, name)
    return pack.header, pack.tags, pack.problems


def _read(text: str, name: str) -> _Pack:
    too_big = _too_big(len(text), text)
    if too_big:
        return _Pack(problems=[TagProblem(name, "file", too_big, FILE_BYTES)])
    try:
        doc = _load_yaml(text)
    except LimitExceeded as exc:
        return _Pack(problems=[TagProblem(name, "yaml", str(exc), exc.limit)])
    except (yaml.YAMLError, RecursionError) as exc:
        why = " ".join(str(exc).split())  # one line
        return _Pack(problems=[TagProblem(name, "yaml", f"not YAML: {why}"[:300])])
    if not isinstance(doc, dict) or not isinstance(doc.get("tags"), list):
        return _Pack(problems=[TagProblem(name, "tags", "no `tags` list: not a TagPack")])
    pack = _Pack(header={k: v for k, v in doc.items() if k != "tags"})
    defaults = {k: pack.header[k] for k in _TAG_FIELDS if k in pack.header}
    for i, raw in enumerate(doc["tags"]):
        problem = _read_tag(pack, defaults, raw, f"{name}#tag {i}")
        if problem is not None:
            pack.problems.append(problem)
    return pack


def _read_tag(pack: _Pack, defaults: dict[str, Any], raw: object, loc: str) -> TagProblem | None:
    """Add one tag to ``pack`` (with its cuts), or the problem that stops it."""
    if not isinstance(raw, dict):
        return TagProblem(loc, "tag", "not a mapping")
    tag = {**defaults, **raw}
    addr = clean_btc_address(_show(tag.get("address")))
    if addr is None:
        shown = _show(tag.get("address"))[:80]
        return TagProblem(loc, "address", f"not a valid Bitcoin address: {shown!r}")
    currency = _show(tag.get("currency", "BTC")).upper()
    if currency != "BTC":
        return TagProblem(loc, "currency", f"currency {currency[:80]} is not BTC")
    raw_label = tag.get("label")
    if isinstance(raw_label, (int, float, date)) and not isinstance(raw_label, bool):
        # a label YAML typed as a number or a date (label: 12345) is a label: its text
        # (found by the money audit, L2: refused as "missing label"); a plain one is read
        # as written (_labels_as_written), one tagged !!int explicitly as YAML read it
        raw_label = str(raw_label)
    if not isinstance(raw_label, str) or not raw_label.strip():
        return TagProblem(loc, "label", "missing label" if raw_label is None or
                          isinstance(raw_label, str) else
                          f"not a text label: {_show(raw_label)[:80]!r}")
    k = len(pack.tags)
    cuts: list[CutRecord] = []
    label = _cap(raw_label.strip(), "label", _unit(addr, k), cuts, _LABEL_CHARS)
    opt = {f: _cap(_text(tag.get(f)), f, _unit(addr, k), cuts) for f in
           ("category", "confidence", "source", "actor")}
    pack.tags.append({"address": addr, "label": label or "", "category": opt["category"],
                      "confidence": opt["confidence"], "source": opt["source"],
                      "actor": opt["actor"], "currency": "BTC"})
    if cuts:
        pack.cuts[k] = cuts
    return None


def _unit(address: str, k: int) -> str:
    """The locator of a stored tag's unit (``k``: its index among the file's valid tags)."""
    return f"tag {address} {k}"


def _too_big(size: int, text: str | bytes) -> str:
    """Why a TagPack of ``size`` bytes (or characters) and ``text`` is too big to read
    ("" if it is not); ``text`` is not looked at when ``size`` is over the limit."""
    if size > MAX_TAGPACK_BYTES:
        return (f"TagPack of {size:,} bytes is over the {MAX_TAGPACK_BYTES:,}-byte limit: "
                "split it into smaller files")
    if isinstance(text, str):
        nodes = text.count("\n") + text.count(",")
    else:
        nodes = text.count(b"\n") + text.count(b",")
    if nodes > MAX_TAGPACK_NODES:
        return (f"TagPack of {nodes:,} lines and commas is over the {MAX_TAGPACK_NODES:,} "
                "limit: split it into smaller files")
    return ""


def _show(v: object) -> str:
    """``str(v)``, bounded for lists and mappings (whatever their size or aliases)."""
    if isinstance(v, (list, dict, tuple, set)):
        return _SHOW.repr(v)
    return str(v)


def _text(v: object) -> str | None:
    return None if v is None else _show(v)


def _cap(value: str | None, fld: str, locator: str, cuts: list[CutRecord],
         cap: int = _TEXT_CHARS) -> str | None:
    """``value`` cut at ``cap`` characters, the cut recorded in ``cuts``."""
    if value is None:
        return None
    kept, cut = cap_text(value, fld, locator, cap=cap)
    if cut is not None:
        cuts.append(cut)
    return kept


# -- YAML on hostile input --------------------------------------------------------------

def _load_yaml(text: str) -> Any:
    """The YAML document of ``text`` with the safe loader, after the limits are checked:
    nesting (libyaml's composer recurses in C, so a deep document crashes the process)
    and alias expansion (checked on the composed node graph, before anything walks it)."""
    _check_depth(text)
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _MAYBE_ANCHOR.search(text):
            _check_aliases(node)
        _join_tag_lists(node)
        _labels_as_written(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


_STR_TAG = "tag:yaml.org,2002:str"
_NUMBER_TAGS = frozenset(f"tag:yaml.org,2002:{k}" for k in ("int", "float", "timestamp"))


def _labels_as_written(root: yaml.Node) -> None:
    """Make every plain ``label`` scalar YAML resolved as a number or a date (the
    header's default and each tag's) read as the text written: YAML 1.1 reads ``0777`` as
    511, ``1.10`` as 1.1 and ``12:30`` as 750 (review of the money fixes, L1)."""
    if not isinstance(root, yaml.MappingNode):
        return
    maps = [root] + [m for k, v in root.value
                     if isinstance(k, yaml.ScalarNode) and k.value == "tags"
                     and isinstance(v, yaml.SequenceNode)
                     for m in v.value if isinstance(m, yaml.MappingNode)]
    for m in maps:
        for k, v in m.value:
            if (isinstance(k, yaml.ScalarNode) and k.value == "label"
                    and isinstance(v, yaml.ScalarNode) and not v.style  # plain: None, or ""
                    and v.tag in _NUMBER_TAGS):
                v.tag = _STR_TAG


def _join_tag_lists(root: yaml.Node) -> None:
    """Make the lists of a document's repeated top-level ``tags:`` keys one list, in
    order. YAML forbids a repeated key, and the safe loader keeps the last one's value:
    the tags of the others were lost without a word (found by fuzzing)."""
    if not isinstance(root, yaml.MappingNode):
        return
    lists = [(k, v) for k, v in root.value
             if isinstance(k, yaml.ScalarNode) and k.value == "tags"
             and isinstance(v, yaml.SequenceNode)]
    if len(lists) < 2:
        return
    first_key, first = lists[0]
    joined = yaml.SequenceNode(first.tag, [n for _, v in lists for n in v.value],
                               first.start_mark, lists[-1][1].end_mark, first.flow_style)
    root.value = [(k, v) for k, v in root.value
                  if not any(v is w for _, w in lists)]
    root.value.append((first_key, joined))


def _check_depth(text: str) -> None:
    """Raise :class:`LimitExceeded` if the YAML nests deeper than ``MAX_NESTING``.

    A linear bound from the text first (flow brackets; block indentation, which a deeper
    block level must exceed); only a text beyond that bound has its parse events counted
    (libyaml's parser keeps its own stack, so that is safe).
    """
    try:
        check_nesting(text, "[{", "]}", what="YAML flow collections")
        column = max((m.end() - m.start() for m in _INDENT.finditer(text)), default=0)
        if column <= MAX_NESTING // 2:
            return
    except LimitExceeded:
        pass
    depth = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise LimitExceeded(NESTING_DEPTH, f"YAML nested deeper than {MAX_NESTING}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_aliases(root: yaml.Node) -> None:
    """Raise :class:`LimitExceeded` (``yaml_aliases``) if aliases expand the document to
    more than ``_ALIAS_FACTOR`` times its distinct nodes (plus ``_ALIAS_SLACK``), or an
    alias refers to a node that contains it. Iterative, linear in distinct nodes."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        if key in open_:
            raise LimitExceeded(YAML_ALIASES, "YAML alias refers to a node that contains it")
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            cid = id(child)
            if cid in open_:
                raise LimitExceeded(YAML_ALIASES, "YAML alias refers to a node that contains it")
            if cid not in size:
                stack.append((child, False))
    expanded, distinct = size[id(root)], len(size)
    if expanded > _ALIAS_FACTOR * distinct + _ALIAS_SLACK:
        raise LimitExceeded(YAML_ALIASES, f"YAML aliases expand {distinct:,} nodes to "
                                          f"{expanded:,} (an alias bomb): refused")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _rows(pack: _Pack, sha: str) -> list[tuple[Any, ...]]:
    """The pack's ``btc_tags`` rows, in :data:`darkmap.store.chain.TAG_COLUMNS` order;
    the header's title and creator cuts go to ``pack.cuts[-1]``."""
    now = utcnow()
    head_cuts: list[CutRecord] = []
    title = _cap(_text(pack.header.get("title")), "title", "header", head_cuts)
    creator = _cap(_text(pack.header.get("creator")), "creator", "header", head_cuts)
    if head_cuts:
        pack.cuts[-1] = head_cuts
    return [(row_id("tag", sha, t["address"], t["label"], t["category"], t["actor"]),
             t["address"], t["label"], t["category"], t["confidence"], t["source"], t["actor"],
             t["currency"], title, creator, "tagpack", None, None, sha, now)
            for t in pack.tags]


def tagpack_rows(text: str, name: str, sha: str) -> tuple[dict[str, Any],
                                                      list[tuple[Any, ...]], list[TagProblem]]:
    """(header, btc_tags rows, problems) of a TagPack text captured as ``sha``.

    Rows are in :data:`darkmap.store.chain.TAG_COLUMNS` order, for
    :func:`darkmap.store.chain.insert_tags`.
    """
    pack = _read(text, name)
    return pack.header, _rows(pack, sha), pack.problems
