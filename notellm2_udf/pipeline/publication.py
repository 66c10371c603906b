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
    """What the marker says about the day; JobInputError if it must not be published."""
    related = related_df.agg(
        F.count(F.lit(1)).alias("rows"), F.countDistinct("note_id").alias("queries"),
        F.collect_set("model_version").alias("versions")).first()
    if not related["rows"]:
        raise JobInputError(f"related_notes has no rows for dt={day}: nothing to publish")
    if len(related["versions"]) != 1:
        raise JobInputError(f"related_notes dt={day} mixes model versions "
                            f"{sorted(related['versions'])}: rerun the day")
    return {
        "dt": day,
        "model_version": related["versions"][0],
        "related_rows": related["rows"],
        "queries": related["queries"],
        "embedded": embeddings_df.count(),
        "errors": errors_df.count(),
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def marker_path(related_location: str, day: str) -> str:
    return f"{related_location.rstrip('/')}/{MARKER_DIR}/dt={day}/_SUCCESS"


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
    if record["dt"] < newest:
        return newest
    spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ("
              f"'notellm2.published_dt' = '{record['dt']}', "
              f"'notellm2.model_version' = '{_sql_safe(record['model_version'])}')")
    return record["dt"]


def _sql_safe(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:\-]+", value):
        raise JobInputError(f"model_version {value!r} is not a plain identifier")
    return value
