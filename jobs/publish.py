"""Publish one validated day: register the tables, write the day's _SUCCESS marker.

    spark-submit jobs/publish.py --date 2026-11-25 --embeddings URI --errors URI \
        --related URI [--run-id ID] [--models-root DIR [--keep-versions N]]

Registers notellm2.note_embeddings, notellm2.embedding_errors and notellm2.related_notes
(external Delta tables at the given locations), then writes
`<related>/_published/dt=D/_SUCCESS`, a JSON record of the day: model_version, row counts,
run id and time. Consumers wait for that file, not for the table (it appears only after
validation passed). The newest published day and its model_version also go into the
table properties `notellm2.published_dt` / `notellm2.model_version` of related_notes (a
backfill of an older day leaves them alone). The marker names the run that wrote the
day's embeddings and errors (`embedding_run_id`); publishing refuses a day whose two tables
come from different runs, or whose related lists mix model versions (exit 2). A day without
related lists (no notes, no embeddable note) is published as an explicit empty day: the
marker says `"empty": true` and why.

With `--models-root`, publishing a day of the registry's pending version makes it the
serving version (the index of the day was built from it, so its whole window is embedded,
and validate_related passed): one atomic rewrite of registry.json. `--keep-versions N` then
deletes the checkpoints of all but the serving and N-1 previous versions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.registry.versions import prune, switch
from notellm2_udf.serving.publication import (
    marker_path,
    publication_record,
    update_table_properties,
    write_text,
)
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.shared import day_setting, table_setting
from notellm2_udf.settings.values import positive_int_arg, run_id_arg
from notellm2_udf.spark.delta_io import read_day, register_table
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, RELATED_NOTES

log = logging.getLogger("notellm2.publish")


@dataclass(frozen=True)
class PublishSettings:
    """One run of the job: the day, its tables, who publishes."""

    date: str = day_setting()
    embeddings: str = table_setting("note_embeddings")
    errors: str = table_setting("embedding_errors")
    related: str = table_setting("related_notes")
    run_id: str = option("manual", parse=run_id_arg, help="who published (the Airflow run id)")
    models_root: str | None = option(
        None, help="model registry: publishing a day of the pending version makes it serve")
    keep_versions: int | None = option(
        None, parse=positive_int_arg,
        help="after a switch, keep the checkpoints of the serving and N-1 previous versions "
             "only (default: keep all)")


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("publish", PublishSettings, run, argv, __doc__)


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
    if settings.models_root and record["model_version"]:
        switch_if_pending(settings, record["model_version"], summary)


def switch_if_pending(settings: PublishSettings, version: str, summary: JobSummary) -> None:
    if not switch(settings.models_root, version, settings.date):
        return
    log.info("model %s serves from %s on", version, settings.date)
    summary.add("serving_from_now", version)
    if settings.keep_versions:
        summary.add("pruned_versions", prune(settings.models_root, settings.keep_versions))


if __name__ == "__main__":
    raise SystemExit(main())
