"""jobs/validate_related.py and jobs/publish.py on a world whose right answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs import publish, validate_related
from notellm2_udf.index.validation import (
    check_counts,
    sampled_recall,
    tie_tolerant_recall,
    window_embeddings,
)
from notellm2_udf.job.runtime import JobInputError
from notellm2_udf.spark.delta_io import read_day
from tests.related_fixtures import DAYS, HOSTILE_ID, MODEL_VERSION, RUN_ID, TOP_K, shared_world

DAY = DAYS[1]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    return shared_world(spark, tmp_path_factory)


@pytest.fixture(scope="module")
def frames(spark, world):
    loc = world.locations
    return {
        "notes": read_day(spark, loc["notes"], DAY),
        "embeddings": read_day(spark, loc["note_embeddings"], DAY),
        "errors": read_day(spark, loc["embedding_errors"], DAY),
        "related": read_day(spark, loc["related_notes"], DAY),
        "window": window_embeddings(spark.read.format("delta").load(loc["note_embeddings"]),
                                    DAY, 30),
    }


def _checks(frames, related_df=None, notes_df=None):
    return check_counts(notes_df or frames["notes"], frames["embeddings"], frames["errors"],
                        related_df or frames["related"], frames["window"], TOP_K, TOP_K)


def test_a_correct_day_passes_every_check(frames):
    assert set(_checks(frames).values()) == {0}
    assert sampled_recall(frames["related"], frames["window"], 100, seed=0) == 1.0


def test_window_is_the_days_ending_at_the_date(frames, spark, world):
    ids = {row.note_id for row in frames["window"].collect()}
    assert len(ids) == 11
    one_day = window_embeddings(
        spark.read.format("delta").load(world.locations["note_embeddings"]), DAY, 1)
    assert {row.note_id for row in one_day.collect()} == {i for i in ids if i.startswith("2026"
                                                                                       "1125")}


def test_broken_days_are_caught_by_the_right_checks(frames, spark):
    related_df = frames["related"]
    first = related_df.where(F.col("rank") == 1)
    broken_df = (
        related_df.where(~((F.col("note_id") == HOSTILE_ID) & (F.col("rank") == 3)))
        .unionByName(first.where(F.col("note_id") == HOSTILE_ID)
                     .withColumn("related_note_id", F.col("note_id")))   # self, rank 1 again
        .withColumn("score", F.when(F.col("rank") == 2, F.lit(5.0)).otherwise(F.col("score"))
                    .cast("float"))
    )
    extra_note_df = frames["notes"].unionByName(
        frames["notes"].limit(1).withColumn("note_id", F.lit("20261125-999999")))
    problems = _checks(frames, broken_df, extra_note_df)
    assert problems["self_related"] == 1
    assert problems["duplicate_ranks"] == 1
    assert problems["duplicate_pairs"] == 0
    assert problems["bad_rank_lists"] == 1          # HOSTILE_ID: ranks 1, 1, 2
    assert problems["unsorted_scores"] == 11        # every rank 2 now beats its rank 1
    assert problems["unaccounted_notes"] == 1
    assert problems["queries_missing"] == 0
    assert problems["model_version_mismatch"] == 0
    wrong_version_df = related_df.withColumn("model_version", F.lit("other"))
    assert _checks(frames, wrong_version_df)["model_version_mismatch"] == 11 * TOP_K


def test_recall_drops_when_neighbours_are_wrong(frames):
    # replace every rank-1 neighbour by the query's worst-scoring note
    window = frames["window"].toPandas()
    vectors = dict(zip(window["note_id"], window["embedding"].map(np.asarray)))
    worst = {q: min((i for i in vectors if i != q), key=lambda i: vectors[q] @ vectors[i])
             for q in vectors}
    related = frames["related"].toPandas()
    related.loc[related["rank"] == 1, "related_note_id"] = related.loc[
        related["rank"] == 1, "note_id"].map(worst)
    spark = frames["related"].sparkSession
    wrong_df = spark.createDataFrame(related, frames["related"].schema)
    assert sampled_recall(wrong_df, frames["window"], 100, seed=0) == pytest.approx(2 / 3)


def test_recall_tolerates_ties():
    xq = np.array([[1.0, 0.0]], dtype=np.float32)
    xb = pd.DataFrame({"note_id": ["a", "b", "c"],
                       "embedding": [[0.5, 0.5], [0.5, -0.5], [0.0, 1.0]]})
    exact = pd.DataFrame({"query_id": ["q"], "note_id": ["a"], "score": [0.5]})
    approx = pd.DataFrame({"note_id": ["q"], "rank": [1], "related_note_id": ["b"]})
    assert tie_tolerant_recall(["q"], xq, approx, exact, xb) == 1.0   # b ties with a
    approx["related_note_id"] = ["c"]
    assert tie_tolerant_recall(["q"], xq, approx, exact, xb) == 0.0


def _flags(world, *extra):
    loc = world.locations
    return ["--date", DAY, "--notes", loc["notes"], "--embeddings", loc["note_embeddings"],
            "--errors", loc["embedding_errors"], "--related", loc["related_notes"],
            "--top-k", str(TOP_K), *extra]


def test_validate_main_exit_codes(world, capsys):
    assert validate_related.main(_flags(world)) == 0
    assert "sampled_recall=1.0" in capsys.readouterr().out
    assert validate_related.main(_flags(world, "--min-recall", "1.01")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"validate_related: dt={DAY} failed validation: "
                   "sampled_recall=1.0000 < 1.01")
    with pytest.raises(SystemExit):
        validate_related.main(_flags(world) + ["--date", "2026-13-01"])


def test_publish_registers_and_writes_the_marker(world, spark, capsys):
    loc = world.locations
    args = ["--date", DAY, "--embeddings", loc["note_embeddings"], "--errors",
            loc["embedding_errors"], "--related", loc["related_notes"],
            "--run-id", "scheduled__2026-11-25T00:00:00+00:00"]
    assert publish.main(args) == 0
    marker = json.loads((world.root / "related_notes" / "_published" / f"dt={DAY}"
                         / "_SUCCESS").read_text())
    assert {key: marker[key] for key in ("dt", "model_version", "related_rows", "queries",
                                         "embedded", "errors", "run_id")} == {
        "dt": DAY, "model_version": MODEL_VERSION, "related_rows": 11 * TOP_K, "queries": 11,
        "embedded": 5, "errors": 2, "run_id": "scheduled__2026-11-25T00:00:00+00:00"}
    assert marker["embedding_run_id"] == RUN_ID
    props = dict(spark.sql("SHOW TBLPROPERTIES notellm2.related_notes").collect())
    assert props["notellm2.published_dt"] == DAY
    assert props["notellm2.model_version"] == MODEL_VERSION
    # a backfill of an older day leaves the newest published day alone
    assert publish.main(args[:1] + [DAYS[0]] + args[2:]) == 0
    assert "newest_published=" + DAY in capsys.readouterr().out
    assert (world.root / "related_notes" / "_published" / f"dt={DAYS[0]}" / "_SUCCESS").exists()


def test_publish_refuses_mixed_model_versions(frames):
    mixed_df = frames["related"].withColumn(
        "model_version", F.when(F.col("rank") == 1, F.lit("v2")).otherwise(F.lit("v1")))
    with pytest.raises(JobInputError, match="mixes model versions"):
        publish.publication_record(mixed_df, frames["embeddings"], frames["errors"], DAY, "r")
    # No lists at all is an explicit empty day, with the version of the day's embeddings.
    empty = publish.publication_record(mixed_df.limit(0), frames["embeddings"],
                                       frames["errors"], DAY, "r")
    assert {key: empty[key] for key in ("model_version", "related_rows", "embedded", "empty",
                                        "reason", "embedding_run_id")} == {
        "model_version": MODEL_VERSION, "related_rows": 0, "embedded": 5, "empty": True,
        "reason": "no embedded note in the index window", "embedding_run_id": RUN_ID}


def test_publish_refuses_embeddings_and_errors_of_different_runs(frames):
    other_run_df = frames["errors"].withColumn("run_id", F.lit("another-run"))
    with pytest.raises(JobInputError, match="written by different runs"):
        publish.publication_record(frames["related"], frames["embeddings"], other_run_df,
                                   DAY, "r")
