"""Write the synthetic sample (notellm2_udf.sample.notes) as Delta tables."""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession

from notellm2_udf.sample.notes import SampleSpec, generate_day
from notellm2_udf.spark.delta_io import register_table, replace_days, set_properties
from schemas import CLOSED_THROUGH, NOTES, RELATED_PAIRS

log = logging.getLogger(__name__)


def write_sample_tables(
    spark: SparkSession, spec: SampleSpec, out_dir: Path, *, register: bool = True
) -> str:
    """Write `notes` and `related_pairs` under `out_dir`, one day at a time; return a summary.

    Each day is its own replaceWhere commit, so a rerun with the same arguments rewrites the
    same rows and leaves other days alone. Then the notes table is closed through the last
    day written (the producers' completeness signal, CLOSED_THROUGH), never moved back.
    """
    notes_location = str((out_dir / "notes").resolve())
    pairs_location = str((out_dir / "related_pairs").resolve())
    note_count = pair_count = 0
    for day_index, day in enumerate(spec.day_strings):
        notes_pdf, pairs_pdf = generate_day(spec, day_index)
        replace_days(spark.createDataFrame(notes_pdf, NOTES.schema), NOTES, notes_location, day)
        replace_days(
            spark.createDataFrame(pairs_pdf, RELATED_PAIRS.schema),
            RELATED_PAIRS, pairs_location, day,
        )
        note_count += len(notes_pdf)
        pair_count += len(pairs_pdf)
        log.info("sample data %s: %d notes, %d pairs", day, len(notes_pdf), len(pairs_pdf))
    closed = spark.sql(f"DESCRIBE DETAIL delta.`{notes_location}`").first()["properties"]
    if closed.get(CLOSED_THROUGH, "") < spec.day_strings[-1]:
        set_properties(spark, notes_location, {CLOSED_THROUGH: spec.day_strings[-1]})
    if register:
        register_table(spark, NOTES, notes_location)
        register_table(spark, RELATED_PAIRS, pairs_location)
    return (
        f"sample data: {spec.days} day(s) from {spec.day_strings[0]}, {note_count} notes, "
        f"{pair_count} related pairs -> {notes_location}, {pairs_location}"
    )
