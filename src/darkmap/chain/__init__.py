"""The chain stage: cluster Bitcoin addresses into wallets, tag them, trace value.

Modules: ``graph`` (the stored transaction graph as numpy arrays), ``coinjoin``
(CoinJoin detection), ``cluster`` (union-find with named, switchable heuristics, and why
addresses merged), ``tags`` (service categories, tags derived from the evidence, TagPack
export), ``trace`` (taint tracing, peel chains, cash-outs), ``wallet`` (cluster
summaries). This package holds the logic; every query of the chain tables is in
:mod:`darkmap.store.chain`. Chain files and TagPacks are read by the importers
(:mod:`darkmap.importers.blockchain`, :mod:`darkmap.importers.tagpack`) through the ingest
pipeline (``darkmap chain load`` is ``darkmap ingest --importer bitcoin``); the wire
format, scripts and addresses are :mod:`darkmap.model.bitcoin`; scores against simulator
truth are in :mod:`darkmap.evaluate.clustering`.
"""

__all__: list[str] = []
