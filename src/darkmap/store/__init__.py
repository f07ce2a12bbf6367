"""The evidence store: DuckDB schema, migrations and the provenance-stamping writer."""
