-- Bitcoin chain data, address clusters, attribution tags.
-- Transactions and addresses are keyed by dense integer ids (tx_id, address_id) so the
-- clustering and tracing stages work on numpy arrays; the hex txid / address string is
-- kept once, here. Loads are append-only and idempotent (a txid already stored is
-- skipped), so ids never change once given.

CREATE TABLE btc_blocks (
    block_hash     VARCHAR PRIMARY KEY,
    height         INTEGER,
    version        INTEGER,
    prev_hash      VARCHAR,
    merkle_root    VARCHAR,
    time           TIMESTAMP,
    bits           BIGINT,
    nonce          BIGINT,
    n_tx           INTEGER,                -- NULL for a header without its transactions
    merkle_ok      BOOLEAN,                -- recomputed root equals the header's
    witness_ok     BOOLEAN,                -- BIP141 commitment checked (NULL: no segwit)
    pow_ok         BOOLEAN,                -- hash <= target from bits
    network        VARCHAR,
    locator        VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    method         VARCHAR NOT NULL
);

CREATE TABLE btc_tx (
    tx_id          BIGINT PRIMARY KEY,     -- dense, in load order (chain order per file)
    txid           VARCHAR NOT NULL,       -- display hex, recomputed from the bytes
    wtxid          VARCHAR,
    block_hash     VARCHAR,
    height         INTEGER,
    block_time     TIMESTAMP,
    position       INTEGER,                -- index in its block
    version        INTEGER,
    locktime       BIGINT,
    size           INTEGER,
    weight         INTEGER,
    n_in           INTEGER NOT NULL,
    n_out          INTEGER NOT NULL,
    is_coinbase    BOOLEAN NOT NULL,
    segwit         BOOLEAN NOT NULL,
    bip69          BOOLEAN NOT NULL,       -- inputs and outputs in BIP69 order
    locator        VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    method         VARCHAR NOT NULL
);

CREATE TABLE btc_address (
    address_id     BIGINT PRIMARY KEY,
    address        VARCHAR NOT NULL,
    script_type    VARCHAR
);

CREATE TABLE btc_txout (
    tx_id          BIGINT NOT NULL,
    n              INTEGER NOT NULL,
    value          BIGINT NOT NULL,        -- satoshis
    script_type    VARCHAR NOT NULL,
    address_id     BIGINT,                 -- NULL: multisig, OP_RETURN, non-standard
    script_hex     VARCHAR                 -- kept for outputs without an address
);

CREATE TABLE btc_txin (
    tx_id          BIGINT NOT NULL,
    n              INTEGER NOT NULL,
    prev_txid      VARCHAR NOT NULL,
    prev_vout      BIGINT NOT NULL,
    prev_tx_id     BIGINT,                 -- NULL until the spent tx is loaded
    value          BIGINT,                 -- NULL while the spent output is unknown
    address_id     BIGINT,
    script_type    VARCHAR,
    addr_inferred  BOOLEAN,                -- address read from scriptSig/witness only
    sequence       BIGINT
);

-- Outputs known from outside the loaded transactions (a UTXO set, JSON prevouts).
CREATE TABLE btc_prevouts (
    prev_txid      VARCHAR NOT NULL,
    vout           BIGINT NOT NULL,
    value          BIGINT NOT NULL,
    script_type    VARCHAR,
    address_id     BIGINT,
    height         INTEGER,
    coinbase       BOOLEAN,
    capture_sha256 VARCHAR NOT NULL,
    source         VARCHAR NOT NULL
);

-- Clustering: the latest run's assignment, why each merge happened, CoinJoins found.
CREATE TABLE btc_cluster_runs (
    run_id         VARCHAR PRIMARY KEY,
    created_at     TIMESTAMP NOT NULL,
    heuristics     VARCHAR[],
    n_addresses    BIGINT,
    n_clusters     BIGINT,
    n_edges        BIGINT,
    n_coinjoins    BIGINT,
    seconds        DOUBLE
);

CREATE TABLE btc_clusters (
    address_id     BIGINT PRIMARY KEY,
    cluster_id     BIGINT NOT NULL         -- smallest address_id in the cluster
);

CREATE TABLE btc_cluster_merges (
    tx_id          BIGINT NOT NULL,
    heuristic      VARCHAR NOT NULL,       -- multi_input, change_one_time, ...
    address_a      BIGINT NOT NULL,
    address_b      BIGINT NOT NULL,
    run_id         VARCHAR NOT NULL
);

CREATE TABLE btc_coinjoins (
    tx_id          BIGINT PRIMARY KEY,
    kind           VARCHAR NOT NULL,       -- wasabi1, wasabi2, whirlpool, joinmarket
    n_equal        INTEGER,
    denomination   BIGINT
);

-- Attribution tags (GraphSense TagPack fields) with provenance.
CREATE TABLE btc_tags (
    tag_id         VARCHAR PRIMARY KEY,
    address        VARCHAR NOT NULL,
    label          VARCHAR NOT NULL,
    category       VARCHAR,
    confidence     VARCHAR,
    source         VARCHAR,
    actor          VARCHAR,
    currency       VARCHAR,
    tagpack_title  VARCHAR,
    tagpack_creator VARCHAR,
    origin         VARCHAR NOT NULL,       -- 'tagpack' or 'evidence'
    account_id     VARCHAR,                -- evidence tags: who published the address
    ident_id       VARCHAR,
    capture_sha256 VARCHAR,
    imported_at    TIMESTAMP NOT NULL
);
