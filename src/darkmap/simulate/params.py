"""The simulator's knobs: world size and how hard linking is made.

Every knob has a documented default (docs/simulator.md); ``truth.json`` records the full
set used, so a linker's score can always be read against the difficulty it faced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date

from darkmap.errors import BadInputError

__all__ = ["SimParams", "START_DATE", "SIM_DAYS"]

START_DATE = date(2017, 1, 1)
SIM_DAYS = 1826  # 2017-01-01 .. 2021-12-31


@dataclass(frozen=True, slots=True)
class SimParams:
    """All simulation parameters (see docs/simulator.md for what each one does)."""

    vendors: int = 300
    markets: int = 6
    style_noise: float = 0.3
    handle_change_rate: float = 0.3
    key_reuse_rate: float = 0.6
    key_rotation_rate: float = 0.1
    multi_account_rate: float = 0.15
    migration_rate: float = 0.75
    migration_lag_days: float = 21.0
    price_noise: float = 0.15
    contact_rate: float = 0.35
    listings_per_account: float = 3.0
    orders_per_listing: float = 6.0
    buyers_per_vendor: float = 3.0
    feedback_rate_min: float = 0.5
    feedback_rate_max: float = 0.8
    market_feedback_rate_min: float | None = None
    market_feedback_rate_max: float | None = None
    vendor_feedback_sigma: float = 0.1
    removed_feedback_rate: float = 0.0
    hidden_feedback_rate: float = 0.0
    multi_order_review_rate: float = 0.0
    feedback_pages_kept: int = 0
    feedback_totals_shown: float = 1.0
    payout_address_reuse: float = 0.5
    coinjoin_rate: float = 0.15
    pages: bool = True
    chain: bool = True

    def __post_init__(self) -> None:
        if self.vendors < 1:
            raise BadInputError("vendors must be at least 1")
        if not 4 <= self.markets <= 8:
            raise BadInputError("markets must be within 4..8 (the simulator's market roster)")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_rate") or f.name in ("style_noise", "price_noise"):
                if not 0.0 <= float(v) <= 1.0:
                    raise BadInputError(f"{f.name} must be within 0..1, got {v}")
        if self.feedback_rate_min > self.feedback_rate_max:
            raise BadInputError("feedback_rate_min must not exceed feedback_rate_max")
        self._check_sales_knobs()

    def _check_sales_knobs(self) -> None:
        """The feedback and capture knobs (docs/simulator.md, "Knobs and defaults";
        docs/sales.md, 5)."""
        lo, hi = self.market_feedback_rate_min, self.market_feedback_rate_max
        if (lo is None) != (hi is None):
            raise BadInputError("market_feedback_rate_min and _max are set together or not at all")
        if lo is not None and hi is not None and not 0.0 < lo <= hi <= 1.0:
            raise BadInputError("market feedback rates must satisfy 0 < min <= max <= 1")
        if not 0.0 <= self.feedback_totals_shown <= 1.0:
            raise BadInputError("feedback_totals_shown must be within 0..1")
        if self.feedback_pages_kept < 0 or self.vendor_feedback_sigma < 0:
            raise BadInputError("feedback_pages_kept and vendor_feedback_sigma must be >= 0")

    def as_dict(self) -> dict[str, object]:
        """The parameters as written to truth.json."""
        return asdict(self)
