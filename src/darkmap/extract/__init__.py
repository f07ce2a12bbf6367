"""Reading saved market pages: decoding, templates, the engine, identifiers and PGP keys."""

__all__: list[str] = []
