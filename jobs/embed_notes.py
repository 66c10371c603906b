"""Embed one day of notes: `notes` partition -> `note_embeddings` + `embedding_errors`.

    spark-submit jobs/embed_notes.py --date 2026-11-25 --notes URI \
        (--model DIR | --models-root DIR) --embeddings URI --errors URI [--related URI] \
        [--run-id ID] [--empty-day fail|publish] [--batch-size N] [--batch-bytes N] \
        [--max-image-pixels N] [--batch-tokens N] [--partitions N] [--compile] \
        [--prepare-processes N] [--image-decode auto|cpu|gpu]

URIs are Delta table locations. The model is resolved once, on the driver, and the resolved
directory and its model_version go to every executor (a promotion during the run cannot mix
two models in the day): `--model DIR` follows a link such as `<models_root>/current` to the
checkpoint it names; `--models-root DIR` takes the registry's serving version (docs/OPERATIONS.md).
Every note_id of the day ends up in `note_embeddings` or `embedding_errors` (or both: a note
whose image was refused is embedded from its text, with image_ok = false, and an error row
says why). Both tables are keyed by (dt, model_version): each gets that version's rows of
the day through one replaceWhere commit, stamped with `--run-id`, so a rerun replaces exactly
what the last run of that version wrote and other versions' rows stay (rollout, rollback).
With `--related`, the day's published marker is withdrawn before anything is written.
A day without notes fails (exit 2) unless `--empty-day publish`: then the day is written
empty, an explicit outcome the rest of the pipeline publishes. Exit 0 on success; 2 with a
one-line reason when the partition is missing, the notes table lacks contract columns or the
model is unreadable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from notellm2_udf.embedding.day import DayCounts, EmbedTarget, embed_day
from notellm2_udf.embedding.options import EncodeOptions
from notellm2_udf.inputs.notes import read_notes_day
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.registry.pinning import pin_model
from notellm2_udf.registry.versions import PinnedModel
from notellm2_udf.serving.publication import withdraw_marker
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.shared import (
    day_setting,
    model_dir_setting,
    models_root_setting,
    run_id_setting,
    table_setting,
)
from notellm2_udf.spark.delta_io import register_table
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS

log = logging.getLogger("notellm2.embed_notes")


@dataclass(frozen=True)
class EmbedSettings:
    """One run of the job: which day, which tables, which model, how to batch."""

    REQUIRED_GROUPS: ClassVar[tuple[str, ...]] = ("model",)

    date: str = day_setting()
    notes: str = table_setting("notes")
    embeddings: str = table_setting("note_embeddings")
    errors: str = table_setting("embedding_errors")
    model: str | None = model_dir_setting()
    models_root: str | None = models_root_setting()
    related: str | None = option(None, help="related_notes Delta location: withdraw the day's "
                                            "published marker before writing")
    run_id: str = run_id_setting()
    empty_day: str = option("fail", choices=("fail", "publish"),
                            help="a day without notes: fail, or write it empty")
    encode: EncodeOptions = EncodeOptions()


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("embed_notes", EmbedSettings, run, argv, __doc__)


def run(spark: SparkSession, settings: EmbedSettings, summary: JobSummary) -> None:
    """Embed the day and replace it in both tables; facts of the run go to `summary`."""
    model = pin_model(model_dir=settings.model, models_root=settings.models_root,
                      day=settings.date)
    partitions = settings.encode.configure(spark)
    notes_df = read_notes_day(spark, settings.notes, settings.date,
                              allow_empty=settings.empty_day == "publish")
    if settings.related and withdraw_marker(spark, settings.related, settings.date):
        log.info("withdrew the published marker of %s before rewriting it", settings.date)
    log.info("embedding the notes of %s with model %s (%s)", settings.date, model.version,
             model.dir)
    counts = embed_day(notes_df, settings.date, model, settings.encode.encoder,
                       EmbedTarget(settings.embeddings, settings.errors, settings.run_id),
                       partitions)
    register_table(spark, NOTE_EMBEDDINGS, settings.embeddings)
    register_table(spark, EMBEDDING_ERRORS, settings.errors)
    _summarise(summary, spark, settings, model, counts)


def _summarise(summary: JobSummary, spark: SparkSession, settings: EmbedSettings,
               model: PinnedModel, counts: DayCounts) -> None:
    # One Spark action for both tables: the day's notes, and its errors by stage (at most
    # six rows, a bounded collect).
    day = F.col("dt") == settings.date
    notes_df = (spark.read.format("delta").load(settings.notes).where(day)
                .select(F.lit("notes").alias("table"), F.lit(None).cast("string").alias("stage")))
    errors_df = (spark.read.format("delta").load(settings.errors)
                 .where(day & (F.col("model_version") == model.version))
                 .select(F.lit("errors").alias("table"), "stage"))
    # Bounded: one row for the notes and one per error stage (a handful of stages).
    counted = notes_df.unionByName(errors_df).groupBy("table", "stage").count().collect()
    errors = {row["stage"]: row["count"] for row in counted if row["table"] == "errors"}
    rows_in = sum(row["count"] for row in counted if row["table"] == "notes")
    summary.add("date", settings.date)
    summary.add("rows_in", rows_in)
    if rows_in == 0:
        summary.add("outcome", "empty day: no notes")
    elif counts.embedded == 0:
        summary.add("outcome", "no embeddable note")
    summary.add("embedded", counts.embedded)
    summary.add("with_image", counts.with_image)
    summary.add("errors_by_stage", json.dumps(dict(sorted(errors.items()))))
    summary.add("notes_per_s", round(counts.notes / max(summary.elapsed_s, 1e-9), 1))
    summary.add("input_wait_share", _share(counts.input_wait_s, counts.encode_s))
    summary.add("workers", counts.workers)
    summary.add("model_version", model.version)
    summary.add("model_dir", model.dir)
    summary.add("run_id", settings.run_id)


def _share(waiting: float | None, working: float | None) -> float | None:
    """Waiting / (waiting + working), 3 decimals; None when nothing was encoded."""
    total = (waiting or 0.0) + (working or 0.0)
    return round((waiting or 0.0) / total, 3) if total else None


if __name__ == "__main__":
    raise SystemExit(main())
