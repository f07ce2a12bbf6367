"""Measurement against an answer key: linking and clustering against a simulated world's
truth, drug assessment against hand labels. Not part of an analyst's job on real data."""

__all__: list[str] = []
