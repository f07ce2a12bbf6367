"""Exporters: FollowTheMoney, graph formats, STIX 2.1, CSV/Parquet."""

__all__: list[str] = []
