"""The notes of a day as the jobs read them: contract columns, one row per note_id."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from notellm2_udf.spark.tables import read_table
from schemas import NOTES

NOTE_COLUMNS = ["dt", "note_id", "title", "content", "topics", "image"]


def read_notes_day(spark: SparkSession, location: str, day: str, *,
                   allow_empty: bool = False) -> DataFrame:
    """The day's partition of `notes` (pruned: only its files are read); JobInputError when it
    has no rows, unless `allow_empty` (a day the producer closed without notes)."""
    table_df = read_table(spark, location, NOTES, f"notes table {location}")
    day_df = table_df.where(F.col("dt") == day).select(*NOTE_COLUMNS)
    if not allow_empty and day_df.isEmpty():
        raise JobInputError(f"notes table {location} has no partition dt={day}")
    return day_df


def notes_in_window(spark: SparkSession, location: str, first: str, last: str) -> DataFrame:
    """(dt, note_id) of every note with dt in [first, last]: two columns of Parquet only."""
    table_df = read_table(spark, location, NOTES, f"notes table {location}")
    return table_df.where(F.col("dt").between(first, last) & F.col("note_id").isNotNull()
                          ).select("dt", "note_id")


def split_duplicates(notes_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(one row per note_id, an error row for every extra copy and every null note_id).

    The kept copy does not depend on the input order: the one with an image, then with
    text, then the smallest hash of its fields (identical copies are interchangeable).
    """
    preference = Window.partitionBy("note_id").orderBy(
        F.col("image").isNull(), F.col("content").isNull(), F.col("title").isNull(),
        F.xxhash64("title", "content", "topics", "image"),
    )
    ranked_df = notes_df.withColumn("copy", F.row_number().over(preference)).withColumn(
        "copies", F.count(F.lit(1)).over(Window.partitionBy("note_id")))
    has_id = F.col("note_id").isNotNull()
    unique_df = ranked_df.where(has_id & (F.col("copy") == 1)).drop("copy", "copies")
    errors_df = ranked_df.where(~has_id | (F.col("copy") > 1)).select(
        "dt", "note_id",
        F.when(has_id, F.lit("duplicate")).otherwise(F.lit("input")).alias("stage"),
        F.when(has_id, F.format_string(
            "duplicate note_id: %d copies in dt=%s, one embedded", F.col("copies"), F.col("dt"),
        )).otherwise(F.lit("note_id is null")).alias("error"),
    )
    return unique_df, errors_df
