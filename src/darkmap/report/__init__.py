"""HTML reports: a registry of sections (:mod:`darkmap.report.sections`), one module per
section (``section_*.py``, each reading through the store's query modules), rendered into
one file by :mod:`darkmap.report.html`."""

__all__: list[str] = []
