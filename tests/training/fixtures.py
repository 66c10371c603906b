"""Builders shared by the training and evaluation tests (their conftests wrap them)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from notellm2_udf.sample_data import SampleSpec

# Two days: the first trains, the second is held out. Small enough for seconds of CPU.
SAMPLE = SampleSpec(start_date=date(2026, 11, 20), days=2, notes_per_day=40, seed=3)


def tiny_model_dir(root: Path, fusion: str = "micl_late") -> str:
    from notellm2_udf.checkpoint import save_checkpoint
    from notellm2_udf.init_model import compose_tiny_random

    directory = root / f"tiny-{fusion}"
    save_checkpoint(*compose_tiny_random(fusion, seed=0), directory)
    return str(directory)


def sample_tables(spark, root: Path) -> tuple[str, str]:
    """(notes location, related_pairs location) of SAMPLE as Delta tables."""
    from notellm2_udf.sample_tables import write_sample_tables

    write_sample_tables(spark, SAMPLE, root, register=False)
    return str(root / "notes"), str(root / "related_pairs")
