-- Issue #22: sales estimates whose ranges hold. Written by darkmap.store.sales.
--
-- feedback_rates: each market's share of orders that leave feedback, estimated from the
-- counters it displays (sales beside feedback totals, order rows marked "no feedback"),
-- or borrowed from the other markets with a widened spread.
-- sales_estimates: one row per entity (account | persona), measure and period: orders,
-- units (pills, counterfeit_pills, fentanyl_risk_pills, grams_total, grams:<substance>) and
-- customers, each with its estimate, the stated interval (coverage, e.g. 0.9) and, where
-- one exists, a hard lower bound (e.g. distinct masked buyers seen).

CREATE TABLE feedback_rates (
    market_id          VARCHAR PRIMARY KEY,
    rate               DOUBLE NOT NULL,
    rate_low           DOUBLE NOT NULL,
    rate_high          DOUBLE NOT NULL,
    coverage           DOUBLE NOT NULL,
    source             VARCHAR NOT NULL,        -- counters | order rows | borrowed
    n_accounts         INTEGER NOT NULL,        -- accounts with a counter pair
    n_orders           INTEGER NOT NULL,        -- orders those counters show
    n_feedback         INTEGER NOT NULL,        -- feedback those counters show
    evidence           JSON,
    method             VARCHAR NOT NULL,
    computed_at        TIMESTAMP NOT NULL
);

CREATE TABLE sales_estimates (
    entity_kind        VARCHAR NOT NULL,        -- account | persona
    entity_id          VARCHAR NOT NULL,
    measure            VARCHAR NOT NULL,        -- orders | customers | pills | grams:cocaine ...
    period             VARCHAR NOT NULL,        -- 'all' or 'YYYY-MM'
    estimate           DOUBLE NOT NULL,
    low                DOUBLE NOT NULL,
    high               DOUBLE NOT NULL,
    lower_bound        DOUBLE,
    coverage           DOUBLE NOT NULL,
    basis              VARCHAR,                 -- counter | feedback | extrapolated | ...
    evidence           JSON,
    method             VARCHAR NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (entity_kind, entity_id, measure, period)
);
