-- Esplora placements stored before migration 025 (review of the money fixes, M1): the old
-- Esplora JSON path stored a file's `status` as the block (hash, height, time) without a
-- position, the only path that did; 025 kept those rows as placements, so a 2018
-- transaction claiming block 170 still read as mined there. They become claims like any
-- Esplora `status` since: the block moves to claimed_block_hash, claimed_height and
-- claimed_time, and the transaction is in no loaded block until a loaded block holding it
-- places it (store.chain._adopt_blocks). A separate migration, not an edit of 025, so a
-- workspace already at 025 is mended too.
UPDATE btc_tx SET claimed_block_hash = coalesce(claimed_block_hash, block_hash),
    claimed_height = coalesce(claimed_height, height),
    claimed_time = coalesce(claimed_time, block_time),
    block_hash = NULL, height = NULL, block_time = NULL, block_checked = NULL
WHERE block_hash IS NOT NULL AND position IS NULL;
