-- Where a file says a transaction was mined, when no loaded block shows it (money audit,
-- H2): Esplora JSON's `status` (block hash, height, time) is the file's claim, kept
-- here, never a placement: btc_tx.block_hash, height and block_time come from loaded
-- blocks alone (a transaction stored without one gains them when a loaded block holding
-- it arrives). Rows stored before this migration keep what they had.
ALTER TABLE btc_tx ADD COLUMN claimed_block_hash VARCHAR;
ALTER TABLE btc_tx ADD COLUMN claimed_height INTEGER;
ALTER TABLE btc_tx ADD COLUMN claimed_time TIMESTAMP;
