"""The paper's test-pair selection (each note in at most one pair) in Spark.

The reference is `recall.select_test_pairs`: greedy over the pairs by descending score (ties
by ids), a pair kept when neither of its notes is in a kept pair. With a total order on the
pairs, that greedy keeps exactly the pairs found by repeating: keep every pair that is the
first pair of both its notes, drop every pair touching a kept note. Each round is a few
Spark aggregations; the last `local_pairs` pairs go through the greedy itself in one task.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import reduce

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.evaluation.recall import select_test_pairs

ORDER = "_order"  # (-score, note_id, related_note_id): the greedy's order, smallest first
KEY = ("note_id", "related_note_id", "score")


def select_test_pairs_df(pairs_df: DataFrame, local_pairs: int) -> DataFrame:
    """The rows of `pairs_df` that `select_test_pairs` keeps (rows equal on note_id,
    related_note_id and score count once: the smallest of their other columns). Every
    round's result is checkpointed, so the plan does not grow with the rounds."""
    remaining_df = ordered_pairs(pairs_df).localCheckpoint()
    kept = []
    while remaining_df.count() > local_pairs:
        dominant_df = first_of_both_notes(remaining_df).localCheckpoint()
        kept.append(dominant_df.drop(ORDER))
        remaining_df = without_notes_of(remaining_df, dominant_df).localCheckpoint()
    kept.append(greedy_in_one_task(remaining_df.drop(ORDER)))
    return reduce(DataFrame.unionByName, kept)


def ordered_pairs(pairs_df: DataFrame) -> DataFrame:
    """Pairs without self-pairs, one row per KEY, with the greedy's order as a column."""
    rest = [name for name in pairs_df.columns if name not in KEY]
    pairs_df = pairs_df.where(F.col("note_id") != F.col("related_note_id"))
    if rest:
        pairs_df = (pairs_df.groupBy(*KEY).agg(F.min(F.struct(*rest)).alias("_rest"))
                    .select(*KEY, "_rest.*"))
    else:
        pairs_df = pairs_df.dropDuplicates(list(KEY))
    return pairs_df.withColumn(ORDER, F.struct((-F.col("score")).alias("neg_score"),
                                               "note_id", "related_note_id"))


def first_of_both_notes(pairs_df: DataFrame) -> DataFrame:
    """The pairs that come first, in the greedy's order, among the pairs of each of their two
    notes: the greedy keeps them whatever else it keeps."""
    ends_df = (pairs_df.select(F.col("note_id").alias("_note"), ORDER)
               .unionByName(pairs_df.select(F.col("related_note_id").alias("_note"), ORDER)))
    firsts_df = ends_df.groupBy("_note").agg(F.min(ORDER).alias(ORDER))
    both_df = firsts_df.groupBy(ORDER).count().where(F.col("count") == 2).select(ORDER)
    return pairs_df.join(both_df, ORDER)


def without_notes_of(pairs_df: DataFrame, kept_df: DataFrame) -> DataFrame:
    taken_df = (kept_df.select(F.col("note_id").alias("_note"))
                .unionByName(kept_df.select(F.col("related_note_id").alias("_note"))))
    return (pairs_df.join(taken_df, F.col("note_id") == F.col("_note"), "left_anti")
            .join(taken_df, F.col("related_note_id") == F.col("_note"), "left_anti"))


def greedy_in_one_task(pairs_df: DataFrame) -> DataFrame:
    """`select_test_pairs` on every row at once, in one task (at most `local_pairs` rows)."""

    def greedy(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frames = list(batches)
        if frames:
            yield select_test_pairs(pd.concat(frames, ignore_index=True))

    return pairs_df.repartition(1).mapInPandas(greedy, pairs_df.schema)
