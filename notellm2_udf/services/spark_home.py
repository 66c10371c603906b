"""Where pip's pyspark keeps its scripts and jars (no Spark import needed)."""

from __future__ import annotations

from pathlib import Path


def spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())
