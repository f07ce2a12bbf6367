"""Entity resolution: link vendor accounts across markets into personas.

Entry points: :func:`darkmap.resolve.link.link` (build personas),
:mod:`darkmap.resolve.judgements` (analyst verdicts), :mod:`darkmap.resolve.personas`
(show/search) and :func:`darkmap.evaluate.linking.eval_linking`.
"""

__all__: list[str] = []
