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
and the sampled recall: for `--sample-size` query notes, the share of their related notes that
exact inner-product search over the window also ranks in the top n (tie-tolerant: a related
note counts if its true score reaches the exact n-th score) must be >= --min-recall.
Reads only; exit 0 when all pass, 2 with a one-line list of the failed checks otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from notellm2_udf.delta_io import read_day
from notellm2_udf.job_runtime import JobInputError, JobSummary, day_arg, positive_int_arg, run_job
from notellm2_udf.spark_session import SparkSettings, build_spark_session

SCORE_TOLERANCE = 1e-5
EXACT_SCHEMA = T.StructType([
    T.StructField("query_id", T.StringType(), False),
    T.StructField("note_id", T.StringType(), False),
    T.StructField("score", T.FloatType(), False),
])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job("validate_related", lambda summary: validate_day_tables(args, summary))


def validate_day_tables(args: argparse.Namespace, summary: JobSummary) -> None:
    spark = build_spark_session(SparkSettings(app_name=f"validate_related {args.date}"))
    notes_df = _read(spark, args.notes, args.date, "notes")
    embeddings_df = _read(spark, args.embeddings, args.date, "note_embeddings")
    errors_df = _read(spark, args.errors, args.date, "embedding_errors")
    related_df = _read(spark, args.related, args.date, "related_notes").cache()
    window_df = window_embeddings(spark.read.format("delta").load(args.embeddings), args.date,
                                  args.window_days).cache()
    try:
        day_notes = embeddings_df.select("note_id").distinct().count()
        min_length = min(args.top_k, max(day_notes - 1, 0))
        problems = check_counts(notes_df, embeddings_df, errors_df, related_df, window_df,
                                args.top_k, min_length)
        recall = sampled_recall(related_df, window_df, args.sample_size, args.seed)
        summary.add("date", args.date)
        summary.add("embedded", day_notes)
        summary.add("queries", related_df.select("note_id").distinct().count())
        summary.add("related_rows", related_df.count())
        summary.add("window_notes", window_df.count())
        summary.add("sampled_recall", round(recall, 4))
        for check, count in problems.items():
            summary.add(check, count)
        failed = [f"{check}={count}" for check, count in problems.items() if count]
        if recall < args.min_recall:
            failed.append(f"sampled_recall={recall:.4f} < {args.min_recall}")
        if failed:
            raise JobInputError(f"dt={args.date} failed validation: " + ", ".join(failed))
    finally:
        related_df.unpersist()
        window_df.unpersist()


def _read(spark: SparkSession, location: str, day: str, what: str) -> DataFrame:
    try:
        return read_day(spark, location, day)
    except Exception as err:  # AnalysisException: path missing, not a Delta table
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise JobInputError(f"cannot read {what} at {location}: {reason}") from None


def window_embeddings(embeddings_df: DataFrame, day: str, window_days: int) -> DataFrame:
    """The notes an index of `day` holds: embedded within [day - window_days + 1, day],
    the latest embedding of each note_id."""
    first = (date.fromisoformat(day) - timedelta(days=window_days - 1)).isoformat()
    latest = Window.partitionBy("note_id").orderBy(F.col("dt").desc())
    return (
        embeddings_df.where(F.col("dt").between(first, day))
        .withColumn("copy", F.row_number().over(latest))
        .where("copy = 1")
        .select("note_id", "embedding", "model_version")
    )


def check_counts(notes_df: DataFrame, embeddings_df: DataFrame, errors_df: DataFrame,
                 related_df: DataFrame, window_df: DataFrame, top_k: int,
                 min_length: int) -> dict[str, int]:
    """Offending rows per check (all of the day); every count must be 0."""
    window_ids_df = window_df.select("note_id")
    checks = {
        "unaccounted_notes": unaccounted_notes(notes_df, embeddings_df, errors_df),
        "queries_missing": embeddings_df.select("note_id").join(
            related_df.select("note_id"), "note_id", "left_anti"),
        "unknown_queries": related_df.select("note_id").join(window_ids_df, "note_id",
                                                             "left_anti"),
        "unknown_related": related_df.select(F.col("related_note_id").alias("note_id")).join(
            window_ids_df, "note_id", "left_anti"),
        "self_related": related_df.where(F.col("note_id") == F.col("related_note_id")),
        "duplicate_ranks": duplicated(related_df, "note_id", "rank"),
        "duplicate_pairs": duplicated(related_df, "note_id", "related_note_id"),
        "bad_rank_lists": bad_rank_lists(related_df, top_k, min_length),
        "unsorted_scores": unsorted_scores(related_df),
        "model_version_mismatch": related_df.join(
            embeddings_df.select("model_version").distinct(), "model_version", "left_anti"),
    }
    return {name: check_df.count() for name, check_df in checks.items()}


def unaccounted_notes(notes_df: DataFrame, embeddings_df: DataFrame,
                      errors_df: DataFrame) -> DataFrame:
    """Note ids of the day in neither the embeddings nor the errors."""
    return (
        notes_df.where(F.col("note_id").isNotNull()).select("note_id").distinct()
        .join(embeddings_df.select("note_id"), "note_id", "left_anti")
        .join(errors_df.select("note_id"), "note_id", "left_anti")
    )


