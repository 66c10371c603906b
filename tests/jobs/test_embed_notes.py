"""The embedding job end to end (in-process, shared session) and its pure transforms."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pyspark.sql import functions as F

from jobs import embed_notes
from notellm2_udf.inputs.notes import read_notes_day, split_duplicates
from notellm2_udf.job.runtime import JobInputError
from notellm2_udf.registry.pinning import check_model_dir
from notellm2_udf.settings.declared import parse_settings
from notellm2_udf.spark.delta_io import replace_days
from schemas import NOTES
from tests.support.bad_notes import DAY, EXPECTED, INVALID_UTF8_NOTES, invalid_utf8_notes_df
from tests.support.tolerances import EMBEDDING_ATOL, NORM_ATOL


@pytest.fixture(scope="module")
def notes_location(spark, day_notes_pdf, tmp_path_factory):
    location = str(tmp_path_factory.mktemp("embed") / "notes")
    other_day = day_notes_pdf.head(5).assign(dt="2026-11-24")
    day_df = spark.createDataFrame(day_notes_pdf, NOTES.schema).unionByName(
        invalid_utf8_notes_df(spark, DAY))
    replace_days(day_df, NOTES, location, DAY)
    replace_days(spark.createDataFrame(other_day, NOTES.schema), NOTES, location, "2026-11-24")
    return location


@pytest.fixture(scope="module")
def job_run(spark, notes_location, tiny_checkpoint, tmp_path_factory):
    """Run the job twice on the same day; return the outputs of each run. The second run
    prepares the notes in two worker processes per task instead of threads."""
    out = tmp_path_factory.mktemp("embed-out")
    argv = ["--date", DAY, "--notes", notes_location, "--model", str(tiny_checkpoint),
            "--embeddings", str(out / "emb"), "--errors", str(out / "err"), "--batch-size", "16"]
    runs = []
    for extra_args in ([], ["--prepare-processes", "2"]):
        assert embed_notes.main(argv + extra_args) == 0
        runs.append(tuple(
            spark.read.format("delta").load(str(out / name)).toPandas()
            .sort_values(["note_id", *extra]).reset_index(drop=True)
            for name, extra in (("emb", []), ("err", ["stage", "error"]))))
    return runs


def test_every_note_is_embedded_or_explained(job_run, day_notes_pdf):
    embeddings_pdf, errors_pdf = job_run[-1]
    assert set(embeddings_pdf["dt"]) == {DAY} and set(errors_pdf["dt"]) == {DAY}
    accounted = set(embeddings_pdf["note_id"]) | set(errors_pdf["note_id"])
    assert accounted == set(day_notes_pdf["note_id"]) | {note[0] for note in INVALID_UTF8_NOTES}
    assert embeddings_pdf["note_id"].is_unique
    sample_ids = set(day_notes_pdf["note_id"][~day_notes_pdf["note_id"].isin(EXPECTED)])
    assert sample_ids <= set(embeddings_pdf["note_id"])
    assert not sample_ids & set(errors_pdf["note_id"])


@pytest.mark.parametrize("note_id", sorted(EXPECTED))
def test_crafted_notes(job_run, note_id):
    embeddings_pdf, errors_pdf = job_run[-1]
    embedded, image_ok, stages = EXPECTED[note_id]
    row = embeddings_pdf[embeddings_pdf["note_id"] == note_id]
    assert len(row) == (1 if embedded else 0)
    if embedded:
        assert bool(row["image_ok"].iloc[0]) is image_ok
        assert (row["visual_embedding"].iloc[0] is not None) is image_ok
    errors = errors_pdf[errors_pdf["note_id"] == note_id]
    assert sorted(errors["stage"]) == stages
    assert all(errors["error"].str.len() > 10)


def test_error_messages_say_why(job_run):
    _, errors_pdf = job_run[-1]
    reasons = dict(zip(errors_pdf["note_id"], errors_pdf["error"]))
    assert reasons["bad-bomb"].startswith(
        "image refused, embedded from text: decompression bomb: Image size (10000000000 pixels)")
    assert reasons["bad-over-cap"] == (
        "image refused, embedded from text: too many pixels: 8000x8000 > 40000000")
    assert "not one of" in reasons["bad-bmp"]
    assert reasons["bad-nothing"] == "no usable text or image"
    assert reasons["bad-no-text-corrupt-image"].startswith(
        "no usable text or image (image refused: ")
    assert reasons["dup-two"] == f"duplicate note_id: 2 copies in dt={DAY}, one embedded"


def test_embeddings_are_unit_norm_and_match_the_encoder(job_run, day_notes_pdf, tiny_encoder):
    embeddings_pdf, _ = job_run[-1]
    kept = day_notes_pdf[~day_notes_pdf["note_id"].str.startswith("dup-")]
    kept = kept[kept["note_id"].isin(embeddings_pdf["note_id"])]
    direct, direct_visual = tiny_encoder.encode(kept)
    by_id = embeddings_pdf.set_index("note_id")
    from_job = np.stack(by_id.loc[kept["note_id"], "embedding"].to_numpy())
    np.testing.assert_allclose(np.linalg.norm(from_job, axis=1), 1.0, atol=NORM_ATOL)
    np.testing.assert_allclose(from_job, direct, atol=EMBEDDING_ATOL)
    with_image = by_id.loc[kept["note_id"], "image_ok"].to_numpy()
    visual = np.stack(by_id.loc[kept["note_id"], "visual_embedding"][with_image].to_numpy())
    np.testing.assert_allclose(visual, direct_visual[with_image], atol=EMBEDDING_ATOL)
    assert set(embeddings_pdf["model_version"]) == {tiny_encoder.model_version}


def test_duplicate_keeps_the_copy_with_an_image(job_run, day_notes_pdf, tiny_encoder):
    embeddings_pdf, _ = job_run[-1]
    copy_with_image = day_notes_pdf[(day_notes_pdf["note_id"] == "dup-two")
                                    & day_notes_pdf["image"].notna()]
    expected, _ = tiny_encoder.encode(copy_with_image)
    got = embeddings_pdf.set_index("note_id").loc["dup-two", "embedding"]
    np.testing.assert_allclose(got, expected[0], atol=EMBEDDING_ATOL)


def test_a_rerun_preparing_in_processes_replaces_the_day_with_identical_rows(job_run):
    (first_emb, first_err), (second_emb, second_err) = job_run
    # Each run stamps its own run_id on everything it wrote: readers can tell them apart.
    runs = [set(emb["run_id"]) | set(err["run_id"]) for emb, err in job_run]
    assert all(len(run) == 1 for run in runs) and runs[0] != runs[1]
    assert first_emb.drop(columns=["embedding", "run_id"]).equals(
        second_emb.drop(columns=["embedding", "run_id"]))
    # Preparing in processes batches the same inputs: equal up to reduction order.
    np.testing.assert_allclose(np.stack(first_emb["embedding"]),
                               np.stack(second_emb["embedding"]), rtol=0, atol=EMBEDDING_ATOL)
    assert first_err.drop(columns="run_id").equals(second_err.drop(columns="run_id"))


def test_tables_are_registered_by_name(spark, job_run):
    embeddings_pdf, errors_pdf = job_run[-1]
    assert spark.table("notellm2.note_embeddings").where(F.col("dt") == DAY).count() == len(
        embeddings_pdf)
    stages = {r["stage"] for r in spark.table("notellm2.embedding_errors").collect()}
    assert stages == {"image", "input", "duplicate", "text"}


def test_only_the_days_partition_is_read(spark, notes_location):
    plan = read_notes_day(spark, notes_location, DAY)._jdf.queryExecution().executedPlan()
    assert re.search(rf"PartitionFilters: \[.*\(dt#\d+ = {DAY}\)\]", plan.toString())


def test_split_duplicates_does_not_depend_on_input_order(spark, day_notes_pdf):
    crafted = day_notes_pdf[day_notes_pdf["note_id"].str.startswith("dup-")]
    forward = split_duplicates(spark.createDataFrame(crafted, NOTES.schema))[0]
    backward = split_duplicates(spark.createDataFrame(crafted.iloc[::-1], NOTES.schema))[0]
    as_rows = [sorted((r.note_id, r.title, r.image is None) for r in df.collect())
               for df in (forward, backward)]
    assert as_rows[0] == as_rows[1] == [("dup-three", "same", False),
                                        ("dup-two", "copy with image", False)]


def test_null_note_id_is_an_input_error(spark):
    rows = [(DAY, None, "t", "c", None, None), (DAY, "a", "t", "c", None, None)]
    schema = "dt string, note_id string, title string, content string, " \
             "topics array<string>, image binary"
    unique_df, errors_df = split_duplicates(spark.createDataFrame(rows, schema))
    assert [r.note_id for r in unique_df.collect()] == ["a"]
    assert [tuple(r) for r in errors_df.collect()] == [(DAY, None, "input", "note_id is null")]


def _job(argv_tail, capsys):
    code = embed_notes.main(argv_tail)
    return code, capsys.readouterr().err.strip().splitlines()


def test_missing_partition_exits_2_with_one_line(notes_location, tiny_checkpoint, tmp_path,
                                                 capsys):
    code, err = _job(["--date", "2026-01-01", "--notes", notes_location,
                      "--model", str(tiny_checkpoint), "--embeddings", str(tmp_path / "e"),
                      "--errors", str(tmp_path / "r")], capsys)
    assert code == 2
    assert err[-1] == f"embed_notes: notes table {notes_location} has no partition dt=2026-01-01"
    assert not (tmp_path / "e").exists()


def test_notes_without_contract_columns_exit_2(spark, tiny_checkpoint, tmp_path, capsys):
    location = str(tmp_path / "bad-notes")
    spark.createDataFrame([(DAY, "a", "t")], "dt string, note_id string, title string") \
        .write.format("delta").save(location)
    code, err = _job(["--date", DAY, "--notes", location, "--model", str(tiny_checkpoint),
                      "--embeddings", str(tmp_path / "e"), "--errors", str(tmp_path / "r")],
                     capsys)
    assert code == 2
    assert "lacks contract columns of notes: ['content', 'topics', 'image']" in err[-1]


def test_unreadable_model_exits_2(notes_location, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    code, err = _job(["--date", DAY, "--notes", notes_location, "--model",
                      str(tmp_path / "model"), "--embeddings", str(tmp_path / "e"),
                      "--errors", str(tmp_path / "r")], capsys)
    assert code == 2
    assert err[-1].startswith("embed_notes: unreadable model")
    with pytest.raises(JobInputError, match="unreadable model .*No such file"):
        check_model_dir(str(tmp_path / "missing"))


def test_bad_date_flag_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(embed_notes.EmbedSettings,
                       ["--date", "2026-11-25; rm -rf /", "--notes", "n", "--model", "m",
                        "--embeddings", "e", "--errors", "r"])
    assert exit_info.value.code == 2
    assert "date must be yyyy-MM-dd" in capsys.readouterr().err


def test_notes_with_wrong_column_types_exit_2_naming_each(spark, tiny_checkpoint, tmp_path,
                                                          capsys):
    location = str(tmp_path / "drifted")
    spark.createDataFrame(
        [(DAY, "n1", "title", "body", "tag-as-string", "image-as-string")],
        "dt string, note_id string, title string, content string, topics string, image string",
    ).write.format("delta").partitionBy("dt").save(location)
    code = embed_notes.main(["--date", DAY, "--notes", location, "--model", str(tiny_checkpoint),
                             "--embeddings", str(tmp_path / "e"), "--errors", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == (f"embed_notes: notes table {location} has contract columns of the wrong "
                      "type: topics: expected array<string>, found string; image: expected "
                      "binary, found string")
    assert not (tmp_path / "e").exists() and not (tmp_path / "r").exists()


def test_lossless_type_drift_is_cast_and_embedded(spark, tiny_checkpoint, tmp_path):
    location = str(tmp_path / "typed")
    spark.createDataFrame(
        [(12345678901, "a title", "a body", ["t"], None),
         (42, "another", None, None, None)],
        "note_id bigint, title string, content string, topics array<string>, image binary",
    ).withColumn("dt", F.to_date(F.lit(DAY))).write.format("delta").partitionBy("dt").save(
        location)
    out = tmp_path / "out"
    assert embed_notes.main(["--date", DAY, "--notes", location, "--model", str(tiny_checkpoint),
                             "--embeddings", str(out / "e"), "--errors", str(out / "r")]) == 0
    rows = spark.read.format("delta").load(str(out / "e")).select("dt", "note_id").collect()
    assert sorted((row["dt"], row["note_id"]) for row in rows) == [(DAY, "12345678901"),
                                                                     (DAY, "42")]

