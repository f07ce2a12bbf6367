"""Write the saved HTML pages of every market, one file at a time (memory stays flat).

Per market: one page per listing, one profile per vendor, paginated feedback pages per
vendor with feedback (only the newest ``feedback_pages_kept`` when that knob is set, as a
crawl that stopped early), paginated category pages, and a login and a CAPTCHA page. Each
file's modification time is set to its (deterministic) crawl time, as a crawler would
leave it; the page also shows the server time in its header.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from darkmap.simulate import layout_classic, layout_modern
from darkmap.simulate.views import ListingView, feedback_views, listing_view, vendor_view
from darkmap.simulate.world import World, day_ts

__all__ = ["LAYOUTS", "write_pages"]

LAYOUTS: dict[str, ModuleType] = {"classic": layout_classic, "modern": layout_modern}
_FEEDBACK_PER_PAGE = 50
_INDEX_PER_PAGE = 40


class _Writer:
    """Writes files under one market folder with increasing crawl timestamps."""

    def __init__(self, base: Path, start_ts: int) -> None:
        self.base = base
        self.ts = start_ts
        self.count = 0
        self.made: set[Path] = set()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ts, tz=UTC)

    def write(self, rel: str, text: str) -> None:
        path = self.base / rel
        if path.parent not in self.made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(path.parent)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (self.ts, self.ts))
        self.ts += 3
        self.count += 1


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def write_pages(world: World, out: Path, shown_btc: dict[int, str]) -> dict[str, int]:
    """Write ``out/pages/<market_id>/...``; ``shown_btc`` maps account index to a BTC
    address the vendor publishes on its profile. Returns page counts by type."""
    counts: dict[str, int] = defaultdict(int)
    by_market: dict[int, list[int]] = defaultdict(list)
    for acc in world.accounts:
        by_market[acc.market].append(acc.idx)
    for m in world.markets:
        lay = LAYOUTS[m.layout]
        w = _Writer(out / "pages" / m.market_id, day_ts(m.last_day, 8 * 3600))
        w.write(lay.paths.login, lay.login_page(m, w.now()))
        w.write(lay.paths.captcha, lay.captcha_page(m, w.now()))
        counts["login"] += 1
        counts["captcha"] += 1
        index: dict[str, list[ListingView]] = defaultdict(list)
        for ai in sorted(by_market[m.idx], key=lambda i: world.accounts[i].uid):
            acc = world.accounts[ai]
            views = [listing_view(world, world.listings[li]) for li in acc.listings]
            for v in views:
                w.write(lay.paths.listing(v.ref), lay.listing_page(m, v, w.now()))
                index[v.category[-1]].append(replace(v, description=""))
            counts["listing"] += len(views)
            fb = feedback_views(world, acc)
            vv = vendor_view(world, acc, shown_btc.get(ai), fb)
            w.write(lay.paths.vendor(acc.uid), lay.vendor_page(m, vv, views, w.now()))
            counts["vendor"] += 1
            pages = (len(fb) + _FEEDBACK_PER_PAGE - 1) // _FEEDBACK_PER_PAGE
            kept = min(pages, world.params.feedback_pages_kept or pages)
            for p in range(kept):  # the newest pages first: a partial crawl keeps these
                rows = fb[p * _FEEDBACK_PER_PAGE:(p + 1) * _FEEDBACK_PER_PAGE]
                w.write(lay.paths.feedback(acc.uid, p + 1),
                        lay.feedback_page(m, acc.handle, acc.uid, rows, p + 1, pages, w.now()))
            counts["feedback"] += kept
        for cat in sorted(index):
            rows_all = index[cat]
            pages = (len(rows_all) + _INDEX_PER_PAGE - 1) // _INDEX_PER_PAGE
            for p in range(pages):
                cards = rows_all[p * _INDEX_PER_PAGE:(p + 1) * _INDEX_PER_PAGE]
                w.write(lay.paths.index(_slug(cat), p + 1),
                        lay.index_page(m, cat, cards, p + 1, pages, w.now()))
            counts["index"] += pages
    return dict(counts)
