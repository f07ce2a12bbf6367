"""Which stored blocks are stale: the best chain among competing blocks.

Blocks compete when they share a parent (a fork): only one branch is the chain the
network kept. The blocks are linked by ``prev_hash`` into trees; a tree starts at a block
whose parent is not loaded (genesis, or the first block after a gap). In each tree the
best tip is the one with the most cumulative work, counting a block's work (from its
``bits``) only when its proof of work holds (a hostile fork cannot win by claiming a
difficulty it did not mine); then the longest branch (simulated chains are not mined);
then, on a tie, the lowest tip hash (deterministic whatever order the blocks were loaded
in). The path from the tree's start to that tip is the main chain; every other block of
the tree is stale. Blocks in different trees (a gap between them) cannot be compared and
are never marked stale for that alone.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BlockLink", "block_work", "stale_blocks"]

BlockLink = tuple[str, str | None, int | None, bool | None]
"""A stored block as the choice needs it: (hash, prev_hash, bits, pow_ok)."""


def block_work(bits: int | None) -> int:
    """Expected hashes to mine a block of compact target ``bits`` (Bitcoin Core's
    ``GetBlockProof``: 2**256 // (target + 1)); 0 for a missing, negative or zero target."""
    if bits is None or bits < 0:
        return 0
    exponent, mantissa = (bits >> 24) & 0xFF, bits & 0x007FFFFF
    if bits & 0x00800000 or mantissa == 0:
        return 0
    target = (mantissa << (8 * (exponent - 3)) if exponent >= 3
              else mantissa >> (8 * (3 - exponent)))
    if target <= 0 or target >= 1 << 256:
        return 0
    return (1 << 256) // (target + 1)


def stale_blocks(blocks: Iterable[BlockLink]) -> set[str]:
    """Hashes of the blocks off the best chain of their tree (see the module docstring)."""
    info = {h: (prev, bits, pow_ok) for h, prev, bits, pow_ok in blocks}
    children: dict[str, list[str]] = {}
    roots = []
    for h, (prev, _, _) in info.items():
        if prev is not None and prev in info and prev != h:
            children.setdefault(prev, []).append(h)
        else:
            roots.append(h)
    stale: set[str] = set()
    for root in roots:
        stale |= _tree_stale(root, info, children)
    return stale


def _tree_stale(root: str, info: dict[str, tuple[str | None, int | None, bool | None]],
                children: dict[str, list[str]]) -> set[str]:
    """The stale blocks of the tree starting at ``root``."""
    score: dict[str, tuple[int, int]] = {}
    parent: dict[str, str] = {}
    best: tuple[int, int, str] | None = None
    stack = [root]
    while stack:  # iterative: a chain may be a million blocks long
        h = stack.pop()
        _, bits, pow_ok = info[h]
        up = score.get(parent[h], (0, 0)) if h in parent else (0, 0)
        score[h] = (up[0] + (block_work(bits) if pow_ok else 0), up[1] + 1)
        kids = children.get(h, [])
        if not kids:
            work, length = score[h]
            if best is None or (work, length) > best[:2] or (
                    (work, length) == best[:2] and h < best[2]):
                best = (work, length, h)
        for c in kids:
            parent[c] = h
            stack.append(c)
    main = set()
    tip = best[2] if best else root
    while True:
        main.add(tip)
        if tip not in parent:
            break
        tip = parent[tip]
    return set(score) - main
