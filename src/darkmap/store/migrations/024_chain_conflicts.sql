-- Coins spent twice (money audit, H1): two stored transactions spending the same
-- outpoint cannot both have happened. `store.chain.mark_conflicts` recomputes both after
-- every load and before clustering: each spender of such a coin is a row of
-- btc_conflicts (`kept`: the one that stays, when one stands above the others: in a
-- block with valid proof of work on the best chain, over one in a block whose proof of
-- work fails, over one with no block), and every transaction not kept, with the
-- transactions spending its outputs, is set aside (`btc_tx.set_aside` says why): left
-- out of clustering, tracing, wallet figures and transfers, as a stale one is.
ALTER TABLE btc_tx ADD COLUMN set_aside VARCHAR;

CREATE TABLE btc_conflicts (
    prev_txid      VARCHAR NOT NULL,
    prev_vout      BIGINT NOT NULL,
    tx_id          BIGINT NOT NULL,
    kept           BOOLEAN NOT NULL,
    standing       VARCHAR NOT NULL
);
