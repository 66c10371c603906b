"""Publish one validated day: register the tables, write the day's _SUCCESS marker.

    spark-submit jobs/publish.py --date 2026-11-25 --embeddings URI --errors URI \
        --related URI [--run-id ID]

Registers notellm2.note_embeddings, notellm2.embedding_errors and notellm2.related_notes
(external Delta tables at the given locations), then writes
`<related>/_published/dt=D/_SUCCESS`, a JSON record of the day: model_version, row counts,
run id and time. Consumers wait for that file, not for the table (it appears only after
validation passed). The newest published day and its model_version also go into the
table properties `notellm2.published_dt` / `notellm2.model_version` of related_notes (a
backfill of an older day leaves them alone). Exit 2 with a one-line reason if the day has
no related notes or more than one model_version.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.delta_io import read_day, register_table
from notellm2_udf.job_runtime import JobInputError, JobSummary, day_arg, run_job
from notellm2_udf.spark_session import SparkSettings, build_spark_session
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, RELATED_NOTES

MARKER_DIR = "_published"
_RUN_ID = re.compile(r"[A-Za-z0-9_.:+\-]{1,250}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, type=day_arg, help="the dt partition, yyyy-MM-dd")
    parser.add_argument("--embeddings", required=True, help="note_embeddings Delta location")
    parser.add_argument("--errors", required=True, help="embedding_errors Delta location")
    parser.add_argument("--related", required=True, help="related_notes Delta location")
    parser.add_argument("--run-id", default="manual", type=_run_id,
                        help="who published (the Airflow run id)")
    return parser.parse_args(argv)


def _run_id(text: str) -> str:
    if not _RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"run id must match {_RUN_ID.pattern}, got {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job("publish", lambda summary: publish_day(args, summary))


def publish_day(args: argparse.Namespace, summary: JobSummary) -> None:
    spark = build_spark_session(SparkSettings(app_name=f"publish {args.date}"))
    record = publication_record(
        read_day(spark, args.related, args.date), read_day(spark, args.embeddings, args.date),
        read_day(spark, args.errors, args.date), args.date, args.run_id)
    for spec, location in ((NOTE_EMBEDDINGS, args.embeddings), (EMBEDDING_ERRORS, args.errors),
                           (RELATED_NOTES, args.related)):
        register_table(spark, spec, location)
    marker = marker_path(args.related, args.date)
    write_text(spark, marker, json.dumps(record, sort_keys=True) + "\n")
    newest = update_table_properties(spark, record)
    for key, value in record.items():
        summary.add(key, value)
    summary.add("marker", marker)
    summary.add("newest_published", newest)


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


if __name__ == "__main__":
    raise SystemExit(main())
