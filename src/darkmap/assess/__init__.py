"""Analysis of the evidence: drug classification, pack and price normalisation, sales,
jurisdiction and harm ranking (see docs/drugs.md)."""

__all__: list[str] = []
