"""Check one day of related notes before it is published; fail the run if a check fails.

    spark-submit jobs/validate_related.py --date 2026-11-25 --notes URI --embeddings URI \
        --errors URI --related URI [--top-k 100] [--window-days 30] [--recall-sample 200] \
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
tables hold one set of rows per version); and the sampled recall: for `--recall-sample` query
notes, the share of their related notes that
exact inner-product search over the window also ranks in the top n (tie-tolerant: a related
note counts if its true score reaches the exact n-th score) must be >= --min-recall.
`--sample-size` is the old name of `--recall-sample` (still accepted).
Reads only; exit 0 when all pass, 2 with a one-line list of the failed checks otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from notellm2_udf.index.recall import sampled_recall_of_day
from notellm2_udf.index.validation import check_counts, window_embeddings
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.shared import (
    day_setting,
    recall_sample_setting,
    table_setting,
    top_k_setting,
    window_days_setting,
)
from notellm2_udf.settings.values import positive_int_arg
from notellm2_udf.spark.persist import persist_on_disk
from notellm2_udf.spark.tables import read_table, read_table_day
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, NOTES, RELATED_NOTES


@dataclass(frozen=True)
class ValidateSettings:
    """One run of the job: the day, its tables, the thresholds."""

    date: str = day_setting()
    notes: str = table_setting("notes")
    embeddings: str = table_setting("note_embeddings")
    errors: str = table_setting("embedding_errors")
    related: str = table_setting("related_notes")
    top_k: int = top_k_setting()
    window_days: int = window_days_setting("days of embeddings the index held")
    recall_sample: int = recall_sample_setting(
        "query notes checked against exact search", parse=positive_int_arg,
        aliases=("--sample-size",))
    min_recall: float = option(0.9, parse=float, help="lowest acceptable sampled recall")
    seed: int = option(0, parse=int, help="which queries are sampled")


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("validate_related", ValidateSettings, run, argv, __doc__)


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
        recall = sampled_recall_of_day(related_df, window_df, size=settings.recall_sample,
                                       seed=settings.seed)
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
