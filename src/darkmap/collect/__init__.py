"""Collection: the ingest pipeline, dataset importers, seized dumps, the crawler."""
