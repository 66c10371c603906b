"""Embed one day of notes: `notes` partition -> `note_embeddings` + `embedding_errors`.

    spark-submit jobs/embed_notes.py --date 2026-11-25 --notes URI --model DIR \
        --embeddings URI --errors URI [--batch-size N] [--max-image-pixels N] \
        [--batch-tokens N] [--partitions N] [--compile] [--prepare-processes N]

URIs are Delta table locations; DIR is a NoteLLM-2 checkpoint readable from every executor.
Every note_id of the day ends up in `note_embeddings` or `embedding_errors` (or both: a note
whose image was refused is embedded from its text, with image_ok = false, and an error row
says why). Both tables get the day through one `replaceWhere dt = D` commit each, so a rerun
replaces exactly that day, and both are registered as notellm2.note_embeddings and
notellm2.embedding_errors. Exit 0 on success; 2 with a one-line reason when the partition is
missing, the notes table lacks contract columns or the model is unreadable.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from notellm2_udf.delta_io import register_table, replace_days
from notellm2_udf.embed_udf import (
    ENCODED_SCHEMA,
    EncoderSettings,
    load_encoder,
    make_encode_partition,
)
from notellm2_udf.job_runtime import (
    JobInputError,
    JobSummary,
    day_arg,
    positive_int_arg,
    require_columns,
    run_job,
)
from notellm2_udf.spark_session import SparkSettings, build_spark_session
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, NOTES

log = logging.getLogger("notellm2.embed_notes")

DEFAULT_BATCH_SIZE = 512
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
NOTE_COLUMNS = ["dt", "note_id", "title", "content", "topics", "image"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, type=day_arg, help="the dt partition, yyyy-MM-dd")
    parser.add_argument("--notes", required=True, help="notes Delta table location")
    parser.add_argument("--model", required=True, help="NoteLLM-2 checkpoint directory")
    parser.add_argument("--embeddings", required=True, help="note_embeddings Delta location")
    parser.add_argument("--errors", required=True, help="embedding_errors Delta location")
    parser.add_argument("--batch-size", type=positive_int_arg, default=DEFAULT_BATCH_SIZE,
                        help="notes per Arrow batch handed to the encoder "
                             f"(default {DEFAULT_BATCH_SIZE}); the encoder sorts and "
                             "re-batches them by a token budget")
    parser.add_argument("--batch-tokens", type=positive_int_arg, default=None,
                        help="token budget of one forward pass (default: the encoder's, "
                             "by device)")
    parser.add_argument("--partitions", type=positive_int_arg, default=None,
                        help="encoding tasks (default: 4 x the default parallelism, so the "
                             "last wave of tasks leaves few slots idle)")
    parser.add_argument("--max-image-pixels", type=positive_int_arg,
                        default=DEFAULT_MAX_IMAGE_PIXELS,
                        help="images with more pixels are refused before decoding "
                             f"(default {DEFAULT_MAX_IMAGE_PIXELS})")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model on each worker: about a minute more per "
                             "worker at start, faster encoding after (see docs/BENCHMARKS.md)")
    parser.add_argument("--prepare-processes", type=positive_int_arg, default=None,
                        help="decode images and tokenise in N worker processes per encoding "
                             "task instead of threads (default: threads, one per task CPU)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job("embed_notes", lambda summary: embed_day(args, summary))


def embed_day(args: argparse.Namespace, summary: JobSummary) -> None:
    check_model_dir(args.model)
    spark = build_spark_session(SparkSettings(app_name=f"embed_notes {args.date}"))
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_size))
    notes_df = read_notes_day(spark, args.notes, args.date)
    settings = EncoderSettings(args.model, args.max_image_pixels, args.batch_tokens,
                               compile=args.compile,
                               prepare_processes=args.prepare_processes or 0)

    unique_df, duplicate_errors_df = split_duplicates(notes_df)
    partitions = args.partitions or 4 * spark.sparkContext.defaultParallelism
    encoded_df = encode_notes(unique_df.repartition(partitions, "note_id"), settings).persist(
        StorageLevel.MEMORY_AND_DISK)
    try:
        embeddings_df = embeddings_rows(encoded_df, args.date)
        errors_df = error_rows(encoded_df, args.date).unionByName(duplicate_errors_df)
        log.info("embedding the notes of %s (the model runs while the first table is written)",
                 args.date)
        replace_days(embeddings_df, NOTE_EMBEDDINGS, args.embeddings, args.date)
        replace_days(errors_df, EMBEDDING_ERRORS, args.errors, args.date)
        register_table(spark, NOTE_EMBEDDINGS, args.embeddings)
        register_table(spark, EMBEDDING_ERRORS, args.errors)
        _summarise(summary, spark, args, encoded_df)
    finally:
        encoded_df.unpersist()


def check_model_dir(model_dir: str) -> None:
    """Refuse an unreadable checkpoint on the driver, before any Spark work (no torch here)."""
    config_path = Path(model_dir) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise JobInputError(f"unreadable model {model_dir}: {err}") from None
    if config.get("model_type") != "notellm2":
        raise JobInputError(
            f"unreadable model {model_dir}: config.json model_type is "
            f"{config.get('model_type')!r}, not 'notellm2' (compose one with notellm2 init-model)")
    if not any(Path(model_dir).glob("*.safetensors")):
        raise JobInputError(f"unreadable model {model_dir}: no *.safetensors weights")


def read_notes_day(spark: SparkSession, location: str, day: str) -> DataFrame:
    """The day's partition of `notes` (pruned: only its files are read)."""
    try:
        table_df = spark.read.format("delta").load(location)
    except Exception as err:  # AnalysisException: not a Delta table, path missing
        raise JobInputError(f"cannot read notes table {location}: {_first_line(err)}") from None
    require_columns(table_df, NOTES, f"notes table {location}")
    day_df = table_df.where(F.col("dt") == day).select(*NOTE_COLUMNS)
    if day_df.isEmpty():
        raise JobInputError(f"notes table {location} has no partition dt={day}")
    return day_df


