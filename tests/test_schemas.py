"""Contract tables: DDL matches the StructTypes, Delta keeps them, days are replaced exactly."""

from __future__ import annotations

import shutil

import pytest
from pyspark.sql import Row
from pyspark.sql import types as T

from notellm2_udf.spark.delta_io import (
    conform,
    read_day,
    register_table,
    replace_days,
    validate_day,
)
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, NOTES, RELATED_NOTES, RELATED_PAIRS, TABLES


def _strip_metadata(schema: T.StructType) -> T.StructType:
    return T.StructType([T.StructField(f.name, f.dataType, f.nullable) for f in schema.fields])


def test_contract_columns_are_the_ones_users_rely_on():
    assert NOTES.column_names == ["dt", "note_id", "title", "content", "topics", "image"]
    assert NOTE_EMBEDDINGS.column_names == [
        "dt", "note_id", "embedding", "visual_embedding", "model_version", "image_ok", "run_id"]
    # Added columns are nullable: tables of older releases gain them (rows read as null).
    assert EMBEDDING_ERRORS.column_names == [
        "dt", "note_id", "stage", "error", "model_version", "run_id"]
    assert all(spec.schema[name].nullable for spec, name in (
        (NOTE_EMBEDDINGS, "run_id"), (EMBEDDING_ERRORS, "model_version"),
        (EMBEDDING_ERRORS, "run_id")))
    assert RELATED_NOTES.column_names == [
        "dt", "note_id", "rank", "related_note_id", "score", "model_version"]
    assert RELATED_PAIRS.column_names[:4] == ["note_id", "related_note_id", "score", "dt"]
    assert all(spec.partition_by == ("dt",) for spec in TABLES.values())
    assert NOTES.schema["note_id"].nullable is False
    assert NOTES.schema["image"].dataType == T.BinaryType()
    assert NOTE_EMBEDDINGS.schema["embedding"].dataType == T.ArrayType(T.FloatType())
    assert RELATED_NOTES.qualified_name == "notellm2.related_notes"


def test_ddl_text():
    assert NOTES.ddl.startswith(
        "dt STRING NOT NULL COMMENT 'partition day, yyyy-MM-dd', "
        "note_id STRING NOT NULL COMMENT 'note identifier', title STRING COMMENT")
    assert "topics ARRAY<STRING> COMMENT" in NOTES.ddl
    assert "rank INT NOT NULL" in RELATED_NOTES.ddl


@pytest.mark.parametrize("spec", list(TABLES.values()), ids=list(TABLES))
def test_ddl_creates_the_struct_type(spark, tmp_path, spec):
    location = str(tmp_path / spec.name)
    spark.sql(
        f"CREATE TABLE delta.`{location}` ({spec.ddl}) USING DELTA "
        f"PARTITIONED BY ({', '.join(spec.partition_by)})"
    )
    created = spark.read.format("delta").load(location).schema
    assert _strip_metadata(created) == _strip_metadata(spec.schema)


def _note(dt: str, note_id: str, title: str = "t") -> Row:
    return Row(dt=dt, note_id=note_id, title=title, content="c #x#", topics=["x"],
               image=bytearray(b"\x89PNG"))


def test_delta_round_trip_keeps_schema_and_rows(spark, tmp_path):
    location = str(tmp_path / "notes")
    rows = [_note("2026-11-24", "a"), _note("2026-11-24", "b", title=None)]
    replace_days(spark.createDataFrame(rows, NOTES.schema), NOTES, location, "2026-11-24")

    read_df = spark.read.format("delta").load(location)
    assert _strip_metadata(read_df.schema) == _strip_metadata(NOTES.schema)
    got = sorted(read_df.collect(), key=lambda r: r.note_id)
    assert [(r.note_id, r.title, r.topics, bytes(r.image)) for r in got] == [
        ("a", "t", ["x"], b"\x89PNG"), ("b", None, ["x"], b"\x89PNG")]


def test_null_in_not_null_column_is_refused(spark, tmp_path):
    location = str(tmp_path / "notes")
    schema = T.StructType([
        T.StructField(f.name, f.dataType, True) for f in NOTES.schema.fields])
    bad_df = spark.createDataFrame([_note("2026-11-24", None)], schema)
    with pytest.raises(Exception, match="(?i)not.?null|NOT_NULL"):
        replace_days(bad_df, NOTES, location, "2026-11-24")


def test_replace_days_replaces_exactly_one_day(spark, tmp_path):
    location = str(tmp_path / "notes")
    day1 = [_note("2026-11-24", "a"), _note("2026-11-24", "b")]
    day2 = [_note("2026-11-25", "c")]
    replace_days(spark.createDataFrame(day1, NOTES.schema), NOTES, location, "2026-11-24")
    replace_days(spark.createDataFrame(day2, NOTES.schema), NOTES, location, "2026-11-25")
    rerun = [_note("2026-11-24", "a", title="new")]
    replace_days(spark.createDataFrame(rerun, NOTES.schema), NOTES, location, "2026-11-24")

    got = {(r.dt, r.note_id, r.title) for r in spark.read.format("delta").load(location).collect()}
    assert got == {("2026-11-24", "a", "new"), ("2026-11-25", "c", "t")}
    assert [r.note_id for r in read_day(spark, location, "2026-11-25").collect()] == ["c"]


def test_rows_outside_the_replaced_day_are_refused(spark, tmp_path):
    location = str(tmp_path / "notes")
    wrong_day = spark.createDataFrame([_note("2026-11-26", "z")], NOTES.schema)
    with pytest.raises(Exception, match="(?i)replaceWhere|DELTA_REPLACE_WHERE"):
        replace_days(wrong_day, NOTES, location, "2026-11-24")


def test_conform_names_missing_columns(spark):
    df = spark.createDataFrame([("2026-11-24", "a")], "dt string, note_id string")
    with pytest.raises(ValueError, match=r"notes: missing contract columns \['title', 'content'"):
        conform(df, NOTES)


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-11-24' OR '1'='1", "20261124", "", None])
def test_validate_day_refuses_bad_dates(bad):
    with pytest.raises(ValueError, match="yyyy-MM-dd|month|day"):
        validate_day(bad)


def test_register_table_repoints_an_existing_name(spark, tmp_path):
    first, second = str(tmp_path / "v1"), str(tmp_path / "v2")
    replace_days(spark.createDataFrame([_note("2026-11-24", "old")], NOTES.schema),
                 NOTES, first, "2026-11-24")
    replace_days(spark.createDataFrame([_note("2026-11-24", "new")], NOTES.schema),
                 NOTES, second, "2026-11-24")
    register_table(spark, NOTES, first)
    assert [r.note_id for r in spark.table("notellm2.notes").collect()] == ["old"]
    register_table(spark, NOTES, second)
    register_table(spark, NOTES, second)
    assert [r.note_id for r in spark.table("notellm2.notes").collect()] == ["new"]
    assert [r.note_id for r in spark.read.format("delta").load(first).collect()] == ["old"]


def test_register_table_repoints_a_name_whose_data_was_deleted(spark, tmp_path):
    gone, kept = tmp_path / "gone", str(tmp_path / "kept")
    replace_days(spark.createDataFrame([_note("2026-11-24", "gone")], NOTES.schema),
                 NOTES, str(gone), "2026-11-24")
    replace_days(spark.createDataFrame([_note("2026-11-24", "kept")], NOTES.schema),
                 NOTES, kept, "2026-11-24")
    register_table(spark, NOTES, str(gone))
    shutil.rmtree(gone)
    register_table(spark, NOTES, kept)
    assert [r.note_id for r in spark.table("notellm2.notes").collect()] == ["kept"]
