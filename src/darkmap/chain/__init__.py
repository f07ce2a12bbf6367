"""Bitcoin data: parse blocks and transactions, cluster addresses, tag, trace value.

Modules: ``script`` (script types and addresses), ``parse`` (raw blocks, blk*.dat,
getblock JSON, Esplora JSON, btcd UTXO files), ``load`` (files into column batches),
``cluster`` (union-find with named, switchable heuristics), ``tags``
(GraphSense TagPacks), ``trace`` (taint tracing, peel chains, cash-outs), ``wallet``
(cluster summaries). The chain tables are written by ``darkmap.store.chain``; scores
against simulator truth are in ``darkmap.evaluate.clustering``. Hashes, base58 and
bech32 are in ``darkmap.model.encoding``.
"""

__all__: list[str] = []
