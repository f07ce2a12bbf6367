"""Reading saved market pages: decoding, templates, the engine and the pages importer."""

__all__: list[str] = []
