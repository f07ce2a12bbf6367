-- Tables without PRIMARY KEY (issue #3, ingest speed): the append-only evidence tables
-- and the two entity tables whose rows grow with the data (accounts, listings).
--
-- Evidence rows come from exactly one capture and their id hashes that capture (plus
-- the unit locator and content). A capture's rows are written in the same transaction
-- as its `processed` row, and ingest skips a (capture, importer) already in
-- `processed`; the writer drops repeated ids of one capture itself (first row wins, as
-- INSERT OR IGNORE did) and, when a capture may already have stored rows (a rerun under
-- another importer, a big file flushed in several parts), leaves out ids it finds
-- stored. Accounts and listings are "first seen wins" entities: the writer keeps the
-- first row of each key in a flush and leaves out keys already stored (found by a join
-- of the flush with the stored keys). So the ids stay unique without an ART index,
-- whose upkeep was about half the insert and commit time of a large CSV. Markets and
-- PGP keys (a handful of rows) and the bookkeeping tables (captures, processed) keep
-- their keys.
--
-- DuckDB cannot drop a constraint, so each table is rebuilt: same columns in the same
-- order, same rows, the key column NOT NULL. No secondary index is added: every query
-- joins or filters these tables by scan (hash joins), none looks up one id.

CREATE TABLE account_observations__keyless (
    obs_id        VARCHAR NOT NULL,      -- hash of content + capture: idempotent
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
INSERT INTO account_observations__keyless SELECT * FROM account_observations;
DROP TABLE account_observations;
ALTER TABLE account_observations__keyless RENAME TO account_observations;

CREATE TABLE listing_observations__keyless (
    obs_id        VARCHAR NOT NULL,
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
INSERT INTO listing_observations__keyless SELECT * FROM listing_observations;
DROP TABLE listing_observations;
ALTER TABLE listing_observations__keyless RENAME TO listing_observations;

CREATE TABLE feedback__keyless (
    feedback_id   VARCHAR NOT NULL,
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
INSERT INTO feedback__keyless SELECT * FROM feedback;
DROP TABLE feedback;
ALTER TABLE feedback__keyless RENAME TO feedback;

CREATE TABLE identifiers__keyless (
    ident_id      VARCHAR NOT NULL,
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
INSERT INTO identifiers__keyless SELECT * FROM identifiers;
DROP TABLE identifiers;
ALTER TABLE identifiers__keyless RENAME TO identifiers;

CREATE TABLE skipped_pages__keyless (
    skip_id       VARCHAR NOT NULL,
    market_id     VARCHAR,
    page_type     VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    locator       VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL
);
INSERT INTO skipped_pages__keyless SELECT * FROM skipped_pages;
DROP TABLE skipped_pages;
ALTER TABLE skipped_pages__keyless RENAME TO skipped_pages;

CREATE TABLE quarantine__keyless (
    quarantine_id VARCHAR NOT NULL,
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
INSERT INTO quarantine__keyless SELECT * FROM quarantine;
DROP TABLE quarantine;
ALTER TABLE quarantine__keyless RENAME TO quarantine;

CREATE TABLE accounts__keyless (
    account_id    VARCHAR NOT NULL,      -- market_id + ':' + lower(handle)
    market_id     VARCHAR NOT NULL,
    handle        VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    capture_sha256 VARCHAR NOT NULL,        -- first capture that showed it
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);
INSERT INTO accounts__keyless SELECT * FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts__keyless RENAME TO accounts;

CREATE TABLE listings__keyless (
    listing_id    VARCHAR NOT NULL,      -- market_id + ':' + listing_ref
    market_id     VARCHAR NOT NULL,
    listing_ref   VARCHAR NOT NULL,
    account_id    VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    observed_at   TIMESTAMP
);
INSERT INTO listings__keyless SELECT * FROM listings;
DROP TABLE listings;
ALTER TABLE listings__keyless RENAME TO listings;
