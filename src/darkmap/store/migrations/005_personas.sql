-- Personas: groups of accounts (across and within markets) believed to be one vendor.
-- Written by `darkmap link`; every link keeps its signals and their contributions so an
-- analyst can see why, and analyst judgements constrain every later re-link.

CREATE TABLE personas (
    persona_id    VARCHAR PRIMARY KEY,
    label         VARCHAR,                  -- most common handle of its accounts
    n_accounts    INTEGER NOT NULL,
    n_markets     INTEGER,
    first_seen    TIMESTAMP,
    last_seen     TIMESTAMP,
    cohesion      DOUBLE,                   -- mean match probability over member pairs
    run_id        VARCHAR,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE persona_members (
    persona_id    VARCHAR NOT NULL,
    account_id    VARCHAR NOT NULL,
    PRIMARY KEY (persona_id, account_id)
);

-- One row per scored candidate pair (a < b), kept whether or not it was merged.
CREATE TABLE account_links (
    a             VARCHAR NOT NULL,
    b             VARCHAR NOT NULL,
    score         DOUBLE NOT NULL,          -- calibrated match probability
    signals       JSON NOT NULL,            -- {signal: {value, level, contribution}}
    method        VARCHAR NOT NULL,         -- model@version and signal set
    merged        BOOLEAN,                  -- both ends ended in one persona
    run_id        VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (a, b)
);

CREATE TABLE link_runs (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    args          JSON,
    summary       JSON
);

-- Analyst verdicts on a pair (a < b); a withdrawn judgement keeps its row.
CREATE TABLE judgements (
    judgement_id  VARCHAR PRIMARY KEY,
    a             VARCHAR NOT NULL,
    b             VARCHAR NOT NULL,
    verdict       VARCHAR NOT NULL CHECK (verdict IN ('same', 'different', 'unsure')),
    author        VARCHAR NOT NULL,
    note          VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    withdrawn_at  TIMESTAMP
);
