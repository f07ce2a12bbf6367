-- Competing blocks (forks): which stored blocks are off the best chain, and the
-- transactions found only in them. `darkmap.model.best_chain` decides (most work, then
-- most blocks, then the lowest tip hash, within blocks linked by prev_hash);
-- `store.chain.write_batch` recomputes both flags after every load. A stale
-- transaction is left out of balances, clustering, tracing and wallet views.
ALTER TABLE btc_blocks ADD COLUMN stale BOOLEAN;
ALTER TABLE btc_tx ADD COLUMN stale BOOLEAN;
UPDATE btc_blocks SET stale = false;
UPDATE btc_tx SET stale = false;

-- The blocks a transaction was found in besides btc_tx.block_hash (the first one
-- loaded): a transaction confirmed in two branches is stored once and is stale only
-- when every block holding it is. A workspace loaded before this migration kept only
-- the first block of each transaction.
CREATE TABLE btc_tx_blocks (
    tx_id          BIGINT NOT NULL,
    block_hash     VARCHAR NOT NULL
);
