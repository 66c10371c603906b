"""The checks of a day of related notes and its sampled recall, on a world whose right answers
are known (tests/support/related_world.py: exact lists, one hostile note, two days)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from notellm2_udf.index.recall import sampled_recall_of_day
from notellm2_udf.index.validation import check_counts, window_embeddings
from tests.support.related_world import DAYS, HOSTILE_ID, TOP_K

DAY = DAYS[1]


def _checks(frames, related_df=None, notes_df=None):
    return check_counts(notes_df or frames["notes"], frames["embeddings"], frames["errors"],
                        related_df or frames["related"], frames["window"], TOP_K, TOP_K)


def test_a_correct_day_passes_every_check(related_frames):
    assert set(_checks(related_frames).values()) == {0}
    assert sampled_recall_of_day(related_frames["related"], related_frames["window"], size=100,
                                 seed=0) == 1.0


def test_window_is_the_days_ending_at_the_date(related_frames, spark, related_world):
    ids = {row.note_id for row in related_frames["window"].collect()}
    assert len(ids) == 11
    one_day = window_embeddings(
        spark.read.format("delta").load(related_world.locations["note_embeddings"]), DAY, 1)
    assert {row.note_id for row in one_day.collect()} == {i for i in ids if i.startswith("2026"
                                                                                       "1125")}


def test_broken_days_are_caught_by_the_right_checks(related_frames, spark):
    related_df = related_frames["related"]
    first = related_df.where(F.col("rank") == 1)
    broken_df = (
        related_df.where(~((F.col("note_id") == HOSTILE_ID) & (F.col("rank") == 3)))
        .unionByName(first.where(F.col("note_id") == HOSTILE_ID)
                     .withColumn("related_note_id", F.col("note_id")))   # self, rank 1 again
        .withColumn("score", F.when(F.col("rank") == 2, F.lit(5.0)).otherwise(F.col("score"))
                    .cast("float"))
    )
    extra_note_df = related_frames["notes"].unionByName(
        related_frames["notes"].limit(1).withColumn("note_id", F.lit("20261125-999999")))
    problems = _checks(related_frames, broken_df, extra_note_df)
    assert problems["self_related"] == 1
    assert problems["duplicate_ranks"] == 1
    assert problems["duplicate_pairs"] == 0
    assert problems["bad_rank_lists"] == 1          # HOSTILE_ID: ranks 1, 1, 2
    assert problems["unsorted_scores"] == 11        # every rank 2 now beats its rank 1
    assert problems["unaccounted_notes"] == 1
    assert problems["queries_missing"] == 0
    assert problems["model_version_mismatch"] == 0
    wrong_version_df = related_df.withColumn("model_version", F.lit("other"))
    assert _checks(related_frames, wrong_version_df)["model_version_mismatch"] == 11 * TOP_K


def test_recall_drops_when_neighbours_are_wrong(related_frames):
    # replace every rank-1 neighbour by the query's worst-scoring note
    window = related_frames["window"].toPandas()
    vectors = dict(zip(window["note_id"], window["embedding"].map(np.asarray)))
    worst = {q: min((i for i in vectors if i != q), key=lambda i: vectors[q] @ vectors[i])
             for q in vectors}
    related = related_frames["related"].toPandas()
    related.loc[related["rank"] == 1, "related_note_id"] = related.loc[
        related["rank"] == 1, "note_id"].map(worst)
    spark = related_frames["related"].sparkSession
    wrong_df = spark.createDataFrame(related, related_frames["related"].schema)
    # Each query keeps 2 of its 3 exact neighbours (the worst note is never in the top 3).
    assert sampled_recall_of_day(wrong_df, related_frames["window"], size=100,
                                 seed=0) == pytest.approx(2 / 3)
