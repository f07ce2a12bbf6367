-- Issue #13: the operational record, its access control, deconfliction and audit.
--
-- Agencies belong to countries, users to agencies. Every operational record sits in a
-- compartment (own agency, named sharing group, whole task force, or a case); a user
-- reads or writes a record only through a grant on its compartment (to the user, to the
-- user's agency, or to every agency of the task force). The analytical tables stay
-- shared reference data: records point into them (ops_links) and are never copied.
-- Owners: darkmap.store.operations writes every ops_ table but ops_audit and
-- ops_audit_head, which darkmap.store.audit appends to (hash-chained, never updated).

CREATE TABLE ops_agencies (
    agency_id     VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    country       VARCHAR NOT NULL,         -- ISO 3166-1 alpha-2
    contact       VARCHAR NOT NULL,         -- deconfliction contact (desk, phone, email)
    created_by    VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE ops_users (
    user_id       VARCHAR PRIMARY KEY,
    agency_id     VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,         -- admin | officer | reader
    created_by    VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE ops_compartments (
    compartment_id VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,         -- agency | group | taskforce | case
    name          VARCHAR NOT NULL,
    owner_agency  VARCHAR NOT NULL,
    created_by    VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE ops_grants (
    compartment_id VARCHAR NOT NULL,
    grantee_kind  VARCHAR NOT NULL,         -- user | agency | taskforce
    grantee       VARCHAR NOT NULL,         -- user id, agency id, or '*'
    access        VARCHAR NOT NULL,         -- read | write
    granted_by    VARCHAR NOT NULL,
    granted_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (compartment_id, grantee_kind, grantee)
);

-- One row per operational record; the typed fields of its kind are in `data` (JSON).
CREATE TABLE ops_records (
    record_id     VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,         -- case | buy | parcel | seizure | arrest
    compartment_id VARCHAR NOT NULL,
    agency_id     VARCHAR NOT NULL,
    author        VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    case_id       VARCHAR,
    operation     VARCHAR,
    occurred_on   DATE,
    country       VARCHAR,
    provenance    VARCHAR NOT NULL,
    data          JSON NOT NULL
);

-- A record's pointers into the analytical store (shared reference data).
CREATE TABLE ops_links (
    record_id     VARCHAR NOT NULL,
    ref_kind      VARCHAR NOT NULL,         -- persona | account | listing | wallet | address
    ref_id        VARCHAR NOT NULL,
    PRIMARY KEY (record_id, ref_kind, ref_id)
);

-- What a seizure took, one row per item, for the totals.
CREATE TABLE ops_seizure_items (
    record_id     VARCHAR NOT NULL,
    item          VARCHAR NOT NULL,         -- drug | pills | firearms | cash | crypto
    substance     VARCHAR,
    grams         DOUBLE,
    count         BIGINT,
    currency      VARCHAR,                  -- cash currency or crypto asset
    amount        DOUBLE,
    usd           DOUBLE,                   -- value in USD at the seizure date
    address       VARCHAR                   -- crypto: the address or cluster it came from
);

-- The lab result of a controlled buy.
CREATE TABLE ops_lab_results (
    record_id     VARCHAR PRIMARY KEY,
    substance     VARCHAR NOT NULL,
    purity_pct    DOUBLE,
    net_weight_g  DOUBLE,
    pill_count    BIGINT,
    imprint       VARCHAR,
    fentanyl      BOOLEAN NOT NULL
);

-- Selectors held by a compartment (from records or submitted), as keyed hashes.
CREATE TABLE ops_selectors (
    selector_hmac VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    compartment_id VARCHAR NOT NULL,
    agency_id     VARCHAR NOT NULL,
    record_id     VARCHAR,
    submitted_by  VARCHAR NOT NULL,
    submitted_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (selector_hmac, kind, compartment_id)
);

-- Planned actions, for event deconfliction.
CREATE TABLE ops_events (
    event_id      VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,         -- search_warrant | controlled_delivery | arrest | surveillance
    compartment_id VARCHAR NOT NULL,
    agency_id     VARCHAR NOT NULL,
    lat           DOUBLE,
    lon           DOUBLE,
    postal_area   VARCHAR,
    starts_at     TIMESTAMP NOT NULL,
    ends_at       TIMESTAMP NOT NULL,
    created_by    VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

-- A deconfliction notice to one agency: another agency (named with its contact) holds
-- the same selector or plans a clashing event. No case detail is kept here.
CREATE TABLE ops_notices (
    notice_id     VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,         -- selector | event
    to_agency     VARCHAR NOT NULL,
    other_agency  VARCHAR NOT NULL,
    other_contact VARCHAR NOT NULL,
    subject       VARCHAR NOT NULL,         -- selector kind + hmac prefix, or own event id
    created_at    TIMESTAMP NOT NULL,
    acked_by      VARCHAR,
    acked_at      TIMESTAMP
);

-- Figures of past operations as reported publicly, each with its source.
CREATE TABLE ops_reported (
    operation     VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,         -- arrests | arrests:CC | drugs_kg | fentanyl_kg | ...
    low           DOUBLE,
    high          DOUBLE,
    text          VARCHAR NOT NULL,         -- the figure as reported
    source        VARCHAR NOT NULL
);

-- The audit trail: append-only, each entry's hash covers the previous hash and the
-- entry's canonical JSON. ops_audit_head holds the newest entry (count and hash), so
-- that a deleted tail is seen too.
CREATE TABLE ops_audit (
    seq           BIGINT PRIMARY KEY,
    entry         VARCHAR NOT NULL,         -- canonical JSON: at, actor, action, record, outcome...
    prev_hash     VARCHAR NOT NULL,
    hash          VARCHAR NOT NULL
);

CREATE TABLE ops_audit_head (
    id            INTEGER PRIMARY KEY,      -- always 1
    seq           BIGINT NOT NULL,
    hash          VARCHAR NOT NULL
);
