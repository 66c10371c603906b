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
from dataclasses import dataclass

from pyspark.sql import SparkSession

from notellm2_udf.pipeline.publication import (
    marker_path,
    publication_record,
    update_table_properties,
    write_text,
)
from notellm2_udf.spark.delta_io import read_day, register_table
from notellm2_udf.spark.job_args import day_arg
from notellm2_udf.spark.job_runtime import JobSummary, run_job
from notellm2_udf.spark.session import SparkSettings, build_spark_session
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, RELATED_NOTES

_RUN_ID = re.compile(r"[A-Za-z0-9_.:+\-]{1,250}")


@dataclass(frozen=True)
class PublishSettings:
    """One run of the job: the day, its tables, who publishes."""

    date: str
    embeddings: str
    errors: str
    related: str
    run_id: str = "manual"


def parse_args(argv: Sequence[str] | None) -> PublishSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, type=day_arg, help="the dt partition, yyyy-MM-dd")
    parser.add_argument("--embeddings", required=True, help="note_embeddings Delta location")
    parser.add_argument("--errors", required=True, help="embedding_errors Delta location")
    parser.add_argument("--related", required=True, help="related_notes Delta location")
    parser.add_argument("--run-id", default="manual", type=_run_id,
                        help="who published (the Airflow run id)")
    return PublishSettings(**vars(parser.parse_args(argv)))


def _run_id(text: str) -> str:
    if not _RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"run id must match {_RUN_ID.pattern}, got {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)

    def body(summary: JobSummary) -> None:
        spark = build_spark_session(SparkSettings(app_name=f"publish {settings.date}"))
        run(spark, settings, summary)

    return run_job("publish", body)


def run(spark: SparkSession, settings: PublishSettings, summary: JobSummary) -> None:
    """Register the tables, write the day's marker, update the newest-day properties."""
    day = settings.date
    record = publication_record(
        read_day(spark, settings.related, day), read_day(spark, settings.embeddings, day),
        read_day(spark, settings.errors, day), day, settings.run_id)
    for spec, location in ((NOTE_EMBEDDINGS, settings.embeddings),
                           (EMBEDDING_ERRORS, settings.errors), (RELATED_NOTES, settings.related)):
        register_table(spark, spec, location)
    marker = marker_path(settings.related, day)
    write_text(spark, marker, json.dumps(record, sort_keys=True) + "\n")
    newest = update_table_properties(spark, record)
    for key, value in record.items():
        summary.add(key, value)
    summary.add("marker", marker)
    summary.add("newest_published", newest)


if __name__ == "__main__":
    raise SystemExit(main())
