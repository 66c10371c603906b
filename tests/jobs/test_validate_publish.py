"""jobs/validate_related.py and jobs/publish.py on a world whose right answers are known (the
checks themselves: tests/index/test_validation.py)."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from jobs import publish, validate_related
from notellm2_udf.job.runtime import JobInputError
from tests.support.related_world import DAYS, MODEL_VERSION, RUN_ID, TOP_K

DAY = DAYS[1]


def _flags(related_world, *extra):
    loc = related_world.locations
    return ["--date", DAY, "--notes", loc["notes"], "--embeddings", loc["note_embeddings"],
            "--errors", loc["embedding_errors"], "--related", loc["related_notes"],
            "--top-k", str(TOP_K), *extra]


def test_validate_main_exit_codes(related_world, capsys):
    assert validate_related.main(_flags(related_world)) == 0
    assert "sampled_recall=1.0" in capsys.readouterr().out
    assert validate_related.main(_flags(related_world, "--min-recall", "1.01")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"validate_related: dt={DAY} failed validation: "
                   "sampled_recall=1.0000 < 1.01")
    with pytest.raises(SystemExit):
        validate_related.main(_flags(related_world) + ["--date", "2026-13-01"])


def test_publish_registers_and_writes_the_marker(related_world, spark, capsys):
    loc = related_world.locations
    args = ["--date", DAY, "--embeddings", loc["note_embeddings"], "--errors",
            loc["embedding_errors"], "--related", loc["related_notes"],
            "--run-id", "scheduled__2026-11-25T00:00:00+00:00"]
    assert publish.main(args) == 0
    marker = json.loads((related_world.root / "related_notes" / "_published" / f"dt={DAY}"
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
    published = related_world.root / "related_notes" / "_published"
    assert (published / f"dt={DAYS[0]}" / "_SUCCESS").exists()


def test_publish_refuses_mixed_model_versions(related_frames):
    mixed_df = related_frames["related"].withColumn(
        "model_version", F.when(F.col("rank") == 1, F.lit("v2")).otherwise(F.lit("v1")))
    with pytest.raises(JobInputError, match="mixes model versions"):
        publish.publication_record(mixed_df, related_frames["embeddings"],
                                   related_frames["errors"], DAY, "r")
    # No lists at all is an explicit empty day, with the version of the day's embeddings.
    empty = publish.publication_record(mixed_df.limit(0), related_frames["embeddings"],
                                       related_frames["errors"], DAY, "r")
    assert {key: empty[key] for key in ("model_version", "related_rows", "embedded", "empty",
                                        "reason", "embedding_run_id")} == {
        "model_version": MODEL_VERSION, "related_rows": 0, "embedded": 5, "empty": True,
        "reason": "no embedded note in the index window", "embedding_run_id": RUN_ID}


def test_publish_refuses_embeddings_and_errors_of_different_runs(related_frames):
    other_run_df = related_frames["errors"].withColumn("run_id", F.lit("another-run"))
    with pytest.raises(JobInputError, match="written by different runs"):
        publish.publication_record(related_frames["related"], related_frames["embeddings"],
                                   other_run_df, DAY, "r")
