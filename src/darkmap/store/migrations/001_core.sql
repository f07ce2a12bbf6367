-- Core evidence model. Every evidence row carries provenance:
-- capture_sha256 (raw bytes in the capture store), source (path or URL), method
-- (importer@version), observed_at (UTC, when the market showed it).

CREATE TABLE captures (
    sha256        VARCHAR PRIMARY KEY,
    size          BIGINT NOT NULL,
    source        VARCHAR NOT NULL,
    media_type    VARCHAR,
    captured_at   TIMESTAMP NOT NULL
);

CREATE TABLE ingest_runs (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    args          VARCHAR,
    summary       JSON
);

-- One row per (capture, importer) fully processed: makes ingestion idempotent.
CREATE TABLE processed (
    sha256        VARCHAR NOT NULL,
    importer      VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    read_count    INTEGER NOT NULL,
    stored_count  INTEGER NOT NULL,
    quarantined   INTEGER NOT NULL,
    skipped       INTEGER NOT NULL,
    market_id     VARCHAR,
    page_type     VARCHAR,
    processed_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (sha256, importer)
);

CREATE TABLE markets (
    market_id     VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    onion         VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE accounts (
    account_id    VARCHAR PRIMARY KEY,      -- market_id + ':' + lower(handle)
    market_id     VARCHAR NOT NULL,
    handle        VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    capture_sha256 VARCHAR NOT NULL,        -- first capture that showed it
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE account_observations (
    obs_id        VARCHAR PRIMARY KEY,      -- hash of content + capture: idempotent
    account_id    VARCHAR NOT NULL,
    joined_at     TIMESTAMP,
    last_seen_at  TIMESTAMP,
    rating        DOUBLE,
    level         VARCHAR,
    feedback_count INTEGER,
    sales_count   INTEGER,
    profile_text  VARCHAR,
    terms_text    VARCHAR,
    ships_from    VARCHAR,
    url           VARCHAR,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE listings (
    listing_id    VARCHAR PRIMARY KEY,      -- market_id + ':' + listing_ref
    market_id     VARCHAR NOT NULL,
    listing_ref   VARCHAR NOT NULL,
    account_id    VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE listing_observations (
    obs_id        VARCHAR PRIMARY KEY,
    listing_id    VARCHAR NOT NULL,
    account_id    VARCHAR,
    title         VARCHAR,
    description   VARCHAR,
    price         DOUBLE,
    currency      VARCHAR,
    price_text    VARCHAR,
    quantity_text VARCHAR,
    stock         INTEGER,
    ships_from    VARCHAR,
    ships_to      VARCHAR[],
    category_path VARCHAR[],
    feedback_count INTEGER,
    sales_count   INTEGER,
    url           VARCHAR,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE feedback (
    feedback_id   VARCHAR PRIMARY KEY,
    market_id     VARCHAR NOT NULL,
    account_id    VARCHAR,                  -- the vendor the feedback is about
    listing_id    VARCHAR,
    listing_title VARCHAR,
    buyer_masked  VARCHAR,
    rating        DOUBLE,
    rating_scale  DOUBLE,
    text          VARCHAR,
    left_at       TIMESTAMP,
    amount        DOUBLE,
    currency      VARCHAR,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE pgp_keys (
    fingerprint   VARCHAR PRIMARY KEY,
    key_id        VARCHAR NOT NULL,
    algorithm     VARCHAR,
    bits          INTEGER,
    created_at    TIMESTAMP,
    user_ids      VARCHAR[],
    subkeys       JSON,
    armored       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

-- Identifiers that can link people, each where it was seen.
CREATE TABLE identifiers (
    ident_id      VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,
    value         VARCHAR NOT NULL,
    market_id     VARCHAR,
    account_id    VARCHAR,
    listing_id    VARCHAR,
    field         VARCHAR,
    context       VARCHAR,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);

CREATE TABLE skipped_pages (
    skip_id       VARCHAR PRIMARY KEY,
    market_id     VARCHAR,
    page_type     VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL
);

CREATE TABLE quarantine (
    quarantine_id VARCHAR PRIMARY KEY,
    market_id     VARCHAR,
    locator       VARCHAR NOT NULL,
    field         VARCHAR,
    reason        VARCHAR NOT NULL,
    excerpt       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    run_id        VARCHAR
);
