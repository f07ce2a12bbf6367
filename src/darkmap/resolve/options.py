"""What a link run is asked to do (:class:`LinkOptions`), apart from the linker itself.

The command line reads these values for its options and its ``--help`` (the linker's
module imports numpy, scipy and the store: a second's work before any help is shown);
:mod:`darkmap.resolve.link` uses and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from darkmap.errors import BadInputError

__all__ = ["DEFAULT_THRESHOLD", "METHODS", "LinkOptions"]

METHODS = ("logistic", "fellegi-sunter")
"""The match models `darkmap link --method` offers."""

DEFAULT_THRESHOLD = 0.3
"""Merge threshold: the mean match probability two groups need to merge."""


@dataclass
class LinkOptions:
    """How to link: model, signal set, merge threshold."""

    method: str = "logistic"
    signals: tuple[str, ...] | None = None      # None: all
    without: tuple[str, ...] = ()               # names or "identifiers"
    # pairs above it attract, below repel; 0.3 (not the calibrated 0.5) gave the best
    # pairwise F1 on both development worlds with pairwise precision near 0.98
    # (docs/linking.md, "Merge threshold")
    threshold: float = DEFAULT_THRESHOLD
    complete_max: int = 60                      # score all pairs of groups up to this size
    store_min: float = 0.1                      # keep links at least this probable
    # refit handle and writing factors to the analysts' judgements (darkmap.resolve.adapt);
    # off by default: on a scene world it raised recall and lowered precision
    learn: bool = False

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`~darkmap.errors.BadInputError` for an unknown method, a
        threshold or ``store_min`` outside [0, 1] (or NaN) or a negative
        ``complete_max``."""
        if self.method not in METHODS:
            raise BadInputError(f"unknown method {self.method!r}; one of {METHODS}")
        for name in ("threshold", "store_min"):
            value = getattr(self, name)
            try:
                ok = 0.0 <= float(value) <= 1.0  # False for NaN
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise BadInputError(f"{name} must be a probability in [0, 1], not {value!r}")
        if self.complete_max < 0:
            raise BadInputError(f"complete_max must be >= 0, not {self.complete_max!r}")
