"""HTML reports: a registry of sections, each drawn from one stage's tables."""
