"""Publishing a validated day: the `_published/dt=D/_SUCCESS` marker and the table
properties that name the newest published day (jobs/publish.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from schemas import RELATED_NOTES

MARKER_DIR = "_published"


def publication_record(related_df: DataFrame, embeddings_df: DataFrame, errors_df: DataFrame,
                       day: str, run_id: str) -> dict:
    """What the marker says about the day; JobInputError if it must not be published.

    Embeddings and errors count for the related lists' model version only (the tables hold
    one set of rows per version), and must come from one run. A day without related lists
    is published as an explicit empty day, with the reason.
    """
    related = related_df.agg(
        F.count(F.lit(1)).alias("rows"), F.countDistinct("note_id").alias("queries"),
        F.collect_set("model_version").alias("versions")).first()
    versions = related["versions"]
    if len(versions) > 1:
        raise JobInputError(f"related_notes dt={day} mixes model versions "
                            f"{sorted(versions)}: rerun the day")
    # One Spark action for both tables (each action on a small day costs more in fixed
    # overhead than in work): rows per (table, model_version, run_id), bounded by the
    # distinct versions and runs of one day (one each when it is publishable).
    groups = [(row["embedded"], row["model_version"], row["run_id"] or "", row["count"])
              for row in embeddings_df.select(F.lit(True).alias("embedded"), "model_version",
                                              "run_id")
              .unionByName(errors_df.select(F.lit(False).alias("embedded"), "model_version",
                                            "run_id"))
              .groupBy("embedded", "model_version", "run_id").count().collect()]
    if not versions:  # no lists: the version of whatever the day's embedding run wrote
        versions = sorted({group[1] for group in groups if group[1] is not None})[-1:]
    version = versions[0] if versions else None
    if version is not None:
        # Rows written before versions keyed the errors have none.
        groups = [group for group in groups
                  if group[1] == version or (not group[0] and group[1] is None)]
    embedded = sum(count for is_embedding, _, _, count in groups if is_embedding)
    errors = sum(count for is_embedding, _, _, count in groups if not is_embedding)
    runs = sorted({run for _, _, run, _ in groups})
    if len(runs) > 1:
        raise JobInputError(f"note_embeddings and embedding_errors of dt={day} (model "
                            f"{version}) were written by different runs {runs}: rerun "
                            "embed_notes for the day")
    record = {
        "dt": day,
        "model_version": version,
        "related_rows": related["rows"],
        "queries": related["queries"],
        "embedded": embedded,
        "errors": errors,
        "embedding_run_id": runs[0] if runs else None,
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not embedded:  # an explicit outcome, not a failure
        record["day_outcome"] = "no embeddable note" if errors else "no notes"
    if not related["rows"]:
        record["empty"] = True
        record["reason"] = ("no embedded note in the index window" if embedded or errors
                            else "no notes")
    return record


def marker_path(related_location: str, day: str) -> str:
    return f"{related_location.rstrip('/')}/{MARKER_DIR}/dt={day}/_SUCCESS"


def withdraw_marker(spark: SparkSession, related_location: str, day: str) -> bool:
    """Delete the day's marker before its tables are rewritten; True if there was one."""
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(marker_path(related_location, day))
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    return bool(fs.exists(path) and fs.delete(path, False))


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write a small file through Hadoop's FileSystem (local, HDFS, S3A alike)."""
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def update_table_properties(spark: SparkSession, record: dict) -> str:
    """Set notellm2.published_dt / model_version if this day is the newest published one."""
    name = RELATED_NOTES.qualified_name
    current = {row["key"]: row["value"]
               for row in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
    newest = current.get("notellm2.published_dt", "")
    if record["dt"] < newest or record["model_version"] is None:
        return newest
    spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ("
              f"'notellm2.published_dt' = '{record['dt']}', "
              f"'notellm2.model_version' = '{_sql_safe(record['model_version'])}')")
    return record["dt"]


def _sql_safe(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:\-]+", value):
        raise JobInputError(f"model_version {value!r} is not a plain identifier")
    return value
