"""Every importer of investigator data, one module each: saved market pages (``pages``),
listing datasets (``csv_mapped``), seized SQL dumps (``sqldump``), Bitcoin data
(``bitcoin``) and GraphSense TagPacks (``tagpack``). Declared as entry points in
pyproject.toml and registered by :func:`darkmap.plugins.load_builtin`."""

__all__: list[str] = []
