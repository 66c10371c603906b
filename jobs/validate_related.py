"""Check one day of related notes before it is published; fail the run if a check fails.

    spark-submit jobs/validate_related.py --date 2026-11-25 --notes URI --embeddings URI \
        --errors URI --related URI [--top-k 100] [--window-days 30] [--sample-size 200] \
        [--min-recall 0.9] [--seed 0]

Checks of dt=D (each counts offending rows; every count must be 0):
  - every note_id of `notes` is in `note_embeddings` or `embedding_errors`;
  - every note embedded on D has related notes; every query and related note is an embedded
    note of the window [D - window_days + 1, D]; no note is its own related note;
  - no duplicate (note_id, rank) nor (note_id, related_note_id); ranks are 1..n with
    min(top_k, notes embedded on D - 1) <= n <= top_k;
  - scores are finite and do not increase with rank;
  - related rows carry the model_version of the day's embeddings;
the day's embeddings, errors and window are those of the related lists' model version (the
tables hold one set of rows per version); and the sampled recall: for `--sample-size` query
notes, the share of their related notes that
exact inner-product search over the window also ranks in the top n (tie-tolerant: a related
note counts if its true score reaches the exact n-th score) must be >= --min-recall.
Reads only; exit 0 when all pass, 2 with a one-line list of the failed checks otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from notellm2_udf.index.validation import check_counts, sampled_recall, window_embeddings
from notellm2_udf.job.args import day_arg, positive_int_arg
from notellm2_udf.job.runtime import JobSummary, run_job
from notellm2_udf.spark.persist import persist_on_disk
from notellm2_udf.spark.session import SparkSettings, build_spark_session
from notellm2_udf.spark.tables import read_table, read_table_day
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, NOTES, RELATED_NOTES


@dataclass(frozen=True)
class ValidateSettings:
    """One run of the job: the day, its tables, the thresholds."""

    date: str
    notes: str
    embeddings: str
    errors: str
    related: str
    top_k: int = 100
    window_days: int = 30
    sample_size: int = 200
    min_recall: float = 0.9
    seed: int = 0


def parse_args(argv: Sequence[str] | None) -> ValidateSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, type=day_arg, help="the dt partition, yyyy-MM-dd")
    parser.add_argument("--notes", required=True, help="notes Delta table location")
    parser.add_argument("--embeddings", required=True, help="note_embeddings Delta location")
    parser.add_argument("--errors", required=True, help="embedding_errors Delta location")
    parser.add_argument("--related", required=True, help="related_notes Delta location")
    parser.add_argument("--top-k", type=positive_int_arg, default=100,
                        help="related notes per note (default 100)")
    parser.add_argument("--window-days", type=positive_int_arg, default=30,
                        help="days of embeddings the index held (default 30)")
    parser.add_argument("--sample-size", type=positive_int_arg, default=200,
                        help="query notes checked against exact search (default 200)")
    parser.add_argument("--min-recall", type=float, default=0.9,
                        help="lowest acceptable sampled recall (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="which queries are sampled")
    args = parser.parse_args(argv)
    return ValidateSettings(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)

    def body(summary: JobSummary) -> None:
        spark = build_spark_session(SparkSettings(app_name=f"validate_related {settings.date}"))
        run(spark, settings, summary)

    return run_job("validate_related", body)


def run(spark: SparkSession, settings: ValidateSettings, summary: JobSummary) -> None:
    """Run every check of the day; JobInputError naming the failed ones."""
    day = settings.date
    notes_df = read_table_day(spark, settings.notes, NOTES, day)
    related_df = persist_on_disk(read_table_day(spark, settings.related, RELATED_NOTES, day))
    version = lists_version(related_df)
    embeddings_df = read_table_day(spark, settings.embeddings, NOTE_EMBEDDINGS, day)
    errors_df = read_table_day(spark, settings.errors, EMBEDDING_ERRORS, day)
    if version is not None:
        embeddings_df = embeddings_df.where(F.col("model_version") == version)
        errors_df = errors_df.where((F.col("model_version") == version)
                                    | F.col("model_version").isNull())
    window_df = persist_on_disk(window_embeddings(
        read_table(spark, settings.embeddings, NOTE_EMBEDDINGS), day, settings.window_days,
        model_version=version))
    try:
        day_notes = embeddings_df.select("note_id").distinct().count()
        min_length = min(settings.top_k, max(day_notes - 1, 0))
        problems = check_counts(notes_df, embeddings_df, errors_df, related_df, window_df,
                                settings.top_k, min_length)
        recall = sampled_recall(related_df, window_df, settings.sample_size, settings.seed)
        summary.add("date", day)
        summary.add("model_version", version)
        summary.add("embedded", day_notes)
        summary.add("queries", related_df.select("note_id").distinct().count())
        summary.add("related_rows", related_df.count())
        summary.add("window_notes", window_df.count())
        summary.add("sampled_recall", round(recall, 4))
        for check, count in problems.items():
            summary.add(check, count)
        failed = [f"{check}={count}" for check, count in problems.items() if count]
        if recall < settings.min_recall:
            failed.append(f"sampled_recall={recall:.4f} < {settings.min_recall}")
        if failed:
            raise JobInputError(f"dt={day} failed validation: " + ", ".join(failed))
    finally:
        related_df.unpersist()
        window_df.unpersist()


def lists_version(related_df: DataFrame) -> str | None:
    """The model version of the day's lists (None for an empty day); several are checked by
    `model_version_mismatch` against the first."""
    # One row per model version in the day's lists (one, when the day is right): bounded.
    versions = sorted(row[0] for row in related_df.select("model_version").distinct().collect())
    return versions[0] if versions else None


if __name__ == "__main__":
    raise SystemExit(main())
