"""Collection: the one ingest pipeline (walk → capture → importer → store)."""
