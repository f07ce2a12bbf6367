-- Issue #17: facts the market pages show that had no place in the store.
--
-- account_observations gains
--   rating_scale        the scale `rating` is on: 100 (a percentage) or 5 (stars); NULL when
--                       the template does not state it;
--   rating_norm         rating / rating_scale, in [0, 1] (NULL when either is unknown);
--   ships_to            destinations a vendor profile lists (Cryptonia);
--   last_seen_earliest, last_seen_latest
--                       a relative last-seen ("within the last 3 days") as the interval
--                       [observed_at - 3 days, observed_at] against the observation time.
--
-- feedback_counts holds the per-polarity feedback counts a page shows for an account, one
-- row per observation and window: window 'all' (no window stated), or '1m', '6m', '12m'
-- (Empire's 1, 6 and 12 months); window_days is that span in days (NULL for 'all'). A
-- count is NULL when the page did not show it. Written by darkmap.store.writer.

ALTER TABLE account_observations ADD COLUMN rating_scale DOUBLE;
ALTER TABLE account_observations ADD COLUMN rating_norm DOUBLE;
ALTER TABLE account_observations ADD COLUMN ships_to VARCHAR[];
ALTER TABLE account_observations ADD COLUMN last_seen_earliest TIMESTAMP;
ALTER TABLE account_observations ADD COLUMN last_seen_latest TIMESTAMP;

CREATE TABLE feedback_counts (
    counts_id     VARCHAR NOT NULL,         -- hash of the observation + window
    obs_id        VARCHAR NOT NULL,         -- the account_observations row
    account_id    VARCHAR NOT NULL,
    market_id     VARCHAR NOT NULL,
    window_label  VARCHAR NOT NULL,         -- 'all', '1m', '6m', '12m', ...
    window_days   INTEGER,
    positive      INTEGER,
    neutral       INTEGER,
    negative      INTEGER,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);
