"""Spark settings a user gives without code: ``DARKMAP_SPARK_CONF`` (no JVM started)."""

from __future__ import annotations

import os

import pytest

from darkmap.chain.spark import _local_driver_mib, env_conf
from darkmap.errors import BadInputError


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARKMAP_SPARK_CONF",
                       " spark.driver.memory = 6g ;spark.executor.memory=12g;; ")
    assert env_conf() == {"spark.driver.memory": "6g", "spark.executor.memory": "12g"}
    monkeypatch.delenv("DARKMAP_SPARK_CONF")
    assert env_conf() == {}
    with pytest.raises(BadInputError, match=r"'spark\.driver\.memory' is not key=value"):
        env_conf("spark.driver.memory")


def test_a_local_driver_gets_half_the_memory_within_bounds() -> None:
    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
    assert _local_driver_mib() == max(1024, min(16 * 1024, half))
