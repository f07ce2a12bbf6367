"""Bulk inserts: kept as a re-export of :func:`darkmap.store.writer.insert_rows`."""

from darkmap.store.writer import insert_rows

__all__ = ["insert_rows"]
