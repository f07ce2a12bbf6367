"""Bitcoin data: parse blocks and transactions, cluster addresses, tag, trace value.

Modules: ``script`` (script types and addresses), ``parse`` (raw blocks, blk*.dat,
getblock JSON, Esplora JSON, btcd UTXO files), ``load`` (files into column batches),
``tables`` (the column batches), ``cluster`` (union-find with named, switchable
heuristics), ``coinjoin`` (CoinJoin detection), ``graph`` (the transaction graph as numpy
arrays), ``tags`` (GraphSense TagPacks), ``trace`` (taint tracing, peel chains,
cash-outs), ``wallet`` (cluster summaries). This package holds the logic; every query of
the chain tables is in :mod:`darkmap.store.chain`. Chain files are loaded through the
ingest pipeline (:mod:`darkmap.importers.bitcoin`, ``darkmap chain load``); scores against
simulator truth are in :mod:`darkmap.evaluate.clustering`. The wire format is
:mod:`darkmap.model.bitcoin`; hashes, base58 and bech32 are :mod:`darkmap.model.encoding`.
"""

__all__: list[str] = []
