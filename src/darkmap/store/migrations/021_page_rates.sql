-- Exchange rates a market page states itself (Dream's "Exchange" sidebar "USD 10890.3",
-- Hansa's "USD/BTC 2711.90", Apollon's "BTC/USD 9448.69", Cryptonia's "1 BTC = ...
-- USD"): one row per page and currency, with the page's provenance. The assessment
-- converts a listing's price in that currency at its page's rate before the fx table's
-- (docs/drugs.md, "Prices in USD").
--   usd   USD per one unit of `currency` (BTC), as the page shows it.
CREATE TABLE page_rates (
    rate_id        VARCHAR NOT NULL,        -- hash of the capture, locator and currency
    market_id      VARCHAR NOT NULL,
    currency       VARCHAR NOT NULL,
    usd            DOUBLE NOT NULL,
    locator        VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    method         VARCHAR NOT NULL,
    observed_at    TIMESTAMP
);
