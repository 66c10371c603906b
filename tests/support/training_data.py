"""The training sample: two days of notes and pairs, as DataFrames or Delta tables (the
training, evaluation and job tests share it)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from notellm2_udf.sample.notes import SampleSpec, generate

# Two days: the first trains, the second is held out. Small enough for seconds of CPU.
SAMPLE = SampleSpec(start_date=date(2026, 11, 20), days=2, notes_per_day=40, seed=3)


def sample_frames(spark):
    """(notes_df, pairs_df) of SAMPLE, in memory (no Delta commits: seconds faster)."""
    from schemas import NOTES, RELATED_PAIRS

    notes_pdf, pairs_pdf = generate(SAMPLE)
    return (spark.createDataFrame(notes_pdf, NOTES.schema),
            spark.createDataFrame(pairs_pdf, RELATED_PAIRS.schema))


def sample_tables(spark, root: Path) -> tuple[str, str]:
    """(notes location, related_pairs location) of SAMPLE as Delta tables, one commit each."""
    locations = str(root / "notes"), str(root / "related_pairs")
    for frame, location in zip(sample_frames(spark), locations):
        frame.write.format("delta").partitionBy("dt").save(location)
    return locations


def contract_pairs_copy(spark, pairs_location: str, location: str, day: str | None = None) -> str:
    """A copy of the sample pairs with exactly the contract columns (no pair_kind, a
    sample-data-only column), only `day` when given; its location."""
    pairs_df = spark.read.format("delta").load(pairs_location)
    if day:
        pairs_df = pairs_df.where(pairs_df.dt == day)
    (pairs_df.select("note_id", "related_note_id", "score", "dt")
     .write.format("delta").partitionBy("dt").save(location))
    return location
