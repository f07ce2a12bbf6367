-- Drug intelligence (darkmap assess / targets): one assessment per listing, sales and
-- jurisdiction estimates per account and per persona. Every row says how it was made
-- (method) and when (assessed_at / computed_at); evidence columns hold the words, rules
-- and figures behind each value so an analyst can check it.

CREATE TABLE listing_assessments (
    listing_id         VARCHAR PRIMARY KEY,
    obs_id             VARCHAR,                 -- the listing_observations row assessed
    account_id         VARCHAR,
    drug_class         VARCHAR NOT NULL,
    substance          VARCHAR NOT NULL,
    class_confidence   DOUBLE NOT NULL,
    counterfeit_pill   BOOLEAN NOT NULL,
    fentanyl_risk      BOOLEAN NOT NULL,
    flag_evidence      JSON,                    -- {"class": [...], "counterfeit_pill": [...], ...}
    units              DOUBLE,
    unit_kind          VARCHAR NOT NULL,        -- pill|blotter|gram|ml|seed|patch|piece|unknown
    dose_mg            DOUBLE,
    pack_price_usd     DOUBLE,
    unit_price_usd     DOUBLE,
    price_per_gram_usd DOUBLE,
    parse_confidence   DOUBLE NOT NULL,
    parse_note         VARCHAR,
    observed_at        TIMESTAMP,
    method             VARCHAR NOT NULL,
    assessed_at        TIMESTAMP NOT NULL
);

-- Orders and revenue by month, for an account or a persona (entity_kind).
CREATE TABLE sales_monthly (
    entity_kind        VARCHAR NOT NULL,        -- account|persona
    entity_id          VARCHAR NOT NULL,
    month              DATE NOT NULL,
    feedback_count     INTEGER NOT NULL,
    orders_est         DOUBLE NOT NULL,
    orders_low         DOUBLE NOT NULL,
    orders_high        DOUBLE NOT NULL,
    revenue_usd        DOUBLE,
    revenue_usd_low    DOUBLE,
    revenue_usd_high   DOUBLE,
    buyers_distinct_min INTEGER,
    method             VARCHAR NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (entity_kind, entity_id, month)
);

CREATE TABLE sales_summary (
    entity_kind        VARCHAR NOT NULL,
    entity_id          VARCHAR NOT NULL,
    n_accounts         INTEGER,
    n_markets          INTEGER,
    n_listings         INTEGER,
    feedback_count     INTEGER NOT NULL,        -- max(feedback rows, counts shown on pages)
    orders_est         DOUBLE NOT NULL,
    orders_low         DOUBLE NOT NULL,
    orders_high        DOUBLE NOT NULL,
    orders_reported    INTEGER,                 -- a "sales" figure the market displayed
    revenue_usd        DOUBLE,
    revenue_usd_low    DOUBLE,
    revenue_usd_high   DOUBLE,
    buyers_distinct_min INTEGER,
    buyers_note        VARCHAR,
    first_active       TIMESTAMP,
    last_active        TIMESTAMP,
    active_days        INTEGER,
    evidence           JSON,
    method             VARCHAR NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (entity_kind, entity_id)
);

CREATE TABLE jurisdictions (
    entity_kind        VARCHAR NOT NULL,
    entity_id          VARCHAR NOT NULL,
    country            VARCHAR,                 -- ISO 3166-1 alpha-2, NULL when unknown
    confidence         DOUBLE NOT NULL,
    evidence           JSON,                    -- [{"kind": "ships_from", "value": ..., "country": ..., "weight": ...}]
    method             VARCHAR NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (entity_kind, entity_id)
);
