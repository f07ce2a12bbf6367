"""Entity resolution: link vendor accounts across markets into personas.

Entry points: :func:`darkmap.resolve.link.link` (build personas),
:mod:`darkmap.resolve.judgements` (analyst verdicts), :mod:`darkmap.resolve.lookup`
(show/search) and :func:`darkmap.evaluate.linking.eval_linking`.

This package holds the logic (profiles, candidate blocks, signals, models, clustering);
it reads evidence through :mod:`darkmap.store.evidence` and reads and writes personas,
links and judgements through :mod:`darkmap.store.personas`, which hold the SQL.
"""

__all__: list[str] = []
