"""Raw captures: every input file kept byte for byte under its sha256 (see ``store``)."""

__all__: list[str] = []
