-- Whether a transaction's block is proven to hold it (review of the money fixes, H1): a
-- row naming a loaded block (blockchain-etl Parquet's `block_hash`, say) is not proof
-- that the block holds the transaction. `block_checked` is true only where the block was
-- loaded with its transactions and its merkle root recomputed over them, this one among
-- them (a block file, block JSON, or ETL Parquet whose blocks file's merkle root matches
-- the file's transactions); only then may the placement rank a spender first in a coin
-- spent twice (`store.chain.mark_conflicts`). Rows stored before: a placement with a
-- position whose block was loaded whole with a matching merkle root, not by ETL import
-- (whose transactions were not recorded as checked), counts as checked.
ALTER TABLE btc_tx ADD COLUMN block_checked BOOLEAN;
ALTER TABLE btc_tx_blocks ADD COLUMN checked BOOLEAN;
UPDATE btc_tx AS t SET block_checked = (t.position IS NOT NULL AND t.method <> 'etl_parquet'
    AND EXISTS (SELECT 1 FROM btc_blocks b WHERE b.block_hash = t.block_hash
                AND b.n_tx IS NOT NULL AND b.merkle_ok))
WHERE t.block_hash IS NOT NULL;
UPDATE btc_tx_blocks AS x SET checked = EXISTS (SELECT 1 FROM btc_blocks b
    WHERE b.block_hash = x.block_hash AND b.n_tx IS NOT NULL AND b.merkle_ok
    AND b.method <> 'etl_parquet');