def duplicated(related_df: DataFrame, *columns: str) -> DataFrame:
    return related_df.groupBy(*columns).count().where("count > 1")


def bad_rank_lists(related_df: DataFrame, top_k: int, min_length: int) -> DataFrame:
    """Queries whose ranks are not exactly 1..n, or whose n is outside [min_length, top_k]."""
    return (
        related_df.groupBy("note_id")
        .agg(F.count(F.lit(1)).alias("n"), F.min("rank").alias("first"),
             F.max("rank").alias("last"), F.countDistinct("rank").alias("distinct_ranks"))
        .where((F.col("first") != 1) | (F.col("last") != F.col("n"))
               | (F.col("distinct_ranks") != F.col("n"))
               | (F.col("n") > top_k) | (F.col("n") < min_length))
    )


def unsorted_scores(related_df: DataFrame) -> DataFrame:
    """Rows whose score is not finite or exceeds the score of the rank before it."""
    previous = F.lag("score").over(Window.partitionBy("note_id").orderBy("rank"))
    return related_df.withColumn("previous", previous).where(
        F.isnan("score") | (F.abs("score") == float("inf"))
        | (F.col("score") > F.col("previous") + SCORE_TOLERANCE))


def sampled_recall(related_df: DataFrame, window_df: DataFrame, sample_size: int,
                   seed: int) -> float:
    """Mean over sampled queries of the tie-tolerant recall of their related lists.

    The sample is the `sample_size` queries of smallest hash(note_id, seed): stable across
    reruns. Queries, their exact neighbours and true scores go through the driver (a few
    hundred rows each), the exact search through one pass over the window on executors.
    """
    queries = (related_df.select("note_id").distinct()
               .orderBy(F.xxhash64("note_id", F.lit(seed))).limit(sample_size)
               .join(window_df, "note_id").select("note_id", "embedding").toPandas())
    if queries.empty:
        return 1.0
    query_ids = queries["note_id"].tolist()
    xq = np.stack(queries["embedding"].map(np.asarray)).astype(np.float32)
    approx_pdf = related_df.where(F.col("note_id").isin(query_ids)).select(
        "note_id", "rank", "related_note_id").toPandas()
    k = int(approx_pdf.groupby("note_id").size().max())
    exact_pdf = exact_top_k(window_df, query_ids, xq, k).toPandas()
    related_ids = approx_pdf["related_note_id"].unique().tolist()
    xb_pdf = window_df.where(F.col("note_id").isin(related_ids)).select(
        "note_id", "embedding").toPandas()
    return tie_tolerant_recall(query_ids, xq, approx_pdf, exact_pdf, xb_pdf)


def exact_top_k(window_df: DataFrame, query_ids: list[str], xq: np.ndarray,
                k: int) -> DataFrame:
    """Exact top-k by inner product of each query over the window, itself excluded:
    rows (query_id, note_id, score). Each partition keeps its own top k per query."""

    def search(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        best: list[pd.DataFrame] = []
        for batch in batches:
            if batch.empty:
                continue
            xb = np.stack(batch["embedding"].map(np.asarray)).astype(np.float32)
            scores = xq @ xb.T  # [queries, batch]
            ids = batch["note_id"].to_numpy()
            for row, query_id in enumerate(query_ids):
                keep = ids != query_id
                s, i = scores[row][keep], ids[keep]
                top = np.argsort(-s, kind="stable")[:k]
                best.append(pd.DataFrame({"query_id": query_id, "note_id": i[top],
                                          "score": s[top]}))
        if best:
            merged = pd.concat(best)
            yield (merged.sort_values(["query_id", "score"], ascending=[True, False])
                   .groupby("query_id").head(k))

    partial_df = window_df.select("note_id", "embedding").mapInPandas(search, EXACT_SCHEMA)
    ranked = Window.partitionBy("query_id").orderBy(F.col("score").desc(), "note_id")
    return partial_df.withColumn("r", F.row_number().over(ranked)).where(
        F.col("r") <= k).drop("r")


def tie_tolerant_recall(query_ids: list[str], xq: np.ndarray, approx_pdf: pd.DataFrame,
                        exact_pdf: pd.DataFrame, xb_pdf: pd.DataFrame) -> float:
    """Per query: |related notes whose true score >= the exact n-th score| / n, where n is
    the length of its related list (capped by the exact list); averaged over queries."""
    vectors = dict(zip(xb_pdf["note_id"], xb_pdf["embedding"].map(np.asarray)))
    recalls = []
    for row, query_id in enumerate(query_ids):
        related = approx_pdf[approx_pdf["note_id"] == query_id]["related_note_id"]
        exact = np.sort(exact_pdf[exact_pdf["query_id"] == query_id]["score"].to_numpy())[::-1]
        n = min(len(related), len(exact))
        if n == 0:
            recalls.append(1.0 if len(related) == len(exact) else 0.0)
            continue
        true_scores = np.array([float(xq[row] @ vectors[i]) if i in vectors else -np.inf
                                for i in related])
        hits = int((true_scores >= exact[n - 1] - SCORE_TOLERANCE).sum())
        recalls.append(min(hits, n) / n)
    return float(np.mean(recalls))


if __name__ == "__main__":
    raise SystemExit(main())
