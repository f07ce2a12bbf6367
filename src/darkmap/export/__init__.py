"""Exporters: FollowTheMoney, graph formats, STIX 2.1, CSV/Parquet."""
