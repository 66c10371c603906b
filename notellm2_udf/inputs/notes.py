"""The notes of a day as the jobs read them: contract columns and types, one row per note_id,
text that is valid UTF-8."""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from notellm2_udf.errors import JobInputError
from notellm2_udf.spark.tables import read_table
from schemas import NOTES

log = logging.getLogger("notellm2.notes")

NOTE_COLUMNS = ["dt", "note_id", "title", "content", "topics", "image"]
TEXT_COLUMNS = ("title", "content")
# Types a producer may write instead of the contract's, because casting them loses nothing:
# a DATE day becomes its yyyy-MM-dd string, an integer id its decimal digits.
LOSSLESS_CASTS = {
    "dt": (T.DateType,),
    "note_id": (T.ByteType, T.ShortType, T.IntegerType, T.LongType),
}


def read_notes_day(spark: SparkSession, location: str, day: str, *,
                   allow_empty: bool = False) -> DataFrame:
    """The day's partition of `notes` (pruned: only its files are read), in contract types;
    JobInputError when it has no rows, unless `allow_empty` (a day the producer closed
    without notes).

    Columns of the wrong type stop the job before anything is written (JobInputError naming
    each column, the expected and the found type); lossless casts are applied and logged.
    """
    what = f"notes table {location}"
    table_df = read_table(spark, location, NOTES, what)
    casts = contract_casts(table_df.schema, what)
    day_df = table_df.where(F.col("dt") == day).select(*[
        F.col(name).cast(NOTES.schema[name].dataType).alias(name) if name in casts
        else F.col(name) for name in NOTE_COLUMNS])
    if not allow_empty and day_df.isEmpty():
        raise JobInputError(f"{what} has no partition dt={day}")
    return day_df


def contract_casts(schema: T.StructType, what: str) -> list[str]:
    """The columns to cast losslessly to the contract type; JobInputError for any other
    column whose type differs."""
    casts, problems = [], []
    for name in NOTE_COLUMNS:
        expected, found = NOTES.schema[name].dataType, schema[name].dataType
        if _same_type(expected, found):
            continue
        if isinstance(found, LOSSLESS_CASTS.get(name, ())):
            casts.append(name)
            log.warning("%s: column %s is %s, cast to %s", what, name, found.simpleString(),
                        expected.simpleString())
        else:
            problems.append(f"{name}: expected {expected.simpleString()}, "
                            f"found {found.simpleString()}")
    if problems:
        raise JobInputError(f"{what} has contract columns of the wrong type: "
                            + "; ".join(problems))
    return casts


def _same_type(expected: T.DataType, found: T.DataType) -> bool:
    # Nullability of array elements is not part of the contract's meaning.
    return expected.simpleString() == found.simpleString()


def drop_invalid_utf8(notes_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(notes with text that is not valid UTF-8 set to null, an error row for each such note).

    Producers sometimes store bytes of another encoding as strings. A field that is not
    valid UTF-8 is dropped (title or content to null, topics without the bad tags) and the
    note goes on with the rest: one error row names the fields, stage "text".
    """
    bad_topics = F.coalesce(F.exists("topics", lambda tag: ~F.is_valid_utf8(tag)), F.lit(False))
    problems = [F.when(~F.is_valid_utf8(name), F.lit(name)) for name in TEXT_COLUMNS]
    problems.append(F.when(bad_topics, F.lit("topics")))
    flagged_df = notes_df.withColumn("_invalid", F.concat_ws(", ", *problems))
    clean_df = flagged_df.select(
        *[_valid_or_null(name) if name in TEXT_COLUMNS
          else F.filter("topics", F.is_valid_utf8).alias("topics") if name == "topics"
          else F.col(name) for name in notes_df.columns])
    errors_df = flagged_df.where(F.col("_invalid") != "").select(
        "dt", "note_id", F.lit("text").alias("stage"),
        F.concat(F.lit("not valid UTF-8, dropped: "), "_invalid").alias("error"))
    return clean_df, errors_df


def _valid_or_null(name: str) -> Column:
    return F.when(F.is_valid_utf8(name), F.col(name)).alias(name)


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
