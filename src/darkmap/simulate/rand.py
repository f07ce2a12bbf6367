"""Deterministic random streams: one independent ``random.Random`` per labelled purpose.

Streams are derived from the world seed and a label with BLAKE2b, never with ``hash()``,
so output does not depend on ``PYTHONHASHSEED``; adding draws to one stream never shifts
another, which keeps unrelated parts of the world stable when one part changes.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["derive_seed", "stream"]


def derive_seed(seed: int, *labels: object) -> int:
    """A 64-bit seed for ``labels`` under the world ``seed``."""
    h = hashlib.blake2b(digest_size=8, person=b"darkmap-sim")
    h.update(str(seed).encode())
    for label in labels:
        h.update(b"\x1f")
        h.update(str(label).encode("utf-8"))
    return int.from_bytes(h.digest(), "big")


def stream(seed: int, *labels: object) -> random.Random:
    """An independent ``random.Random`` for ``labels`` under the world ``seed``."""
    return random.Random(derive_seed(seed, *labels))
