"""Load a script of ``bench/`` as a module, for the tests that check what a benchmark
reads or computes (its figures are the bench's business, not a test's)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def load_bench(script: str) -> ModuleType:
    """``bench/<script>.py`` as the module ``darkmap_bench_<script>`` (registered in
    ``sys.modules``: dataclasses look their module up)."""
    name = f"darkmap_bench_{script}"
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{script}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
