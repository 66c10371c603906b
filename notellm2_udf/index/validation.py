"""The checks of one day of related notes before it is published (jobs/validate_related.py).

Each check counts offending rows; a day passes when every count is 0 and the sampled recall
(recall.py) reaches the threshold.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from notellm2_udf.index.corpus import latest_embeddings
from notellm2_udf.index.recall import SCORE_TOLERANCE


def window_embeddings(embeddings_df: DataFrame, day: str, window_days: int,
                      model_version: str | None = None) -> DataFrame:
    """The notes an index of `day` holds (note_id, embedding, model_version): the window
    corpus as build_index defines it (index.corpus)."""
    return latest_embeddings(embeddings_df, day=day, window_days=window_days,
                             model_version=model_version).select(
        "note_id", "embedding", "model_version")


def check_counts(notes_df: DataFrame, embeddings_df: DataFrame, errors_df: DataFrame,
                 related_df: DataFrame, window_df: DataFrame, top_k: int,
                 min_length: int) -> dict[str, int]:
    """Offending rows per check (all of the day); every count must be 0."""
    window_ids_df = window_df.select("note_id")
    checks = {
        "unaccounted_notes": unaccounted_notes(notes_df, embeddings_df, errors_df),
        "queries_missing": embeddings_df.select("note_id").join(
            related_df.select("note_id"), "note_id", "left_anti"),
        "unknown_queries": related_df.select("note_id").join(window_ids_df, "note_id",
                                                             "left_anti"),
        "unknown_related": related_df.select(F.col("related_note_id").alias("note_id")).join(
            window_ids_df, "note_id", "left_anti"),
        "self_related": related_df.where(F.col("note_id") == F.col("related_note_id")),
        "duplicate_ranks": duplicated(related_df, "note_id", "rank"),
        "duplicate_pairs": duplicated(related_df, "note_id", "related_note_id"),
        "bad_rank_lists": bad_rank_lists(related_df, top_k, min_length),
        "unsorted_scores": unsorted_scores(related_df),
        # The window's version too: a day without embeddings (no notes) still has lists.
        "model_version_mismatch": related_df.join(
            embeddings_df.select("model_version").unionByName(
                window_df.select("model_version")).distinct(), "model_version", "left_anti"),
    }
    return {name: check_df.count() for name, check_df in checks.items()}


def unaccounted_notes(notes_df: DataFrame, embeddings_df: DataFrame,
                      errors_df: DataFrame) -> DataFrame:
    """Note ids of the day in neither the embeddings nor the errors."""
    return (
        notes_df.where(F.col("note_id").isNotNull()).select("note_id").distinct()
        .join(embeddings_df.select("note_id"), "note_id", "left_anti")
        .join(errors_df.select("note_id"), "note_id", "left_anti")
    )


def duplicated(related_df: DataFrame, *columns: str) -> DataFrame:
    return related_df.groupBy(*columns).count().where("count > 1")


def bad_rank_lists(related_df: DataFrame, top_k: int, min_length: int) -> DataFrame:
    """Queries whose ranks are not exactly 1..n, or whose n is outside [min_length, top_k]."""
    return (
        related_df.groupBy("note_id")
        .agg(F.count(F.lit(1)).alias("n"), F.min("rank").alias("first"),
             F.max("rank").alias("last"), F.countDistinct("rank").alias("distinct_ranks"))
        .where((F.col("first") != 1) | (F.col("last") != F.col("n"))
               | (F.col("distinct_ranks") != F.col("n"))
               | (F.col("n") > top_k) | (F.col("n") < min_length))
    )


def unsorted_scores(related_df: DataFrame) -> DataFrame:
    """Rows whose score is not finite or exceeds the score of the rank before it."""
    previous = F.lag("score").over(Window.partitionBy("note_id").orderBy("rank"))
    return related_df.withColumn("previous", previous).where(
        F.isnan("score") | (F.abs("score") == float("inf"))
        | (F.col("score") > F.col("previous") + SCORE_TOLERANCE))
