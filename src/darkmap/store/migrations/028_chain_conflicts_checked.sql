-- When the coins spent twice were last recomputed over the whole chain (review of the
-- money fixes, M3): `store.chain.mark_conflicts` recomputed every conflict after every
-- file and every ETL batch. After a load it now returns at once when nothing can have
-- changed: the chain was checked whole before (a row here), no conflict, set-aside or
-- stale transaction or stale block is stored, and no input of the batch spends an
-- outpoint another input spends. A workspace from before (no row) is checked whole at
-- its next load or clustering run.
CREATE TABLE btc_conflict_checks (
    checked_at     TIMESTAMP NOT NULL
);
