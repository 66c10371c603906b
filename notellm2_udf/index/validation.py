"""The checks of one day of related notes before it is published (jobs/validate_related.py).

Each check counts offending rows; a day passes when every count is 0 and the sampled recall
against an exact search reaches the threshold.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from notellm2_udf.index.corpus import latest_embeddings

SCORE_TOLERANCE = 1e-5
EXACT_SCHEMA = T.StructType([
    T.StructField("query_id", T.StringType(), False),
    T.StructField("note_id", T.StringType(), False),
    T.StructField("score", T.FloatType(), False),
])


def window_embeddings(embeddings_df: DataFrame, day: str, window_days: int,
                      model_version: str | None = None) -> DataFrame:
    """The notes an index of `day` holds (note_id, embedding, model_version): the window
    corpus as build_index defines it (pipeline.corpus)."""
    return latest_embeddings(embeddings_df, day=day, window_days=window_days,
                             model_version=model_version).select(
        "note_id", "embedding", "model_version")


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
        # The window's version too: a day without embeddings (no notes) still has lists.
        "model_version_mismatch": related_df.join(
            embeddings_df.select("model_version").unionByName(
                window_df.select("model_version")).distinct(), "model_version", "left_anti"),
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
    # Every collect below is bounded by the sample: sample_size queries, their k related
    # rows, their exact top-k, the embeddings of at most sample_size x k related notes.
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
    rows (query_id, note_id, score). Each partition keeps its own top k per query.

    Independent of index.exact.exact_topk on purpose: a check must not share the code it
    checks (numpy brute force here, FAISS there). tests/pipeline/test_validation.py proves
    that both give the same lists on the same data, ties included.
    """

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
