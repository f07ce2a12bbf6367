"""Saved pages observed long after the newest date they show: a sign their observation
time is a copied file's modification time, not the time they were saved.

A saved page's observation time is the time the page states (a "Server Time", a footer
date, "Last active ... (today)"), else the capture time the analyst stated
(``darkmap ingest --captured-at``), else the file's modification time
(darkmap.collect.ingest). A page saved on a day shows dates up to about that day (its
feedback, a vendor's last login); pages copied years later keep the copy's time. Per
market, the newest date any of its saved pages shows (feedback left, an account joined
or last seen) is compared with each page's observation time: pages observed more than
:data:`DOUBT_DAYS` after it are reported. Dates a page gives relative to its own time
("3 days ago") move with that time and cannot tell; a market whose pages show no date
is not checked. One query over the page captures' rows (``darkmap ingest`` and
``darkmap status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

__all__ = ["DOUBT_DAYS", "PageTimeDoubt", "page_time_doubts"]

DOUBT_DAYS = 180
"""How long after the newest date its market's pages show a page's observation time is
doubted. Markets show feedback and logins of the last days or weeks; half a year leaves
room for a quiet vendor's page and still catches a copy made years later."""


@dataclass(frozen=True, slots=True)
class PageTimeDoubt:
    """A market's saved pages observed more than DOUBT_DAYS after the newest date its
    pages show."""

    market_id: str
    pages: int
    """Page captures observed that late."""
    observed_first: datetime
    observed_last: datetime
    newest_shown: datetime
    """The newest date any saved page of the market shows."""


_SQL = f"""
WITH pc AS (
    SELECT DISTINCT sha256, market_id FROM processed
    WHERE importer = 'pages' AND market_id IS NOT NULL),
facts AS (
    SELECT capture_sha256 AS sha, observed_at AS obs, NULL::TIMESTAMP AS shown
    FROM listing_observations WHERE capture_sha256 IN (SELECT sha256 FROM pc)
    UNION ALL
    SELECT capture_sha256, observed_at, greatest(joined_at, last_seen_at)
    FROM account_observations WHERE capture_sha256 IN (SELECT sha256 FROM pc)
    UNION ALL
    SELECT capture_sha256, observed_at, left_at
    FROM feedback WHERE capture_sha256 IN (SELECT sha256 FROM pc)),
per AS (SELECT sha, max(obs) AS obs, max(shown) AS shown FROM facts GROUP BY sha),
mk AS (SELECT pc.market_id, max(per.shown) AS newest
       FROM pc JOIN per ON per.sha = pc.sha256 GROUP BY pc.market_id)
SELECT pc.market_id, count(DISTINCT pc.sha256), min(per.obs), max(per.obs), mk.newest
FROM pc JOIN per ON per.sha = pc.sha256 JOIN mk ON mk.market_id = pc.market_id
WHERE per.obs > mk.newest + INTERVAL {DOUBT_DAYS} DAY
  AND (CAST(? AS VARCHAR) IS NULL OR pc.sha256 IN (
       SELECT sha256 FROM processed WHERE run_id = CAST(? AS VARCHAR)))
GROUP BY pc.market_id, mk.newest
ORDER BY pc.market_id
"""


def page_time_doubts(con: duckdb.DuckDBPyConnection,
                     run_id: str | None = None) -> list[PageTimeDoubt]:
    """Per market, the saved pages observed more than :data:`DOUBT_DAYS` after the newest
    date its pages show (only pages ingested by ``run_id`` when given)."""
    rows = con.execute(_SQL, [run_id, run_id]).fetchall()
    return [PageTimeDoubt(*r) for r in rows]
