"""Stable row ids: the BLAKE2b-128 of the parts that identify a row.

Apart from :mod:`darkmap.store.writer` (which re-exports them and imports numpy and
pyarrow) so that a command that only reads, or records one judgement, can make an id
without loading them.
"""

from __future__ import annotations

import hashlib

__all__ = ["row_id", "row_ids"]


def row_id(*parts: object) -> str:
    """A stable 32-hex id from the parts that identify a row: the BLAKE2b-128 of each
    part's text followed by a unit separator (hashed in one update: the same digest)."""
    text = "\x1f".join(map(str, parts)) + "\x1f" if parts else ""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def row_ids(*columns: object) -> list[str]:
    """:func:`row_id` for many rows at once: each column is a list, or one value for all.

    ``row_ids("lst", lids, sha, locators)[i] == row_id("lst", lids[i], sha, locators[i])``.
    """
    lists = [c for c in columns if isinstance(c, list)]
    n = len(lists[0]) if lists else 1
    k = next((i for i, c in enumerate(columns) if isinstance(c, list)), len(columns))
    # the leading one-value parts are hashed once; each row continues from a copy
    proto = hashlib.blake2b("".join(f"{c}\x1f" for c in columns[:k]).encode(
        "utf-8", "surrogatepass"), digest_size=16)
    rest = [c if isinstance(c, list) else [str(c)] * n for c in columns[k:]]
    try:
        texts = ["\x1f".join(parts) for parts in zip(*rest, strict=True)] if rest else [""] * n
    except TypeError:  # not all text: the same as row_id's str() of every part
        texts = ["\x1f".join(map(str, parts)) for parts in zip(*rest, strict=True)]
    out = []
    tail = "\x1f" if rest else ""
    for t in texts:
        h = proto.copy()
        h.update((t + tail).encode("utf-8", "surrogatepass"))
        out.append(h.hexdigest())
    return out
