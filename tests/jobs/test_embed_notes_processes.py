"""The embedding job across processes: executors, a killed worker, a killed job, GPU slots."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pyspark.sql import functions as F

from notellm2_udf.spark.delta_io import replace_days
from schemas import NOTES
from tests.support.bad_notes import DAY
from tests.support.processes import SCRIPTS, run_process, script_result
from tests.support.tolerances import EMBEDDING_ATOL


@pytest.fixture(scope="module")
def sample_notes_location(spark, day_notes_pdf, tmp_path_factory):
    location = str(tmp_path_factory.mktemp("embed-proc") / "notes")
    sample_pdf = day_notes_pdf[day_notes_pdf["note_id"].str.fullmatch(r"\d{8}-\d{6}")]
    replace_days(spark.createDataFrame(sample_pdf, NOTES.schema), NOTES, location, DAY)
    return location


@pytest.mark.cluster
def test_executors_load_the_model_once_and_survive_a_killed_worker(
        private_install, sample_notes_location, tiny_checkpoint, tiny_encoder,
        day_notes_pdf, tmp_path):
    env, _ = private_install
    report = script_result(run_process(
        [sys.executable, str(SCRIPTS / "embed_on_cluster.py"), sample_notes_location, DAY,
         str(tiny_checkpoint), str(tmp_path / "killed.marker"), str(tmp_path / "table")],
        env, timeout=600))
    clean, killed = report["clean"], report["killed_once"]

    assert report["executors"] == 2
    pids = {row[4] for row in clean}
    assert len(pids) == 2, "two executors, each with its own Python worker"
    assert {row[5] for row in clean} == {1}, "each worker loaded the model exactly once"

    notes = day_notes_pdf.set_index("note_id").loc[[row[0] for row in clean]].reset_index()
    direct, _ = tiny_encoder.encode(notes)
    np.testing.assert_allclose(np.array([row[1] for row in clean]), direct, atol=EMBEDDING_ATOL)

    assert report["delta_rows"] == sorted([row[0], row[3]] for row in clean)

    assert report["killed_pid"] not in {row[4] for row in killed}
    assert [row[:4] for row in killed] == [row[:4] for row in clean]


def test_a_job_killed_before_its_commit_leaves_the_previous_day_whole(
        spark, private_install, sample_notes_location, tiny_checkpoint, tmp_path,
        spark_submit):
    env, _ = private_install
    embeddings, errors = str(tmp_path / "emb"), str(tmp_path / "err")
    argv = ["--date", DAY, "--notes", sample_notes_location, "--model", str(tiny_checkpoint),
            "--embeddings", embeddings, "--errors", errors, "--batch-size", "8"]
    marker = tmp_path / "killed-spark.marker"
    completed = run_process([str(spark_submit), "--master", "local[2]",
                             str(SCRIPTS / "embed_killed_before_commit.py"), str(marker), *argv],
                            env, timeout=600)
    assert "FIRST_RUN_DONE" in completed.stdout, completed.stdout[-3000:]
    # The worker of the second run killed Spark (not an error before it got there).
    assert marker.is_file(), completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "SECOND_RUN_RETURNED" not in completed.stdout
    assert completed.returncode != 0

    history = spark.sql(f"DESCRIBE HISTORY delta.`{embeddings}`").orderBy("version").collect()
    assert [row["operation"] for row in history] == ["CREATE TABLE", "WRITE"]
    day_df = spark.read.format("delta").load(embeddings).where(F.col("dt") == DAY)
    expected_ids = {r.note_id for r in spark.read.format("delta").load(sample_notes_location)
                    .select("note_id").collect()}
    assert {r.note_id for r in day_df.select("note_id").collect()} == expected_ids
    assert day_df.count() == len(expected_ids)


def test_each_task_takes_the_gpu_spark_assigned(private_install, tmp_path):
    env, _ = private_install
    discovery = tmp_path / "gpus.sh"
    discovery.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    discovery.chmod(0o755)
    devices = script_result(run_process([sys.executable, str(SCRIPTS / "gpu_task_devices.py"),
                            str(discovery)], env, timeout=300))
    assert devices == ["cuda:0", "cuda:1"]


def test_without_a_gpu_tasks_use_the_cpu(spark):
    from notellm2_udf.spark.executor_resources import task_device

    devices = spark.sparkContext.parallelize(range(2), 2).mapPartitions(
        lambda _: [task_device()]).collect()
    assert devices == ["cpu", "cpu"]


@pytest.mark.slow
def test_a_day_of_large_screenshots_embeds_under_a_python_worker_memory_limit(
        private_install, tiny_checkpoint, tmp_path, spark_submit):
    """24 PNG screenshots of 7.7 megapixels (23 MB each decoded) in one Arrow batch, with the
    Python worker limited to 4500 MiB of address space (torch alone maps about 3.2 GiB).
    Each image is resized right after decoding, so the worker holds one original at a time;
    the release before held a whole chunk's originals and died here with MemoryError.
    Slow (two minutes), like the index's memory-limit test; the default suite checks the
    resize right after decoding on the processor (tests/model/test_processor.py)."""
    env, _ = private_install
    report = script_result(run_process(
        [str(spark_submit), "--master", "local[1]",
         "--conf", "spark.executor.pyspark.memory=4500m",
         str(SCRIPTS / "embed_under_memory_limit.py"), str(tmp_path / "notes"), DAY,
         str(tiny_checkpoint), str(tmp_path / "out"), "24"], env, timeout=900))
    assert report == {"exit_code": 0, "embedded": 24, "with_image": 24,
                      "limit_refused_8gib": True}