def split_duplicates(notes_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(one row per note_id, an error row for every extra copy and every null note_id).

    The kept copy does not depend on the input order: the one with an image, then with
    text, then the smallest hash of its fields (identical copies are interchangeable).
    """
    preference = Window.partitionBy("note_id").orderBy(
        F.col("image").isNull(), F.col("content").isNull(), F.col("title").isNull(),
        F.xxhash64("title", "content", "topics", "image"),
    )
    ranked_df = notes_df.withColumn("copy", F.row_number().over(preference)).withColumn(
        "copies", F.count(F.lit(1)).over(Window.partitionBy("note_id")))
    has_id = F.col("note_id").isNotNull()
    unique_df = ranked_df.where(has_id & (F.col("copy") == 1)).drop("copy", "copies")
    errors_df = ranked_df.where(~has_id | (F.col("copy") > 1)).select(
        "dt", "note_id",
        F.when(has_id, F.lit("duplicate")).otherwise(F.lit("input")).alias("stage"),
        F.when(has_id, F.format_string(
            "duplicate note_id: %d copies in dt=%s, one embedded", F.col("copies"), F.col("dt"),
        )).otherwise(F.lit("note_id is null")).alias("error"),
    )
    return unique_df, errors_df


def encode_notes(notes_df: DataFrame, settings: EncoderSettings,
                 factory=load_encoder) -> DataFrame:
    """Run the encoder on executors: one ENCODED_SCHEMA row per note."""
    return notes_df.mapInPandas(make_encode_partition(settings, factory), ENCODED_SCHEMA)


def embeddings_rows(encoded_df: DataFrame, day: str) -> DataFrame:
    """`note_embeddings` rows: every note with usable text or image."""
    return encoded_df.where("has_content").select(
        F.lit(day).alias("dt"), "note_id", "embedding", "visual_embedding", "model_version",
        "image_ok")


def error_rows(encoded_df: DataFrame, day: str) -> DataFrame:
    """`embedding_errors` rows: refused images (the note was still embedded from its text) and
    notes with neither usable text nor image (not embedded)."""
    image_df = encoded_df.where("has_content AND image_error IS NOT NULL").select(
        F.lit(day).alias("dt"), "note_id", F.lit("image").alias("stage"),
        F.concat(F.lit("image refused, embedded from text: "), "image_error").alias("error"))
    empty_df = encoded_df.where("NOT has_content").select(
        F.lit(day).alias("dt"), "note_id", F.lit("input").alias("stage"),
        F.concat(F.lit("no usable text or image"),
                 F.coalesce(F.concat(F.lit(" (image refused: "), "image_error", F.lit(")")),
                            F.lit(""))).alias("error"))
    return image_df.unionByName(empty_df)


def _summarise(summary: JobSummary, spark: SparkSession, args: argparse.Namespace,
               encoded_df: DataFrame) -> None:
    counts = encoded_df.agg(
        F.count(F.lit(1)).alias("unique"),
        F.sum(F.col("has_content").cast("int")).alias("embedded"),
        F.sum(F.col("image_ok").cast("int")).alias("with_image"),
        F.countDistinct("worker_pid").alias("workers"),
        F.first("model_version").alias("model_version"),
    ).first()
    errors = {row["stage"]: row["count"] for row in spark.read.format("delta").load(args.errors)
              .where(F.col("dt") == args.date).groupBy("stage").count().collect()}
    rows_in = spark.read.format("delta").load(args.notes).where(F.col("dt") == args.date).count()
    summary.add("date", args.date)
    summary.add("rows_in", rows_in)
    summary.add("embedded", counts["embedded"] or 0)
    summary.add("with_image", counts["with_image"] or 0)
    summary.add("errors_by_stage", json.dumps(dict(sorted(errors.items()))))
    summary.add("notes_per_s", round((counts["unique"] or 0) / max(summary.elapsed_s, 1e-9), 1))
    summary.add("workers", counts["workers"])
    summary.add("model_version", counts["model_version"])


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


if __name__ == "__main__":
    raise SystemExit(main())
